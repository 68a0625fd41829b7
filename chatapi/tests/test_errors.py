"""Domain errors: the one handler answers each with its status, detail and headers, in DRF's shape."""

import pytest
from rest_framework.test import APIRequestFactory

from chatapi.errors import BEARER_CHALLENGE, DomainError, LimitExceeded, ServiceUnavailable
from chatapi.exceptions import api_exception_handler


class TokenGone(DomainError):
    status_code = 401
    default_detail = "Gone."
    code = "gone"


def answer_to(exc: Exception):
    return api_exception_handler(exc, {"request": APIRequestFactory().get("/api/v1/anything")})


def test_domain_error_answers_its_status_and_detail_as_json():
    response = answer_to(TokenGone())

    assert (response.status_code, response.data) == (401, {"detail": "Gone."})
    assert response["WWW-Authenticate"] == BEARER_CHALLENGE
    assert not response.has_header("Retry-After")


def test_domain_error_detail_can_be_given_per_raise():
    assert answer_to(ServiceUnavailable("Down for a moment.")).data == {"detail": "Down for a moment."}


@pytest.mark.parametrize(("seconds", "header"), [(59.9, "59"), (0.2, "1"), (-3, "1")])
def test_limit_exceeded_answers_429_with_whole_seconds_to_wait(seconds, header):
    response = answer_to(LimitExceeded(retry_after=seconds))

    assert response.status_code == 429
    assert response["Retry-After"] == header
    assert not response.has_header("WWW-Authenticate")
