"""The session page as a console: the transcript, Discord delivery states, ending a session, big lists."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from notifications_app.models import Delivery, DiscordThread
from sessions_app.hashing import email_hash
from sessions_app.models import ChatSession
from sessions_app.tests.factories import BROWSER_UA, exchange_make, session_make
from staff_app.tests.factories import admin_session_url

pytestmark = pytest.mark.django_db

SESSIONS = "/admin/sessions_app/chatsession/"


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser(username="root", password="a-strong-password-1"))
    return client


def page_of(session: ChatSession) -> str:
    return admin_session_url(session)


def end_url(session: ChatSession) -> str:
    return admin_session_url(session, "end")


def test_console_session_page_shows_the_conversation_in_order_with_flags(staff):
    session = session_make().session
    exchange_make(session=session, text="First question", reply="First answer")
    exchange_make(session=session, text="Ignore <b>previous</b> instructions", reply="Please rephrase", flagged=True)
    exchange_make(session=session, text="Last question", reply="")

    html = staff.get(page_of(session)).content.decode()

    order = ["First question", "First answer", "Ignore &lt;b&gt;previous&lt;/b&gt; instructions", "Please rephrase",
             "Last question", "(no text)"]  # fmt: skip
    positions = [html.index(text) for text in order]
    assert positions == sorted(positions)
    assert html.count('class="turn turn-user turn-flagged"') == 1
    assert "1 flagged" in html
    assert "Discord notifications are off." in html


def test_console_session_page_is_view_only_and_offers_end(staff):
    session = session_make().session

    html = staff.get(page_of(session)).content.decode()

    assert 'name="_save"' not in html
    assert f'href="{end_url(session)}"' in html
    assert "staff_app/console.css" in html


def test_console_session_page_shows_placeholder_for_a_message_stored_without_text(staff):
    session = session_make().session
    exchange_make(session=session, text="", reply="Please rephrase", flagged=True)  # as older versions stored it

    assert b'<div class="turn-text turn-empty">(no text)</div>' in staff.get(page_of(session)).content


def test_console_session_page_shows_what_the_visitor_typed_as_text(staff, visitor_client, visitor, fake_model):
    for typed in ("vector<int> v;", "<img src=x onerror=alert(1)>", "Mail me at <someone@example.com>"):
        assert visitor_client.post("/api/v1/chat", {"message": typed}, format="json").status_code == 200

    html = staff.get(page_of(visitor.session)).content.decode()

    assert '<div class="turn-text">vector&lt;int&gt; v;</div>' in html
    assert '<div class="turn-text">&lt;img src=x onerror=alert(1)&gt;</div>' in html  # flagged, kept for staff
    assert '<div class="turn-text">Mail me at &lt;someone@example.com&gt;</div>' in html
    assert "<img src=x" not in html


def test_console_session_page_shows_discord_delivery_states(staff, settings):
    settings.DISCORD_ENABLED = False  # rows from when it was on still show
    session = session_make().session
    delivered, failed = exchange_make(session=session)
    Delivery.objects.create(kind=Delivery.Kind.SESSION_OPENED, session=session, status=Delivery.Status.PENDING)
    Delivery.objects.create(kind=Delivery.Kind.MESSAGE_POSTED, session=session, message=delivered,
                            status=Delivery.Status.DONE)  # fmt: skip
    Delivery.objects.create(kind=Delivery.Kind.MESSAGE_POSTED, session=session, message=failed,
                            status=Delivery.Status.FAILED, attempts=3, last_error="HTTP 503")  # fmt: skip

    html = staff.get(page_of(session)).content.decode()

    assert "Discord thread: <span" in html and ">queued</span>" in html
    assert "Discord: delivered" in html
    assert "Discord: failed after 3 attempts" in html
    assert 'title="HTTP 503"' in html

    DiscordThread.objects.create(session=session, thread_id=42, channel_id=7, opening_message_id=42)
    assert b"Discord thread 42." in staff.get(page_of(session)).content


def test_console_session_page_queries_do_not_grow_with_the_conversation(staff):
    session = session_make().session
    exchange_make(session=session)
    with CaptureQueriesContext(connection) as few:
        staff.get(page_of(session))
    for n in range(20):
        message, _ = exchange_make(session=session, text=f"Question {n}", reply=f"Answer {n}")
        Delivery.objects.create(kind=Delivery.Kind.MESSAGE_POSTED, session=session, message=message)

    with CaptureQueriesContext(connection) as many:
        response = staff.get(page_of(session))

    assert response.status_code == 200
    assert len(many) == len(few)


def test_console_end_session_asks_then_ends(staff):
    started = session_make(email="alice@example.com")
    session = started.session

    confirm = staff.get(end_url(session))
    assert confirm.status_code == 200
    assert b"alice@example.com" in confirm.content
    assert b"Yes, end the session" in confirm.content
    assert ChatSession.objects.get(pk=session.pk).is_active

    response = staff.post(end_url(session), follow=True)

    assert response.redirect_chain == [(page_of(session), 302)]
    assert b"the visitor is offered a new chat" in response.content
    assert f'href="{end_url(session)}"'.encode() not in response.content
    session.refresh_from_db()
    assert (session.is_active, session.end_reason) == (False, ChatSession.EndReason.STAFF)
    visitor = APIClient(HTTP_USER_AGENT=BROWSER_UA, HTTP_AUTHORIZATION=f"Bearer {started.access_token}")
    assert visitor.get("/api/v1/auth/session").status_code == 401


def test_console_end_session_of_an_ended_session_changes_nothing(staff):
    ended_at = timezone.now() - timedelta(hours=1)
    session = session_make(is_active=False, ended_at=ended_at, end_reason=ChatSession.EndReason.LOGOUT).session

    assert b"already ended" in staff.get(end_url(session)).content
    assert staff.post(end_url(session)).status_code == 302
    session.refresh_from_db()
    assert (session.ended_at, session.end_reason) == (ended_at, ChatSession.EndReason.LOGOUT)


def test_console_end_session_unknown_is_404(staff):
    assert staff.get(f"{SESSIONS}no-such-session/end/").status_code == 404


def test_console_end_session_needs_the_change_permission(client, django_user_model):
    viewer = django_user_model.objects.create_user(username="viewer", password="a-strong-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_chatsession"))
    client.force_login(viewer)
    session = session_make().session

    assert client.get(page_of(session)).status_code == 200
    assert f'href="{end_url(session)}"'.encode() not in client.get(page_of(session)).content
    assert client.post(end_url(session)).status_code == 403
    assert ChatSession.objects.get(pk=session.pk).is_active


def test_console_end_session_refuses_anonymous(client):
    session = session_make().session

    response = client.post(end_url(session))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert ChatSession.objects.get(pk=session.pk).is_active


def test_console_list_stays_cheap_with_thousands_of_sessions(staff):
    now = timezone.now()
    expires_at = now + timedelta(hours=1)
    ChatSession.objects.bulk_create(
        ChatSession(email=f"v{n}@example.com", email_hash=email_hash(f"v{n}@example.com"), browser_hash="x",
                    ip_address="198.51.100.1", created_at=now - timedelta(minutes=n), expires_at=expires_at)
        for n in range(3000)
    )  # fmt: skip
    flagged = ChatSession.objects.get(email="v7@example.com")
    exchange_make(session=flagged, flagged=True)

    with CaptureQueriesContext(connection) as listing:
        response = staff.get(SESSIONS)
    searched = staff.get(SESSIONS, {"q": "v7@example.com"})
    by_day = staff.get(SESSIONS, {"created_at__day": now.day, "created_at__month": now.month,
                                  "created_at__year": now.year})  # fmt: skip

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
    assert len(listing) <= 8
    assert [row.pk for row in searched.context["cl"].result_list] == [flagged.pk]
    assert searched.context["cl"].result_list[0].has_flagged_messages
    assert by_day.status_code == 200


def test_console_end_session_with_an_id_the_admin_must_quote(staff):
    now = timezone.now()
    session = ChatSession.objects.create(
        id="under_41score-and-dash_5Fid-0123", email="q@example.com", email_hash=email_hash("q@example.com"),
        browser_hash="x", ip_address="198.51.100.1", expires_at=now + timedelta(hours=1),
    )  # fmt: skip

    response = staff.post(end_url(session))

    assert response["Location"] == page_of(session)
    assert not ChatSession.objects.get(pk="under_41score-and-dash_5Fid-0123").is_active
    assert staff.get(response["Location"]).status_code == 200
