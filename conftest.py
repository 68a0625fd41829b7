"""Fixtures shared by every app's tests: clients, visitors, staff, and the stub model server."""

import time
from types import SimpleNamespace

import django_ratelimit.core
import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from rest_framework.test import APIClient

from testing.llm_server import StubModelServer

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) pytest"


def body_of(response) -> bytes:
    """A test client response's whole body, a stream's included (its events come from async code)."""
    if not response.streaming:
        return response.content
    if not response.is_async:
        return b"".join(response.streaming_content)

    async def collected() -> list[bytes]:
        return [part async for part in response.streaming_content]

    return b"".join(async_to_sync(collected)())


@pytest.fixture(scope="session", autouse=True)
def _model_client_loaded():
    """litellm loaded once up front, as the server loads it at start (chatapi/wsgi.py): the app alone
    imports it on its first model call, and a test timing that call must not time a 4 s import."""
    from chat_app.llm import litellm_client

    litellm_client()


@pytest.fixture(scope="session")
def _never_collected_static_root(tmp_path_factory):
    return tmp_path_factory.mktemp("staticfiles-never-collected")


@pytest.fixture(autouse=True)
def _isolated(settings, _never_collected_static_root):
    """Every test starts with an empty cache (rate-limit counters) and static files as before any
    collectstatic: the README's serve command collects into ./staticfiles, whose hashed names the test
    server (which serves from the apps' own directories) would not find. The collected case has tests
    of its own that set STATIC_ROOT themselves."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
    settings.STATIC_ROOT = _never_collected_static_root
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _rate_limit_clock_pinned(monkeypatch):
    """django-ratelimit's windows end at a per-key second of each period (a crc32 of the key), so a
    test that counts requests could straddle a window's end once an hour and see its count restart.
    Pin the clock it reads to the test's start: windows and Retry-After stay real, they just hold."""
    started = time.time()
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: started))


@pytest.fixture
def api_client() -> APIClient:
    return APIClient(HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def visitor(db):
    """A started session and its token: `visitor.session`, `visitor.access_token`."""
    from sessions_app.services import chat_session_start

    return chat_session_start(email="visitor@example.com", user_agent=BROWSER_UA, ip_address="203.0.113.7")


@pytest.fixture
def visitor_client(api_client, visitor) -> APIClient:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {visitor.access_token}")
    return api_client


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(username="staff", password="a-strong-staff-password-1", is_staff=True)


@pytest.fixture
def staff_client(api_client, staff_user) -> APIClient:
    from rest_framework_simplejwt.tokens import RefreshToken

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user).access_token}")
    return api_client


@pytest.fixture
def model_server(settings):
    """The stub OpenAI-compatible server on a free port, with litellm pointed at it."""
    with StubModelServer() as server:
        settings.LLM_MODEL = "openai/stub-model"
        settings.LLM_API_BASE = server.api_base
        settings.LLM_API_KEY = "stub-key"
        yield server


@pytest.fixture
def fake_model(monkeypatch):
    """Replace the model call in-process: `fake_model.calls` records messages; set `.reply` or `.error`."""
    from chat_app import llm

    class FakeModel:
        def __init__(self):
            self.calls: list[list[dict]] = []
            self.reply = "A helpful answer."
            self.error = False

        async def __call__(self, *, messages):
            self.calls.append(messages)
            if self.error:
                raise llm.ModelUnavailable("fake failure")
            return llm.Completion(
                content=self.reply, model="fake-model", latency_ms=12, prompt_tokens=30,
                completion_tokens=5, cost_usd=None,
            )  # fmt: skip

    fake = FakeModel()
    monkeypatch.setattr(llm, "chat_complete", fake)
    return fake
