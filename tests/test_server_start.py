"""The server's start, as the README runs it: one line when no model is configured, once per start."""

import sys

import pytest

from chat_app.llm import NO_MODEL_CONFIGURED
from tests.production_server import production_server, server_environment

# Provider variables litellm would take as a configured model.
PROVIDER_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
RUNSERVER = [sys.executable, "manage.py", "runserver", "--noreload"]


@pytest.mark.parametrize("command", ["gunicorn", "runserver"])
@pytest.mark.parametrize(("model", "lines"), [({}, 1), ({"LLM_API_BASE": "http://127.0.0.1:9/v1"}, 0)])
def test_server_says_once_at_start_that_no_model_is_configured(tmp_path, command, model, lines):
    env = server_environment(tmp_path, WEB_CONCURRENCY="2", LOG_FORMAT="text", **model)
    for key in PROVIDER_KEYS:
        env.pop(key, None)
    runserver = [*RUNSERVER, f"127.0.0.1:{env['PORT']}"] if command == "runserver" else None

    with production_server(tmp_path, env, command=runserver) as server:
        pass

    assert server.output().count(NO_MODEL_CONFIGURED) == lines, server.output()
