"""The staff console for sessions and messages: lists stay cheap, searches and actions work."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from sessions_app.tests.factories import BROWSER_UA, ended_session_make, exchange_make, session_make
from staff_app.tests.factories import admin_session_url

pytestmark = pytest.mark.django_db

SESSIONS = "/admin/sessions_app/chatsession/"
MESSAGES = "/admin/chat_app/chatmessage/"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser(username="root", password="a-strong-admin-password-1")
    client.force_login(user)
    return client


def listed(response) -> set:
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def sessions_with_messages(count: int) -> None:
    for n in range(count):
        session = session_make(email=f"v{n}@example.com", ip_address=f"198.51.100.{n + 1}").session
        exchange_make(session=session, flagged=n % 3 == 0)


def test_session_admin_changelist_queries_do_not_grow(staff):
    sessions_with_messages(5)
    few = queries_for(staff, SESSIONS)
    sessions_with_messages(25)

    many = queries_for(staff, SESSIONS)

    assert ChatSession.objects.count() == 30
    assert many == few
    assert many <= 8


def test_session_admin_changelist_refuses_anonymous(client):
    response = client.get(SESSIONS)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_session_admin_search_by_exact_email(staff):
    alice = session_make(email="Alice@Example.com").session
    session_make(email="bob@example.com")

    assert listed(staff.get(SESSIONS, {"q": "alice@example.com"})) == {alice.pk}


def test_session_admin_search_by_email_uses_keyed_hash(staff):
    alice = session_make(email="alice@example.com").session
    session_make(email="bob@example.com")
    # Only the hash can find it now: the address column no longer holds the searched text.
    ChatSession.objects.filter(pk=alice.pk).update(email="renamed@example.org")

    assert listed(staff.get(SESSIONS, {"q": "ALICE@example.com"})) == {alice.pk}


def test_session_admin_search_by_ip(staff):
    near = session_make(ip_address="198.51.100.23").session
    session_make(ip_address="203.0.113.5")

    assert listed(staff.get(SESSIONS, {"q": "198.51.100.23"})) == {near.pk}


def test_session_admin_filters_active_expired_flagged(staff):
    now = timezone.now()
    live = session_make().session
    expired = session_make(expires_at=now - timedelta(minutes=1)).session
    ended = ended_session_make(ended_at=now - timedelta(hours=1))
    exchange_make(session=live)
    exchange_make(session=ended, text="<script>alert(1)</script>", flagged=True)

    assert listed(staff.get(SESSIONS, {"is_active__exact": "1"})) == {live.pk, expired.pk}
    assert listed(staff.get(SESSIONS, {"is_active__exact": "0"})) == {ended.pk}
    assert listed(staff.get(SESSIONS, {"expired": "yes"})) == {expired.pk}
    assert listed(staff.get(SESSIONS, {"expired": "no"})) == {live.pk, ended.pk}
    assert listed(staff.get(SESSIONS, {"flagged": "yes"})) == {ended.pk}
    assert listed(staff.get(SESSIONS, {"flagged": "no"})) == {live.pk, expired.pk}


def test_session_admin_change_page_shows_conversation(staff):
    session = session_make().session
    exchange_make(session=session, text="Where is my parcel", reply="It ships tomorrow")

    response = staff.get(admin_session_url(session))

    assert response.status_code == 200
    assert b"Where is my parcel" in response.content
    assert b"It ships tomorrow" in response.content


def test_session_admin_add_is_not_offered(staff):
    assert staff.get(f"{SESSIONS}add/").status_code == 403


def test_session_admin_end_sessions_action(staff):
    chosen = [session_make(email=f"v{n}@example.com") for n in range(2)]
    spared = session_make(email="spared@example.com")

    response = staff.post(SESSIONS, {"action": "end_sessions", "_selected_action": [s.session.pk for s in chosen]})

    assert response.status_code == 302
    for started in chosen:
        session = ChatSession.objects.get(pk=started.session.pk)
        assert (session.is_active, session.end_reason) == (False, ChatSession.EndReason.STAFF)
        visitor = APIClient(HTTP_USER_AGENT=BROWSER_UA, HTTP_AUTHORIZATION=f"Bearer {started.access_token}")
        refused = visitor.get("/api/v1/auth/session")
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"].startswith("Bearer")
    assert ChatSession.objects.get(pk=spared.session.pk).is_active


def test_session_admin_delete_removes_messages(staff):
    doomed = session_make().session
    kept = session_make(email="kept@example.com").session
    exchange_make(session=doomed)
    exchange_make(session=kept)

    assert staff.get(f"{SESSIONS}{doomed.pk}/delete/").status_code == 200
    response = staff.post(f"{SESSIONS}{doomed.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not ChatSession.objects.filter(pk=doomed.pk).exists()
    assert not ChatMessage.objects.filter(session_id=doomed.pk).exists()
    assert ChatMessage.objects.filter(session=kept).count() == 2


def test_session_admin_bulk_delete_removes_messages(staff):
    doomed = [session_make(email=f"v{n}@example.com").session for n in range(2)]
    kept = session_make(email="kept@example.com").session
    for session in [*doomed, kept]:
        exchange_make(session=session)

    response = staff.post(
        SESSIONS, {"action": "delete_selected", "_selected_action": [s.pk for s in doomed], "post": "yes"}
    )

    assert response.status_code == 302
    assert list(ChatSession.objects.values_list("pk", flat=True)) == [kept.pk]
    assert ChatMessage.objects.count() == 2


def test_message_admin_changelist_queries_do_not_grow(staff):
    sessions_with_messages(3)
    few = queries_for(staff, MESSAGES)
    sessions_with_messages(27)

    many = queries_for(staff, MESSAGES)

    assert ChatMessage.objects.count() == 60
    assert many == few
    assert many <= 8


def test_message_admin_filters_kind_and_flagged(staff):
    session = session_make().session
    plain, plain_reply = exchange_make(session=session)
    flagged, flagged_reply = exchange_make(session=session, text="'; DROP TABLE users; --", flagged=True)

    assert listed(staff.get(MESSAGES, {"kind__exact": "user"})) == {plain.pk, flagged.pk}
    assert listed(staff.get(MESSAGES, {"kind__exact": "assistant"})) == {plain_reply.pk, flagged_reply.pk}
    assert listed(staff.get(MESSAGES, {"flagged__exact": "1"})) == {flagged.pk}


def test_message_admin_search_by_text(staff):
    session = session_make().session
    wanted, _ = exchange_make(session=session, text="Question about invoices", reply="Sure")
    exchange_make(session=session, text="Unrelated", reply="Fine")

    assert listed(staff.get(MESSAGES, {"q": "invoices"})) == {wanted.pk}
