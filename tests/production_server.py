"""The production server as the README starts it (`gunicorn -c gunicorn.conf.py`), for tests that read its output."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ProductionServer:
    url: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        """Everything the server wrote so far, on both streams."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )


def server_environment(directory: Path, **env: str) -> dict[str, str]:
    """This process's environment without test-run leftovers, on a fresh SQLite file, with `env` on top."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LLM_", "DISCORD_", "DATABASE_", "CACHE_", "COV_", "COVERAGE_", "PYTEST_"))
    }
    return {
        **inherited,
        "SECRET_KEY": "a-production-style-secret-key-that-is-long-enough-0123456789",
        "ENV_FILE": "/nonexistent/.env",
        "DEBUG": "False",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "PORT": str(free_port()),
        **env,
    }


@contextmanager
def production_server(
    directory: Path, env: dict[str, str], *, command: list[str] | None = None, timeout: float = 120
) -> Iterator[ProductionServer]:
    """Migrate a fresh database, start gunicorn with `env` until /health answers, and stop it (SIGTERM) after.

    `command` starts another server instead (`manage.py runserver`, as scripts/serve does).
    """
    manage(env, "migrate", "--noinput")
    server = ProductionServer(
        url=f"http://127.0.0.1:{env['PORT']}", stdout=directory / "stdout.log", stderr=directory / "stderr.log"
    )
    with server.stdout.open("wb") as stdout, server.stderr.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - the venv's gunicorn and our config file
            command or [str(GUNICORN), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.output()[-5000:]}")
                try:
                    requests.get(f"{server.url}/health", timeout=30)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"gunicorn not ready:\n{server.output()[-5000:]}") from None
                    time.sleep(0.2)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
