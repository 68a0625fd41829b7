"""Fixtures shared by chat_app's tests."""

import pytest


@pytest.fixture
def no_model(settings, monkeypatch):
    """No model configured, as on a fresh clone: no key, no endpoint, no provider variable."""
    from chat_app import llm

    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    settings.LLM_MODEL = "gemini/gemini-2.5-flash-lite"
    settings.LLM_API_KEY, settings.LLM_API_BASE = None, None
    llm._configured.cache_clear()
    yield
    llm._configured.cache_clear()
