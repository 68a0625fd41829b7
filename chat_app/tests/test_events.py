"""GET /chat/events: the conversation as events by cursor, long poll, and the `end` of a session."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from chat_app.events import cursor_parse, end_event, events_after
from chat_app.handoff import session_release, staff_message_edit, staff_message_post, staff_message_withdraw
from chat_app.models import ChatEvent, ChatMessage
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end

EVENTS = "/api/v1/chat/events"
# The endpoint reads on the shared thread pool (another connection), so each test commits its data.
pytestmark = pytest.mark.django_db(transaction=True)


def chat(client, text: str) -> dict:
    response = client.post("/api/v1/chat", {"message": text}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("path", [EVENTS, EVENTS + "/"])
def test_events_list_the_conversation_oldest_first_with_a_cursor(visitor_client, visitor, fake_model, path):
    turn = chat(visitor_client, "Hello <b>there</b>")

    body = visitor_client.get(path).json()

    assert [(e["type"], e["role"], e["content"]) for e in body["events"]] == [
        ("message", "visitor", "Hello <b>there</b>"),
        ("message", "assistant", fake_model.reply),
    ]
    visitor_event, reply_event = body["events"]
    assert (visitor_event["message_id"], reply_event["message_id"]) == (turn["message_id"], turn["response_id"])
    assert set(visitor_event) == {"id", "type", "role", "message_id", "content", "author", "timestamp"}
    assert visitor_event["author"] is None
    assert body["cursor"] == reply_event["id"]
    assert visitor_client.get(path, {"after": body["cursor"]}).json() == {"events": [], "cursor": body["cursor"]}
    assert visitor_client.get(path, {"after": visitor_event["id"]}).json()["events"] == [reply_event]


def test_events_carry_staff_messages_with_their_author_mode_changes_edits_and_deletions(visitor_client, visitor):
    session = visitor.session
    staff = staff_message_post(session_id=session.pk, content="Hi, I'm Ana", author="Ana", discord_message_id=555)
    staff_message_edit(discord_message_id=555, content="Hi, I'm Ana from support")
    staff_message_withdraw(discord_message_id=555)
    session_release(session_id=session.pk, author="Ana")

    events = visitor_client.get(EVENTS).json()["events"]

    assert [e["type"] for e in events] == ["message", "mode", "edit", "delete", "mode"]
    message, human, edit, delete, back = events
    # A message withdrawn since is replayed empty, then its deletion.
    assert (message["role"], message["author"], message["content"]) == ("staff", "Ana", "")
    assert (human["mode"], human["author"], back["mode"], back["author"]) == ("human", "Ana", "ai", "Ana")
    assert (edit["message_id"], edit["content"]) == (staff.pk, "Hi, I'm Ana from support")
    assert delete["message_id"] == staff.pk
    assert [int(e["id"]) for e in events] == [1, 2, 3, 4, 5]


def test_event_sequence_is_per_session_and_taken_in_the_writing_transaction(visitor, fake_model, api_client):
    from sessions_app.services import chat_session_start

    other = chat_session_start(email="other@example.com", user_agent="Mozilla/5.0 test agent", ip_address="203.0.113.9")
    staff_message_post(session_id=visitor.session.pk, content="one", author="Ana")
    staff_message_post(session_id=other.session.pk, content="two", author="Ana")

    seqs = dict(ChatEvent.objects.filter(kind="message").values_list("message__content", "seq"))
    assert seqs == {"one": 1, "two": 1}
    assert ChatSession.objects.get(pk=visitor.session.pk).event_seq == 2  # the message and the mode change


@pytest.mark.parametrize(
    "query", [{"after": "abc"}, {"after": "-1"}, {"after": "1.5"}, {"after": "9" * 19}, {"after": "٣"}]
)
def test_events_refuse_a_cursor_the_api_never_gave(visitor_client, query):
    response = visitor_client.get(EVENTS, query)

    assert response.status_code == 400
    assert "after" in response.json()


@pytest.mark.parametrize("wait", ["-1", "31", "soon", "1.5"])
def test_events_refuse_a_wait_outside_0_to_30(visitor_client, wait):
    response = visitor_client.get(EVENTS, {"wait": wait})

    assert response.status_code == 400
    assert "wait" in response.json()


def test_events_need_a_live_visitor_token(api_client, visitor, visitor_client, staff_client):
    assert api_client.credentials() is None
    assert api_client.get(EVENTS).status_code in (401,)
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.LOGOUT)
    assert visitor_client.get(EVENTS).status_code == 401


def test_reading_events_does_not_count_against_the_chat_rate_limit(visitor_client, settings):
    settings.CHAT_RATE_LIMIT = "2/h"
    for _ in range(5):
        assert visitor_client.get(EVENTS).status_code == 200


def test_cursor_parse():
    assert [cursor_parse(raw) for raw in (None, "", "0", "17", "x", "1e3", " 1")] == [0, 0, 0, 17, None, None, None]


def test_end_event_tells_why_the_session_ended(visitor):
    session = visitor.session
    assert end_event(session, 3) is None
    chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)
    assert end_event(session, 3) == {"id": "3", "type": "end", "reason": "staff", "timestamp": session.ended_at}
    session.is_active, session.end_reason, session.ended_at = True, "", None
    session.expires_at = timezone.now() - timedelta(seconds=1)
    assert end_event(session, 4)["reason"] == "expired"


def test_long_poll_answers_as_soon_as_staff_write(visitor_client, visitor):
    answers = {}

    def poll():
        started = time.monotonic()
        answers["body"] = visitor_client.get(EVENTS, {"wait": "10"}).json()
        answers["seconds"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting
    staff_message_post(session_id=visitor.session.pk, content="A person here", author="Ana")
    poller.join(timeout=15)

    assert [e["content"] for e in answers["body"]["events"] if e["type"] == "message"] == ["A person here"]
    assert answers["seconds"] < 3


def test_long_poll_gives_up_after_wait_with_nothing_new(visitor_client):
    started = time.monotonic()
    body = visitor_client.get(EVENTS, {"wait": "1"}).json()

    assert body == {"events": [], "cursor": "0"}
    assert 0.9 <= time.monotonic() - started < 5


def test_long_poll_ends_with_end_when_staff_end_the_session(visitor_client, visitor):
    answers = {}
    poller = threading.Thread(target=lambda: answers.update(body=visitor_client.get(EVENTS, {"wait": "10"}).json()))
    poller.start()
    time.sleep(0.5)
    chat_session_end(session=ChatSession.objects.get(pk=visitor.session.pk), reason=ChatSession.EndReason.STAFF)
    poller.join(timeout=15)

    assert [(e["type"], e["reason"]) for e in answers["body"]["events"]] == [("end", "staff")]


def test_events_after_shapes_an_assistant_reply_without_author(visitor, fake_model, visitor_client):
    chat(visitor_client, "Question")
    reply = ChatMessage.objects.get(kind=ChatMessage.Kind.ASSISTANT)

    events = events_after(session=visitor.session, after=1)

    assert events == [
        {"id": "2", "type": "message", "role": "assistant", "message_id": reply.pk, "content": reply.content,
         "author": None, "timestamp": reply.created_at}
    ]  # fmt: skip


def test_a_stream_tells_the_end_when_the_session_expires(visitor):
    from asgiref.sync import async_to_sync

    from chat_app.live import events_stream

    ChatSession.objects.filter(pk=visitor.session.pk).update(expires_at=timezone.now() + timedelta(seconds=0.5))
    session = ChatSession.objects.get(pk=visitor.session.pk)

    async def frames() -> list[bytes]:
        return [frame async for frame in events_stream(session=session, after=0)]

    written = b"".join(async_to_sync(frames)())

    assert written.startswith(b"retry: 2000\n\n")
    assert b"event: end\n" in written and b'"reason":"expired"' in written


def test_under_wsgi_a_stream_sends_what_exists_and_ends_for_the_client_to_reconnect(visitor_client, visitor):
    from conftest import body_of

    staff_message_post(session_id=visitor.session.pk, content="Ana here", author="Ana")

    response = visitor_client.get(EVENTS, HTTP_ACCEPT="text/event-stream")  # Django's test client is WSGI

    body = body_of(response)
    assert response["Content-Type"] == "text/event-stream"
    assert body.startswith(b"retry: 2000\n\n")
    frames = [block for block in body.decode().split("\n\n")[1:] if block]
    assert [block.splitlines()[1] for block in frames] == ["event: message", "event: mode"]
    assert frames[0].splitlines()[0] == "id: 1"
