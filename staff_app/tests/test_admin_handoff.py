"""The session page as the staff side of the handoff: mode, staff messages, the reply box and the hand-back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat_app import llm
from chat_app.handoff import (
    SESSION_OVER,
    STAFF_MESSAGE_BLANK,
    staff_message_edit,
    staff_message_post,
    staff_message_withdraw,
)
from chat_app.models import ChatEvent, ChatMessage
from chat_app.services import chat_reply_store
from notifications_app.models import Delivery
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end
from sessions_app.tests.factories import exchange_make, session_make
from staff_app.admin import NOT_HUMAN, RELEASED, REPLY_SENT
from staff_app.tests.factories import admin_session_url

pytestmark = pytest.mark.django_db

SESSIONS = "/admin/sessions_app/chatsession/"


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser(
        username="ana", password="a-strong-password-1", first_name="Ana", last_name="Silva"
    )


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def session() -> ChatSession:
    return session_make().session


def reply_url(session: ChatSession) -> str:
    return admin_session_url(session, "reply")


def release_url(session: ChatSession) -> str:
    return admin_session_url(session, "release")


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def fresh(session: ChatSession) -> ChatSession:
    return ChatSession.objects.get(pk=session.pk)


def test_admin_reply_is_sent_like_the_staff_api(staff, session, discord_on, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reply_url(session), {"message": " On it <3 "}, follow=True)

    assert response.redirect_chain == [(admin_session_url(session), 302)]
    assert shown_messages(response) == [REPLY_SENT]
    message = ChatMessage.objects.get(session=session)
    assert (message.kind, message.content, message.author) == ("staff", "On it <3", "Ana Silva")
    assert fresh(session).mode == ChatSession.Mode.HUMAN
    events = ChatEvent.objects.filter(session=session)
    assert list(events.values_list("kind", "message_id")) == [("message", message.pk), ("mode", None)]
    assert events.get(kind="mode").data == {"mode": "human", "author": "Ana Silva"}
    posted = Delivery.objects.filter(kind=Delivery.Kind.MESSAGE_POSTED)
    assert list(posted.values_list("message_id", flat=True)) == [message.pk]
    html = response.content.decode()
    assert '<div class="turn-text">On it &lt;3</div>' in html
    assert '<strong class="mode mode-human">human</strong>' in html


def test_admin_reply_keeps_line_breaks_as_typed(staff, session):
    staff.post(reply_url(session), {"message": "Line one\r\nLine two\r\n\r\nBye"})

    assert ChatMessage.objects.get(session=session).content == "Line one\nLine two\n\nBye"


def test_admin_reply_at_the_length_limit_counts_a_line_break_once(staff, session, settings):
    settings.MAX_MESSAGE_LENGTH = 5

    staff.post(reply_url(session), {"message": "ab\r\ncd"})  # 5 characters as typed, 6 as the form sends them

    assert ChatMessage.objects.get(session=session).content == "ab\ncd"


@pytest.mark.parametrize("data", [{"message": "  \r\n\t "}, {"message": ""}, {}])
def test_admin_blank_reply_is_an_error_and_stores_nothing(staff, session, data):
    response = staff.post(reply_url(session), data, follow=True)

    assert response.redirect_chain == [(admin_session_url(session), 302)]
    assert shown_messages(response) == [STAFF_MESSAGE_BLANK]
    assert not ChatMessage.objects.exists()
    assert not ChatEvent.objects.exists()
    assert fresh(session).mode == ChatSession.Mode.AI


def test_admin_too_long_reply_is_an_error_and_stores_nothing(staff, session, settings):
    settings.MAX_MESSAGE_LENGTH = 10

    response = staff.post(reply_url(session), {"message": "x" * 11}, follow=True)

    assert shown_messages(response) == ["Message must be at most 10 characters."]
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("over", ["ended", "expired"])
def test_admin_reply_to_a_session_that_is_over_is_an_error(staff, session, over):
    if over == "ended":
        chat_session_end(session=session, reason=ChatSession.EndReason.LOGOUT)
    else:
        ChatSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = staff.post(reply_url(session), {"message": "Hello"}, follow=True)

    assert response.status_code == 200
    assert shown_messages(response) == [SESSION_OVER]
    assert not ChatMessage.objects.exists()
    assert fresh(session).mode == ChatSession.Mode.AI
    assert 'id="handoff-reply-form"' not in response.content.decode()


def test_admin_hand_back_returns_the_session_to_the_model(staff, session):
    staff_message_post(session_id=session.pk, content="Hello", author="Ana Silva")

    response = staff.post(release_url(session), follow=True)

    assert response.redirect_chain == [(admin_session_url(session), 302)]
    assert shown_messages(response) == [RELEASED]
    assert fresh(session).mode == ChatSession.Mode.AI
    released = ChatEvent.objects.filter(session=session, kind="mode").last()
    assert released.data == {"mode": "ai", "author": "Ana Silva"}
    html = response.content.decode()
    assert '<strong class="mode mode-ai">ai</strong>' in html
    assert "Hand back to the model" not in html


def test_admin_hand_back_when_the_model_answers_changes_nothing(staff, session):
    response = staff.post(release_url(session), follow=True)

    assert shown_messages(response) == [NOT_HUMAN]
    assert not ChatEvent.objects.exists()


def test_admin_page_offers_the_reply_box_and_the_hand_back_only_when_they_apply(staff, session):
    ai_page = staff.get(admin_session_url(session)).content.decode()
    assert f'<form id="handoff-reply-form" method="post" action="{reply_url(session)}">' in ai_page
    assert 'form="handoff-reply-form"' in ai_page
    assert "csrfmiddlewaretoken" in ai_page.split('id="handoff-reply-form"')[1].split("</form>")[0]
    assert "Hand back to the model" not in ai_page

    staff_message_post(session_id=session.pk, content="Hello", author="Ana Silva")
    human_page = staff.get(admin_session_url(session)).content.decode()
    assert f'<form id="handoff-release-form" method="post" action="{release_url(session)}">' in human_page
    assert 'value="Hand back to the model"' in human_page

    chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)
    ended_page = staff.get(admin_session_url(session)).content.decode()
    assert "handoff-reply-form" not in ended_page
    assert 'value="Hand back to the model"' in ended_page  # still in human mode: it may still be handed back


def test_admin_page_shows_staff_messages_with_their_author_and_state(staff, session):
    exchange_make(session=session, text="Can a person help?", reply="Let me find someone")
    staff_message_post(session_id=session.pk, content="Hi, <b>Ana</b> here", author="Ana <Silva>")
    staff_message_post(session_id=session.pk, content="Typo", author="Bo", discord_message_id=1400000000000000001)
    staff_message_edit(discord_message_id=1400000000000000001, content="Fixed typo")
    staff_message_post(session_id=session.pk, content="Oops", author="Bo", discord_message_id=1400000000000000002)
    staff_message_withdraw(discord_message_id=1400000000000000002)
    ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content="Thanks", to_staff=True)

    html = staff.get(admin_session_url(session)).content.decode()

    assert html.count('class="turn turn-staff"') == 2
    assert html.count('class="turn turn-staff turn-withdrawn"') == 1
    assert '<span class="turn-author">Ana &lt;Silva&gt;</span>' in html
    assert '<div class="turn-text">Hi, &lt;b&gt;Ana&lt;/b&gt; here</div>' in html
    assert '<div class="turn-text">Fixed typo</div>' in html and ">Edited</span>" in html
    assert ">Withdrawn</span>" in html
    assert html.count('<span class="badge badge-to-staff">To staff</span>') == 1
    assert "<b>Ana</b>" not in html and "Ana <Silva>" not in html
    texts = ["Can a person help?", "Let me find someone", "Hi, &lt;b&gt;Ana", "Fixed typo", "Oops", "Thanks"]
    positions = [html.index(text) for text in texts]
    assert positions == sorted(positions)


def test_admin_page_shows_the_replies_tokens_and_cost(staff, session):
    """The session's totals, as each reply added to them when it was stored."""
    for prompt, completion, cost in [(120, 30, "0.0001"), (80, 20, "0.00002")]:
        asked = ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content="hi")
        usage = llm.Completion("hello", "m", 9, prompt, completion, Decimal(cost))
        chat_reply_store(message=asked, content="hello", completion=usage)

    html = staff.get(admin_session_url(session)).content.decode()

    assert "200 prompt + 50 completion tokens" in html
    assert "US$0.00012000" in html


def test_admin_page_without_usage_shows_zero_cost(staff, session):
    assert b"US$0.00000000" in staff.get(admin_session_url(session)).content


def test_admin_page_queries_do_not_grow_with_staff_messages(staff, session):
    exchange_make(session=session)
    with CaptureQueriesContext(connection) as few:
        staff.get(admin_session_url(session))
    for n in range(10):
        staff_message_post(session_id=session.pk, content=f"Staff {n}", author="Ana Silva")
        ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content=f"Visitor {n}", to_staff=True)

    with CaptureQueriesContext(connection) as many:
        response = staff.get(admin_session_url(session))

    assert response.status_code == 200
    assert len(many) == len(few)


@pytest.mark.parametrize("url", [reply_url, release_url])
def test_admin_handoff_needs_the_change_permission(client, django_user_model, session, url):
    viewer = django_user_model.objects.create_user(username="viewer", password="a-strong-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_chatsession"))
    client.force_login(viewer)
    staff_message_post(session_id=session.pk, content="Hello", author="Ana Silva")

    page = client.get(admin_session_url(session)).content.decode()
    response = client.post(url(session), {"message": "Sneaky"})

    assert response.status_code == 403
    assert "handoff-reply-form" not in page and "handoff-release-form" not in page
    assert list(ChatMessage.objects.values_list("content", flat=True)) == ["Hello"]
    assert fresh(session).mode == ChatSession.Mode.HUMAN


@pytest.mark.parametrize("url", [reply_url, release_url])
def test_admin_handoff_refuses_anonymous(client, session, url):
    response = client.post(url(session), {"message": "Hello"})

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("url", [reply_url, release_url])
def test_admin_handoff_needs_the_csrf_token(staff_user, session, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    assert client.post(url(session), {"message": "Hello"}).status_code == 403
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("url", [reply_url, release_url])
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_admin_handoff_urls_take_only_post(staff, session, url, method):
    response = getattr(staff, method)(url(session))

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.parametrize("action", ["reply", "release"])
def test_admin_handoff_on_an_unknown_session_is_404(staff, action):
    assert staff.post(f"{SESSIONS}no-such-session/{action}/", {"message": "Hello"}).status_code == 404


def test_session_list_shows_and_filters_by_mode(staff):
    answered_by_staff = session_make(email="human@example.com").session
    answered_by_model = session_make(email="ai@example.com").session
    staff_message_post(session_id=answered_by_staff.pk, content="Hello", author="Ana Silva")

    def listed(query: dict) -> set[str]:
        response = staff.get(SESSIONS, query)
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    assert listed({"mode": "human"}) == {answered_by_staff.pk}
    assert listed({"mode": "ai"}) == {answered_by_model.pk}
    assert listed({"mode": "junk"}) == listed({"mode": "\x00"}) == {answered_by_staff.pk, answered_by_model.pk}
    assert b"Staff answer" in staff.get(SESSIONS).content
