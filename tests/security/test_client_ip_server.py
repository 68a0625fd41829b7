"""The client address as the production server sees it: gunicorn on a dual-stack `[::]` listener.

An IPv4 peer of such a listener arrives as `::ffff:a.b.c.d`; it must be stored and limited as the
IPv4 client it is. Behind a proxy (NUM_PROXIES=1), X-Forwarded-For names IPv6 and mapped clients:
each /64 is one client for the limits, and the session keeps the whole address.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from sessions_app.models import ChatSession
from tests.multiserver.servers import BROWSER_UA, ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_LIMIT = 5


def free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(django_db_setup):
    """gunicorn, as the README starts it, bound to every IPv4 and IPv6 address at once."""
    port = free_ipv6_port()
    log = tempfile.NamedTemporaryFile(prefix="chatapi-dual-stack-", suffix=".log", delete=False)  # noqa: SIM115
    env = {
        **os.environ, "DATABASE_URL": database_url(), "CACHE_URL": "locmemcache://dual-stack", "NUM_PROXIES": "1",
        "AUTH_RATE_LIMIT": f"{AUTH_LIMIT}/d", "ALLOWED_HOSTS": "127.0.0.1,[::1]", "WEB_CONCURRENCY": "1",
        "THREADS": "4", "LOG_FORMAT": "text",
    }  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"[::]:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{Path(log.name).read_text(errors='replace')[-3000:]}")
            try:  # the master listens at once, but answers only once its worker runs (after the preload)
                requests.get(f"http://127.0.0.1:{port}/health", timeout=30)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        os.unlink(log.name)


def sign_up(url: str, forwarded_for: str | None = None) -> requests.Response:
    headers = {"User-Agent": BROWSER_UA}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return requests.post(f"{url}/api/v1/auth/email", json={"email": "a@b.co"}, headers=headers, timeout=30)


def stored_address(response: requests.Response) -> str:
    assert response.status_code == 201, response.text
    return ChatSession.objects.get(pk=response.json()["session_id"]).ip_address


def test_ipv4_peer_of_a_dual_stack_listener_is_stored_as_ipv4(server):
    assert stored_address(sign_up(f"http://127.0.0.1:{server}")) == "127.0.0.1"


def test_ipv6_peer_is_stored_as_ipv6(server):
    assert stored_address(sign_up(f"http://[::1]:{server}")) == "::1"


def test_forwarded_ipv6_clients_are_limited_per_slash_64_and_stored_whole(server):
    url = f"http://127.0.0.1:{server}"

    responses = [sign_up(url, f"192.0.2.1, 2001:db8:77:1:{n}::{n + 1}") for n in range(AUTH_LIMIT + 1)]

    assert [response.status_code for response in responses] == [201] * AUTH_LIMIT + [429]
    assert int(responses[-1].headers["Retry-After"]) >= 1
    assert stored_address(responses[0]) == "2001:db8:77:1::1"
    assert sign_up(url, "2001:db8:77:2::1").status_code == 201  # the next /64 is another client


def test_forwarded_ipv4_mapped_client_is_its_ipv4_address(server):
    url = f"http://[::1]:{server}"
    mapped, plain = "::ffff:198.51.100.23", "198.51.100.23"

    responses = [sign_up(url, address) for address in [mapped, plain] * 3]

    assert [response.status_code for response in responses] == [201] * AUTH_LIMIT + [429]
    assert stored_address(responses[0]) == plain
