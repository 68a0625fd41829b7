"""The admin log-in: ADMIN_LOGIN_RATE_LIMIT failed attempts per client and per username, then 429.

Failures are counted per client IP (across usernames) and per (username, client IP); successes
never count, and failures from one client never lock out a staff member signing in from another.
"""

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
STAFF_PASSWORD = "a-strong-staff-password-1"  # conftest's staff_user
CLIENT_A, CLIENT_B = "203.0.113.10", "198.51.100.20"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "3/h"  # an hour window: no window end falls inside a test


def log_in(address: str, username: str = "staff", password: str = STAFF_PASSWORD, **headers):
    """One log-in from a fresh browser at `address`: the response, and whether it signed in."""
    browser = Client(REMOTE_ADDR=address, **headers)
    response = browser.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return response


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def refused(response) -> bool:
    return response.status_code == 429


def test_admin_login_refuses_a_client_after_its_failed_attempts(staff_user):
    failures = [log_in(CLIENT_A, password="wrong-password").status_code for _ in range(3)]

    response = log_in(CLIENT_A)  # even the right password: the client has used up its attempts

    assert failures == [200, 200, 200]  # the admin's form, "Please enter the correct username and password"
    assert refused(response)
    assert int(response["Retry-After"]) >= 1
    assert b'id="login-form"' in response.content  # the admin's own page, with the reason on it
    assert b"Too many failed log-ins" in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_admin_login_counts_a_client_across_usernames(staff_user):
    for username in ("alice", "bob", "carol"):
        assert log_in(CLIENT_A, username=username, password="wrong-password").status_code == 200

    assert refused(log_in(CLIENT_A, username="dave", password="wrong-password"))
    assert refused(log_in(CLIENT_A))


def test_admin_login_from_another_client_is_not_locked_out_by_someone_elses_failures(staff_user):
    for _ in range(3):
        log_in(CLIENT_A, password="wrong-password")
    assert refused(log_in(CLIENT_A))

    assert signed_in(log_in(CLIENT_B))
    assert log_in(CLIENT_B, password="wrong-password").status_code == 200  # B's own first failure: the form


def test_admin_login_successes_never_count(staff_user):
    assert all(signed_in(log_in(CLIENT_A)) for _ in range(6))


def test_admin_login_failures_below_the_limit_then_success(staff_user):
    for _ in range(2):
        log_in(CLIENT_A, password="wrong-password")

    assert signed_in(log_in(CLIENT_A))


def test_admin_login_refuses_without_checking_the_password(staff_user, monkeypatch):
    for _ in range(3):
        log_in(CLIENT_A, password="wrong-password")
    checked = []
    monkeypatch.setattr("django.contrib.auth.forms.authenticate", lambda *args, **kwargs: checked.append(1))

    assert refused(log_in(CLIENT_A))
    assert checked == []  # a refused guess learns nothing, right or wrong


def test_admin_login_counts_a_refused_non_staff_account(django_user_model):
    django_user_model.objects.create_user(username="plain", password=STAFF_PASSWORD)

    statuses = [log_in(CLIENT_A, username="plain").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_admin_login_ipv6_client_counts_per_slash_64(staff_user):
    for n in range(3):
        log_in(f"2001:db8:5:6::{n + 1}", password="wrong-password")

    assert refused(log_in("2001:db8:5:6:ffff::1"))
    assert signed_in(log_in("2001:db8:5:7::1"))


def test_admin_login_client_behind_proxies_is_the_forwarded_one(settings, staff_user):
    settings.NUM_PROXIES = 1
    proxy = "10.0.0.2"
    for n in range(3):  # a spoofed left entry moves nothing
        log_in(proxy, password="wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, ::ffff:{CLIENT_A}")

    assert refused(log_in(proxy, HTTP_X_FORWARDED_FOR=CLIENT_A))
    assert signed_in(log_in(proxy, HTTP_X_FORWARDED_FOR=CLIENT_B))


def test_admin_login_not_limited_when_rate_limiting_is_off(settings, staff_user):
    settings.RATE_LIMITING_ENABLED = False
    for _ in range(5):
        log_in(CLIENT_A, password="wrong-password")

    assert signed_in(log_in(CLIENT_A))


def test_admin_login_fails_closed_when_the_cache_is_down(staff_user, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", unreachable)

    response = log_in(CLIENT_A)

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert b'id="login-form"' in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_admin_login_page_itself_is_never_refused(staff_user):
    for _ in range(3):
        log_in(CLIENT_A, password="wrong-password")

    assert Client(REMOTE_ADDR=CLIENT_A).get(LOGIN).status_code == 200
