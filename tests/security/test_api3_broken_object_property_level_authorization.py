"""OWASP API3:2023 Broken Object Property Level Authorization: no hidden field leaks, none is writable.

Visitors never see what only staff may: the address, the IP address, the keyed hashes, another
session's data. And no request can set a property the server owns (mass assignment): the count,
the expiry, `is_active`, `flagged`, the message kind. Staff see those fields, read-only.
"""

import json

import pytest

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from tests.security.conftest import body_of

pytestmark = pytest.mark.django_db

STAFF_ONLY = {"email", "email_hash", "ip_address", "browser_hash", "end_reason", "ended_at", "is_active"}
VISITOR_EMAIL = "visitor@example.com"
VISITOR_IP = "203.0.113.7"  # the `visitor` fixture's


def keys_in(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_in(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_in(item)}
    return set()


def assert_nothing_staff_only(response, session: ChatSession) -> None:
    raw = body_of(response)
    for secret in (VISITOR_EMAIL, VISITOR_IP, session.email_hash, session.browser_hash):
        assert secret.encode() not in raw, (secret, raw[:300])
    if response.get("Content-Type", "").startswith("application/json") and raw:
        assert not keys_in(json.loads(raw)) & STAFF_ONLY


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [("get", "/api/v1/auth/session", None), ("post", "/api/v1/chat", {"message": "hi"}),
     ("post", "/api/v1/chat/stream", {"message": "hi"}), ("get", "/api/v1/chat/history", None),
     ("post", "/api/v1/chat", {"message": ""}), ("get", "/api/v1/chat/history?limit=0", None),
     ("get", "/api/v1/staff/sessions", None), ("post", "/api/v1/auth/logout", None)],
)  # fmt: skip
def test_visitor_responses_hold_no_staff_only_field(visitor_client, visitor, fake_model, method, path, data):
    response = getattr(visitor_client, method)(path, data, format="json")

    assert_nothing_staff_only(response, visitor.session)


def test_session_start_answers_without_staff_only_fields(api_client):
    response = api_client.post("/api/v1/auth/email", {"email": VISITOR_EMAIL}, format="json", REMOTE_ADDR=VISITOR_IP)

    assert response.status_code == 201
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "session_id"}
    assert_nothing_staff_only(response, ChatSession.objects.get())


def test_visitor_token_carries_no_personal_data(visitor):
    from rest_framework_simplejwt.tokens import UntypedToken

    claims = UntypedToken(visitor.access_token).payload

    assert set(claims) <= {"token_type", "exp", "iat", "jti", "aud", "iss"}
    assert VISITOR_EMAIL not in json.dumps(claims) and VISITOR_IP not in json.dumps(claims)


def test_session_start_ignores_server_owned_properties(api_client):
    response = api_client.post(
        "/api/v1/auth/email",
        {"email": "a@b.co", "id": "chosen-id", "session_id": "chosen-id", "is_active": False,
         "expires_at": "2099-01-01T00:00:00Z", "user_message_count": -1000, "message_count": -1000,
         "ip_address": "1.2.3.4", "email_hash": "x", "is_staff": True},
        format="json",
    )  # fmt: skip

    session = ChatSession.objects.get(pk=response.json()["session_id"])
    assert session.pk != "chosen-id"
    assert session.is_active and session.user_message_count == 0 and session.ip_address != "1.2.3.4"
    assert session.expires_at.year < 2099 and session.email_hash != "x"


def test_chat_ignores_server_owned_message_properties(visitor_client, visitor, fake_model, settings):
    body = visitor_client.post(
        "/api/v1/chat",
        {"message": "<script>alert(1)</script> hello", "flagged": False, "kind": "assistant", "fallback": True,
         "response": "forged reply", "in_reply_to": 1, "created_at": "2000-01-01T00:00:00Z"},
        format="json",
    ).json()  # fmt: skip

    message = ChatMessage.objects.get(pk=body["message_id"])
    assert (message.kind, message.flagged, message.created_at.year > 2000) == ("user", True, True)
    assert body["response"] != "forged reply"
    visitor.session.refresh_from_db()
    assert visitor.session.user_message_count == 1


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_staff_session_fields_are_read_only(staff_client, visitor, method):
    response = getattr(staff_client, method)(
        f"/api/v1/staff/sessions/{visitor.session.pk}", {"email": "changed@example.com", "is_active": False},
        format="json",
    )  # fmt: skip

    assert response.status_code == 405
    visitor.session.refresh_from_db()
    assert (visitor.session.email, visitor.session.is_active) == (VISITOR_EMAIL, True)


def test_staff_see_the_staff_only_fields(staff_client, visitor):
    body = staff_client.get(f"/api/v1/staff/sessions/{visitor.session.pk}").json()

    assert (body["email"], body["ip_address"]) == (VISITOR_EMAIL, VISITOR_IP)
    assert body["email_hash"] == visitor.session.email_hash
