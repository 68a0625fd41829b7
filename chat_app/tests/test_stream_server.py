"""POST /chat/stream on the production server (gunicorn's ASGI worker), over a real socket: the first
delta leaves while the model is still writing, and a visitor who leaves cancels the model's call."""

import time

import pytest
import requests

from chat_app.models import ChatMessage
from conftest import BROWSER_UA
from testing.llm_server import Behaviour, StubModelServer
from tests.multiserver.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)
STREAM = "/api/v1/chat/stream"
CHUNKS, CHUNK_DELAY = 40, 0.05  # the model takes 2 s to write its reply
REPLY = "word " * CHUNKS


@pytest.fixture(scope="module")
def slow_model():
    with StubModelServer(behaviour=Behaviour(reply=REPLY, chunks=CHUNKS, chunk_delay=CHUNK_DELAY)) as model:
        yield model


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, slow_model):
    env = {"LLM_MODEL": "openai/stub-model", "LLM_API_BASE": slow_model.api_base, "LLM_API_KEY": "stub-key"}
    with django_db_blocker.unblock():
        process = ServerProcess(env, name="stream")
        try:
            yield process.wait_ready()
        finally:
            process.stop()


def stream_request(server, visitor, message: str):
    headers = {"Authorization": f"Bearer {visitor.access_token}", "User-Agent": BROWSER_UA}
    return requests.post(server.url + STREAM, json={"message": message}, headers=headers, stream=True, timeout=30)


def test_the_first_delta_leaves_while_the_model_is_still_writing(server, visitor):
    started = time.monotonic()
    with stream_request(server, visitor, "Tell me everything") as response:
        lines = response.iter_lines()
        assert next(lines) == b"event: delta"
        first_delta_at = time.monotonic() - started
        rest = list(lines)
    ended_at = time.monotonic() - started

    assert b"event: done" in rest
    assert ended_at >= CHUNKS * CHUNK_DELAY * 0.9  # the model paced the whole reply
    assert first_delta_at < ended_at / 2  # and the visitor read its start long before it ended


def test_a_visitor_leaving_cancels_the_model_and_stores_a_partial_reply(server, slow_model, visitor):
    aborted_before = slow_model.behaviour.aborted
    with stream_request(server, visitor, "Go on") as response:
        assert next(response.iter_lines()) == b"event: delta"

    deadline = time.monotonic() + 10
    while not ChatMessage.objects.filter(kind=ChatMessage.Kind.ASSISTANT, session=visitor.session).exists():
        assert time.monotonic() < deadline, "the partial reply was never stored"
        time.sleep(0.05)
    reply = ChatMessage.objects.get(kind=ChatMessage.Kind.ASSISTANT, session=visitor.session)
    assert reply.partial is True
    assert 0 < len(reply.content) < len(REPLY)
    while slow_model.behaviour.aborted == aborted_before:
        assert time.monotonic() < deadline, "the model stream was never closed"
        time.sleep(0.05)
