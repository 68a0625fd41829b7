"""Request guards in chatapi.middleware: client IP behind proxies, request ids, body size."""

import pytest

from chatapi.middleware import BODY_TOO_LARGE, client_ip_from
from chatapi.ratelimit import client_ip_key
from sessions_app.models import ChatSession

pytestmark = pytest.mark.django_db

START = "/api/v1/auth/email"
REMOTE = "10.0.0.2"


@pytest.mark.parametrize(
    ("forwarded", "num_proxies", "expected"),
    [
        (None, 0, REMOTE),
        ("198.51.100.1", 0, REMOTE),
        ("198.51.100.1", 1, "198.51.100.1"),
        ("203.0.113.9, 198.51.100.1", 1, "198.51.100.1"),
        ("203.0.113.9, 198.51.100.1", 2, "203.0.113.9"),
        ("1.2.3.4, 5.6.7.8, 203.0.113.9, 198.51.100.1", 2, "203.0.113.9"),
        (" 203.0.113.9 ,198.51.100.1 ", 2, "203.0.113.9"),
        ("2001:db8::7", 1, "2001:db8::7"),
        ("198.51.100.1", 2, REMOTE),
        ("", 1, REMOTE),
        (None, 1, REMOTE),
        ("not-an-ip", 1, REMOTE),
        ("198.51.100.1, 999.1.1.1", 1, REMOTE),
        ("198.51.100.1, ,", 1, "198.51.100.1"),
        ("::ffff:198.51.100.1", 1, "198.51.100.1"),
        ("::FFFF:C633:6401", 1, "198.51.100.1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0007", 1, "2001:db8::7"),
        ("fe80::7%eth0", 1, "fe80::7"),
        ("203.0.113.9, ::ffff:198.51.100.1", 2, "203.0.113.9"),
    ],
)
def test_client_ip_from_trusts_only_counted_proxies(forwarded, num_proxies, expected):
    meta = {"REMOTE_ADDR": REMOTE}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded

    assert client_ip_from(meta, num_proxies) == expected


@pytest.mark.parametrize("spoofed", ["6.6.6.6", "6.6.6.6, 7.7.7.7", "garbage, 6.6.6.6"])
def test_client_ip_from_ignores_spoofed_left_entries(spoofed):
    meta = {"REMOTE_ADDR": REMOTE, "HTTP_X_FORWARDED_FOR": f"{spoofed}, 198.51.100.1"}

    assert client_ip_from(meta, 1) == "198.51.100.1"


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("::ffff:203.0.113.9", "203.0.113.9"),  # an IPv4 client of a dual-stack ([::]) listener
        ("2001:db8:0:0::1", "2001:db8::1"),
        ("fe80::1%2", "fe80::1"),
        ("203.0.113.9", "203.0.113.9"),
        ("not-an-address", "0.0.0.0"),  # noqa: S104 - compared, never bound
        ("", "0.0.0.0"),  # noqa: S104 - a unix socket's peer has no address
    ],
)
def test_client_ip_from_normalizes_the_peer_address(remote, expected):
    assert client_ip_from({"REMOTE_ADDR": remote}, 0) == expected


@pytest.mark.parametrize(
    ("client_ip", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
    ],
)
def test_client_ip_key_is_the_address_for_ipv4_and_its_slash_64_for_ipv6(rf, client_ip, expected):
    request = rf.get("/")
    request.client_ip = client_ip

    assert client_ip_key("any-group", request) == expected


def test_client_ip_from_without_remote_addr_has_a_placeholder():
    assert client_ip_from({}, 0) == "0.0.0.0"  # noqa: S104 - compared, never bound


def test_client_ip_session_stores_forwarded_address(api_client, settings):
    settings.NUM_PROXIES = 1

    response = api_client.post(
        START, {"email": "a@b.co"}, format="json", REMOTE_ADDR=REMOTE,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.20",
    )  # fmt: skip

    assert response.status_code == 201
    assert ChatSession.objects.get(pk=response.json()["session_id"]).ip_address == "198.51.100.20"


def test_client_ip_forwarded_ignored_without_proxies(api_client, settings):
    settings.NUM_PROXIES = 0

    response = api_client.post(
        START, {"email": "a@b.co"}, format="json", REMOTE_ADDR=REMOTE, HTTP_X_FORWARDED_FOR="198.51.100.20"
    )

    assert ChatSession.objects.get(pk=response.json()["session_id"]).ip_address == REMOTE


def test_client_ip_spoofing_cannot_escape_auth_rate_limit(api_client, settings):
    settings.NUM_PROXIES = 1
    settings.AUTH_RATE_LIMIT = "3/h"  # an hour window: no boundary falls inside the test

    statuses = [
        api_client.post(
            START, {"email": "a@b.co"}, format="json", REMOTE_ADDR=REMOTE,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.20",
        ).status_code
        for n in range(5)
    ]  # fmt: skip

    assert statuses == [201, 201, 201, 429, 429]


def test_request_id_generated_when_absent(api_client):
    first = api_client.get("/health")["X-Request-ID"]
    second = api_client.get("/health")["X-Request-ID"]

    assert first
    assert len(first) >= 16
    assert first != second


def test_request_id_echoed_when_sent(api_client):
    response = api_client.get("/health", HTTP_X_REQUEST_ID="trace-abc.123:4")

    assert response["X-Request-ID"] == "trace-abc.123:4"


@pytest.mark.parametrize("unsafe", ["x" * 300, "has space", "line\u2028break", "<script>", "a;b"])
def test_request_id_replaced_when_unsafe(api_client, unsafe):
    response = api_client.get("/health", HTTP_X_REQUEST_ID=unsafe)

    replaced = response["X-Request-ID"]
    assert replaced
    assert replaced != unsafe
    assert len(replaced) <= 128
    assert " " not in replaced


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/api/v1/auth/session", 401), ("get", "/api/v1/no-such-thing", 404), ("get", START, 405)],
)
def test_request_id_present_on_errors(api_client, method, path, status):
    response = getattr(api_client, method)(path, HTTP_X_REQUEST_ID="err-check-1")

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Request-ID"] == "err-check-1"


def test_request_body_over_limit_is_413_json(api_client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 100

    response = api_client.post(START, {"email": "a@b.co", "padding": "p" * 200}, format="json")

    assert response.status_code == 413
    assert response.json() == {"detail": BODY_TOO_LARGE}
    assert response["X-Request-ID"]
    assert not ChatSession.objects.exists()


def test_request_body_at_limit_is_accepted(api_client, settings):
    body = '{"email": "a@b.co"}'
    settings.MAX_REQUEST_BODY_BYTES = len(body)

    assert api_client.post(START, body, content_type="application/json").status_code == 201


def test_request_body_bad_content_length_is_400_json(api_client):
    response = api_client.post(START, "{}", content_type="application/json", CONTENT_LENGTH="lots")

    assert response.status_code == 400
    assert "detail" in response.json()
