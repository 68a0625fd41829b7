"""`/health`: database, cache and model configuration, and 503 when the database is gone."""

from datetime import datetime

import pytest
from django.db import OperationalError

from chat_app import llm
from chatapi import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_configuration_cache():
    """llm_is_configured caches per settings; environment variables change between these tests."""
    llm._configured.cache_clear()
    yield
    llm._configured.cache_clear()


class BrokenConnection:
    def cursor(self):
        raise OperationalError("could not connect to server")


class BrokenCache:
    def set(self, *args, **kwargs):
        raise ConnectionError("cache down")

    def get(self, *args, **kwargs):
        raise ConnectionError("cache down")


@pytest.mark.parametrize("path", ["/health", "/health/"])
def test_health_reports_healthy(api_client, settings, path):
    response = api_client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "database", "cache", "ai_service", "version", "timestamp"}
    assert (body["status"], body["database"], body["cache"]) == ("healthy", "connected", "connected")
    assert body["ai_service"] == "configured"
    assert body["version"] == settings.VERSION
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None


def test_health_needs_no_token_and_ignores_bad_one(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert api_client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("api_key", "api_base"), [("a-key", None), (None, "http://127.0.0.1:9/v1")], ids=["key", "base"]
)
def test_health_ai_service_configured(api_client, settings, api_key, api_base):
    settings.LLM_API_KEY, settings.LLM_API_BASE = api_key, api_base

    assert api_client.get("/health").json()["ai_service"] == "configured"


def test_health_ai_service_unconfigured_without_credentials(api_client, settings, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.LLM_MODEL = "openai/health-probe"
    settings.LLM_API_KEY, settings.LLM_API_BASE = None, None

    assert api_client.get("/health").json()["ai_service"] == "unconfigured"


def test_health_ai_service_configured_from_provider_variable(api_client, settings, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "from-the-environment")
    settings.LLM_MODEL = "gemini/gemini-2.5-flash-lite"
    settings.LLM_API_KEY, settings.LLM_API_BASE = None, None

    assert api_client.get("/health").json()["ai_service"] == "configured"


def test_health_ai_service_unconfigured_for_unknown_provider(api_client, settings):
    settings.LLM_MODEL = "no-such-provider/whatever"
    settings.LLM_API_KEY, settings.LLM_API_BASE = None, None

    assert api_client.get("/health").json()["ai_service"] == "unconfigured"


def test_health_unhealthy_when_database_unreachable(api_client, monkeypatch):
    monkeypatch.setattr(health, "connection", BrokenConnection())

    response = api_client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unhealthy", "disconnected")
    assert body["cache"] == "connected"
    assert "could not connect" not in response.content.decode()


def test_health_reports_cache_disconnected(api_client, monkeypatch):
    monkeypatch.setattr(health, "cache", BrokenCache())

    response = api_client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["cache"]) == ("healthy", "connected", "disconnected")
