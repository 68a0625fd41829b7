"""The production server as the README starts it without Docker: every first page and file it loads answers."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testing.page_crawl import MISSING_STATIC_FILE, PAGES, crawl, http_fetch, log_problems, problems
from tests.multiserver.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
# What a fresh clone does not hold: local state, tools' caches, and collectstatic's output above all.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "staticfiles", "test-artifacts", "bench", "docs", "__pycache__", "*.sqlite3*",
    ".test-db*", ".coverage*", "htmlcov", ".hypothesis", ".pytest_cache", ".ruff_cache", ".env",
)  # fmt: skip


@pytest.fixture
def clean_checkout(tmp_path) -> Path:
    """The code alone in a fresh directory, migrated: no staticfiles/, no .env, no database yet."""
    app = tmp_path / "app"
    shutil.copytree(ROOT, app, ignore=NOT_IN_A_CLONE, symlinks=False)
    assert not (app / "staticfiles").exists()
    return app


def server_env(app: Path, port: int) -> dict[str, str]:
    """README, Deploying: the settings in the environment, DEBUG off, nothing else of this test run."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "SECRET_KEY": "production-server-test-key-" + "x" * 40,
        "DEBUG": "False",
        "ENV_FILE": "/nonexistent/.env",
        "DATABASE_URL": f"sqlite:///{app / 'db.sqlite3'}",
        "PORT": str(port),
    }


def health_wait(base: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:  # noqa: S310 - our own server
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"no /health after {timeout} s:\n{log.read_text()[-4000:]}")


def server_stop(server: subprocess.Popen) -> None:
    """SIGTERM, as a container stop: every worker type finishes and exits on it."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_gunicorn_on_a_clean_checkout_serves_every_page_and_file_without_collectstatic(clean_checkout):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(clean_checkout, port)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=clean_checkout, env=env, check=True, timeout=180,
    )  # fmt: skip
    log = clean_checkout / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=clean_checkout, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        health_wait(base, server, log)
        fetch = http_fetch(base)
        seen = crawl(fetch, base=base)
        missing = fetch(MISSING_STATIC_FILE)
    finally:
        server_stop(server)
    log_text = log.read_text(errors="replace")

    assert problems(seen, missing) == []
    assert set(PAGES) <= set(seen)
    static_files = [path for path in seen if path.startswith("/static/")]
    assert len(static_files) >= 10, static_files  # the admin's, Swagger UI's and the widget's
    assert not (clean_checkout / "staticfiles").exists()
    assert log_problems(log_text) == []
    assert "/health" in log_text  # the access lines reached the log read above
