"""Human handoff in the chat turn: staff take over, the model steps aside, and the session comes back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat_app.handoff import (
    SessionOver,
    StaffMessageRejected,
    human_request,
    idle_sessions_release,
    session_release,
    staff_message_post,
    staff_text_clean,
)
from chat_app.models import ChatEvent, ChatMessage
from chat_app.tests.test_stream import events_of
from conftest import body_of
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end

pytestmark = pytest.mark.django_db
CHAT = "/api/v1/chat"


def refreshed(session: ChatSession) -> ChatSession:
    return ChatSession.objects.get(pk=session.pk)


def test_a_staff_message_puts_the_session_in_human_mode_and_the_model_steps_aside(visitor_client, visitor, fake_model):
    staff_message_post(session_id=visitor.session.pk, content="Hello, Ana here", author="Ana")

    response = visitor_client.post(CHAT, {"message": "Thanks Ana"}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["mode"], body["response"], body["response_id"], body["fallback"]) == ("human", "", None, False)
    assert fake_model.calls == []
    message = ChatMessage.objects.get(pk=body["message_id"])
    assert (message.content, message.to_staff) == ("Thanks Ana", True)
    assert not ChatMessage.objects.filter(kind=ChatMessage.Kind.ASSISTANT).exists()
    assert visitor_client.get("/api/v1/auth/session").json()["mode"] == "human"
    assert visitor_client.get("/api/v1/chat/history").json()["messages"][-1]["response"] == ""


def test_a_stream_in_human_mode_sends_only_done(visitor_client, visitor, fake_model):
    staff_message_post(session_id=visitor.session.pk, content="Ana here", author="Ana")

    response = visitor_client.post(CHAT + "/stream", {"message": "Hi"}, format="json")

    events = events_of(body_of(response))
    assert [name for name, _ in events] == ["done"]
    assert (events[0][1]["mode"], events[0][1]["response_id"]) == ("human", None)
    assert fake_model.calls == []


def test_a_repeated_idempotency_key_in_human_mode_answers_at_once(visitor_client, visitor, fake_model):
    staff_message_post(session_id=visitor.session.pk, content="Ana here", author="Ana")
    first = visitor_client.post(CHAT, {"message": "Hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()

    again = visitor_client.post(CHAT, {"message": "Hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()

    assert (again["message_id"], again["mode"]) == (first["message_id"], "human")
    assert ChatMessage.objects.filter(kind=ChatMessage.Kind.USER).count() == 1


def test_release_hands_the_session_back_to_the_model(visitor_client, visitor, fake_model):
    staff_message_post(session_id=visitor.session.pk, content="Ana here", author="Ana")

    assert session_release(session_id=visitor.session.pk, author="Ana") is True
    assert session_release(session_id=visitor.session.pk) is False  # already the model's

    body = visitor_client.post(CHAT, {"message": "Back to the bot"}, format="json").json()
    assert (body["mode"], body["response"]) == ("ai", fake_model.reply)
    modes = list(ChatEvent.objects.filter(kind="mode").order_by("seq").values_list("data", flat=True))
    assert modes == [{"mode": "human", "author": "Ana"}, {"mode": "ai", "author": "Ana"}]


def test_a_human_session_idle_for_handoff_idle_seconds_goes_back_to_the_model_on_the_next_chat(
    visitor_client, visitor, fake_model, settings
):
    settings.HANDOFF_IDLE_SECONDS = 60
    staff_message_post(session_id=visitor.session.pk, content="Ana here", author="Ana")
    idle_since = timezone.now() - timedelta(seconds=61)
    ChatSession.objects.filter(pk=visitor.session.pk).update(last_staff_message_at=idle_since)

    body = visitor_client.post(CHAT, {"message": "Anyone?"}, format="json").json()

    assert (body["mode"], body["response"]) == ("ai", fake_model.reply)
    assert refreshed(visitor.session).mode == "ai"
    assert ChatEvent.objects.filter(kind="mode", data__mode="ai").count() == 1


def test_the_idle_sweep_releases_only_sessions_idle_long_enough(visitor, settings):
    from sessions_app.services import chat_session_start

    settings.HANDOFF_IDLE_SECONDS = 60
    busy = chat_session_start(email="busy@example.com", user_agent="Mozilla/5.0 test agent", ip_address="203.0.113.8")
    for started in (visitor, busy):
        staff_message_post(session_id=started.session.pk, content="Ana here", author="Ana")
    idle_since = timezone.now() - timedelta(seconds=61)
    ChatSession.objects.filter(pk=visitor.session.pk).update(last_staff_message_at=idle_since)

    assert idle_sessions_release() == 1
    assert (refreshed(visitor.session).mode, refreshed(busy.session).mode) == ("ai", "human")
    assert idle_sessions_release() == 0


def test_staff_cannot_write_to_an_ended_session(visitor):
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.LOGOUT)

    with pytest.raises(SessionOver):
        staff_message_post(session_id=visitor.session.pk, content="Too late", author="Ana")
    assert not ChatMessage.objects.filter(kind=ChatMessage.Kind.STAFF).exists()


def test_a_discord_message_relayed_twice_is_stored_once(visitor):
    first = staff_message_post(session_id=visitor.session.pk, content="Once", author="Ana", discord_message_id=42)
    second = staff_message_post(session_id=visitor.session.pk, content="Once", author="Ana", discord_message_id=42)

    assert first is not None and second is None
    assert ChatMessage.objects.filter(discord_message_id=42).count() == 1
    assert ChatEvent.objects.filter(kind="message").count() == 1


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("   ", "blank"), (None, "string"), (5, "string"), ("x" * 4001, "at most")],
)
def test_staff_text_is_checked_like_a_visitor_message(raw, problem):
    with pytest.raises(StaffMessageRejected, match=problem):
        staff_text_clean(raw)


def test_staff_text_is_kept_as_typed_less_control_characters():
    assert staff_text_clean("  <b>3 < 5</b>\x00\n ") == "<b>3 < 5</b>"


def test_asking_for_a_person_pings_once_a_minute(visitor_client, visitor, settings):
    from notifications_app.models import Delivery

    settings.DISCORD_ENABLED = True
    for _ in range(3):
        response = visitor_client.post(CHAT + "/human")
        assert (response.status_code, response.json()) == (202, {"requested": True})
    assert Delivery.objects.filter(kind=Delivery.Kind.HUMAN_REQUESTED).count() == 1

    ChatSession.objects.filter(pk=visitor.session.pk).update(human_requested_at=timezone.now() - timedelta(minutes=2))
    assert human_request(session=visitor.session) is True
    assert Delivery.objects.filter(kind=Delivery.Kind.HUMAN_REQUESTED).count() == 2
