"""OWASP API1:2023 Broken Object Level Authorization: no token reaches another session's data.

Visitor paths take no object id at all: the session is the one the token names (its `jti`), and
every read goes through a selector scoped to it. Whatever id a visitor sends, in the path, the
query or the body, it reads and changes only its own session. Staff paths take ids, and only staff
tokens reach them. Already covered elsewhere: chat_app/tests/test_api.py
(test_chat_history_shows_only_callers_session, test_chat_post_idempotency_key_is_per_session).
"""

import pytest
from rest_framework.test import APIClient

from chat_app.models import ChatMessage
from conftest import BROWSER_UA
from sessions_app.models import ChatSession
from tests.security.conftest import OTHER_EMAIL, body_of

pytestmark = pytest.mark.django_db


def other_ids(other) -> dict:
    pk = other.session.pk
    return {"session_id": pk, "id": pk, "session": pk, "jti": pk, "pk": pk}


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/auth/session"), ("get", "/api/v1/chat/history"), ("post", "/api/v1/chat"),
     ("post", "/api/v1/chat/stream")],
)  # fmt: skip
def test_visitor_paths_ignore_any_other_session_id(visitor_client, visitor, other_visitor, fake_model, method, path):
    ids = other_ids(other_visitor)
    query = "&".join(f"{name}={value}" for name, value in ids.items())

    data = {"message": "mine", **ids} if method == "post" else None
    response = getattr(visitor_client, method)(f"{path}?{query}", data, format="json")

    body = body_of(response)
    assert response.status_code == 200, body
    assert other_visitor.session.pk.encode() not in body
    assert b"other's" not in body and OTHER_EMAIL.encode() not in body
    assert ChatMessage.objects.filter(session=other_visitor.session).count() == 2  # untouched
    assert not ChatMessage.objects.filter(session=other_visitor.session, content="mine").exists()


def test_visitor_history_lists_only_own_exchanges_with_other_session_in_query(visitor_client, other_visitor):
    response = visitor_client.get(f"/api/v1/chat/history?session_id={other_visitor.session.pk}&limit=200")

    assert response.json()["messages"] == []


def test_visitor_logout_with_other_id_ends_only_own_session(visitor_client, visitor, other_visitor):
    response = visitor_client.post(
        f"/api/v1/auth/logout?session_id={other_visitor.session.pk}", other_ids(other_visitor), format="json"
    )

    assert response.status_code == 204
    other_visitor.session.refresh_from_db()
    visitor.session.refresh_from_db()
    assert other_visitor.session.is_active and not visitor.session.is_active
    assert other_visitor.client.get("/api/v1/auth/session").status_code == 200


def test_visitor_delete_with_other_id_erases_only_own_session(visitor_client, visitor, other_visitor):
    response = visitor_client.delete(
        f"/api/v1/auth/session?session_id={other_visitor.session.pk}", other_ids(other_visitor), format="json"
    )

    assert response.status_code == 204
    assert not ChatSession.objects.filter(pk=visitor.session.pk).exists()
    assert ChatMessage.objects.filter(session=other_visitor.session).count() == 2
    assert (
        other_visitor.client.get("/api/v1/chat/history").json()["messages"][0]["message"] == "other's secret question"
    )


def test_visitor_idempotency_key_of_other_session_replays_nothing(visitor_client, other_visitor, fake_model):
    ChatMessage.objects.filter(session=other_visitor.session, kind="user").update(idempotency_key="shared-key")

    body = visitor_client.post(
        "/api/v1/chat", {"message": "my own question"}, format="json", HTTP_IDEMPOTENCY_KEY="shared-key"
    ).json()

    assert body["response"] == fake_model.reply
    assert ChatMessage.objects.get(pk=body["message_id"]).content == "my own question"


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("get", "/messages"), ("post", "/end")])
def test_visitor_token_cannot_reach_another_session_through_staff_paths(visitor_client, other_visitor, method, suffix):
    response = getattr(visitor_client, method)(f"/api/v1/staff/sessions/{other_visitor.session.pk}{suffix}")

    assert response.status_code == 403
    assert b"other's" not in response.content and OTHER_EMAIL.encode() not in response.content
    other_visitor.session.refresh_from_db()
    assert other_visitor.session.is_active


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("get", "/messages"), ("post", "/end")])
def test_no_token_cannot_reach_a_session_through_staff_paths(other_visitor, method, suffix):
    response = getattr(APIClient(HTTP_USER_AGENT=BROWSER_UA), method)(
        f"/api/v1/staff/sessions/{other_visitor.session.pk}{suffix}"
    )

    assert response.status_code == 401
    other_visitor.session.refresh_from_db()
    assert other_visitor.session.is_active


@pytest.mark.parametrize("unknown", ["x" * 32, "../../etc/passwd", "' OR '1'='1", "%00", "0"])
def test_staff_paths_with_unknown_or_hostile_ids_are_not_found(staff_client, other_visitor, unknown):
    for suffix in ("", "/messages"):
        response = staff_client.get(f"/api/v1/staff/sessions/{unknown}{suffix}")
        assert response.status_code in {404, 400}  # 400: a NUL, which PostgreSQL cannot compare
        assert set(response.json()) == {"detail"}


def test_staff_reads_the_session_the_id_names_and_no_other(staff_client, visitor, other_visitor):
    body = staff_client.get(f"/api/v1/staff/sessions/{other_visitor.session.pk}/messages").json()

    assert [message["content"] for message in body["results"]] == ["other's secret question", "other's answer"]
