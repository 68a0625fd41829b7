"""Start-up configuration, checked the way an operator meets it: `manage.py check` in a subprocess.

Only the production-style run does every check; the others pick a tag, which skips importing the
URLconf (and the model client behind it) and keeps each run well under a second.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

# Every variable these tests set or rely on being unset; dropped from the inherited environment.
TESTED_KEYS = (
    "SECRET_KEY", "DEBUG", "ENV_FILE", "HTTPS_ONLY", "NUM_PROXIES", "ALLOWED_HOSTS", "CACHE_URL",
    "WEB_CONCURRENCY", "DISCORD_ENABLED", "DISCORD_BOT_TOKEN", "DISCORD_CHANNEL_ID", "JWT_SECRET_KEY",
    "CSRF_TRUSTED_ORIGINS", "CORS_ALLOWED_ORIGINS",
)  # fmt: skip


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in TESTED_KEYS}
    environment.update({"ENV_FILE": "/nonexistent/.env", "DJANGO_SETTINGS_MODULE": "chatapi.settings", **env})
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=Path(settings.BASE_DIR),
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def strong_secret() -> str:
    return secrets.token_urlsafe(48)  # 64 characters


def test_settings_refuse_to_start_without_secret_key():
    result = manage("check")

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0]
    assert "Traceback" not in result.stderr


def test_settings_debug_runs_without_secret_key():
    result = manage("check", "--tag", "caches", DEBUG="True")

    assert result.returncode == 0, result.stderr


def test_settings_deploy_check_is_clean_in_production_style():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="False", HTTPS_ONLY="True", NUM_PROXIES="1", SECRET_KEY=strong_secret(),
        CACHE_URL="redis://127.0.0.1:6379/9", ALLOWED_HOSTS="chat.example.com",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "security." not in result.stdout + result.stderr


def test_settings_deploy_check_warns_without_https():
    result = manage(
        "check", "--deploy", "--tag", "security", "--fail-level", "WARNING",
        DEBUG="False", SECRET_KEY=strong_secret(), CACHE_URL="redis://127.0.0.1:6379/9",
    )  # fmt: skip

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr  # SECURE_SSL_REDIRECT


def test_settings_warn_local_cache_with_many_processes():
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), WEB_CONCURRENCY="2")

    assert result.returncode == 0
    assert "chatapi.W001" in result.stdout + result.stderr


def test_settings_no_local_cache_warning_with_one_process():
    result = manage("check", "--tag", "caches", SECRET_KEY=strong_secret(), WEB_CONCURRENCY="1")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "extra",
    [{}, {"DISCORD_BOT_TOKEN": "abc.def.ghi"}, {"DISCORD_CHANNEL_ID": "123456789"}],
    ids=["neither", "no-channel", "no-token"],
)
def test_settings_refuse_discord_without_credentials(extra):
    result = manage("check", SECRET_KEY=strong_secret(), DISCORD_ENABLED="True", **extra)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DISCORD" in lines[0]
