"""OWASP API4:2023 Unrestricted Resource Consumption: every size, count and rate is capped, as 4xx JSON.

Covered elsewhere and referenced in SECURITY.md: body size (sessions_app/tests/test_middleware.py,
tests/test_errors.py), message length and history `limit` (chat_app/tests/test_api.py), the session
cap under concurrency (chat_app/tests/test_concurrency.py), LLM_MAX_TOKENS on /chat over a socket
(chat_app/tests/test_llm_socket.py), bounded pattern matching (chat_app/tests/test_sanitization.py).
Here: the same caps on every path that takes a body, /chat/stream, and what no other test checks.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat_app.models import ChatMessage
from chatapi.exceptions import VALUE_OUT_OF_RANGE
from chatapi.middleware import BODY_TOO_LARGE
from chatapi.parsers import TOO_DEEP
from sessions_app.models import ChatSession
from tests.multiserver.servers import is_postgresql
from tests.security.conftest import body_of

pytestmark = pytest.mark.django_db

BODY_PATHS = ["/api/v1/auth/email", "/api/v1/chat", "/api/v1/chat/stream", "/api/v1/staff/token",
              "/api/v1/staff/token/refresh"]  # fmt: skip


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, body_of(response)[:300]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


@pytest.mark.parametrize("path", BODY_PATHS)
def test_oversized_body_is_413_json_on_every_body_path(visitor_client, fake_model, settings, path):
    settings.MAX_REQUEST_BODY_BYTES = 1024

    response = visitor_client.post(path, {"message": "x" * 2000, "email": "a@b.co"}, format="json")

    assert assert_json_error(response, 413) == {"detail": BODY_TOO_LARGE}
    assert not ChatMessage.objects.exists()
    assert fake_model.calls == []


@pytest.mark.parametrize("path", BODY_PATHS)
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_within_size_cap_is_400_not_500(visitor_client, fake_model, path, opener):
    body = opener * 12000  # under 64 KiB, far past Python's recursion limit

    response = visitor_client.post(path, body, content_type="application/json")

    assert assert_json_error(response, 400) == {"detail": TOO_DEEP}


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/chat/stream"])
def test_message_one_past_max_length_is_400_on_both_chat_paths(visitor_client, fake_model, settings, path):
    settings.MAX_MESSAGE_LENGTH = 50

    response = visitor_client.post(path, {"message": "x" * 51}, format="json")

    assert "message" in assert_json_error(response, 400)
    assert not ChatMessage.objects.exists() and fake_model.calls == []


@pytest.mark.parametrize("limit", ["201", "1000000000000", "-1", "1e3"])
def test_history_limit_beyond_cap_is_400(visitor_client, limit):
    assert "limit" in assert_json_error(visitor_client.get(f"/api/v1/chat/history?limit={limit}"), 400)


def test_staff_page_size_is_capped_at_two_hundred(staff_client):
    now = timezone.now()
    ChatSession.objects.bulk_create(
        ChatSession(email=f"s{n}@example.com", email_hash=str(n), browser_hash="b", ip_address="192.0.2.1",
                    expires_at=now + timedelta(hours=1))
        for n in range(205)
    )  # fmt: skip

    body = staff_client.get("/api/v1/staff/sessions?page_size=100000").json()

    assert body["count"] == 205
    assert len(body["results"]) == 200


def test_stream_sends_max_tokens_and_bounded_context_to_the_model(visitor_client, visitor, model_server, settings):
    settings.LLM_MAX_TOKENS = 77
    settings.LLM_CONTEXT_MESSAGES = 4
    for number in range(10):
        question = ChatMessage.objects.create(session=visitor.session, kind="user", content=f"q{number}")
        ChatMessage.objects.create(
            session=visitor.session, kind="assistant", content=f"a{number}", in_reply_to=question
        )

    response = visitor_client.post("/api/v1/chat/stream", {"message": "now"}, format="json")
    body_of(response)

    sent = model_server.behaviour.requests[-1]
    assert sent["max_tokens"] == 77
    assert [m["content"] for m in sent["messages"][1:]] == ["q8", "a8", "q9", "a9", "now"]


@pytest.mark.parametrize(
    ("first", "second"),
    [("/api/v1/chat", "/api/v1/chat/stream"), ("/api/v1/chat/stream", "/api/v1/chat")],
)
def test_chat_and_stream_share_one_rate_limit(visitor_client, fake_model, settings, first, second):
    settings.CHAT_RATE_LIMIT = "2/h"

    statuses = []
    for path in (first, second, first, second):
        response = visitor_client.post(path, {"message": "hello"}, format="json")
        body_of(response)
        statuses.append(response.status_code)

    assert statuses == [200, 200, 429, 429]


@pytest.mark.parametrize(
    ("path", "data", "setting"),
    [("/api/v1/auth/email", {"email": "a@b.co"}, "AUTH_RATE_LIMIT"),
     ("/api/v1/staff/token", {"username": "x", "password": "y"}, "AUTH_RATE_LIMIT"),
     ("/api/v1/staff/token/refresh", {"refresh": "x"}, "AUTH_RATE_LIMIT"),
     ("/api/v1/chat", {"message": "hi"}, "CHAT_RATE_LIMIT"),
     ("/api/v1/chat/stream", {"message": "hi"}, "CHAT_RATE_LIMIT")],
)  # fmt: skip
def test_every_rate_limit_answers_429_json_with_retry_after(visitor_client, fake_model, settings, path, data, setting):
    setattr(settings, setting, "1/h")
    body_of(visitor_client.post(path, data, format="json"))

    response = visitor_client.post(path, data, format="json")

    assert "detail" in assert_json_error(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 3600


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/chat/stream"])
def test_session_cap_is_429_json_with_seconds_until_expiry(visitor_client, visitor, fake_model, settings, path):
    settings.MAX_MESSAGES_PER_SESSION = 1
    ChatSession.objects.filter(pk=visitor.session.pk).update(user_message_count=1)

    response = visitor_client.post(path, {"message": "one more"}, format="json")

    assert "Message limit" in assert_json_error(response, 429)["detail"]
    until_expiry = (visitor.session.expires_at - timezone.now()).total_seconds()
    assert abs(int(response["Retry-After"]) - until_expiry) <= 5
    assert fake_model.calls == []


@pytest.mark.parametrize(
    "path",
    ["/api/v1/staff/sessions/%00", "/api/v1/staff/sessions/%00/messages",
     "/api/v1/staff/sessions?created_after=0275-08-14T13:21:18-21:44", "/api/v1/staff/sessions?email=%00"],
)  # fmt: skip
def test_values_the_database_cannot_hold_are_never_500(staff_client, path):
    response = staff_client.get(path)

    # PostgreSQL refuses a NUL and a time zone offset past 15:59 (DataError): 400; SQLite stores both.
    assert response.status_code in {200, 400, 404}
    assert response["Content-Type"] == "application/json"
    if is_postgresql() and (path.startswith("/api/v1/staff/sessions/%00") or "created_after" in path):
        assert response.json() == {"detail": VALUE_OUT_OF_RANGE}
