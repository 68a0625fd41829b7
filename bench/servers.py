"""The processes the benchmark runs: the stub model, the project under gunicorn, the yardstick under
uvicorn, the load generator; the databases they use, and the visitor sessions they are driven with."""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from measure import PG, DbWatch, children, cmdline, descendants

BENCH = Path(__file__).resolve().parent
APP_DIR = Path(os.environ.get("BENCH_APP_DIR", BENCH.parent)).resolve()  # the project served
# The project's interpreter: the served checkout's own .venv when it has one, else the one running this.
_app_python = APP_DIR / ".venv" / "bin" / "python"
PYTHON = os.environ.get("BENCH_SERVER_PYTHON") or str(_app_python if _app_python.exists() else Path(sys.executable))
YARD_PYTHON = str(BENCH / ".venv" / "bin" / "python")  # the yardstick's packages, uvloop among them
TOOL_PYTHON = YARD_PYTHON if Path(YARD_PYTHON).exists() else sys.executable  # runs the stub and loadgen
PROJECT_DB, YARD_DB = "chatapi_bench", "chatapi_bench_yardstick"
REDIS_URL = "redis://127.0.0.1:6379/14"
PROJECT_COMMAND = ["-m", "gunicorn", "-c", "gunicorn.conf.py"]
YARD_WORKERS = int(os.environ.get("BENCH_YARDSTICK_WORKERS", os.cpu_count() or 2))
# Settings the load would otherwise trip (a visitor's rate limit and message cap), not tuning.
FUNCTIONAL = {"RATE_LIMITING_ENABLED": "False", "MAX_MESSAGES_PER_SESSION": "1000000000"}
OS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")  # the rest of the caller's environment stays out
# One secret per bench: a server restarted mid-run still accepts the sessions' tokens.
SECRET_KEY, YARD_SECRET = secrets.token_urlsafe(50), secrets.token_urlsafe(32)


def server_env_extra() -> dict[str, str]:
    """BENCH_SERVER_ENV="K=V,K=V": settings added to the project's environment, for experiments."""
    raw = os.environ.get("BENCH_SERVER_ENV", "").strip()
    pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"BENCH_SERVER_ENV must be K=V,K=V: {raw!r}")
    return {key.strip(): value for key, value in pairs}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 120, ok=(200,), process: "Process | None" = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}: see {process.log}")
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
    log: Path
    base: str = ""
    info: dict = field(default_factory=dict)

    def pids(self) -> list[int]:
        return descendants(self.popen.pid)

    def workers(self) -> list[int]:
        """The main process's children, less multiprocessing's resource tracker (uvicorn --workers has one)."""
        return [pid for pid in children(self.popen.pid) if "resource_tracker" not in cmdline(pid)]

    def stop(self) -> None:
        """SIGINT to the group started here (server and workers): gunicorn's quick shutdown, where SIGTERM
        would wait up to its graceful timeout for requests the load left stuck."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGINT)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def ready(process: Process, url: str, ok=(200,)) -> Process:
    """The process once `url` answers; stopped (with its children) if it never does."""
    try:
        wait_for(url, ok=ok, process=process)
    except BaseException:
        process.stop()
        raise
    return process


def spawn(name: str, argv: list[str], env: dict[str, str], run_dir: Path, cwd: Path = APP_DIR) -> Process:
    log = run_dir / f"{name}.log"
    with log.open("w") as out:
        popen = subprocess.Popen(  # noqa: S603 - our own argv
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def os_env() -> dict[str, str]:
    return {key: os.environ[key] for key in OS_ENV if key in os.environ}


# --- the stub model ----------------------------------------------------------------------------------


def stub_start(run_dir: Path, name: str, chunks: int, chunk_delay: float) -> Process:
    """The stub model (bench/stub.py); its `base` is the OpenAI-style API base (.../v1)."""
    port = free_port()
    argv = [TOOL_PYTHON, str(BENCH / "stub.py"), "--port", str(port), "--chunks", str(chunks)]
    argv += ["--chunk-delay", str(chunk_delay)]
    stub = spawn(name, argv, os_env(), run_dir, cwd=BENCH)
    stub.base = f"http://127.0.0.1:{port}/v1"
    return ready(stub, f"http://127.0.0.1:{port}/")


def llm_env(api_base: str) -> dict[str, str]:
    return {"LLM_MODEL": "openai/stub", "LLM_API_BASE": api_base, "LLM_API_KEY": "stub"}


# --- the project -------------------------------------------------------------------------------------


def project_env(api_base: str = "http://127.0.0.1:9/v1", **extra: str) -> dict[str, str]:
    """What a user sets: the database, the shared cache, a secret, the model; nothing about the shape."""
    return {
        **os_env(),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{PROJECT_DB}",
        "CACHE_URL": REDIS_URL,
        "SECRET_KEY": SECRET_KEY,
        "ENV_FILE": "/nonexistent",
        "DEBUG": "False",
        "LOG_LEVEL": "WARNING",
        **llm_env(api_base),
        **FUNCTIONAL,
        **server_env_extra(),
        **extra,
    }


_empty_after_migrate: list[str] = []


def project_reset(watch: DbWatch) -> None:
    """A fresh bench database and Redis database. The first time, recreated and migrated; after that the
    tables that migrate left empty are truncated (seconds, where migrate takes ten or more)."""
    subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], check=True, capture_output=True)  # noqa: S603, S607
    if _empty_after_migrate:
        tables = ", ".join(f'"{name}"' for name in _empty_after_migrate)
        try:
            with psycopg.connect(f"{PG}/{PROJECT_DB}", autocommit=True) as conn:
                conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")  # our own table names
                conn.execute("VACUUM ANALYZE")
            return
        except psycopg.Error:
            _empty_after_migrate.clear()  # a table outside the list refers to one in it: migrate afresh
    watch.database_recreate(PROJECT_DB)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=APP_DIR, env=project_env(), check=True)  # noqa: S603
    with psycopg.connect(f"{PG}/{PROJECT_DB}", autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for name in names:
            if conn.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{name}")').fetchone()[0]:  # noqa: S608
                _empty_after_migrate.append(name)


def project_start(run_dir: Path, api_base: str, name: str) -> Process:
    """`gunicorn -c gunicorn.conf.py` from the app directory, as a user starts it; PORT only picks a free port."""
    port = free_port()
    env = project_env(api_base, PORT=str(port))
    server = spawn(name, [PYTHON, *PROJECT_COMMAND], env, run_dir)
    server.base = f"http://127.0.0.1:{port}"
    ready(server, f"{server.base}/health")
    time.sleep(1)  # the other workers finish booting
    server.info = {"command": "gunicorn -c gunicorn.conf.py", "worker_type": worker_type(server.log, env)}
    return server


def worker_type(log: Path, env: dict[str, str]) -> str:
    """The worker class, from gunicorn's "Using worker: ..." line; when LOG_LEVEL hides it, from the
    configuration gunicorn resolves with the same environment (--print-config)."""
    if found := re.search(r"Using worker: ([\w.:]+)", log.read_text()):
        return f"{found[1]} (its log)"
    argv = [PYTHON, *PROJECT_COMMAND, "--print-config"]
    printed = subprocess.run(argv, cwd=APP_DIR, env=env, capture_output=True, text=True, check=False).stdout  # noqa: S603
    if found := re.search(r"^worker_class\s*=\s*(\S+)", printed, re.MULTILINE):
        return f"{found[1]} (gunicorn --print-config)"
    return "unknown"


def project_prefill(session_ids: list[str], exchanges: int) -> None:
    env = project_env(PYTHONPATH=str(APP_DIR))
    subprocess.run([PYTHON, str(BENCH / "prefill.py"), str(exchanges), *session_ids], cwd=APP_DIR, env=env, check=True)  # noqa: S603


# --- the yardstick -----------------------------------------------------------------------------------


def yardstick_pool(max_connections: int) -> int:
    """Each worker's pool (and as many again in overflow): all of them within half of max_connections."""
    return max(2, min(10, max_connections // 2 // YARD_WORKERS // 2))


def yardstick_env(**extra: str) -> dict[str, str]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{YARD_DB}"
    return {**os_env(), "YARDSTICK_DATABASE_URL": url, **FUNCTIONAL, **extra}


def yardstick_reset(watch: DbWatch) -> None:
    if not watch.conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (YARD_DB,)).fetchone():
        watch.database_recreate(YARD_DB)
    app = str(BENCH / "yardstick" / "app.py")
    subprocess.run([YARD_PYTHON, app, "--create-tables"], env=yardstick_env(), check=True)  # noqa: S603


def yardstick_start(run_dir: Path, api_base: str, name: str, max_connections: int) -> Process:
    port = free_port()
    pool = yardstick_pool(max_connections)
    env = yardstick_env(**llm_env(api_base), YARDSTICK_SECRET=YARD_SECRET, YARDSTICK_POOL_SIZE=str(pool))
    argv = [YARD_PYTHON, "-m", "uvicorn", "app:app", "--app-dir", str(BENCH / "yardstick"), "--host", "127.0.0.1"]
    options = ["--workers", str(YARD_WORKERS), "--loop", "uvloop", "--http", "httptools"]
    server = spawn(name, [*argv, "--port", str(port), *options], env, run_dir)
    server.base = f"http://127.0.0.1:{port}"
    ready(server, f"{server.base}/api/v1/chat/history", ok=(401,))
    time.sleep(1)
    server.info = {
        "command": f"uvicorn app:app {' '.join(options)} (pool {pool} + {pool} per worker)",
        "worker_type": "uvicorn (uvloop, httptools)",
    }
    return server


def yardstick_prefill(session_ids: list[str], exchanges: int) -> None:
    """The same exchanges as bench/prefill.py writes for the project, in one statement per session."""
    from prefill import ANSWER, QUESTION

    texts = {"question": QUESTION.removesuffix("{n}"), "answer": ANSWER.removesuffix("{n}"), "count": exchanges}
    with psycopg.connect(f"{PG}/{YARD_DB}", autocommit=True) as conn:
        for sid in session_ids:
            conn.execute(YARD_PREFILL, {"sid": sid, **texts})
            conn.execute("UPDATE yard_session SET user_message_count = %s WHERE id = %s", (exchanges, sid))


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


# --- the load generator ------------------------------------------------------------------------------


def loadgen(spec: dict, run_dir: Path, name: str, on_line=None) -> dict:
    """bench/loadgen.py in its own process; its raw result is kept beside the logs."""
    spec_file = run_dir / f"loadgen-{name}.spec.json"
    spec_file.write_text(json.dumps(spec))
    argv = [TOOL_PYTHON, str(BENCH / "loadgen.py"), str(spec_file)]
    result = None
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603 - our own argv
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
            elif on_line is not None:
                on_line(line.strip())
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"loadgen {name} failed ({proc.returncode})")
    (run_dir / f"loadgen-{name}.json").write_text(json.dumps(result))
    return result


def sessions_create(base: str, count: int, tag: str, run_dir: Path) -> list[tuple[str, str]]:
    """(session_id, access_token) pairs, made over the API as visitors would."""
    spec = {"mode": "signup", "base": base, "count": count, "tag": tag, "concurrency": 32}
    return [tuple(pair) for pair in loadgen(spec, run_dir, f"signup-{tag}")["sessions"]]


def tokens_file(run_dir: Path, name: str, sessions: list[tuple[str, str]]) -> Path:
    path = run_dir / f"tokens-{name}.txt"
    path.write_text("".join(f"{token}\n" for _, token in sessions))
    return path
