"""Every error on an API path is DRF-shaped JSON with a request id; never an HTML page or a trace."""

import logging

import pytest
from django.db import OperationalError

from chat_app import api
from chatapi.errors import SERVICE_UNAVAILABLE
from chatapi.exceptions import NOT_FOUND, SERVER_ERROR

pytestmark = pytest.mark.django_db

CHAT = "/api/v1/chat"
HISTORY = "/api/v1/chat/history"


def assert_json_detail(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Request-ID"]
    body = response.json()
    assert set(body) == {"detail"}
    assert "Traceback" not in body["detail"]
    return body


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/nope/", "/api/v1/chat/nope", "/nope"])
def test_unknown_path_is_json_not_found(api_client, path):
    body = assert_json_detail(api_client.get(path), 404)

    assert body == {"detail": NOT_FOUND}


def test_wrong_method_is_json_method_not_allowed(visitor_client):
    body = assert_json_detail(visitor_client.get(CHAT), 405)

    assert "GET" in body["detail"]


@pytest.mark.parametrize(("method", "path"), [("put", HISTORY), ("delete", CHAT), ("post", "/health")])
def test_other_wrong_methods_are_json_method_not_allowed(visitor_client, method, path):
    assert_json_detail(getattr(visitor_client, method)(path), 405)


def test_unsupported_content_type_is_json_415(visitor_client, fake_model):
    response = visitor_client.post(CHAT, data="message=hello", content_type="application/x-www-form-urlencoded")

    assert_json_detail(response, 415)
    assert fake_model.calls == []


@pytest.mark.parametrize("raw", ['{"message": ', "not json", b"\xff\xfe\x00"], ids=["truncated", "text", "bytes"])
def test_broken_json_is_json_bad_request(visitor_client, fake_model, raw):
    response = visitor_client.post(CHAT, data=raw, content_type="application/json")

    body = assert_json_detail(response, 400)
    assert "JSON parse error" in body["detail"]
    assert fake_model.calls == []


def test_json_array_body_is_json_bad_request(visitor_client, fake_model):
    response = visitor_client.post(CHAT, data='["hello"]', content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")


def test_oversized_body_is_json_413(visitor_client, settings):
    response = visitor_client.post(CHAT, {"message": "x" * (settings.MAX_REQUEST_BODY_BYTES + 1)}, format="json")

    assert_json_detail(response, 413)


def test_server_error_is_generic_json_and_logged_with_request_id(visitor_client, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "history_for_session", broken)

    with caplog.at_level(logging.ERROR):
        response = visitor_client.get(HISTORY, HTTP_X_REQUEST_ID="req-boom-1")

    body = assert_json_detail(response, 500)
    assert body == {"detail": SERVER_ERROR}
    assert "secret internals" not in response.content.decode()
    assert response["X-Request-ID"] == "req-boom-1"
    # The log filter turns the exception into its (redacted) text, which every formatter writes.
    logged = [record for record in caplog.records if record.exc_text and record.name == "chatapi.exceptions"]
    assert len(logged) == 1
    assert "RuntimeError: secret internals" in logged[0].exc_text
    assert logged[0].request_id == "req-boom-1"


def test_database_outage_is_json_503(visitor_client, monkeypatch, caplog):
    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(api, "history_for_session", unreachable)

    with caplog.at_level(logging.ERROR):
        response = visitor_client.get(HISTORY, HTTP_X_REQUEST_ID="req-db-1")

    assert assert_json_detail(response, 503) == {"detail": SERVICE_UNAVAILABLE}
    assert "connection refused" not in response.content.decode()
    assert any(record.request_id == "req-db-1" for record in caplog.records if record.name == "chatapi.exceptions")


def test_database_outage_during_authentication_is_json_503(visitor_client, monkeypatch):
    from sessions_app import authentication

    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(authentication, "chat_session_live_get", unreachable)

    assert_json_detail(visitor_client.get(HISTORY), 503)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/health"), ("get", HISTORY), ("post", CHAT), ("get", "/api/v1/nope"), ("get", "/api/v1/schema")],
)
def test_every_response_echoes_request_id(visitor_client, fake_model, method, path):
    response = getattr(visitor_client, method)(path, HTTP_X_REQUEST_ID="client-id-42")

    assert response["X-Request-ID"] == "client-id-42"


def test_response_generates_request_id_when_none_sent(api_client):
    first = api_client.get("/api/v1/nope")
    second = api_client.get("/api/v1/nope")

    assert first["X-Request-ID"]
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_unsafe_request_id_is_replaced(api_client):
    response = api_client.get("/health", HTTP_X_REQUEST_ID="bad id\r\nwith spaces")

    assert response["X-Request-ID"]
    assert " " not in response["X-Request-ID"]
