"""The client address behind 0, 1 or 2 proxies, and why X-Forwarded-For cannot move a rate limit.

sessions_app/tests/test_middleware.py covers the parsing (client_ip_from, 0/1/2 proxies, spoofed
left entries, garbage) and the auth limit behind one proxy. Here: both limits that key on the
address (session start and chat), with 0, 1 and 2 proxies, over the API.
"""

import pytest
from rest_framework.test import APIClient

from conftest import BROWSER_UA
from sessions_app.models import ChatSession

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"  # REMOTE_ADDR: the proxy nearest the server, or the client itself without one


def forwarded(num_proxies: int, client: str, spoofed: str) -> dict:
    """Headers as they reach the server: the client's own claim, then what each proxy appended."""
    if num_proxies == 0:
        return {"REMOTE_ADDR": client, "HTTP_X_FORWARDED_FOR": spoofed}
    hops = [spoofed, client] + ["172.16.0.9"] * (num_proxies - 1)  # the outer proxy appends the client
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": ", ".join(hops)}


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
def test_session_start_records_the_real_client_address(settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    response = client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json",
                           **forwarded(num_proxies, "203.0.113.50", "6.6.6.6"))  # fmt: skip

    assert ChatSession.objects.get(pk=response.json()["session_id"]).ip_address == "203.0.113.50"


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
def test_spoofed_forwarded_for_cannot_escape_the_session_start_limit(settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    settings.AUTH_RATE_LIMIT = "3/h"
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    statuses = [
        client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json",
                    **forwarded(num_proxies, "203.0.113.51", f"192.0.2.{n}")).status_code
        for n in range(5)
    ]  # fmt: skip

    assert statuses == [201, 201, 201, 429, 429]


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
def test_spoofed_forwarded_for_cannot_escape_the_chat_limit(settings, fake_model, num_proxies):
    settings.NUM_PROXIES = num_proxies
    settings.CHAT_RATE_LIMIT = "2/h"
    statuses = []
    for n in range(4):  # a new session each time, so only the per-address limit can refuse
        client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
        headers = forwarded(num_proxies, "203.0.113.52", f"198.18.0.{n}")
        token = client.post("/api/v1/auth/email", {"email": f"{n}@b.co"}, format="json", **headers)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")
        statuses.append(client.post("/api/v1/chat", {"message": "hi"}, format="json", **headers).status_code)

    assert statuses == [200, 200, 429, 429]


@pytest.mark.parametrize("num_proxies", [1, 2])
def test_two_clients_behind_the_same_proxies_have_their_own_limits(settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    settings.AUTH_RATE_LIMIT = "1/h"
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    first = client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json",
                        **forwarded(num_proxies, "203.0.113.60", "1.1.1.1"))  # fmt: skip
    second = client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json",
                         **forwarded(num_proxies, "203.0.113.61", "1.1.1.1"))  # fmt: skip

    assert (first.status_code, second.status_code) == (201, 201)


def test_fewer_forwarded_entries_than_proxies_falls_back_to_the_peer(settings):
    settings.NUM_PROXIES = 2
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    response = client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json",
                           REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.70")  # fmt: skip

    assert ChatSession.objects.get(pk=response.json()["session_id"]).ip_address == PROXY


# --- IPv6 clients count per /64, an IPv4-mapped address as its IPv4 client ---------------------

NETWORK = "2001:db8:aa:bb"  # one subscriber's /64
MAPPED = "::ffff:203.0.113.80"


def sign_up(client: APIClient, num_proxies: int, address: str):
    return client.post("/api/v1/auth/email", {"email": "a@b.co"}, format="json",
                       **forwarded(num_proxies, address, "192.0.2.1"))  # fmt: skip


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
def test_ipv6_clients_in_one_slash_64_share_the_session_start_limit(settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    settings.AUTH_RATE_LIMIT = "5/m"
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    statuses = [sign_up(client, num_proxies, f"{NETWORK}:{n}::{n + 1}").status_code for n in range(6)]
    next_network = sign_up(client, num_proxies, "2001:db8:aa:bc::1").status_code

    assert statuses == [201] * 5 + [429]
    assert next_network == 201


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
def test_ipv4_mapped_address_is_the_same_client_as_its_ipv4_address(settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    settings.AUTH_RATE_LIMIT = "3/h"
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    responses = [sign_up(client, num_proxies, address) for address in (MAPPED, "203.0.113.80", MAPPED, "203.0.113.80")]

    assert [response.status_code for response in responses] == [201, 201, 201, 429]
    stored = ChatSession.objects.filter(pk__in=[r.json()["session_id"] for r in responses[:3]])
    assert set(stored.values_list("ip_address", flat=True)) == {"203.0.113.80"}
    # Other IPv4 clients are not lumped together as one mapped IPv6 /64 (::ffff:0:0/64 holds them all).
    assert sign_up(client, num_proxies, "::ffff:203.0.113.81").status_code == 201


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
def test_session_start_stores_the_whole_ipv6_address_not_its_network(settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)

    response = sign_up(client, num_proxies, "2001:0DB8:00AA:00BB:0000:0000:0000:0042")

    assert ChatSession.objects.get(pk=response.json()["session_id"]).ip_address == "2001:db8:aa:bb::42"


def test_ipv6_clients_in_one_slash_64_share_the_chat_limit(settings, fake_model):
    settings.NUM_PROXIES = 1
    settings.CHAT_RATE_LIMIT = "2/h"
    statuses = []
    for n in range(3):  # a new session and a new address in the /64 each time
        client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
        headers = forwarded(1, f"{NETWORK}::{n + 1}", "192.0.2.1")
        token = client.post("/api/v1/auth/email", {"email": f"{n}@b.co"}, format="json", **headers)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")
        statuses.append(client.post("/api/v1/chat", {"message": "hi"}, format="json", **headers).status_code)

    assert statuses == [200, 200, 429]


def test_ipv6_clients_in_one_slash_64_share_the_staff_token_limit(settings):
    settings.NUM_PROXIES = 1
    settings.AUTH_RATE_LIMIT = "2/h"
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    wrong = {"username": "staff", "password": "wrong-password"}

    statuses = [
        client.post(
            "/api/v1/staff/token", wrong, format="json", **forwarded(1, f"{NETWORK}::{n + 1}", "192.0.2.1")
        ).status_code
        for n in range(3)
    ]

    assert statuses == [401, 401, 429]
