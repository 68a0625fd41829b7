"""The model call through the real litellm client to the stub server over a real socket."""

import pytest

pytestmark = pytest.mark.django_db


def test_chat_reaches_model_over_socket_and_stores_usage(visitor_client, model_server):
    response = visitor_client.post("/api/v1/chat", {"message": "Hello there"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["response"] == "Stub reply to: Hello there"
    assert body["fallback"] is False
    sent = model_server.behaviour.requests[-1]
    assert sent["model"] == "stub-model"
    assert sent["messages"][-1] == {"role": "user", "content": "Hello there"}
    assert sent["messages"][0]["role"] == "system"
