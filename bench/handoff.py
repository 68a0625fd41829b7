"""Handoff benchmark: how long a staff message takes to reach a visitor's open `/chat/events` stream.

    python bench/handoff.py [--streams 200] [--messages 300] [--interval 0.02]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_handoff] [--cache-url redis://127.0.0.1:6379/13]

from the project folder, with the project's .venv. It starts the production server as the README does
(`gunicorn -c gunicorn.conf.py`, on a scratch SQLite file unless a database is given), opens `--streams`
SSE streams as visitors, then stores `--messages` staff messages from this process with the same
service the `discord_gateway` listener calls (chat_app.handoff.staff_message_post): another process,
as the listener is. The figure is the time from that call's start to the event's arrival in the
stream, p50/p99/max; the target (issue 14) is p99 <= 100 ms. Without Redis or PostgreSQL the
server learns of another process's write by polling, every 250 ms.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess  # our own manage.py and gunicorn, fixed argv  # nosec B404
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) bench-handoff"
SECRET = "bench-handoff-secret-key-that-is-long-enough-0123456789"  # noqa: S105 - a scratch server  # nosec B105


def server_env(args, directory: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "CACHE_", "LLM_"))}
    env |= {
        "SECRET_KEY": SECRET, "ENV_FILE": "/nonexistent", "DEBUG": "False", "LOG_LEVEL": "WARNING", "PORT": str(port),
        "RATE_LIMITING_ENABLED": "False", "DATABASE_URL": args.database_url or f"sqlite:///{directory / 'db.sqlite3'}",
    }  # fmt: skip
    if args.cache_url:
        env["CACHE_URL"] = args.cache_url
    return env


def database_fresh(url: str) -> None:
    """An empty PostgreSQL database of that name (dropped and made again)."""
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # our own bench database's name
        conn.execute(f'CREATE DATABASE "{name}"')


async def stream(base: str, token: str, arrivals: dict, opened: asyncio.Event, counter: list) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "User-Agent": USER_AGENT}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=3600.0)) as client,
        client.stream("GET", f"{base}/api/v1/chat/events", headers=headers) as answer,
    ):
        counter[0] += 1
        if counter[0] == counter[1]:
            opened.set()
        data = None
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                event = json.loads(data)
                if event.get("role") == "staff":
                    arrivals[event["content"]] = time.perf_counter()
                data = None


async def measure(args, base: str, sessions: list) -> dict:
    from asgiref.sync import sync_to_async

    from chat_app.handoff import staff_message_post

    arrivals: dict[str, float] = {}
    opened, counter = asyncio.Event(), [0, len(sessions)]
    readers = [asyncio.create_task(stream(base, s.access_token, arrivals, opened, counter)) for s in sessions]
    await asyncio.wait_for(opened.wait(), 120)
    await asyncio.sleep(1)
    post = sync_to_async(staff_message_post, thread_sensitive=True)
    sent: dict[str, float] = {}
    stored_ms = []
    for n in range(args.messages):
        content = f"staff message {n}"
        sent[content] = time.perf_counter()
        await post(session_id=sessions[n % len(sessions)].session.pk, content=content, author="Ana")
        stored_ms.append((time.perf_counter() - sent[content]) * 1000)
        await asyncio.sleep(args.interval)
    await asyncio.sleep(2)
    for reader in readers:
        reader.cancel()
    latencies = sorted((arrivals[c] - t) * 1000 for c, t in sent.items() if c in arrivals)
    quantile = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "streams": args.streams,
        "messages": args.messages,
        "arrived": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(quantile[98], 1),
        "max_ms": round(latencies[-1], 1),
        "store_p50_ms": round(statistics.median(stored_ms), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between staff messages")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--cache-url", default="")
    args = parser.parse_args()
    from tests.production_server import free_port

    directory = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    port = free_port()
    env = server_env(args, directory, port)
    if args.database_url:
        database_fresh(args.database_url)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=PROJECT, env=env, check=True)  # noqa: S603
    gunicorn = str(Path(python).with_name("gunicorn"))
    log = (directory / "server.log").open("wb")
    server = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py"], cwd=PROJECT, env=env, stdout=log, stderr=log)  # noqa: S603
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                httpx.get(f"{base}/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        os.environ.update({key: env[key] for key in ("SECRET_KEY", "ENV_FILE", "DEBUG", "DATABASE_URL")})
        os.environ.update({"CACHE_URL": env["CACHE_URL"]} if "CACHE_URL" in env else {})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapi.settings")
        import django

        django.setup()
        from sessions_app.services import chat_session_start

        sessions = [
            chat_session_start(email=f"v{n}@example.com", user_agent=USER_AGENT, ip_address="127.0.0.1")
            for n in range(args.streams)
        ]
        figures = asyncio.run(measure(args, base, sessions))
    finally:
        server.terminate()
        server.wait(30)
    setup = "PostgreSQL" if args.database_url else "SQLite"
    setup += " + Redis" if args.cache_url else ", local memory cache"
    print(json.dumps({"setup": setup, **figures}))
    return 0 if figures["arrived"] == figures["messages"] else 1


if __name__ == "__main__":
    sys.exit(main())
