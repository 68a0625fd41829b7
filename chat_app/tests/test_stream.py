"""POST /chat/stream: checks as JSON before the stream, then delta/done events; partial replies kept."""

import json

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from chat_app.api import sse_encode
from chat_app.models import ChatMessage
from chat_app.services import FALLBACK_REPLY, REFUSAL_REPLY
from chat_app.turns import STREAM_BROKEN, StreamEvent
from conftest import BROWSER_UA, body_of

pytestmark = pytest.mark.django_db
STREAM = "/api/v1/chat/stream"


def events_of(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def streamed(client, message: str, **headers) -> tuple[object, list[tuple[str, dict]]]:
    response = client.post(STREAM, {"message": message}, format="json", **headers)
    assert response.status_code == 200, response.content
    return response, events_of(body_of(response))


async def events_from(events: list[StreamEvent]):
    for event in events:
        yield event


def frames_of(events: list[StreamEvent]) -> list[bytes]:
    async def collected():
        return [frame async for frame in sse_encode(events_from(events))]

    return async_to_sync(collected)()


def test_sse_encode_frames_each_event():
    frames = frames_of([StreamEvent("delta", {"content": "é <b>"}), StreamEvent("done", {"x": 1})])

    assert frames == [b'event: delta\ndata: {"content": "\xc3\xa9 <b>"}\n\n', b'event: done\ndata: {"x": 1}\n\n']


def test_sse_encode_writes_deltas_close_in_time_together_and_never_holds_the_first_or_the_end(monkeypatch):
    clock = iter([0.0, 0.01, 0.02, 0.03, 0.04, 0.041])  # seconds, one reading per event
    monkeypatch.setattr("chat_app.api.monotonic", lambda: next(clock))  # this module's name only
    names = ["delta"] * 5 + ["done"]
    events = [StreamEvent(name, {"n": number}) for number, name in enumerate(names)]

    writes = [write.decode().count("event: ") for write in frames_of(events)]

    # The first at once; the next two held until 25 ms after it (0.03); the 0.04 one rides with done.
    assert writes == [1, 3, 2]


def test_stream_sends_deltas_then_done_and_stores_reply_once(visitor_client, model_server):
    response, events = streamed(visitor_client, "Tell me more")

    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    deltas = [data["content"] for name, data in events if name == "delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == "Stub reply to: Tell me more"
    name, done = events[-1]
    assert name == "done"
    assert set(done) == {"message_id", "response_id", "flagged", "fallback", "mode"}
    assert done["mode"] == "ai"
    reply = ChatMessage.objects.get(pk=done["response_id"])
    assert (reply.content, reply.in_reply_to_id, reply.partial) == ("".join(deltas), done["message_id"], False)
    assert ChatMessage.objects.filter(kind=ChatMessage.Kind.ASSISTANT).count() == 1
    assert model_server.behaviour.requests[-1]["stream"] is True


def test_stream_answers_json_errors_before_streaming(visitor_client, settings):
    assert visitor_client.post(STREAM, {"message": "   "}, format="json").status_code == 400
    anonymous = APIClient(HTTP_USER_AGENT=BROWSER_UA).post(STREAM, {"message": "hi"}, format="json")
    assert (anonymous.status_code, anonymous["Content-Type"]) == (401, "application/json")
    bot = visitor_client.post(STREAM, {"message": "hi"}, format="json", HTTP_USER_AGENT="curl")
    assert (bot.status_code, bot["Content-Type"]) == (403, "application/json")
    settings.MAX_MESSAGES_PER_SESSION = 0
    capped = visitor_client.post(STREAM, {"message": "hi"}, format="json")
    assert capped.status_code == 429
    assert "Message limit" in capped.json()["detail"]
    assert int(capped["Retry-After"]) > 0


def test_stream_falls_back_when_model_fails_before_any_text(visitor_client, model_server):
    model_server.behaviour.mode = "error"

    _, events = streamed(visitor_client, "Hello")

    assert [name for name, _ in events] == ["delta", "done"]
    assert events[0][1]["content"] == FALLBACK_REPLY
    assert events[1][1]["fallback"] is True


def test_stream_falls_back_when_model_streams_no_text(visitor_client, model_server):
    model_server.behaviour.mode = "empty"

    _, events = streamed(visitor_client, "Hello")

    assert events[0] == ("delta", {"content": FALLBACK_REPLY})
    assert events[1][1]["fallback"] is True
    assert ChatMessage.objects.get(pk=events[1][1]["response_id"]).fallback is True


def test_stream_reports_error_and_keeps_partial_reply_when_model_breaks_off(visitor_client, model_server):
    model_server.behaviour.mode = "broken"
    model_server.behaviour.reply = "one two three four five six seven eight"
    model_server.behaviour.chunks = 8

    _, events = streamed(visitor_client, "Hello")

    name, error = events[-1]
    assert name == "error"
    assert error["detail"] == STREAM_BROKEN
    sent = "".join(data["content"] for kind, data in events if kind == "delta")
    reply = ChatMessage.objects.get(pk=error["response_id"])
    assert (reply.content, reply.partial) == (sent, True)
    assert 0 < len(sent) < len(model_server.behaviour.reply)


def test_stream_cut_short_shows_as_partial_in_the_history(visitor_client, model_server):
    model_server.behaviour.mode = "broken"
    _, events = streamed(visitor_client, "Hello")
    sent = "".join(data["content"] for kind, data in events if kind == "delta")

    (exchange,) = visitor_client.get("/api/v1/chat/history").json()["messages"]

    assert (exchange["message"], exchange["response"], exchange["partial"]) == ("Hello", sent, True)


def test_stream_refuses_flagged_message_without_calling_model(visitor_client, model_server):
    _, events = streamed(visitor_client, "'; DROP TABLE users; --")

    assert events[0] == ("delta", {"content": REFUSAL_REPLY})
    assert events[1][1]["flagged"] is True
    assert model_server.behaviour.requests == []


def test_stream_replays_idempotent_turn_without_storing_twice(visitor_client, fake_model):
    _, first = streamed(visitor_client, "Once", HTTP_IDEMPOTENCY_KEY="key-1")
    _, again = streamed(visitor_client, "Once", HTTP_IDEMPOTENCY_KEY="key-1")

    assert again[-1] == first[-1]
    assert ChatMessage.objects.count() == 2
