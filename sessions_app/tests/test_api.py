"""The visitor session endpoints over HTTP: start, read, log out, erase."""

import hashlib
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from chat_app.models import ChatMessage
from sessions_app.authentication import SESSION_ENDED
from sessions_app.bots import BOT_DETECTED
from sessions_app.hashing import browser_hash, email_hash
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end
from sessions_app.tests.factories import BROWSER_UA, exchange_make, session_make
from sessions_app.tokens import SessionToken

pytestmark = pytest.mark.django_db

START = "/api/v1/auth/email"
SESSION = "/api/v1/auth/session"
LOGOUT = "/api/v1/auth/logout"


def start(client: APIClient, email: str = "visitor@example.com", path: str = START, **extra):
    return client.post(path, {"email": email}, format="json", **extra)


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body
    return body


def assert_refused(response) -> None:
    assert_json_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", [START, START + "/"])
def test_session_start_returns_token_whose_jti_is_the_session(api_client, path):
    response = start(api_client, path=path)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "session_id"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == int(settings.JWT_EXPIRE_HOURS * 3600)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["jti"] == body["session_id"]
    assert ChatSession.objects.filter(pk=body["session_id"], is_active=True).exists()


def test_session_start_stores_keyed_hashes_and_client_ip(api_client):
    email = "Visitor@Example.com"
    response = start(api_client, email=email, REMOTE_ADDR="198.51.100.4")

    session = ChatSession.objects.get(pk=response.json()["session_id"])
    assert session.email_hash == email_hash("visitor@example.com") == email_hash(email)
    for plain in (email, email.lower()):
        assert session.email_hash != hashlib.sha256(plain.encode()).hexdigest()
    assert session.browser_hash == browser_hash(BROWSER_UA)
    assert session.browser_hash != hashlib.sha256(BROWSER_UA.encode()).hexdigest()
    assert session.ip_address == "198.51.100.4"
    assert session.expires_at > session.created_at


def test_session_start_hash_depends_on_the_key(api_client, settings):
    first = email_hash("visitor@example.com")
    settings.HASH_KEY = "another-key-entirely"
    assert email_hash("visitor@example.com") != first


@pytest.mark.parametrize(
    "payload",
    [{"email": "not-an-email"}, {}, {"email": 123}, {"email": ["a@b.co"]}, {"email": None}, {"email": ""}, []],
    ids=["bad", "missing", "number", "list", "null", "blank", "not-an-object"],
)
def test_session_start_refuses_bad_input(api_client, payload):
    response = api_client.post(START, payload, format="json")

    assert_json_error(response, 400)
    assert not ChatSession.objects.exists()


def test_session_start_refuses_broken_json(api_client):
    response = api_client.post(START, '{"email": "a@b.co"', content_type="application/json")

    assert "detail" in assert_json_error(response, 400)
    assert not ChatSession.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("email=a@b.co", "application/x-www-form-urlencoded"), ("a@b.co", "text/plain")],
)
def test_session_start_refuses_wrong_content_type(api_client, body, content_type):
    response = api_client.post(START, body, content_type=content_type)

    assert "detail" in assert_json_error(response, 415)


def test_session_start_refuses_wrong_method_as_json(api_client):
    assert "detail" in assert_json_error(api_client.get(START), 405)


@pytest.mark.parametrize("user_agent", ["curl/8.1", "", "         x"])
def test_session_start_refuses_bot_like_user_agent(user_agent):
    response = start(APIClient(HTTP_USER_AGENT=user_agent))

    assert assert_json_error(response, 403) == {"detail": BOT_DETECTED}
    assert not ChatSession.objects.exists()


def test_session_start_allows_short_user_agent_when_detection_disabled(settings):
    settings.BOT_DETECTION_ENABLED = False

    assert start(APIClient(HTTP_USER_AGENT="curl/8")).status_code == 201


def test_session_start_min_user_agent_length_is_configurable(settings):
    settings.MIN_USER_AGENT_LENGTH = 60

    assert start(APIClient(HTTP_USER_AGENT=BROWSER_UA)).status_code == 403


@pytest.mark.parametrize("path", [START, START + "/"])
def test_session_start_rate_limited_per_ip(api_client, settings, path):
    settings.AUTH_RATE_LIMIT = "3/h"  # an hour window: no boundary falls inside the test

    statuses = [start(api_client, path=path).status_code for _ in range(3)]
    limited = start(api_client, path=path)

    assert statuses == [201, 201, 201]
    assert_json_error(limited, 429)
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert ChatSession.objects.count() == 3
    # Another client IP has its own budget.
    assert start(api_client, path=path, REMOTE_ADDR="198.51.100.99").status_code == 201


def test_session_start_not_limited_when_rate_limiting_disabled(api_client, settings):
    settings.AUTH_RATE_LIMIT = "2/h"
    settings.RATE_LIMITING_ENABLED = False

    assert [start(api_client).status_code for _ in range(5)] == [201] * 5


@pytest.mark.parametrize("path", [SESSION, SESSION + "/"])
def test_session_get_reports_counts(visitor_client, visitor, settings, fake_model, path):
    settings.MAX_MESSAGES_PER_SESSION = 5
    for text in ("First question", "Second question"):
        assert visitor_client.post("/api/v1/chat", {"message": text}, format="json").status_code == 200

    response = visitor_client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"session_id", "created_at", "expires_at", "message_count", "messages_remaining", "mode"}
    assert body["mode"] == "ai"
    assert body["session_id"] == visitor.session.pk
    assert body["message_count"] == 2
    assert body["messages_remaining"] == 3


def test_session_get_remaining_never_negative(visitor_client, visitor, settings):
    ChatSession.objects.filter(pk=visitor.session.pk).update(user_message_count=7)
    settings.MAX_MESSAGES_PER_SESSION = 5

    assert visitor_client.get(SESSION).json()["messages_remaining"] == 0


@pytest.mark.parametrize("path", [LOGOUT, LOGOUT + "/"])
def test_session_logout_ends_session_and_refuses_token(visitor_client, visitor, path):
    response = visitor_client.post(path)

    assert response.status_code == 204
    session = ChatSession.objects.get(pk=visitor.session.pk)
    assert not session.is_active
    assert session.end_reason == ChatSession.EndReason.LOGOUT
    assert session.ended_at is not None
    refused = visitor_client.get(SESSION)
    assert_refused(refused)
    assert refused.json()["detail"] == SESSION_ENDED
    assert_refused(visitor_client.post(LOGOUT))


def test_session_logout_needs_a_token(api_client):
    assert_refused(api_client.post(LOGOUT))


@pytest.mark.parametrize("path", [SESSION, SESSION + "/"])
def test_session_delete_erases_session_and_messages(visitor_client, visitor, fake_model, path):
    assert visitor_client.post("/api/v1/chat", {"message": "Please forget me"}, format="json").status_code == 200
    other = session_make(email="other@example.com").session
    exchange_make(session=other)
    assert ChatMessage.objects.filter(session_id=visitor.session.pk).count() == 2

    response = visitor_client.delete(path)

    assert response.status_code == 204
    assert not ChatSession.objects.filter(pk=visitor.session.pk).exists()
    assert not ChatMessage.objects.filter(session_id=visitor.session.pk).exists()
    assert ChatMessage.objects.filter(session=other).count() == 2
    assert_refused(visitor_client.get(SESSION))
    assert_refused(visitor_client.delete(SESSION))


def end_by_logout(client: APIClient, session: ChatSession) -> None:
    assert client.post(LOGOUT).status_code == 204


def end_by_staff(client: APIClient, session: ChatSession) -> None:
    chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)


@pytest.mark.parametrize("end", [end_by_logout, end_by_staff], ids=["logout", "staff"])
def test_session_delete_erases_an_ended_session_until_its_token_expires(visitor_client, visitor, fake_model, end):
    assert visitor_client.post("/api/v1/chat", {"message": "Please forget me"}, format="json").status_code == 200
    end(visitor_client, visitor.session)
    assert_refused(visitor_client.get(SESSION))  # ended: every other visitor endpoint refuses the token

    response = visitor_client.delete(SESSION)

    assert response.status_code == 204
    assert not ChatSession.objects.filter(pk=visitor.session.pk).exists()
    assert not ChatMessage.objects.filter(session_id=visitor.session.pk).exists()
    assert_refused(visitor_client.delete(SESSION))
    assert_refused(visitor_client.get(SESSION))


@pytest.mark.parametrize("end", [end_by_logout, end_by_staff], ids=["logout", "staff"])
def test_session_ended_token_is_refused_everywhere_but_erasure(visitor_client, visitor, fake_model, end):
    end(visitor_client, visitor.session)

    assert_refused(visitor_client.get(SESSION))
    assert visitor_client.head(SESSION).status_code == 401
    assert_refused(visitor_client.post(LOGOUT))
    assert_refused(visitor_client.post("/api/v1/chat", {"message": "hi"}, format="json"))
    assert_refused(visitor_client.get("/api/v1/chat/history"))
    assert fake_model.calls == []
    assert ChatSession.objects.filter(pk=visitor.session.pk).exists()


def test_session_delete_refuses_an_expired_session(visitor_client, visitor):
    # Token and session share one lifetime: past it, even erasure is refused (cleanup_sessions erases).
    ChatSession.objects.filter(pk=visitor.session.pk).update(
        is_active=False, expires_at=timezone.now() - timedelta(seconds=1), end_reason=ChatSession.EndReason.EXPIRED
    )

    assert_refused(visitor_client.delete(SESSION))
    assert ChatSession.objects.filter(pk=visitor.session.pk).exists()


def test_session_delete_refuses_expired_token_of_an_ended_session(api_client, visitor):
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.LOGOUT)
    token = SessionToken.for_session(visitor.session)
    token.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(hours=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_refused(api_client.delete(SESSION))
    assert ChatSession.objects.filter(pk=visitor.session.pk).exists()


def test_session_endpoints_refuse_other_methods_as_json(visitor_client):
    assert assert_json_error(visitor_client.put(SESSION, {}, format="json"), 405)
    assert assert_json_error(visitor_client.get(LOGOUT), 405)
