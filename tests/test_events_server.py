"""`/chat/events` as SSE on the production server as the README starts it (SQLite: one poll per process)."""

import time

import pytest
import requests

from tests.production_server import manage, production_server, server_environment
from tests.sse import EventStream

UA = "Mozilla/5.0 (X11; Linux x86_64) events test"
STAFF_PASSWORD = "a-long-staff-password-for-tests-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("events-server")
    env = server_environment(directory, RATE_LIMITING_ENABLED="False")
    with production_server(directory, env) as running:
        manage({**env, "DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD}, "createsuperuser", "--noinput",
               "--username", "ana", "--email", "ana@example.com")  # fmt: skip
        yield running


def visitor_token(url: str) -> str:
    answer = requests.post(
        f"{url}/api/v1/auth/email", json={"email": "v@example.com"}, headers={"User-Agent": UA}, timeout=10
    )
    return answer.json()["access_token"]


def staff_headers(url: str) -> dict:
    answer = requests.post(
        f"{url}/api/v1/staff/token", json={"username": "ana", "password": STAFF_PASSWORD}, timeout=10
    )
    return {"Authorization": f"Bearer {answer.json()['access']}", "User-Agent": UA}


def session_id_of(url: str, token: str) -> str:
    answer = requests.get(
        f"{url}/api/v1/auth/session", headers={"Authorization": f"Bearer {token}", "User-Agent": UA}, timeout=10
    )
    return answer.json()["session_id"]


def test_a_staff_reply_reaches_an_open_stream_and_the_end_closes_it(server):
    token, staff = visitor_token(server.url), staff_headers(server.url)
    session_id = session_id_of(server.url, token)
    stream = EventStream(f"{server.url}/api/v1/chat/events", token=token, user_agent=UA)
    try:
        time.sleep(0.5)  # the stream is open and watching
        sent = time.monotonic()
        reply = requests.post(
            f"{server.url}/api/v1/staff/sessions/{session_id}/messages",
            json={"message": "Ana here"},
            headers=staff,
            timeout=10,
        )
        assert reply.status_code == 201

        arrived, _, _, data = stream.next_of("message")
        assert (data["role"], data["content"], data["author"]) == ("staff", "Ana here", "ana")
        assert arrived - sent < 1.0  # one poll per process, every 250 ms
        assert stream.next_of("mode")[3]["mode"] == "human"

        chat = requests.post(
            f"{server.url}/api/v1/chat",
            json={"message": "Thanks"},
            headers={"Authorization": f"Bearer {token}", "User-Agent": UA},
            timeout=10,
        )
        assert chat.json()["mode"] == "human"
        assert stream.next_of("message")[3]["content"] == "Thanks"

        requests.post(f"{server.url}/api/v1/staff/sessions/{session_id}/end", headers=staff, timeout=10)
        end = stream.next_of("end")
        assert end[3]["reason"] == "staff"
        assert stream.closed.wait(5)
    finally:
        stream.close()


def test_a_stream_resumes_after_its_last_event_id(server):
    token, staff = visitor_token(server.url), staff_headers(server.url)
    session_id = session_id_of(server.url, token)
    for text in ("one", "two", "three"):
        requests.post(
            f"{server.url}/api/v1/staff/sessions/{session_id}/messages",
            json={"message": text},
            headers=staff,
            timeout=10,
        )
    first = requests.get(
        f"{server.url}/api/v1/chat/events", headers={"Authorization": f"Bearer {token}", "User-Agent": UA}, timeout=10
    ).json()
    two = next(e for e in first["events"] if e.get("content") == "two")

    stream = EventStream(f"{server.url}/api/v1/chat/events", token=token, user_agent=UA, last_event_id=two["id"])
    try:
        _, _, kind, data = stream.next()
        assert (kind, data["content"]) == ("message", "three")
    finally:
        stream.close()
