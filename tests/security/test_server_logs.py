"""The production server's whole output holds no email address, token or query string, whatever it is sent.

Every API operation of the live schema, the pages, the admin log-in, a 404 and a malformed request carry a
marker address and marker tokens in the path, the query string, the headers and the body; then both of
gunicorn's streams are searched. Nothing here depends on gunicorn's worker type or its access line format.
"""

import json
import re
import socket
from urllib.parse import quote, urlsplit

import jwt
import pytest
import requests

from conftest import BROWSER_UA
from testing.llm_server import StubModelServer
from tests.production_server import manage, production_server, server_environment

MARKER_EMAIL = "zebra7marker@lognest.example.org"
MARKER_QUERY_VALUE = "qmarker41"
MARKER_API_KEY = "sk-markerkey-0123456789abcdefghij"
MARKER_DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GmArKr.markerdiscordtoken0123456789abcdef"
STAFF_PASSWORD = "a-marker-staff-password-8c1f"
# A well-formed token the server did not sign: refused, so it can only show up in error paths.
FORGED_TOKEN = jwt.encode({"token_type": "visitor", "jti": "forgedmarker", "exp": 4102444800}, "x" * 32)


def sent_everywhere(token: str) -> dict:
    """The marker address and `token` in every part of a request but the path."""
    return {
        "params": {"email": MARKER_EMAIL, "token": token, "q": MARKER_QUERY_VALUE, "limit": MARKER_EMAIL},
        "headers": {
            "User-Agent": BROWSER_UA,
            "Authorization": f"Bearer {token}",
            "Referer": f"http://example.org/page?email={quote(MARKER_EMAIL)}",
            "X-Forwarded-For": MARKER_EMAIL,
        },
        "json": {
            "email": MARKER_EMAIL,
            "message": f"write to {MARKER_EMAIL}, token {token}",
            "username": MARKER_EMAIL,
            "password": STAFF_PASSWORD,
            "refresh": token,
        },
    }


def operations(server_url: str) -> list[tuple[str, str]]:
    """Every operation of the live schema, and OPTIONS and HEAD on every path; those that end a session last."""
    schema = requests.get(f"{server_url}/api/v1/schema", params={"format": "json"}, timeout=30).json()
    paths = [*schema["paths"], "/api/v1/schema/", "/api/v1/docs/", "/health/", "/"]
    found = [
        (method.upper(), path)
        for path in paths
        for method in [*schema["paths"].get(path, {}), "options", "head"]
        if method in {"get", "post", "put", "patch", "delete", "options", "head"}
    ]
    return sorted(found, key=lambda operation: operation[0] == "DELETE" or operation[1].endswith(("logout/", "end/")))


def drive_every_endpoint(server_url: str, tokens: dict[str, str], session_id: str) -> list[int]:
    statuses = []
    session = requests.Session()
    for method, path in operations(server_url):
        for token in tokens.values():
            values = (MARKER_EMAIL, token, session_id)
            for filled in {re.sub(r"\{[^}]+\}", quote(value, safe="@"), path) for value in values}:
                response = session.request(method, server_url + filled, timeout=30, **sent_everywhere(token))
                statuses.append(response.status_code)
        # The same bodies, broken: a parse error must not quote what it could not parse.
        broken = sent_everywhere(tokens["forged"])
        broken["data"] = json.dumps(broken.pop("json"))[:-2]
        broken["headers"]["Content-Type"] = "application/json"
        statuses.append(session.request(method, server_url + path, timeout=30, **broken).status_code)
    return statuses


def drive_pages_and_errors(server_url: str, tokens: dict[str, str]) -> None:
    session = requests.Session()
    everywhere = sent_everywhere(tokens["visitor"])
    everywhere.pop("json")
    next_page = f"/admin/sessions_app/chatsession/?email={quote(MARKER_EMAIL)}"
    everywhere["params"]["next"] = next_page
    session.get(f"{server_url}/admin/login/", **everywhere, timeout=30)
    csrf = "csrfsecretmarker0123456789abcdef"  # Django takes its 32-character cookie secret as the form token too
    session.cookies.set("csrftoken", csrf)
    form = {"csrfmiddlewaretoken": csrf, "username": MARKER_EMAIL, "password": tokens["visitor"], "next": next_page}
    session.post(f"{server_url}/admin/login/", data=form, **everywhere, timeout=30)  # a failed log-in
    requests.post(f"{server_url}/admin/login/", data=form, **everywhere, timeout=30)  # no CSRF cookie: 403
    session.get(f"{server_url}{next_page}", timeout=30)  # not logged in: redirected with ?next=
    for token in tokens.values():
        requests.get(f"{server_url}/nowhere/{quote(MARKER_EMAIL, safe='@')}/{token}", **everywhere, timeout=30)
    requests.get(f"{server_url}/static/missing/{MARKER_EMAIL}.js", **everywhere, timeout=30)
    # A request gunicorn itself refuses: its error line quotes what it could not parse.
    host, port = urlsplit(server_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(f"GET /x?email={MARKER_EMAIL} HTTP/1.1\r\nHost: x\r\nBroken {tokens['visitor']}\r\n\r\n".encode())
        raw.recv(4096)


def visitor_started(server_url: str) -> dict:
    response = requests.post(
        f"{server_url}/api/v1/auth/email", json={"email": MARKER_EMAIL}, headers={"User-Agent": BROWSER_UA}, timeout=30
    )
    return response.json()


def staff_tokens(server_url: str) -> dict[str, str]:
    pair = requests.post(
        f"{server_url}/api/v1/staff/token",
        json={"username": "staffer", "password": STAFF_PASSWORD},
        headers={"User-Agent": BROWSER_UA},
        timeout=30,
    ).json()
    return {"staff": pair["access"], "refresh": pair["refresh"]}


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_server_output_holds_no_email_token_or_query_string(tmp_path, log_format):
    with StubModelServer() as model:
        env = server_environment(
            tmp_path,
            LOG_FORMAT=log_format,
            LOG_LEVEL="DEBUG",
            LLM_MODEL="openai/stub-model",
            LLM_API_BASE=model.api_base,
            LLM_API_KEY=MARKER_API_KEY,
            DISCORD_BOT_TOKEN=MARKER_DISCORD_TOKEN,
            DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD,
        )
        manage(env, "migrate", "--noinput")
        manage(env, "createsuperuser", "--noinput", "--username", "staffer", "--email", "staff@example.org")
        with production_server(tmp_path, env) as server:
            visitor = visitor_started(server.url)
            tokens = {"visitor": visitor["access_token"], "forged": FORGED_TOKEN, **staff_tokens(server.url)}
            statuses = drive_every_endpoint(server.url, tokens, visitor["session_id"])
            drive_pages_and_errors(server.url, tokens)
            # Last: the visitor ends its session, and uses the token again.
            for method, path in [("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/auth/session")]:
                requests.request(method, server.url + path, **sent_everywhere(tokens["visitor"]), timeout=30)
        output = server.output()

    private = [
        MARKER_EMAIL, MARKER_EMAIL.split("@")[0], quote(MARKER_EMAIL, safe=""), MARKER_QUERY_VALUE, MARKER_API_KEY,
        MARKER_DISCORD_TOKEN, STAFF_PASSWORD, *tokens.values(), *(token.split(".")[2] for token in tokens.values()),
    ]  # fmt: skip
    assert [value for value in private if value in output] == []
    assert re.findall(r"[\w/%.~-]\?[^\s\"'<>]+", output) == []
    assert {200, 201, 401, 403, 404} <= set(statuses)  # the markers reached every kind of answer
    assert "Not Found: /nowhere/[email]/[token]" in output  # they reached the log, and were redacted there
