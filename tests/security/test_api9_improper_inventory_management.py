"""OWASP API9:2023 Improper Inventory Management: every API endpoint served is documented, and no other.

tests/test_schema.py checks that each contract path is in the schema; here the other direction:
whatever DRF routes, the schema documents, except the schema and its docs page themselves; no old
or future version, browsable API or debug page answers.
"""

import pytest
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator

pytestmark = pytest.mark.django_db

UNDOCUMENTED_BY_DESIGN = {"/api/v1/schema/", "/api/v1/docs/"}


def normalised(path: str) -> str:
    return path.replace("{pk}", "{id}").rstrip("/") + "/"


def test_every_routed_api_operation_is_in_the_schema():
    routed = {(normalised(path), method.lower()) for path, _, method, _ in EndpointEnumerator().get_api_endpoints()}
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {(normalised(path), method) for path, operations in schema["paths"].items() for method in operations}

    undocumented = {(path, method) for path, method in routed - documented if path not in UNDOCUMENTED_BY_DESIGN}
    assert undocumented == set()
    assert documented - routed == set()


@pytest.mark.parametrize(
    "path",
    ["/api/", "/api/v0/auth/session", "/api/v2/auth/session", "/api/v1/", "/api/v1/auth/", "/api/v1/staff/",
     "/api/v1/users", "/admin/doc/", "/__debug__/", "/static/", "/.env", "/api/v1/chat.json"],
)  # fmt: skip
def test_no_other_version_or_hidden_endpoint_answers(api_client, path):
    response = api_client.get(path)

    assert response.status_code in {404, 302}, (path, response.status_code)
    if path.startswith("/api/"):
        assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("path", ["/api/v1/auth/session", "/api/v1/chat/history", "/api/v1/staff/sessions"])
def test_no_browsable_api_even_when_html_is_asked_for(visitor_client, path):
    response = visitor_client.get(path, HTTP_ACCEPT="text/html")

    assert not response["Content-Type"].startswith("text/html")


def test_health_names_the_running_version(api_client, settings):
    assert api_client.get("/health").json()["version"] == settings.VERSION
