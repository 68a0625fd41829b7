"""An event reaches a visitor's open stream whichever process holds it: Redis pub/sub between servers,
PostgreSQL LISTEN/NOTIFY without Redis; one subscription per process."""

import time

import pytest
import requests

from chat_app.handoff import staff_message_post
from sessions_app.services import chat_session_start
from tests.multiserver.servers import BROWSER_UA, ServerProcess, is_postgresql
from tests.multiserver.test_two_servers import _cache_url
from tests.sse import EventStream

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not is_postgresql(), reason="the PostgreSQL and Redis run only: SQLite has no shared server"),
]
STAFF_PASSWORD = "a-strong-staff-password-1"


@pytest.fixture
def staff_token(django_user_model) -> str:
    """A staff access token minted here: the servers share the signing key and the database."""
    from rest_framework_simplejwt.tokens import RefreshToken

    user = django_user_model.objects.create_user(username="ana", password=STAFF_PASSWORD, is_staff=True)
    return str(RefreshToken.for_user(user).access_token)


@pytest.fixture(scope="module")
def servers_redis(django_db_setup):
    env = {"CACHE_URL": _cache_url(), "RATE_LIMITING_ENABLED": "False", "DB_POOL_MAX_SIZE": "4"}
    pair = [ServerProcess(env, name="events-a"), ServerProcess(env, name="events-b")]
    try:
        yield [server.wait_ready() for server in pair]
    finally:
        for server in pair:
            server.stop()


def test_a_staff_reply_on_one_server_reaches_a_stream_held_by_another(servers_redis, staff_token):
    holder, writer = servers_redis
    visitor = chat_session_start(email="v@example.com", user_agent=BROWSER_UA, ip_address="203.0.113.5")
    stream = EventStream(f"{holder.url}/api/v1/chat/events", token=visitor.access_token, user_agent=BROWSER_UA)
    try:
        time.sleep(0.5)
        sent = time.monotonic()
        answer = requests.post(
            f"{writer.url}/api/v1/staff/sessions/{visitor.session.pk}/messages",
            json={"message": "From the other server"},
            headers={"Authorization": f"Bearer {staff_token}", "User-Agent": BROWSER_UA},
            timeout=10,
        )
        assert answer.status_code == 201

        arrived, _, _, data = stream.next_of("message")
        assert data["content"] == "From the other server"
        assert arrived - sent < 0.5
    finally:
        stream.close()


def test_without_redis_postgresql_notify_wakes_the_stream(settings):
    # This process writes as such a deployment's processes do: no Redis, so the wake-up is a NOTIFY.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    server = ServerProcess({"CACHE_URL": "locmemcache://events", "DB_POOL_MAX_SIZE": "4"}, name="events-pg")
    try:
        server.wait_ready()
        visitor = chat_session_start(email="v@example.com", user_agent=BROWSER_UA, ip_address="203.0.113.5")
        stream = EventStream(f"{server.url}/api/v1/chat/events", token=visitor.access_token, user_agent=BROWSER_UA)
        try:
            time.sleep(0.5)
            sent = time.monotonic()
            staff_message_post(session_id=visitor.session.pk, content="Written by another process", author="Ana")

            arrived, _, _, data = stream.next_of("message")
            assert data["content"] == "Written by another process"
            assert arrived - sent < 0.5
        finally:
            stream.close()
    finally:
        server.stop()
