"""OWASP API8:2023 Security Misconfiguration: headers, CSP, CORS, HTTPS and the deploy check.

Covered elsewhere: `manage.py check --deploy` is clean in production style and warns without HTTPS
(sessions_app/tests/test_settings.py), X-Forwarded-Proto is trusted only behind a counted proxy
(chatapi/tests/test_settings_values.py), errors are JSON without tracebacks with DEBUG off
(tests/test_errors.py).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from conftest import BROWSER_UA

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
HTML_PAGES = ["/admin/login/", "/api/v1/docs", "/"]
STAFF_HTML_PAGES = ["/admin/", "/admin/sessions_app/chatsession/", "/admin/chat_app/chatmessage/",
                    "/admin/sessions_app/chatsession/{id}/change/", "/admin/no-such-page/"]  # fmt: skip
JSON_RESPONSES = [("get", "/health"), ("get", "/api/v1/auth/session"), ("get", "/api/v1/nope"),
                  ("post", "/api/v1/auth/email"), ("get", "/api/v1/schema")]  # fmt: skip


def csp_directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_hardened(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    directives = csp_directives(response)
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval, nobody else's scripts
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"] and directives["base-uri"] == ["'none'"]


def assert_no_inline_script(html: str) -> None:
    for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", html, flags=re.S | re.I):
        if "src=" in tag or 'type="application/json"' in tag:
            continue
        assert not body.strip(), f"inline script would be blocked by the CSP: {tag}{body[:80]}"


@pytest.mark.parametrize("path", HTML_PAGES)
def test_public_html_pages_carry_csp_and_run_no_inline_script(client, path):
    response = client.get(path, follow=True)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert_hardened(response)
    assert_no_inline_script(response.content.decode())


@pytest.mark.parametrize("path", STAFF_HTML_PAGES)
def test_admin_pages_carry_csp_and_run_no_inline_script(client, staff_user, visitor, path):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)

    response = client.get(path.format(id=quote(visitor.session.pk)), follow=True)

    assert response["Content-Type"].startswith("text/html")
    assert_hardened(response)
    assert_no_inline_script(response.content.decode())


def test_docs_script_is_served_from_our_own_origin(client):
    html = client.get("/api/v1/docs").content.decode()
    sources = re.findall(r'<script src="([^"]+)"', html)

    assert sources and all(source.startswith("/") for source in sources)
    script = client.get(next(source for source in sources if "script" in source and "docs" in source))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


@pytest.mark.parametrize(("method", "path"), JSON_RESPONSES)
def test_api_responses_carry_the_security_headers(api_client, method, path):
    assert_hardened(getattr(api_client, method)(path))


def test_unknown_host_is_refused_as_json(api_client):
    response = api_client.get("/health", HTTP_HOST="attacker.example")

    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request."}


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    return Client(HTTP_USER_AGENT=BROWSER_UA)


def preflight(client, path: str, origin: str):
    return client.options(
        path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,idempotency-key",
    )  # fmt: skip


def test_cors_admits_a_configured_origin(cors):
    response = preflight(cors, "/api/v1/chat", "https://shop.example")

    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert {"authorization", "idempotency-key"} <= set(response["Access-Control-Allow-Headers"].split(", "))
    assert "Access-Control-Allow-Credentials" not in response  # bearer tokens, never cookies
    get = cors.get("/health", HTTP_ORIGIN="https://shop.example")
    assert {"x-request-id", "retry-after"} <= set(get["Access-Control-Expose-Headers"].split(", "))


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://shop.example", "https://shop.example.evil.example", "null"]
)
def test_cors_ignores_any_other_origin(cors, origin):
    for response in (preflight(cors, "/api/v1/chat", origin), cors.get("/health", HTTP_ORIGIN=origin)):
        assert "Access-Control-Allow-Origin" not in response


def test_cors_never_applies_to_the_admin(cors):
    response = cors.get("/admin/login/", HTTP_ORIGIN="https://shop.example")

    assert "Access-Control-Allow-Origin" not in response


def test_cors_is_off_without_configured_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = []

    assert "Access-Control-Allow-Origin" not in preflight(client, "/api/v1/chat", "https://shop.example")


# The settings module decides HTTPS behaviour at import, so it is loaded fresh in a subprocess.
HTTPS_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
plain = client.get("/api/v1/nope")
health = client.get("/health")
secure = client.get("/api/v1/nope", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="203.0.113.5")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "health": health.status_code,
    "secure": [secure.status_code, secure.get("Strict-Transport-Security")],
    "cookies": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY],
}))
"""


def test_https_only_redirects_and_sends_hsts_behind_the_proxy(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "chatapi.settings", "ENV_FILE": "/nonexistent",
        "SECRET_KEY": "a-long-production-style-secret-key-0123456789-abcdefghijklmnop", "DEBUG": "False",
        "HTTPS_ONLY": "True", "NUM_PROXIES": "1", "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path}/none.sqlite3", "LOG_LEVEL": "CRITICAL",
    }  # fmt: skip

    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", HTTPS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["plain"] == [301, "https://testserver/api/v1/nope"]
    assert probe["health"] != 301  # load balancers probe /health over plain HTTP
    assert probe["secure"] == [404, "max-age=31536000; includeSubDomains; preload"]
    assert probe["cookies"] == [True, True, True]
