"""OWASP API5:2023 Broken Function Level Authorization: staff functions are for staff tokens only.

staff_app/tests/test_api.py (test_staff_sessions_refuse_visitor_token, ..._missing_token,
..._non_staff_user_token) covers the four staff endpoints by name. Here the list comes from the
live schema, so an endpoint added later is held to the same rule without anyone listing it.
"""

from functools import cache

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from conftest import BROWSER_UA

pytestmark = pytest.mark.django_db


@cache
def staff_operations() -> list[tuple[str, str]]:
    """The staff operations the served schema documents (the same generator serves /api/v1/schema)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/staff/") and not path.startswith("/api/v1/staff/token")
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def call_each(client, operations, session_id: str) -> dict[str, int]:
    """Each operation once, with a body a staff reply accepts; ending the session comes last."""
    ordered = sorted(operations, key=lambda operation: operation[1].rstrip("/").endswith("/end"))
    return {
        f"{method.upper()} {path}": getattr(client, method)(
            path.replace("{id}", session_id), {"message": "A staff check"} if method == "post" else None, format="json"
        ).status_code
        for method, path in ordered
    }


def test_schema_lists_the_staff_operations():
    assert len(staff_operations()) >= 4


def test_every_staff_operation_refuses_a_visitor_token_with_403(api_client, visitor_client, visitor):
    statuses = call_each(visitor_client, staff_operations(), visitor.session.pk)

    assert set(statuses.values()) == {403}, statuses
    visitor.session.refresh_from_db()
    assert visitor.session.is_active


def test_every_staff_operation_refuses_no_token_with_401(api_client, visitor):
    statuses = call_each(APIClient(HTTP_USER_AGENT=BROWSER_UA), staff_operations(), visitor.session.pk)

    assert set(statuses.values()) == {401}, statuses


def test_every_staff_operation_refuses_a_non_staff_user_token_with_403(api_client, visitor, django_user_model):
    user = django_user_model.objects.create_user(username="plain", password="a-plain-password-12345")
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")

    statuses = call_each(client, staff_operations(), visitor.session.pk)

    assert set(statuses.values()) == {403}, statuses


def test_every_staff_operation_admits_a_staff_token(api_client, staff_client, visitor):
    statuses = call_each(staff_client, staff_operations(), visitor.session.pk)

    assert set(statuses.values()) == {200, 201}, statuses
    assert statuses["POST /api/v1/staff/sessions/{id}/messages/"] == 201


def test_method_override_headers_do_not_change_the_function(visitor_client, visitor):
    response = visitor_client.get(
        "/api/v1/auth/session", HTTP_X_HTTP_METHOD_OVERRIDE="DELETE", HTTP_X_METHOD_OVERRIDE="DELETE"
    )

    assert response.status_code == 200
    visitor.session.refresh_from_db()
    assert visitor.session.is_active


def test_admin_does_not_accept_bearer_tokens(client, visitor, staff_user):
    staff_token = RefreshToken.for_user(staff_user).access_token

    for token in (visitor.access_token, staff_token):
        response = client.get("/admin/sessions_app/chatsession/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_admin_refuses_a_non_staff_user(client, django_user_model):
    django_user_model.objects.create_user(username="plain", password="a-plain-password-12345")

    client.post("/admin/login/", {"username": "plain", "password": "a-plain-password-12345"})

    assert client.get("/admin/sessions_app/chatsession/").status_code == 302
