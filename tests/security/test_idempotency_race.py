"""Two POSTs with the same Idempotency-Key at the same moment: one message, one reply, one answer.

The first request to store the message wins the unique (session, key) constraint; the other either
finds the stored message and waits for its reply, or loses the insert and then does the same.
chat_app/tests cover the sequential retry and the replay at the cap.
"""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from chat_app import llm
from chat_app.models import ChatMessage
from conftest import BROWSER_UA
from testing.llm_server import Behaviour, StubModelServer

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 4
MODEL_SECONDS = 0.5  # the second request arrives while the first is with the model


def race(url: str, headers: dict, key: str) -> tuple[requests.Response, requests.Response]:
    both_ready = threading.Barrier(2, timeout=10)

    def send(_) -> requests.Response:
        both_ready.wait()
        return requests.post(url, json={"message": f"hello {key}"}, headers={**headers, "Idempotency-Key": key},
                             timeout=30)  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(send, range(2))
    return first, second


def assert_stored_once(session, key: str) -> ChatMessage:
    stored = ChatMessage.objects.filter(session=session, idempotency_key=key)
    assert stored.count() == 1
    assert ChatMessage.objects.filter(in_reply_to=stored.get()).count() == 1
    return stored.get()


def done_event(response: requests.Response) -> dict:
    blocks = [block for block in response.content.decode().split("\n\n") if block.strip()]
    fields = dict(line.split(": ", 1) for line in blocks[-1].split("\n"))
    assert fields["event"] == "done"
    return json.loads(fields["data"])


def test_racing_chat_requests_with_one_key_store_and_answer_once(live_server, visitor, fake_model, settings,
                                                                 monkeypatch):  # fmt: skip
    settings.RATE_LIMITING_ENABLED = False

    async def slow_model(*, messages):
        await asyncio.sleep(MODEL_SECONDS)
        return await fake_model(messages=messages)

    monkeypatch.setattr(llm, "chat_complete", slow_model)
    headers = {"Authorization": f"Bearer {visitor.access_token}", "User-Agent": BROWSER_UA}

    for round_number in range(ROUNDS):
        key = f"race-chat-{round_number}"
        first, second = race(f"{live_server.url}/api/v1/chat", headers, key)

        assert (first.status_code, second.status_code) == (200, 200)
        assert first.json() == second.json()  # same ids, same reply, same timestamp
        assert_stored_once(visitor.session, key)

    assert len(fake_model.calls) == ROUNDS
    visitor.session.refresh_from_db()
    assert visitor.session.user_message_count == ROUNDS


def test_racing_stream_requests_with_one_key_store_and_answer_once(live_server, visitor, settings):
    settings.RATE_LIMITING_ENABLED = False
    headers = {"Authorization": f"Bearer {visitor.access_token}", "User-Agent": BROWSER_UA}
    with StubModelServer(behaviour=Behaviour(latency=MODEL_SECONDS)) as model:
        settings.LLM_MODEL, settings.LLM_API_BASE, settings.LLM_API_KEY = "openai/stub", model.api_base, "k"
        for round_number in range(ROUNDS):
            key = f"race-stream-{round_number}"
            first, second = race(f"{live_server.url}/api/v1/chat/stream", headers, key)

            assert (first.status_code, second.status_code) == (200, 200)
            assert done_event(first) == done_event(second)
            message = assert_stored_once(visitor.session, key)
            assert done_event(first)["message_id"] == message.pk
        assert len(model.behaviour.requests) == ROUNDS
