"""The processes the benchmark runs: the stub model, the project under gunicorn, the yardstick
under uvicorn; and the visitor sessions it drives them with."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from measure import PG, descendants

BENCH = Path(__file__).resolve().parent
APP_DIR = Path(os.environ.get("BENCH_APP_DIR", BENCH.parent)).resolve()  # the project served
PYTHON = sys.executable  # the project's .venv
YARD_PYTHON = str(BENCH / ".venv" / "bin" / "python")
PROJECT_DB, YARD_DB = "chatapi_bench", "chatapi_bench_yardstick"
REDIS_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/14")
UA = "Mozilla/5.0 (X11; Linux x86_64) chatapi-bench/1.0"
WORKERS = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread's workers race for new connections and one often takes most of them (measured at 256
# connections on 2 x 128 threads: 200-odd against 50-odd), so each worker gets threads for all.
THREADS = int(os.environ.get("THREADS", "256"))
# Threads share a bounded psycopg pool per worker: 2 x 20 stays under half of max_connections (100).
DB_POOL = os.environ.get("DB_POOL_MAX_SIZE", "20")
CHUNKS = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 90, ok=(200,)) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    base: str = ""

    def pids(self) -> list[int]:
        return descendants(self.popen.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGINT)  # the group started here: server and workers
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def spawn(name: str, argv: list[str], env: dict[str, str], run_dir: Path) -> Process:
    with (run_dir / f"{name}.log").open("w") as out:
        popen = subprocess.Popen(  # noqa: S603 - our own argv
            argv, cwd=APP_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen)


def stub_start(run_dir: Path, latency: float, chunk_delay: float = 0.0) -> Process:
    """The stub model; its `base` is the OpenAI-style API base (…/v1)."""
    port = free_port()
    argv = [PYTHON, str(BENCH / "stub.py"), "--port", str(port), "--latency", str(latency)]
    argv += ["--chunks", str(CHUNKS), "--chunk-delay", str(chunk_delay)]
    stub = spawn(f"stub-{latency:g}s", argv, {**os.environ, "PYTHONPATH": str(APP_DIR)}, run_dir)
    wait_for(f"http://127.0.0.1:{port}/", ok=range(200, 600))
    stub.base = f"http://127.0.0.1:{port}/v1"
    return stub


def _llm_env(api_base: str) -> dict[str, str]:
    return {"LLM_MODEL": "openai/stub", "LLM_API_BASE": api_base, "LLM_API_KEY": "stub", "LLM_TIMEOUT": "30"}


def project_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENV_FILE": "/nonexistent",
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{PROJECT_DB}",
        "CACHE_URL": REDIS_URL,
        **extra,
    }


def project_prepare() -> None:
    """Migrate the fresh bench database; empty the bench's Redis database."""
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=APP_DIR, env=project_env(), check=True)  # noqa: S603
    subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], check=True, capture_output=True)  # noqa: S603, S607


def project_start(run_dir: Path, api_base: str, label: str) -> Process:
    port = free_port()
    env = project_env(
        **_llm_env(api_base),
        RATE_LIMITING_ENABLED="False",
        BOT_DETECTION_ENABLED="True",
        MAX_MESSAGES_PER_SESSION="1000000",
        LOG_LEVEL="WARNING",
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        THREADS=str(THREADS),
        DB_POOL_MAX_SIZE=DB_POOL,
    )
    server = spawn(f"gunicorn-{label}", [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"], env, run_dir)
    server.base = f"http://127.0.0.1:{port}"
    wait_for(f"{server.base}/health")
    return server


def yardstick_env(**extra: str) -> dict[str, str]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{YARD_DB}"
    return {**os.environ, "YARDSTICK_DATABASE_URL": url, "MAX_MESSAGES_PER_SESSION": "1000000", **extra}


def yardstick_prepare() -> None:
    app = str(BENCH / "yardstick" / "app.py")
    subprocess.run([YARD_PYTHON, app, "--create-tables"], env=yardstick_env(), check=True)  # noqa: S603


def yardstick_start(run_dir: Path, api_base: str, label: str) -> Process:
    port = free_port()
    env = yardstick_env(**_llm_env(api_base), YARDSTICK_SECRET=secrets.token_urlsafe(32))
    argv = [YARD_PYTHON, "-m", "uvicorn", "app:app", "--app-dir", str(BENCH / "yardstick"), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools"]
    server = spawn(f"yardstick-{label}", argv, env, run_dir)
    server.base = f"http://127.0.0.1:{port}"
    wait_for(f"{server.base}/api/v1/chat/history", ok=(401,))
    return server


def sessions_create(base: str, count: int, tag: str) -> list[tuple[str, str]]:
    """(session_id, access_token) pairs, made over the API as a visitor would."""

    def one(i: int) -> tuple[str, str]:
        email = {"email": f"bench-{tag}-{i}@example.com"}
        answer = client.post(f"{base}/api/v1/auth/email", json=email, headers={"User-Agent": UA})
        answer.raise_for_status()
        return answer.json()["session_id"], answer.json()["access_token"]

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def tokens_file(run_dir: Path, name: str, sessions: list[tuple[str, str]]) -> Path:
    path = run_dir / f"tokens-{name}.txt"
    path.write_text("".join(f"{token}\n" for _, token in sessions))
    return path


def project_prefill(session_ids: list[str], exchanges: int) -> None:
    env = project_env(PYTHONPATH=str(APP_DIR))
    subprocess.run([PYTHON, str(BENCH / "prefill.py"), str(exchanges), *session_ids], env=env, check=True)  # noqa: S603


YARD_PREFILL = """
WITH asked AS (
    INSERT INTO yard_message (session_id, kind, content, flagged, created_at, model, fallback)
    SELECT %(sid)s, 'user', %(question)s || n, false, now() - interval '1 hour' + n * interval '2 s', '', false
    FROM generate_series(0, %(count)s - 1) AS n
    RETURNING id, created_at
)
INSERT INTO yard_message (session_id, kind, content, flagged, created_at, in_reply_to_id, model, fallback)
SELECT %(sid)s, 'assistant', %(answer)s || id, false, created_at + interval '1 s', id, 'openai/stub', false
FROM asked
"""


def yardstick_prefill(session_ids: list[str], exchanges: int) -> None:
    """The same exchanges as bench/prefill.py writes for the project."""
    from prefill import ANSWER, QUESTION

    texts = {"question": QUESTION.removesuffix("{n}"), "answer": ANSWER.removesuffix("{n}"), "count": exchanges}
    with psycopg.connect(f"{PG}/{YARD_DB}", autocommit=True) as conn:
        for sid in session_ids:
            conn.execute(YARD_PREFILL, {"sid": sid, **texts})
            conn.execute("UPDATE yard_session SET user_message_count = %s WHERE id = %s", (exchanges, sid))
