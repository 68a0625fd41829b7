"""Bodies over MAX_REQUEST_BODY_BYTES refused with a 413 the client can read, in front of Django.

Django's own middleware runs only once the server has handed it a request; by then an ASGI server
has spooled the whole body, and a WSGI server that closes a connection with a body still unread
makes the kernel reset it, often before the client has read the answer. So the server's entry
point wraps Django: a declared length over the limit is refused at once, a chunked body is read
only up to the limit, and a refused body is then read and thrown away (never kept) up to
DRAIN_MAX_BYTES, so the connection ends cleanly and the client sees its 413.
"""

import asyncio
import io
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator

from django.conf import settings

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_TOO_LARGE = "Request body is too large."
INVALID_CONTENT_LENGTH = "Invalid Content-Length header."

# Clients that send up to this much past the limit still get to read their 413 (the contract says
# up to 10 MB); beyond it, or past DRAIN_SECONDS, the server stops reading and closes.
DRAIN_MAX_BYTES = 10 * 1024 * 1024 + 64 * 1024
DRAIN_SECONDS = 10.0
READ_SIZE = 64 * 1024


def request_id_for(sent: str | None) -> str:
    """The client's X-Request-ID when it is safe to echo, else a new one (as django-guid makes)."""
    return sent if sent is not None and SAFE_REQUEST_ID.match(sent) else uuid.uuid4().hex


def error_body(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()


def declared_length(value: str | None) -> int | None:
    """The Content-Length as a number; None when absent; ValueError when it is not one."""
    if not value:
        return None
    length = int(value)
    if length < 0:
        raise ValueError(value)
    return length


class WSGIBodyLimit:
    """WSGI middleware: the body limit for gunicorn's WSGI workers (chatapi/wsgi.py)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        limit = settings.MAX_REQUEST_BODY_BYTES
        try:
            length = declared_length(environ.get("CONTENT_LENGTH"))
        except ValueError:
            return self._error(environ, start_response, "400 Bad Request", INVALID_CONTENT_LENGTH, drain=False)
        if length is not None:
            if length > limit:
                return self._error(environ, start_response, "413 Request Entity Too Large", BODY_TOO_LARGE)
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Django reads only as far as CONTENT_LENGTH, so a chunked body is read here, up to the limit.
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            if len(body) > limit:
                return self._error(environ, start_response, "413 Request Entity Too Large", BODY_TOO_LARGE)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    @staticmethod
    def _error(environ: dict, start_response: Callable, status: str, detail: str, *, drain: bool = True):
        body = error_body(detail)
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Request-ID", request_id_for(environ.get("HTTP_X_REQUEST_ID"))),
            ],
        )
        return _AnswerThenDrain(body, environ["wsgi.input"] if drain else None, environ.get("gunicorn.socket"))


def _read_at_most(stream, size: int) -> bytes:
    parts, held = [], 0
    while held < size and (part := stream.read(min(READ_SIZE, size - held))):
        parts.append(part)
        held += len(part)
    return b"".join(parts)


class _AnswerThenDrain:
    """The answer's bytes; once the server has sent them (close()), the unread body is thrown away."""

    def __init__(self, body: bytes, stream, sock) -> None:
        self.body, self.stream, self.sock = body, stream, sock

    def __iter__(self) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        if self.stream is None:
            return
        deadline = time.monotonic() + DRAIN_SECONDS
        previous = self.sock.gettimeout() if self.sock is not None else None
        drained = 0
        try:
            while drained < DRAIN_MAX_BYTES and (left := deadline - time.monotonic()) > 0:
                if self.sock is not None:
                    self.sock.settimeout(left)  # a stalled client must not hold the thread past the deadline
                part = self.stream.read(READ_SIZE)
                if not part:
                    return
                drained += len(part)
        except OSError:
            return  # the client went away or stalled: the server closes the connection
        finally:
            if self.sock is not None:
                self.sock.settimeout(previous)


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class ASGIBodyLimit:
    """ASGI middleware: the body limit for gunicorn's ASGI worker (chatapi/asgi.py).

    Django's ASGI handler reads the whole body (into a spooled file) before any middleware runs, so
    the limit is applied here, on the messages as the server receives them.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.MAX_REQUEST_BODY_BYTES
        headers = dict(scope["headers"])
        try:
            length = declared_length((headers.get(b"content-length") or b"").decode("latin-1"))
        except ValueError:
            return await _answer(send, headers, 400, INVALID_CONTENT_LENGTH)
        if length is not None:
            if length > limit:
                await _answer(send, headers, 413, BODY_TOO_LARGE)
                return await _drain(receive)
            return await self.app(scope, receive, send)
        # No declared length (chunked): read up to the limit here, then hand Django what was read, with
        # its length (Django and DRF read a body only as far as its Content-Length).
        held, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was complete
            held.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                await _answer(send, headers, 413, BODY_TOO_LARGE)
                return await _drain(receive)
            if not message.get("more_body", False):
                break
        headers = [(name, value) for name, value in scope["headers"] if name != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}
        return await self.app(scope, _replay(held, receive), send)


def _replay(held: list[dict], receive: Receive) -> Receive:
    async def replayed() -> dict:
        return held.pop(0) if held else await receive()

    return replayed


async def _answer(send: Send, headers: dict, status: int, detail: str) -> None:
    body = error_body(detail)
    sent_id = headers.get(b"x-request-id")
    request_id = request_id_for(sent_id.decode("latin-1") if sent_id is not None else None)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    """Throw the unread body away, so the connection ends cleanly and the client reads its answer."""
    drained = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained < DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return  # a stalled client: the server closes the connection
