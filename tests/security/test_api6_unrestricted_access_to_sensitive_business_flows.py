"""OWASP API6:2023 Unrestricted Access to Sensitive Business Flows: the model budget and the channel.

The flows worth automating against this API are minting sessions (each one posts to the Discord
channel) and chatting (each message spends model budget). Scripted clients are refused by user
agent (sessions_app/tests/test_api.py::test_session_start_refuses_bot_like_user_agent,
chat_app/tests/test_api.py::test_chat_post_bot_user_agent_is_refused_before_rate_limit), refused
messages never reach the model (chat_app/tests/test_services.py). Here: one address, looping over
new sessions, still spends a bounded number of model calls.
"""

import pytest
from rest_framework.test import APIClient

from chat_app.models import ChatMessage
from conftest import BROWSER_UA
from sessions_app.models import ChatSession
from tests.security.conftest import body_of

pytestmark = pytest.mark.django_db


def test_one_address_cycling_sessions_spends_a_bounded_model_budget(model_server, settings):
    settings.AUTH_RATE_LIMIT = "3/h"
    settings.CHAT_RATE_LIMIT = "1000/h"  # only the session cap and the session limit bound this
    settings.MAX_MESSAGES_PER_SESSION = 4
    attacker = APIClient(HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="192.0.2.66")

    for _ in range(10):
        started = attacker.post("/api/v1/auth/email", {"email": "bot@example.com"}, format="json")
        if started.status_code != 201:
            assert started.status_code == 429
            continue
        attacker.credentials(HTTP_AUTHORIZATION=f"Bearer {started.json()['access_token']}")
        for path in ["/api/v1/chat", "/api/v1/chat/stream"] * 5:
            body_of(attacker.post(path, {"message": "spend"}, format="json"))

    assert ChatSession.objects.count() == 3  # AUTH_RATE_LIMIT
    assert ChatMessage.objects.filter(kind="user").count() == 3 * 4  # times MAX_MESSAGES_PER_SESSION
    assert len(model_server.behaviour.requests) == 3 * 4


def test_the_chat_limit_per_address_holds_across_sessions(fake_model, settings):
    settings.CHAT_RATE_LIMIT = "5/h"
    statuses = []
    for number in range(4):
        client = APIClient(HTTP_USER_AGENT=BROWSER_UA, REMOTE_ADDR="192.0.2.67")
        token = client.post("/api/v1/auth/email", {"email": f"s{number}@example.com"}, format="json")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")
        statuses += [client.post("/api/v1/chat", {"message": "hi"}, format="json").status_code for _ in range(2)]

    assert statuses.count(200) == 5
    assert len(fake_model.calls) == 5


def test_scripted_clients_cannot_start_or_chat(visitor, fake_model):
    for agent in ["", "curl", "wget/1.2"]:
        client = APIClient(HTTP_USER_AGENT=agent)
        assert client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json").status_code == 403
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {visitor.access_token}")
        for path in ("/api/v1/chat", "/api/v1/chat/stream"):
            assert client.post(path, {"message": "hi"}, format="json").status_code == 403
    assert fake_model.calls == []
