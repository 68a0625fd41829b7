"""OWASP API7:2023 Server Side Request Forgery: no request decides where the server connects.

The server makes two kinds of outgoing call, to the model and to Discord, and both endpoints come
from the operator's settings (LLM_API_BASE, LLM_MODEL, DISCORD_API_BASE), never from a request. No
API field takes a URL. Here: fields and headers that name another model or endpoint change nothing.
"""

import pytest

from tests.security.conftest import body_of

pytestmark = pytest.mark.django_db

STEERING = {
    "model": "openai/attacker-model", "api_base": "http://169.254.169.254/latest/meta-data/",
    "base_url": "http://127.0.0.1:6379/", "url": "file:///etc/passwd", "webhook": "http://internal.example/",
    "LLM_API_BASE": "http://169.254.169.254/", "callback_url": "gopher://127.0.0.1:25/",
}  # fmt: skip


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/chat/stream"])
def test_request_fields_and_headers_cannot_redirect_the_model_call(visitor_client, model_server, settings, path):
    response = visitor_client.post(
        f"{path}?api_base=http://169.254.169.254/&model=evil",
        {"message": "hello", **STEERING},
        format="json",
        HTTP_X_FORWARDED_HOST="169.254.169.254",
        HTTP_X_LLM_API_BASE="http://169.254.169.254/",
    )
    body_of(response)

    assert response.status_code == 200
    assert len(model_server.behaviour.requests) == 1  # the configured stub got the one call
    sent = model_server.behaviour.requests[0]
    assert sent["model"] == settings.LLM_MODEL.split("/", 1)[1]
    assert "169.254.169.254" not in str(sent) and "attacker" not in str(sent)


def test_no_input_takes_a_url(api_client):
    schema = api_client.get("/api/v1/schema", {"format": "json"}).json()
    inputs = {name: body for name, body in schema["components"]["schemas"].items() if name.endswith("Request")}
    parameters = [
        p for operations in schema["paths"].values() for op in operations.values() for p in op.get("parameters", [])
    ]

    assert inputs  # COMPONENT_SPLIT_REQUEST names every request body ...Request
    text = str([inputs, parameters]).lower()
    assert "'format': 'uri'" not in text
    assert not any(word in text for word in ("url", "uri", "callback", "webhook", "api_base", "host"))
