"""The OpenAPI 3 schema lists every contract path; the docs page renders it."""

import pytest

pytestmark = pytest.mark.django_db

CONTRACT_PATHS = {
    "/api/v1/auth/email": {"post"},
    "/api/v1/auth/session": {"get", "delete"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/chat": {"post"},
    "/api/v1/chat/history": {"get"},
    "/health": {"get"},
    "/api/v1/staff/token": {"post"},
    "/api/v1/staff/token/refresh": {"post"},
    "/api/v1/staff/sessions": {"get"},
    "/api/v1/staff/sessions/{id}": {"get"},
    "/api/v1/staff/sessions/{id}/messages": {"get"},
    "/api/v1/staff/sessions/{id}/end": {"post"},
}


@pytest.fixture
def schema(api_client) -> dict:
    response = api_client.get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_openapi_3(schema):
    assert schema["openapi"].startswith("3")
    assert schema["info"]["title"]


def test_schema_lists_every_contract_path_and_method(schema):
    documented = {
        path.rstrip("/") or "/": set(operations) & {"get", "post", "delete"}
        for path, operations in schema["paths"].items()
    }

    for path, methods in CONTRACT_PATHS.items():
        assert path in documented, f"{path} missing from the schema"
        assert methods <= documented[path], f"{path} documents {documented[path]}, not {methods}"


def test_schema_documents_chat_bodies(schema):
    chat = schema["paths"][next(p for p in schema["paths"] if p.rstrip("/") == "/api/v1/chat")]["post"]

    assert "200" in chat["responses"]
    assert any(parameter["name"] == "Idempotency-Key" for parameter in chat.get("parameters", []))


def test_schema_served_for_json_accept_header(api_client):
    response = api_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3")


def test_schema_served_as_yaml_by_default(api_client):
    response = api_client.get("/api/v1/schema/")

    assert response.status_code == 200
    assert response.content.decode().startswith("openapi: 3")


def test_docs_page_is_html(api_client):
    response = api_client.get("/api/v1/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()


def test_schema_session_actions_take_no_list_filters(schema):
    messages = schema["paths"][next(p for p in schema["paths"] if p.rstrip("/").endswith("{id}/messages"))]["get"]

    names = {parameter["name"] for parameter in messages["parameters"]}
    assert {"id", "page", "page_size"} <= names
    assert not names & {"email", "is_active", "flagged", "expired", "ip_address"}


def test_schema_documents_each_history_item_and_its_partial_flag(schema):
    history = schema["paths"][next(p for p in schema["paths"] if p.rstrip("/") == "/api/v1/chat/history")]["get"]
    page = history["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    item = schema["components"]["schemas"][page]["properties"]["messages"]["items"]["$ref"].rsplit("/", 1)[-1]
    exchange = schema["components"]["schemas"][item]

    assert set(exchange["required"]) == {"id", "message", "response", "timestamp", "flagged", "partial"}
    assert exchange["properties"]["partial"]["type"] == "boolean"


# The rate-limited operations of the contract: sign-up, chat (plain and streamed) and the staff token.
RATE_LIMITED = {
    ("post", "/api/v1/auth/email"),
    ("post", "/api/v1/chat"),
    ("post", "/api/v1/chat/stream"),
    ("post", "/api/v1/staff/token"),
    ("post", "/api/v1/staff/token/refresh"),
}


def test_schema_lists_429_on_exactly_the_rate_limited_operations(schema):
    # The 429s come from the throttles the views declare: a limit dropped from a view, or a 429
    # documented where nothing limits, shows here.
    with_429 = {
        (method, path.rstrip("/"))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "429" in operation.get("responses", {})
    }

    assert with_429 == RATE_LIMITED
    chat = schema["paths"][next(p for p in schema["paths"] if p.rstrip("/") == "/api/v1/chat")]["post"]
    assert "Retry-After" in chat["responses"]["429"]["headers"]
