"""Django-level error handlers: JSON on API paths, Django's own pages in the admin."""

import json

from django.test import RequestFactory

from chatapi import exceptions


def _body(response) -> dict:
    return json.loads(response.content)


def test_json_not_found_answers_json_outside_admin():
    response = exceptions.json_not_found(RequestFactory().get("/api/v1/missing"))

    assert response.status_code == 404
    assert _body(response) == {"detail": exceptions.NOT_FOUND}


def test_json_not_found_keeps_html_page_in_admin(db):
    response = exceptions.json_not_found(RequestFactory().get("/admin/missing"), Exception("missing"))

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_json_server_error_answers_generic_json():
    response = exceptions.json_server_error(RequestFactory().get("/api/v1/chat"))

    assert response.status_code == 500
    assert _body(response) == {"detail": exceptions.SERVER_ERROR}


def test_json_server_error_keeps_html_page_in_admin():
    response = exceptions.json_server_error(RequestFactory().get("/admin/"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_json_bad_request_and_permission_denied_answer_json():
    request = RequestFactory().get("/api/v1/chat")

    assert exceptions.json_bad_request(request).status_code == 400
    assert _body(exceptions.json_permission_denied(request))["detail"]
    assert exceptions.json_permission_denied(request).status_code == 403


def test_api_exception_handler_maps_ratelimited_to_429_with_retry_after():
    from django_ratelimit.exceptions import Ratelimited

    response = exceptions.api_exception_handler(Ratelimited(), {})

    assert response.status_code == 429
    assert response["Retry-After"] == "60"


def test_json_permission_denied_keeps_html_page_in_admin():
    response = exceptions.json_permission_denied(RequestFactory().get("/admin/"), Exception("no"))

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
