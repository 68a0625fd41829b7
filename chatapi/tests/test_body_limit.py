"""The body limit in front of Django: every over-limit body gets a 413 the client can read."""

import io
import json
import socket

import pytest
import requests

from chatapi.body_limit import DRAIN_MAX_BYTES, READ_SIZE, WSGIBodyLimit
from chatapi.middleware import BODY_TOO_LARGE, INVALID_CONTENT_LENGTH
from tests.multiserver.servers import BROWSER_UA, ServerProcess

MB = 1024 * 1024


class CountingStream(io.BytesIO):
    """A wsgi.input that records each read's size, to show nothing reads the body whole."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.sizes: list[int | None] = []

    def read(self, size=-1):
        self.sizes.append(size)
        return super().read(size)


def wsgi_call(environ: dict, app=None):
    seen = {}

    def django(environ, start_response):
        seen["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    body_iter = WSGIBodyLimit(app or django)(environ, start_response)
    answer["body"] = b"".join(body_iter)
    answer["closed_stream_at"] = environ["wsgi.input"].tell()
    if hasattr(body_iter, "close"):
        body_iter.close()
    return answer, seen


def test_declared_length_over_the_limit_is_refused_without_calling_django_and_drained_after(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    stream = CountingStream(b"x" * 300_000)

    answer, seen = wsgi_call({"CONTENT_LENGTH": "300000", "wsgi.input": stream})

    assert answer["status"].startswith("413")
    assert json.loads(answer["body"]) == {"detail": BODY_TOO_LARGE}
    assert seen == {}  # Django never saw it
    assert answer["closed_stream_at"] == 0  # nothing read before the answer was sent
    assert stream.tell() == 300_000  # then thrown away, so the connection ends cleanly
    assert all(size is not None and 0 < size <= READ_SIZE for size in stream.sizes)  # never read whole


def test_drain_stops_at_its_cap(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    stream = CountingStream(b"x" * (DRAIN_MAX_BYTES + 5 * READ_SIZE))

    wsgi_call({"CONTENT_LENGTH": str(DRAIN_MAX_BYTES + 5 * READ_SIZE), "wsgi.input": stream})

    assert DRAIN_MAX_BYTES <= stream.tell() < DRAIN_MAX_BYTES + READ_SIZE


def test_chunked_body_within_the_limit_reaches_django_with_its_length(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"y" * 1000)}

    answer, seen = wsgi_call(environ)

    assert answer["status"] == "200 OK"
    assert seen["body"] == b"y" * 1000
    assert environ["CONTENT_LENGTH"] == "1000"


def test_chunked_body_over_the_limit_is_refused_after_reading_only_the_limit(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    stream = CountingStream(b"z" * 50_000)

    answer, seen = wsgi_call({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream})

    assert answer["status"].startswith("413")
    assert seen == {}
    assert answer["closed_stream_at"] == 1001  # the limit and one byte, no more, before answering


def test_invalid_content_length_is_400_and_nothing_is_drained(settings):
    stream = CountingStream(b"abc")

    answer, seen = wsgi_call({"CONTENT_LENGTH": "-5", "wsgi.input": stream, "HTTP_X_REQUEST_ID": "abc-123"})

    assert answer["status"].startswith("400")
    assert json.loads(answer["body"]) == {"detail": INVALID_CONTENT_LENGTH}
    assert answer["headers"]["X-Request-ID"] == "abc-123"  # a safe id is echoed, as on every answer
    assert seen == {}
    assert stream.sizes == []


def test_an_unsafe_request_id_is_replaced(settings):
    settings.MAX_REQUEST_BODY_BYTES = 10
    answer, _ = wsgi_call({"CONTENT_LENGTH": "11", "wsgi.input": io.BytesIO(b"x" * 11), "HTTP_X_REQUEST_ID": "a b"})

    assert len(answer["headers"]["X-Request-ID"]) == 32


# --- Over a real socket, against the production server as the README starts it ----------------------


@pytest.fixture(scope="module")
def production_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = ServerProcess({"RATE_LIMITING_ENABLED": "False"}, name="body-limit")
        try:
            yield server.wait_ready()
        finally:
            server.stop()


def raw_post(port: int, head: bytes, body_parts) -> bytes:
    """Send the whole request as a client library does, then read the whole answer (Connection: close).

    The client does not half-close its end: an ASGI server reads that as the client leaving.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def chunked(body: bytes, size: int = 65536):
    for start in range(0, len(body), size):
        part = body[start : start + size]
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def request_head(*, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /api/v1/auth/email HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {BROWSER_UA}\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\n{framing}\r\n\r\n"
    ).encode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [3 * MB, 10 * MB])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_over_limit_bodies_get_their_413_every_time(production_server, size, framing):
    body = b"x" * size
    for _ in range(3):
        if framing == "chunked":
            answer = raw_post(production_server.port, request_head(length=None), chunked(body))
        else:
            answer = raw_post(production_server.port, request_head(length=size), [body])
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:200]
        assert json.loads(payload) == {"detail": BODY_TOO_LARGE}


@pytest.mark.django_db(transaction=True)
def test_a_client_library_reads_the_413_of_a_3_mb_body(production_server):
    for _ in range(3):
        response = requests.post(
            f"{production_server.url}/api/v1/chat",
            data=b"x" * (3 * MB),
            headers={"Content-Type": "application/json", "User-Agent": BROWSER_UA},
            timeout=30,
        )
        assert response.status_code == 413
        assert response.json() == {"detail": BODY_TOO_LARGE}
        assert response.headers["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_within_the_limit_is_read_whole(production_server):
    body = json.dumps({"email": "chunked@example.com"}).encode()

    answer = raw_post(production_server.port, request_head(length=None), chunked(body, size=7))

    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


# --- The ASGI middleware, in process: what reaches Django, and what the server is asked to send ------


def asgi_call(headers: list[tuple[bytes, bytes]], messages: list[dict]):
    """Run ASGIBodyLimit over `messages`; returns (what the app saw or None, what was sent, messages left)."""
    from asgiref.sync import async_to_sync

    from chatapi.body_limit import ASGIBodyLimit

    incoming, sent, seen = list(messages), [], {}

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def django(scope, receive, send):
        body = b""
        while (message := await receive())["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.update(headers=dict(scope["headers"]), body=body)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/chat", "headers": headers}
    async_to_sync(ASGIBodyLimit(django))(scope, receive, send)
    return seen or None, sent, incoming


def body_messages(data: bytes, size: int) -> list[dict]:
    pieces = [data[start : start + size] for start in range(0, len(data), size)]
    return [{"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1} for n, piece in enumerate(pieces)]


def test_asgi_declared_length_over_the_limit_is_refused_then_drained(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    messages = body_messages(b"x" * 5000, 1000)

    seen, sent, left = asgi_call([(b"content-length", b"5000"), (b"x-request-id", b"rid-1")], messages)

    assert seen is None
    assert sent[0]["status"] == 413 and (b"x-request-id", b"rid-1") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"detail": BODY_TOO_LARGE}
    assert left == []  # the whole body was read and thrown away after the answer


def test_asgi_chunked_body_within_the_limit_reaches_django_with_its_length(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000

    seen, sent, _ = asgi_call([(b"transfer-encoding", b"chunked")], body_messages(b"y" * 1000, 300))

    assert seen["body"] == b"y" * 1000
    assert seen["headers"][b"content-length"] == b"1000"
    assert sent == []


def test_asgi_chunked_body_over_the_limit_is_refused(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000

    seen, sent, left = asgi_call([(b"transfer-encoding", b"chunked")], body_messages(b"z" * 3000, 300))

    assert seen is None
    assert sent[0]["status"] == 413
    assert left == []


def test_asgi_invalid_length_is_400_and_a_client_leaving_mid_body_ends_quietly(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000

    _, bad, _ = asgi_call([(b"content-length", b"lots")], [])
    gone, nothing, _ = asgi_call([(b"transfer-encoding", b"chunked")], body_messages(b"a" * 600, 300)[:1])

    assert bad[0]["status"] == 400 and json.loads(bad[1]["body"]) == {"detail": INVALID_CONTENT_LENGTH}
    assert (gone, nothing) == (None, [])
