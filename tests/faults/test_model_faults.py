"""The model misbehaving over a real socket, past what chat_app/tests/test_llm_socket.py covers.

Covered there: an HTTP 500, garbage, an empty answer, a hang on /chat (fallback within LLM_TIMEOUT),
a refused connection; in chat_app/tests/test_stream.py: a stream failing before or after its first
text. Here: the connection dropped without an answer, a hang on /chat/stream, a stream that never
ends, and a body trickled byte by byte, each against the visitor's bound: LLM_TIMEOUT and a little.
"""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from chat_app.models import ChatMessage
from chat_app.services import FALLBACK_REPLY
from testing.llm_server import StubModelServer
from tests.security.conftest import body_of

pytestmark = pytest.mark.django_db

TIMEOUT = 1
BOUND = TIMEOUT + 3
PATHS = ["/api/v1/chat", "/api/v1/chat/stream"]


@contextmanager
def raw_model(answer: Callable[[socket.socket], None], settings) -> Iterator[None]:
    """A TCP server that reads one request per connection and answers with `answer(connection)`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def handle(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                answer(connection)
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    settings.LLM_MODEL = "openai/raw-model"
    settings.LLM_API_BASE = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    settings.LLM_API_KEY = "raw-key"
    settings.LLM_TIMEOUT = TIMEOUT
    try:
        yield
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def drop(connection: socket.socket) -> None:
    connection.shutdown(socket.SHUT_RDWR)  # no status line at all


def trickle(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(14):  # a byte every half LLM_TIMEOUT: each read succeeds; 7 s, well past the bound
        connection.sendall(b" ")
        time.sleep(TIMEOUT / 2)


def endless_stream(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    delta = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "raw-model",
             "choices": [{"index": 0, "delta": {"content": "more "}, "finish_reason": None}]}  # fmt: skip
    event = b"data: " + json.dumps(delta).encode() + b"\n\n"
    for _ in range(100_000):  # forever, as far as the visitor is concerned
        connection.sendall(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        time.sleep(0.01)


def timed_post(client, path: str) -> tuple[object, bytes, float]:
    started = time.monotonic()
    response = client.post(path, {"message": "Anyone there?"}, format="json")
    body = body_of(response)
    return response, body, time.monotonic() - started


@pytest.mark.parametrize("path", PATHS)
def test_model_dropping_the_connection_falls_back_and_keeps_the_message(visitor_client, settings, path):
    with raw_model(drop, settings):
        response, body, seconds = timed_post(visitor_client, path)

    assert response.status_code == 200 and seconds < BOUND
    assert FALLBACK_REPLY in body.decode()
    assert ChatMessage.objects.get(kind="user").content == "Anyone there?"
    assert ChatMessage.objects.get(kind="assistant").fallback


def test_model_hanging_on_a_stream_falls_back_within_the_timeout(visitor_client, settings):
    with StubModelServer() as server:
        server.behaviour.mode = "hang"
        settings.LLM_MODEL, settings.LLM_API_BASE, settings.LLM_API_KEY = "openai/stub", server.api_base, "k"
        settings.LLM_TIMEOUT = TIMEOUT
        response, body, seconds = timed_post(visitor_client, "/api/v1/chat/stream")

    assert response.status_code == 200 and seconds < BOUND
    assert b"event: done" in body and FALLBACK_REPLY in body.decode()
    assert ChatMessage.objects.get(kind="user").content == "Anyone there?"


def test_model_stream_that_never_ends_is_cut_at_the_reply_cap(visitor_client, settings):
    settings.LLM_MAX_REPLY_CHARS = 300
    with raw_model(endless_stream, settings):
        response, body, seconds = timed_post(visitor_client, "/api/v1/chat/stream")

    assert response.status_code == 200 and seconds < BOUND
    assert b"event: done" in body
    assert len(ChatMessage.objects.get(kind="assistant").content) == 300


def test_model_trickling_its_answer_is_bounded_by_the_timeout(visitor_client, settings):
    with raw_model(trickle, settings):
        response, _, seconds = timed_post(visitor_client, "/api/v1/chat")

    assert response.status_code == 200
    assert seconds < BOUND, f"the visitor waited {seconds:.1f}s with LLM_TIMEOUT={TIMEOUT}s"
