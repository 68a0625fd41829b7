"""The model client's set-up: litellm loaded once, its lines through the app's handler, one line at start."""

import logging

import pytest

from chat_app import llm


@pytest.fixture
def model_unconfigured(settings, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    settings.LLM_MODEL = "gemini/gemini-2.5-flash-lite"
    settings.LLM_API_KEY, settings.LLM_API_BASE = None, None
    llm._configured.cache_clear()
    yield
    llm._configured.cache_clear()


def test_litellm_client_is_set_up_once_and_keeps_prompts_out_of_its_logs():
    client = llm.litellm_client()

    assert llm.litellm_client() is client
    assert client.turn_off_message_logging is True
    assert all(logging.getLogger(name).handlers == [] for name in llm.LITELLM_LOGGERS)


def test_model_client_prepare_says_once_that_no_model_is_configured(model_unconfigured, caplog):
    with caplog.at_level(logging.WARNING, logger="chat_app.llm"):
        llm.model_client_prepare()

    assert [record.getMessage() for record in caplog.records] == [llm.NO_MODEL_CONFIGURED]


def test_model_client_prepare_is_silent_when_a_model_is_configured(settings, caplog):
    settings.LLM_API_BASE = "http://127.0.0.1:9/v1"

    with caplog.at_level(logging.WARNING, logger="chat_app.llm"):
        llm.model_client_prepare()

    assert caplog.records == []
