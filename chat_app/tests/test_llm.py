"""The model client's set-up: litellm loaded once, its lines through the app's handler, one line at start."""

import logging

from chat_app import llm


def test_model_client_prepare_says_once_that_no_model_is_configured(no_model, caplog):
    with caplog.at_level(logging.WARNING, logger="chat_app.llm"):
        llm.model_client_prepare()

    assert [record.getMessage() for record in caplog.records] == [llm.NO_MODEL_CONFIGURED]


def test_model_client_prepare_is_silent_when_a_model_is_configured(settings, caplog):
    settings.LLM_API_BASE = "http://127.0.0.1:9/v1"

    with caplog.at_level(logging.WARNING, logger="chat_app.llm"):
        llm.model_client_prepare()

    assert caplog.records == []
