"""The staff API: tokens for staff users only, and every session with its messages."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_start

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/staff/token"
REFRESH = "/api/v1/staff/token/refresh"
SESSIONS = "/api/v1/staff/sessions"
STAFF_PASSWORD = "a-strong-staff-password-1"
UA = "Mozilla/5.0 (X11; Linux x86_64) staff tests"
STAFF_LIST_QUERIES = 3  # the staff user behind the token, the page count, the page with flagged counts


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Staff users are made in most tests here; the production hasher would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def session_create(email: str = "someone@example.com", ip: str = "203.0.113.50") -> ChatSession:
    return chat_session_start(email=email, user_agent=UA, ip_address=ip).session


def message_create(session: ChatSession, content: str, *, flagged: bool = False) -> ChatMessage:
    message = ChatMessage.objects.create(session=session, kind="user", content=content, flagged=flagged)
    ChatMessage.objects.create(session=session, kind="assistant", content=f"re: {content}", in_reply_to=message)
    return message


def listed_ids(client: APIClient, **filters) -> set[str]:
    response = client.get(SESSIONS, filters)
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


def test_staff_token_issues_pair_for_staff(api_client, staff_user):
    response = api_client.post(TOKEN, {"username": "staff", "password": STAFF_PASSWORD}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api_client.get(SESSIONS).status_code == 200


def test_staff_token_refuses_non_staff_user(api_client, django_user_model):
    django_user_model.objects.create_user(username="plain", password=STAFF_PASSWORD)

    response = api_client.post(TOKEN, {"username": "plain", "password": STAFF_PASSWORD}, format="json")

    assert response.status_code == 401
    assert "access" not in response.json()


def test_staff_token_refuses_inactive_staff(api_client, staff_user):
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    response = api_client.post(TOKEN, {"username": "staff", "password": STAFF_PASSWORD}, format="json")

    assert response.status_code == 401


def test_staff_token_refuses_wrong_password(api_client, staff_user):
    response = api_client.post(TOKEN, {"username": "staff", "password": "wrong-password"}, format="json")

    assert response.status_code == 401
    assert set(response.json()) == {"detail"}


def test_staff_token_requires_both_fields(api_client, staff_user):
    response = api_client.post(TOKEN, {"username": "staff"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()


def test_staff_token_is_rate_limited_per_ip(api_client, staff_user, settings):
    settings.AUTH_RATE_LIMIT = "2/h"
    wrong = {"username": "staff", "password": "wrong-password"}

    statuses = [api_client.post(TOKEN, wrong, format="json").status_code for _ in range(3)]

    assert statuses == [401, 401, 429]
    assert int(api_client.post(TOKEN, wrong, format="json")["Retry-After"]) >= 1


def test_staff_token_refresh_issues_working_access_token(api_client, staff_user):
    pair = api_client.post(TOKEN, {"username": "staff", "password": STAFF_PASSWORD}, format="json").json()

    response = api_client.post(REFRESH, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api_client.get(SESSIONS).status_code == 200


def test_staff_token_refresh_refuses_access_token(api_client, staff_user):
    pair = api_client.post(TOKEN, {"username": "staff", "password": STAFF_PASSWORD}, format="json").json()

    assert api_client.post(REFRESH, {"refresh": pair["access"]}, format="json").status_code == 401


def test_staff_sessions_list_is_paginated_newest_first(staff_client):
    older = session_create("a@example.com")
    ChatSession.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    newer = session_create("b@example.com")

    response = staff_client.get(SESSIONS, {"page_size": 1})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["next"] is not None
    assert [row["id"] for row in body["results"]] == [newer.pk]
    assert staff_client.get(body["next"]).json()["results"][0]["id"] == older.pk


def test_staff_sessions_list_shows_counts(staff_client, settings):
    session = session_create()
    message_create(session, "fine")
    message_create(session, "bad", flagged=True)
    ChatSession.objects.filter(pk=session.pk).update(user_message_count=2)

    row = staff_client.get(SESSIONS).json()["results"][0]

    assert (row["message_count"], row["flagged_count"]) == (2, 1)
    assert row["email"] == "someone@example.com"
    assert row["ip_address"] == "203.0.113.50"


def test_staff_sessions_filter_by_active(staff_client):
    live = session_create("live@example.com")
    ended = session_create("ended@example.com")
    ChatSession.objects.filter(pk=ended.pk).update(is_active=False)

    assert listed_ids(staff_client, is_active="true") == {live.pk}
    assert listed_ids(staff_client, is_active="false") == {ended.pk}


def test_staff_sessions_filter_by_expired(staff_client):
    live = session_create("live@example.com")
    expired = session_create("expired@example.com")
    ChatSession.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert listed_ids(staff_client, expired="true") == {expired.pk}
    assert listed_ids(staff_client, expired="false") == {live.pk}


def test_staff_sessions_filter_by_flagged(staff_client):
    clean = session_create("clean@example.com")
    message_create(clean, "hello")
    flagged = session_create("flagged@example.com")
    message_create(flagged, "hello")
    message_create(flagged, "'; DROP TABLE users; --", flagged=True)

    assert listed_ids(staff_client, flagged="true") == {flagged.pk}
    assert listed_ids(staff_client, flagged="false") == {clean.pk}


def test_staff_sessions_filter_by_email_exact_any_case(staff_client):
    match = session_create("Visitor.One@Example.com")
    session_create("visitor.one@example.org")
    session_create("one@example.com")

    assert listed_ids(staff_client, email="visitor.one@example.com") == {match.pk}
    assert listed_ids(staff_client, email="VISITOR.ONE@EXAMPLE.COM") == {match.pk}
    assert listed_ids(staff_client, email="visitor.one") == set()


def test_staff_sessions_filter_by_ip_address(staff_client):
    match = session_create("a@example.com", ip="198.51.100.20")
    session_create("b@example.com", ip="198.51.100.2")

    assert listed_ids(staff_client, ip_address="198.51.100.20") == {match.pk}


def test_staff_sessions_filter_by_creation_time(staff_client):
    old = session_create("old@example.com")
    ChatSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    new = session_create("new@example.com")
    cut = (timezone.now() - timedelta(days=1)).isoformat()

    assert listed_ids(staff_client, created_after=cut) == {new.pk}
    assert listed_ids(staff_client, created_before=cut) == {old.pk}


def test_staff_session_detail(staff_client):
    session = session_create()

    response = staff_client.get(f"{SESSIONS}/{session.pk}")

    assert response.status_code == 200
    assert response.json()["id"] == session.pk
    assert response.json()["is_active"] is True


def test_staff_session_detail_unknown_is_not_found(staff_client):
    response = staff_client.get(f"{SESSIONS}/no-such-session")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_staff_session_messages_in_id_order(staff_client):
    session = session_create()
    other = session_create("other@example.com")
    message_create(session, "first")
    message_create(other, "not theirs")
    message_create(session, "second")

    response = staff_client.get(f"{SESSIONS}/{session.pk}/messages")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["content"] for row in rows] == ["first", "re: first", "second", "re: second"]
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    assert rows[1]["in_reply_to"] == rows[0]["id"]


def test_staff_session_end_ends_visitor_session(staff_client, visitor):
    response = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/end")

    assert response.status_code == 200
    assert (response.json()["is_active"], response.json()["end_reason"]) == (False, "staff")
    visitor_client = APIClient(HTTP_USER_AGENT=UA, HTTP_AUTHORIZATION=f"Bearer {visitor.access_token}")
    assert visitor_client.get("/api/v1/auth/session").status_code == 401
    assert visitor_client.post("/api/v1/chat", {"message": "hi"}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("method", "suffix"), [("get", ""), ("get", "/{id}"), ("get", "/{id}/messages"), ("post", "/{id}/end")]
)
def test_staff_sessions_refuse_visitor_token(visitor_client, visitor, method, suffix):
    response = getattr(visitor_client, method)(SESSIONS + suffix.format(id=visitor.session.pk))

    assert response.status_code == 403
    visitor.session.refresh_from_db()
    assert visitor.session.is_active is True


@pytest.mark.parametrize(
    ("method", "suffix"), [("get", ""), ("get", "/{id}"), ("get", "/{id}/messages"), ("post", "/{id}/end")]
)
def test_staff_sessions_refuse_missing_token(api_client, visitor, method, suffix):
    response = getattr(api_client, method)(SESSIONS + suffix.format(id=visitor.session.pk))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_staff_sessions_refuse_refresh_token_as_bearer(api_client, staff_user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user)}")

    response = api_client.get(SESSIONS)

    assert response.status_code == 401


def test_staff_sessions_refuse_non_staff_user_token(api_client, django_user_model):
    user = django_user_model.objects.create_user(username="plain", password=STAFF_PASSWORD)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")

    assert api_client.get(SESSIONS).status_code == 403


def test_staff_sessions_refuse_tampered_token(api_client, staff_user):
    token = str(RefreshToken.for_user(staff_user).access_token)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token[:-2]}xx")

    assert api_client.get(SESSIONS).status_code == 401


@pytest.mark.parametrize("sessions", [3, 30])
def test_staff_sessions_list_query_count_is_constant(staff_client, django_assert_num_queries, sessions):
    for number in range(sessions):
        session = session_create(f"visitor{number}@example.com")
        message_create(session, "hello", flagged=number % 2 == 0)

    with django_assert_num_queries(STAFF_LIST_QUERIES):
        response = staff_client.get(SESSIONS)

    assert response.json()["count"] == sessions


def test_staff_session_actions_ignore_list_filters(staff_client, visitor):
    message_create(visitor.session, "hello")

    messages = staff_client.get(f"{SESSIONS}/{visitor.session.pk}/messages", {"is_active": "false"})
    ended = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/end?is_active=false")

    assert [row["content"] for row in messages.json()["results"]] == ["hello", "re: hello"]
    assert ended.status_code == 200


@pytest.mark.parametrize("address", ["not-an-ip", "1.2.3", "203.0.113.500"])
def test_staff_sessions_filter_rejects_invalid_ip_address(staff_client, address):
    session_create()

    response = staff_client.get(SESSIONS, {"ip_address": address})

    assert response.status_code == 400
    assert set(response.json()) == {"ip_address"}


def test_staff_sessions_filter_by_ipv6_address(staff_client):
    match = session_create("six@example.com", ip="2001:db8::1")
    session_create("four@example.com", ip="198.51.100.2")

    assert listed_ids(staff_client, ip_address="2001:DB8:0::1") == {match.pk}


def test_staff_sessions_filter_by_ipv4_mapped_address_finds_the_ipv4_client(staff_client):
    match = session_create("four@example.com", ip="198.51.100.2")
    session_create("other@example.com", ip="198.51.100.3")

    assert listed_ids(staff_client, ip_address="::ffff:198.51.100.2") == {match.pk}
