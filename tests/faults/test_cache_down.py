"""The shared cache (Redis) unreachable, refusing or hanging: never a 500, limits per their fail mode.

A real server process points CACHE_URL at a port where nothing listens, at one that accepts and
never answers, or through a proxy to the real Redis that is cut and restored. Per
chatapi/ratelimit.py: starting a session and staff sign-in fail closed (503 JSON, Retry-After),
the chat limits fail open (the session cap in the database still holds), /health says so.
"""

import socket
import time

import pytest
import requests
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from chatapi.ratelimit import LIMIT_UNAVAILABLE, LimitUnavailable, client_ip_key, rate_limit_enforce
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_start
from testing.llm_server import StubModelServer
from tests.multiserver.servers import BROWSER_UA, ServerProcess, TcpProxy, free_port

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 3
LIMITS = {"AUTH_RATE_LIMIT": "1/h", "CHAT_RATE_LIMIT": "1/h", "MAX_MESSAGES_PER_SESSION": str(CAP)}
SOCKET_TIMEOUT = 2  # chatapi/settings.py gives django-redis 2 s to connect and 2 s per answer


@pytest.fixture
def model():
    with StubModelServer() as server:
        yield server


def server_env(model, cache_url: str) -> dict[str, str]:
    return {"CACHE_URL": cache_url, "LLM_MODEL": "openai/stub-model", "LLM_API_BASE": model.api_base,
            "LLM_API_KEY": "stub-key", **LIMITS}  # fmt: skip


@pytest.fixture
def start_server():
    started = []

    def start(env: dict[str, str]) -> ServerProcess:
        server = ServerProcess(env, name="cache-fault")
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


class Visitor:
    def __init__(self, server: ServerProcess):
        self.server = server
        started = chat_session_start(email="cache@example.com", user_agent=BROWSER_UA, ip_address="127.0.0.1")
        self.session = started.session
        self.headers = {"Authorization": f"Bearer {started.access_token}", "User-Agent": BROWSER_UA}

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("headers", self.headers)
        return requests.request(method, f"{self.server.url}{path}", timeout=60, **kwargs)


def assert_json(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def assert_degraded_service(visitor: Visitor) -> None:
    """What a server with no cache does: the contract's answers, never a 500."""
    health = assert_json(visitor.call("GET", "/health"), 200)
    assert (health["status"], health["database"], health["cache"]) == ("healthy", "connected", "disconnected")

    # Fail closed: no new sessions, no staff sign-in; 503 with Retry-After, nothing stored.
    sessions_before = ChatSession.objects.count()
    for path, body in [("/api/v1/auth/email", {"email": "new@example.com"}),
                       ("/api/v1/staff/token", {"username": "x", "password": "y"})]:  # fmt: skip
        response = visitor.call("POST", path, json=body, headers={"User-Agent": BROWSER_UA})
        assert assert_json(response, 503) == {"detail": LIMIT_UNAVAILABLE}
        assert int(response.headers["Retry-After"]) > 0
    assert ChatSession.objects.count() == sessions_before

    # Fail open: the chat limit (1/h) is not enforced, the session cap (3, in the database) is.
    statuses = [visitor.call("POST", path, json={"message": "hi"}).status_code
                for path in ("/api/v1/chat", "/api/v1/chat/stream", "/api/v1/chat", "/api/v1/chat")]  # fmt: skip
    assert statuses == [200] * CAP + [429]
    assert assert_json(visitor.call("GET", "/api/v1/chat/history"), 200)["messages"][-1]["response"]
    assert assert_json(visitor.call("GET", "/api/v1/auth/session"), 200)["message_count"] == CAP


def test_cache_refusing_connections_degrades_per_fail_mode(model, start_server):
    server = start_server(server_env(model, f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there

    assert_degraded_service(Visitor(server))


def test_cache_that_never_answers_is_bounded_by_the_socket_timeout(model, start_server):
    with socket.socket() as blackhole:  # accepts connections (the kernel does), never reads or answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        server = start_server(server_env(model, f"redis://127.0.0.1:{blackhole.getsockname()[1]}/0"))
        visitor = Visitor(server)

        started = time.monotonic()
        chat = visitor.call("POST", "/api/v1/chat", json={"message": "hi"})
        chat_seconds = time.monotonic() - started
        started = time.monotonic()
        new_session = visitor.call(
            "POST", "/api/v1/auth/email", json={"email": "a@b.co"}, headers={"User-Agent": BROWSER_UA}
        )
        auth_seconds = time.monotonic() - started

    assert chat.status_code == 200 and new_session.status_code == 503
    assert chat_seconds < 2 * 2 * SOCKET_TIMEOUT + 3  # two limits, each one timed-out cache call, then the model
    assert auth_seconds < 2 * SOCKET_TIMEOUT + 3


@pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].startswith("django_redis"),
    reason="the Redis run only: an outage and recovery of the real Redis",
)
def test_cache_outage_and_recovery_without_restart(model, start_server):
    location = settings.CACHES["default"]["LOCATION"]
    host_port, db = (location if isinstance(location, str) else location[0]).split("//", 1)[1].split("/", 1)
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    try:
        server = start_server(server_env(model, f"redis://127.0.0.1:{proxy.port}/{db}"))
        first = Visitor(server)
        email = {"json": {"email": "a@b.co"}, "headers": {"User-Agent": BROWSER_UA}}
        assert [first.call("POST", "/api/v1/auth/email", **email).status_code for _ in range(2)] == [201, 429]

        proxy.cut()
        assert_degraded_service(Visitor(server))

        proxy.restore()
        deadline = time.monotonic() + 30
        while first.call("GET", "/health").json()["cache"] != "connected" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert first.call("GET", "/health").json()["cache"] == "connected"
        assert first.call("POST", "/api/v1/auth/email", **email).status_code == 429  # the count survived
        assert first.call("POST", "/api/v1/chat", json={"message": "hi"}).status_code == 200
        assert first.call("POST", "/api/v1/chat", json={"message": "hi"}).status_code == 429  # enforced again
    finally:
        proxy.close()


def test_rate_limit_fail_mode_per_group_in_process(monkeypatch, caplog):
    request = APIRequestFactory().post("/api/v1/auth/email")
    request.client_ip = "198.51.100.9"

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", unreachable)

    for group in ("auth-email", "staff-token", "admin-login-client", "admin-login-user"):
        with pytest.raises(LimitUnavailable) as refused:
            rate_limit_enforce(request, group=group, key=client_ip_key, rate="1/h")
        assert (refused.value.status_code, refused.value.retry_after) == (503, 30)
    for group in ("chat-ip", "chat-session"):
        rate_limit_enforce(request, group=group, key=client_ip_key, rate="1/h")  # passes
    assert "rate limit unavailable, refusing: ConnectionError" in caplog.text
