"""Management commands that make no model or Discord call start without the model or Discord clients."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sessions_app.tests.test_settings import strong_secret

ROOT = Path(__file__).resolve().parents[2]
# The clients and what only they pull in (aiohttp: discord.py's transport, and openai's optional one).
HEAVY_PACKAGES = {"litellm", "openai", "discord", "aiohttp"}
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)


def command_run(database: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -X importtime manage.py ARGS` as an operator runs it, and the top-level packages it imported."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LLM_", "DISCORD_", "DATABASE_", "CACHE_", "COV_", "COVERAGE_"))
    }
    environment.update(
        SECRET_KEY=strong_secret(),
        ENV_FILE="/nonexistent/.env",
        DJANGO_SETTINGS_MODULE="chatapi.settings",
        DATABASE_URL=f"sqlite:///{database}",
        # Discord on, so the receivers that queue its deliveries are wired as in production.
        DISCORD_ENABLED="True",
        DISCORD_BOT_TOKEN="a-bot-token",
        DISCORD_CHANNEL_ID="1234",
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
        [sys.executable, "-X", "importtime", "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, {name.split(".")[0] for name in IMPORTED.findall(done.stderr)}


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("commands") / "db.sqlite3"
    done, _ = command_run(path, "migrate", "--noinput")
    assert done.returncode == 0, done.stderr[-2000:]
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("check",),
        ("check", "--deploy"),
        ("migrate", "--noinput"),
        ("migrate", "--check"),
        ("showmigrations",),
        ("makemigrations", "--check", "--dry-run"),
        ("cleanup_sessions", "--dry-run"),
        ("cleanup_sessions",),
    ],
    ids=" ".join,
)
def test_command_starts_without_model_or_discord_clients(database, args):
    done, imported = command_run(database, *args)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "django" in imported  # the measurement itself works
    assert not imported & HEAVY_PACKAGES
