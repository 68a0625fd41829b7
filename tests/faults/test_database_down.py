"""PostgreSQL unreachable: /health and the API answer 503 JSON, and recover without a restart.

A real server process reaches the test database through a TCP proxy that the test cuts (every
connection dropped, new ones refused, as when PostgreSQL stops) and then restores. Both connection
set-ups are exercised: psycopg's pool (the default) and persistent connections with health checks.
"""

import time

import pytest
import requests
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from chat_app.models import ChatMessage
from chatapi.errors import SERVICE_UNAVAILABLE
from sessions_app.services import chat_session_start
from testing.llm_server import StubModelServer
from tests.multiserver.servers import BROWSER_UA, ServerProcess, TcpProxy, database_url, is_postgresql

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not is_postgresql(), reason="the PostgreSQL run only: it cuts the link to a database server"),
]

POOL_TIMEOUT = 2
OUTAGE_BOUND = POOL_TIMEOUT + 3  # seconds any answer may take while the database is away
RECOVERY_BOUND = 30


@pytest.fixture
def model():
    with StubModelServer() as server:
        yield server


@pytest.fixture
def proxy():
    db = settings.DATABASES["default"]
    link = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    yield link
    link.close()


@pytest.fixture
def server(proxy, model):
    env = {
        "DATABASE_URL": database_url(port=proxy.port), "LLM_MODEL": "openai/stub-model",
        "LLM_API_BASE": model.api_base, "LLM_API_KEY": "stub-key", "RATE_LIMITING_ENABLED": "False",
        "DB_POOL_MAX_SIZE": "4", "DB_POOL_TIMEOUT": str(POOL_TIMEOUT),
        # One process: each recovers on its own pool's schedule, and the test follows one of them
        # (with Redis set, gunicorn would start one per core and /health might ask another).
        "WEB_CONCURRENCY": "1",
    }  # fmt: skip
    process = ServerProcess(env, name="db-fault")
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=60, **kwargs)
    return response, time.monotonic() - started


def test_database_outage_is_503_json_and_recovers_without_restart(server, proxy, staff_user):
    visitor = chat_session_start(email="db@example.com", user_agent=BROWSER_UA, ip_address="127.0.0.1")
    headers = {"Authorization": f"Bearer {visitor.access_token}", "User-Agent": BROWSER_UA}
    staff = {"Authorization": f"Bearer {RefreshToken.for_user(staff_user).access_token}", "User-Agent": BROWSER_UA}
    calls = [
        ("GET", "/api/v1/auth/session", {"headers": headers}),
        ("POST", "/api/v1/chat", {"headers": headers, "json": {"message": "during"}}),
        ("POST", "/api/v1/chat/stream", {"headers": headers, "json": {"message": "during"}}),
        ("GET", "/api/v1/chat/history", {"headers": headers}),
        ("POST", "/api/v1/auth/email", {"headers": {"User-Agent": BROWSER_UA}, "json": {"email": "n@example.com"}}),
        ("GET", "/api/v1/staff/sessions", {"headers": staff}),
        ("POST", "/api/v1/staff/token", {"json": {"username": "staff", "password": "x"}}),
    ]
    assert requests.post(f"{server.url}/api/v1/chat", json={"message": "before"}, headers=headers, timeout=30).ok

    proxy.cut()
    health, seconds = timed("GET", f"{server.url}/health")
    assert health.status_code == 503 and seconds < OUTAGE_BOUND
    assert health.json()["status"] == "unhealthy" and health.json()["database"] == "disconnected"
    for method, path, kwargs in calls:
        response, seconds = timed(method, f"{server.url}{path}", **kwargs)
        assert response.status_code == 503, (path, response.status_code, response.text[:200])
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == {"detail": SERVICE_UNAVAILABLE}
        assert seconds < OUTAGE_BOUND, (path, seconds)

    proxy.restore()
    restored = time.monotonic()
    while requests.get(f"{server.url}/health", timeout=30).status_code != 200:
        assert time.monotonic() - restored < RECOVERY_BOUND, "no recovery without a restart"
        time.sleep(0.5)
    assert requests.get(f"{server.url}/api/v1/auth/session", headers=headers, timeout=30).status_code == 200
    after = requests.post(f"{server.url}/api/v1/chat", json={"message": "after"}, headers=headers, timeout=30)
    assert after.status_code == 200
    assert list(ChatMessage.objects.filter(kind="user").values_list("content", flat=True)) == ["before", "after"]
    print(f"\ndatabase fault: recovered {time.monotonic() - restored:.1f}s after the database came back")
