"""Rate limits: 429 with Retry-After past the limit, and fail-open when the cache is down."""

import logging

import pytest
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from chatapi.errors import LimitExceeded
from chatapi.ratelimit import LimitUnavailable, client_ip_key, rate_limit_check, rate_limit_count, rate_limit_enforce


@pytest.fixture
def request_from_ip():
    request = APIRequestFactory().post("/api/v1/auth/email")
    request.client_ip = "198.51.100.4"
    return request


def test_rate_limit_enforce_raises_with_seconds_left_in_window(request_from_ip):
    for _ in range(3):
        rate_limit_enforce(request_from_ip, group="test", key=client_ip_key, rate="3/m")

    with pytest.raises(LimitExceeded) as raised:
        rate_limit_enforce(request_from_ip, group="test", key=client_ip_key, rate="3/m")

    assert raised.value.status_code == 429
    assert 1 <= raised.value.retry_after <= 60


def test_rate_limit_enforce_counts_each_key_apart(request_from_ip):
    rate_limit_enforce(request_from_ip, group="test", key=client_ip_key, rate="1/m")
    request_from_ip.client_ip = "198.51.100.5"

    rate_limit_enforce(request_from_ip, group="test", key=client_ip_key, rate="1/m")


def test_rate_limit_enforce_does_nothing_when_disabled(settings, request_from_ip):
    settings.RATE_LIMITING_ENABLED = False

    for _ in range(5):
        rate_limit_enforce(request_from_ip, group="test", key=client_ip_key, rate="1/m")


def test_rate_limit_enforce_fails_open_when_cache_is_down(monkeypatch, request_from_ip, caplog):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", unreachable)

    with caplog.at_level(logging.ERROR, logger="chatapi.ratelimit"):
        for _ in range(3):
            rate_limit_enforce(request_from_ip, group="test", key=client_ip_key, rate="1/m")

    assert "cache unavailable: ConnectionError" in caplog.text


def test_rate_limit_check_counts_nothing_and_refuses_once_the_count_is_used_up(request_from_ip):
    for _ in range(5):
        rate_limit_check(request_from_ip, group="failures", key=client_ip_key, rate="2/m")  # nothing counted yet
    rate_limit_count(request_from_ip, group="failures", key=client_ip_key, rate="2/m")
    rate_limit_check(request_from_ip, group="failures", key=client_ip_key, rate="2/m")
    rate_limit_count(request_from_ip, group="failures", key=client_ip_key, rate="2/m")

    with pytest.raises(LimitExceeded) as raised:
        rate_limit_check(request_from_ip, group="failures", key=client_ip_key, rate="2/m")

    assert 1 <= raised.value.retry_after <= 60


def test_rate_limit_check_and_count_do_nothing_when_disabled(settings, request_from_ip):
    settings.RATE_LIMITING_ENABLED = False

    for _ in range(3):
        rate_limit_count(request_from_ip, group="failures", key=client_ip_key, rate="1/m")
        rate_limit_check(request_from_ip, group="failures", key=client_ip_key, rate="1/m")


def test_rate_limit_count_never_raises_when_cache_is_down(monkeypatch, request_from_ip, caplog):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", unreachable)

    with caplog.at_level(logging.ERROR, logger="chatapi.ratelimit"):
        rate_limit_count(request_from_ip, group="admin-login-client", key=client_ip_key, rate="1/m")
        with pytest.raises(LimitUnavailable):  # the check applies the group's fail mode: closed
            rate_limit_check(request_from_ip, group="admin-login-client", key=client_ip_key, rate="1/m")

    assert "rate limit count lost, cache unavailable: ConnectionError" in caplog.text
