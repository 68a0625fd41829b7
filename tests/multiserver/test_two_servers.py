"""Two server processes on two ports, sharing PostgreSQL and Redis, enforce one limit and one cap.

Each server is its own OS process, so a limit kept in memory would let a client have it twice, once
per server; only the shared cache (rate limits) and the database (the session cap) can hold.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_start
from testing.llm_server import Behaviour, StubModelServer
from tests.multiserver.servers import BROWSER_UA, ServerProcess, is_postgresql

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not is_postgresql(), reason="the PostgreSQL and Redis run only: SQLite has no shared server"),
]

AUTH_LIMIT = 4
CAP = 5


@pytest.fixture(scope="module")
def model():
    with StubModelServer(behaviour=Behaviour(latency=0.2)) as server:
        yield server


@pytest.fixture(scope="module")
def servers(django_db_setup, model):
    env = {
        "CACHE_URL": _cache_url(), "AUTH_RATE_LIMIT": f"{AUTH_LIMIT}/h", "CHAT_RATE_LIMIT": "1000/h",
        "MAX_MESSAGES_PER_SESSION": str(CAP), "LLM_MODEL": "openai/stub-model", "LLM_API_BASE": model.api_base,
        "LLM_API_KEY": "stub-key", "DB_POOL_MAX_SIZE": "4",
    }  # fmt: skip
    pair = [ServerProcess(env, name="a"), ServerProcess(env, name="b")]
    try:
        yield [server.wait_ready() for server in pair]
    finally:
        for server in pair:
            server.stop()


def _cache_url() -> str:
    if not settings.CACHES["default"]["BACKEND"].startswith("django_redis"):
        pytest.fail("the PostgreSQL run needs CACHE_URL=redis://...: local memory is not shared between servers")
    location = settings.CACHES["default"]["LOCATION"]
    return location if isinstance(location, str) else location[0]


def test_servers_are_two_processes_on_two_ports(servers):
    assert servers[0].port != servers[1].port
    assert servers[0].process.pid != servers[1].process.pid
    for server in servers:
        assert requests.get(f"{server.url}/health", timeout=10).json()["cache"] == "connected"


def test_auth_rate_limit_is_one_limit_across_both_servers(servers):
    statuses = []
    for attempt in range(2 * AUTH_LIMIT):
        server = servers[attempt % 2]  # alternate: A, B, A, B, ...
        response = requests.post(
            f"{server.url}/api/v1/auth/email", json={"email": f"n{attempt}@example.com"},
            headers={"User-Agent": BROWSER_UA}, timeout=30,
        )  # fmt: skip
        statuses.append(response.status_code)

    assert statuses == [201] * AUTH_LIMIT + [429] * AUTH_LIMIT
    assert ChatSession.objects.count() == AUTH_LIMIT


def test_session_cap_is_one_cap_across_both_servers_under_concurrency(servers):
    started = chat_session_start(email="cap@example.com", user_agent=BROWSER_UA, ip_address="127.0.0.1")
    headers = {"Authorization": f"Bearer {started.access_token}", "User-Agent": BROWSER_UA}

    def send(number: int) -> requests.Response:
        server = servers[number % 2]
        path = "/api/v1/chat" if number % 4 < 2 else "/api/v1/chat/stream"
        return requests.post(f"{server.url}{path}", json={"message": f"m{number}"}, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(send, range(16)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * CAP + [429] * (16 - CAP)
    assert all("Message limit" in r.json()["detail"] for r in responses if r.status_code == 429)
    assert ChatMessage.objects.filter(session=started.session, kind="user").count() == CAP
    started.session.refresh_from_db()
    assert started.session.user_message_count == CAP
