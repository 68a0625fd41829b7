"""Delivery benchmark: N sessions x M messages over the API, the Discord double, real worker processes.

    python -m bench.delivery --sessions 100 --messages 5 [--concurrency 20]
        [--model-seconds 0.5] [--outage 5] [--workers 1] [--database-url postgres://HOST:5432/postgres]

from the project folder (`python bench/delivery.py ...` works too), with the project's .venv.

It starts the REST double, a scratch database (a temporary SQLite file, or a fresh `bench_delivery`
database on the given PostgreSQL server), `--workers` worker processes, then drives the chat API
in-process (Django's test client, the model replaced by a fake; the double runs in its own
process so the two do not share an interpreter) and checks that Discord ends up
with one thread per session and every message once, in order, in its own thread. `--outage S`
takes the double down for S seconds once a third of the sessions have started; `--concurrency`
visitors chat at once, each turn taking `--model-seconds` in the fake model. Last, it measures
SIGTERM: a worker stopped while Discord answers slowly, how long it takes and what it leaves.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess  # starts our own worker and Discord double, fixed argv  # nosec B404
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:  # run as `python bench/delivery.py`: the project's packages are importable
    sys.path.insert(0, str(PROJECT))
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) bench-delivery"


@dataclass
class BenchReport:
    sessions: int
    messages_per_session: int
    workers: int
    concurrent_visitors: int
    outage_seconds: float
    model_seconds: float = 0.0
    threads: int = 0
    posts: int = 0
    expected_posts: int = 0
    in_order_exactly_once: bool = False
    failed_deliveries: int = 0
    api_seconds: float = 0.0
    drain_seconds: float = 0.0
    latency_ms: dict = field(default_factory=dict)
    sigterm: dict = field(default_factory=dict)


def database_url(connection) -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_start(double, url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DISCORD_ENABLED": "True",
        "DISCORD_BOT_TOKEN": double.token,
        "DISCORD_CHANNEL_ID": str(double.channel_id),
        "DISCORD_API_BASE": double.api_base,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "manage.py", "notifications_worker", "--poll-interval", "0.2"]
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py  # nosec B603
        command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def conversation_run(client, n: int, messages: int) -> None:
    response = client.post("/api/v1/auth/email", {"email": f"visitor{n}@example.com"}, content_type="application/json")
    if response.status_code != 201:
        raise RuntimeError(f"session start answered {response.status_code}: {response.content[:200]!r}")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {response.json()['access_token']}"}
    for turn in range(messages):
        body = {"message": f"Question {turn} from visitor {n}"}
        reply = client.post("/api/v1/chat", body, content_type="application/json", **auth)
        if reply.status_code != 200:
            raise RuntimeError(f"chat answered {reply.status_code}: {reply.content[:200]!r}")


def percentiles(values: list[float]) -> dict:
    if len(values) < 2:
        return {"count": len(values)}
    cuts = statistics.quantiles(values, n=100)
    return {
        "count": len(values),
        "median": round(statistics.median(values)),
        "p99": round(cuts[98]),
        "max": round(max(values)),
    }


def threads_check(double) -> bool:
    """Every session's messages, each once, in order, in that session's own thread."""
    from notifications_app.models import DiscordThread

    posts = double.thread_posts()
    for thread in DiscordThread.objects.all():
        expected = [f"message {pk}" for pk in thread.session.messages.order_by("id").values_list("pk", flat=True)]
        if [p["embeds"][0]["footer"]["text"] for p in posts.get(thread.thread_id, [])] != expected:
            return False
    return len(posts) == DiscordThread.objects.count()


def open_deliveries_wait(timeout: float) -> None:
    from notifications_app.selectors import deliveries_open_count

    deadline = time.monotonic() + timeout
    while deliveries_open_count():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{deliveries_open_count()} deliveries still open after {timeout:g}s")
        time.sleep(0.1)


def bench_run(
    *,
    double,
    sessions: int,
    messages: int,
    workers: int = 1,
    concurrency: int = 1,
    outage: float = 0.0,
    slow_seconds: float = 1.0,
) -> BenchReport:
    """Run the benchmark against the configured (scratch) database, with Discord on in settings."""
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from notifications_app.models import Delivery

    report = BenchReport(sessions, messages, workers, concurrency, outage, expected_posts=sessions * (1 + 2 * messages))
    url = database_url(connection)
    running = [worker_start(double, url) for _ in range(workers)]
    client = Client(HTTP_HOST="localhost", HTTP_USER_AGENT=USER_AGENT)
    down_at = None
    try:
        first_measured = warm_up(client)
        started = time.monotonic()

        def visitor(n: int) -> None:
            nonlocal down_at
            if outage and n == sessions // 3:
                double.set_mode("down")
                down_at = timezone.now()
                threading.Timer(outage, double.set_mode, ("ok",)).start()
            try:
                conversation_run(Client(HTTP_HOST="localhost", HTTP_USER_AGENT=USER_AGENT), n, messages)
            finally:
                connection.close()  # each visitor thread has its own connection

        with ThreadPoolExecutor(max_workers=concurrency) as visitors:
            list(visitors.map(visitor, range(sessions)))
        report.api_seconds = round(time.monotonic() - started, 2)
        open_deliveries_wait(timeout=120 + outage * 10)
        report.drain_seconds = round(time.monotonic() - started - report.api_seconds, 2)
        done = Delivery.objects.filter(status=Delivery.Status.DONE, pk__gt=first_measured).exclude(
            kind=Delivery.Kind.THREAD_DELETED
        )
        timings = list(done.values_list("created_at", "delivered_at"))
        report.latency_ms = {"all": percentiles([(d - c).total_seconds() * 1000 for c, d in timings])}
        if down_at is not None:
            up_at = down_at + timedelta(seconds=outage)
            during = [(d - c).total_seconds() * 1000 for c, d in timings if down_at <= c < up_at]
            outside = [(d - c).total_seconds() * 1000 for c, d in timings if not down_at <= c < up_at]
            report.latency_ms.update({"enqueued_while_down": percentiles(during), "otherwise": percentiles(outside)})
        report.threads, report.posts = len(double.threads()), double.total_posts()
        report.in_order_exactly_once = threads_check(double) and report.posts == report.expected_posts
        report.failed_deliveries = Delivery.objects.filter(status=Delivery.Status.FAILED).count()
        for process in running[1:]:  # one worker left, so the signal meets the delivery in hand
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        report.sigterm = sigterm_measure(double, running[0], client, slow_seconds)
    finally:
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=30)
    return report


def warm_up(client) -> int:
    """Start, deliver and erase one session, so the workers are up and logged in before timing.

    Returns the last delivery id before the measured run.
    """
    from notifications_app.models import Delivery
    from sessions_app.models import ChatSession

    conversation_run(client, -1, 0)
    open_deliveries_wait(timeout=60)
    ChatSession.objects.get(email="visitor-1@example.com").delete()  # its thread goes from Discord too
    open_deliveries_wait(timeout=60)
    return Delivery.objects.order_by("-pk").values_list("pk", flat=True).first()


def sigterm_measure(double, process: subprocess.Popen, client, slow_seconds: float) -> dict:
    """Stop a worker while Discord answers slowly: it finishes the delivery in hand and exits 0."""
    from notifications_app.models import Delivery

    double.set_mode("slow", delay=slow_seconds)
    before = double.total_posts()
    conversation_run(client, 10_000, 1)
    while double.in_flight() == 0:
        time.sleep(0.01)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    result = {
        "exit_code": process.returncode,
        "seconds_to_exit": round(time.monotonic() - sent, 2),
        "posts_completed_after_signal": double.total_posts() - before,
        "in_progress_left": Delivery.objects.filter(status=Delivery.Status.IN_PROGRESS).count(),
        "pending_left": Delivery.objects.filter(status=Delivery.Status.PENDING).count(),
    }
    double.set_mode("ok")
    return result


def scratch_database(url: str | None) -> str:  # pragma: no cover - run by hand, see the module docstring
    """A database URL nobody else uses: a temporary SQLite file, or a fresh PostgreSQL database."""
    if not url:
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-delivery-')}/db.sqlite3"
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS bench_delivery WITH (FORCE)")
        admin.execute("CREATE DATABASE bench_delivery")
    return urlunsplit(parts._replace(path="/bench_delivery"))


def free_port() -> int:  # pragma: no cover - run by hand, see the module docstring
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def double_start():  # pragma: no cover - run by hand, see the module docstring
    """The double in a process of its own, so that driving the API here does not slow its answers."""
    from testing.discord_server import RemoteDouble

    api_port, control_port = free_port(), free_port()
    command = [sys.executable, "-m", "testing.discord_server", "--port", str(api_port), "--control-port"]
    process = subprocess.Popen([*command, str(control_port)], cwd=PROJECT, stdout=subprocess.DEVNULL)  # noqa: S603  # nosec B603
    double = RemoteDouble(
        api_port=api_port,
        control_port=control_port,
        token="test-bot-token",  # noqa: S106 - the double's own  # nosec B106
        channel_id=1100000000000000001,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            double.state()
            return double, process
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:  # pragma: no cover - run by hand, see the module docstring
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5, help="visitor messages per session")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1, help="visitors chatting at the same time")
    parser.add_argument("--model-seconds", type=float, default=0.0, help="how long the fake model takes")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds the double is down mid-run")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to create bench_delivery on")
    args = parser.parse_args()

    double, double_process = double_start()
    try:
        os.environ.update(
            {
                "DATABASE_URL": scratch_database(args.database_url),
                "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-" + "x" * 40),
                "DISCORD_ENABLED": "True",
                "DISCORD_BOT_TOKEN": double.token,
                "DISCORD_CHANNEL_ID": str(double.channel_id),
                "DISCORD_API_BASE": double.api_base,
                "RATE_LIMITING_ENABLED": "False",
                "MAX_MESSAGES_PER_SESSION": str(max(50, args.messages)),
                "LOG_LEVEL": "WARNING",
                "DJANGO_SETTINGS_MODULE": "chatapi.settings",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        from chat_app import llm

        call_command("migrate", verbosity=0)

        async def fake_model(*, messages):
            await asyncio.sleep(args.model_seconds)
            return llm.Completion(
                content="A helpful answer.",
                model="fake",
                latency_ms=1,
                prompt_tokens=1,
                completion_tokens=1,
                cost_usd=None,
            )

        llm.chat_complete = fake_model
        report = bench_run(
            double=double,
            sessions=args.sessions,
            messages=args.messages,
            workers=args.workers,
            concurrency=args.concurrency,
            outage=args.outage,
        )
        report.model_seconds = args.model_seconds
    finally:
        double_process.terminate()
        double_process.wait(10)
    print(json.dumps(asdict(report), indent=2))
    sys.exit(0 if report.in_order_exactly_once and report.sigterm.get("exit_code") == 0 else 1)


if __name__ == "__main__":
    main()
