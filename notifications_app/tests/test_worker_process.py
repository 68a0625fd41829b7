"""The real `manage.py notifications_worker` process: killed and restarted, stopped, run twice over."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from notifications_app.models import Delivery, DiscordThread
from sessions_app.tests.factories import exchange_make, session_make

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = Path(settings.BASE_DIR)


class WorkerProcess:
    """A worker process whose output (its log and its last word) is collected as it is written."""

    def __init__(self, double, *args: str) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DISCORD_ENABLED": "True",
            "DISCORD_BOT_TOKEN": double.token,
            "DISCORD_CHANNEL_ID": str(double.channel_id),
            "DISCORD_API_BASE": double.api_base,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
        }
        command = [sys.executable, "manage.py", "notifications_worker", "--poll-interval", "0.1", *args]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.log = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.log += line

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


STARTED: list[WorkerProcess] = []


def worker_process(double, *args: str) -> WorkerProcess:
    worker = WorkerProcess(double, *args)
    STARTED.append(worker)
    return worker


@pytest.fixture(autouse=True)
def _no_stray_workers(transactional_db):
    """Whatever a test does, none of its workers outlives it: they go before the tables are emptied."""
    yield
    while STARTED:
        STARTED.pop().kill()


def database_url() -> str:
    """The test database, as the worker process must find it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition, *workers: WorkerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or any(w.process.poll() is not None for w in workers):
            for worker in workers:
                worker.kill()
            pytest.fail("condition not met; worker logs:\n" + "\n".join(w.log[-3000:] for w in workers))
        time.sleep(0.02)


def conversations(sessions: int, exchanges: int) -> list:
    started = [session_make(email=f"v{n}@example.com").session for n in range(sessions)]
    for turn in range(exchanges):
        for session in started:
            exchange_make(session=session, text=f"turn {turn}")
    return started


def assert_every_message_once_in_its_thread(double, sessions) -> None:
    posts = double.thread_posts()
    assert len(double.opening_messages()) == len(posts) == len(sessions)
    for session in sessions:
        thread = DiscordThread.objects.get(session=session)
        expected = [f"message {pk}" for pk in session.messages.order_by("id").values_list("pk", flat=True)]
        assert [post["embeds"][0]["footer"]["text"] for post in posts[thread.thread_id]] == expected
    assert not Delivery.objects.exclude(status="done").exists()


def test_worker_process_killed_mid_delivery_and_restarted_posts_exactly_once(double):
    sessions = conversations(sessions=3, exchanges=2)
    double.set_mode("slow", delay=0.15)
    killed = worker_process(double)
    # Three openings and two messages posted, the last one's answer still on its way back.
    wait_for(lambda: double.total_posts() >= 5 and double.in_flight() > 0, killed)

    killed.signal(signal.SIGKILL)
    killed.wait()
    stranded = Delivery.objects.filter(status="in_progress")  # the batch in hand, one of them half done
    assert stranded.exists()
    stranded.update(claimed_at=timezone.now() - timezone.timedelta(hours=1))  # their lease runs out
    double.set_mode("ok")

    restarted = worker_process(double, "--once")

    assert restarted.wait() == 0, restarted.log
    assert_every_message_once_in_its_thread(double, sessions)


def test_worker_process_sigterm_finishes_delivery_in_hand_and_exits_zero(double):
    conversations(sessions=2, exchanges=2)
    double.set_mode("slow", delay=0.25)
    worker = worker_process(double)
    wait_for(lambda: double.total_posts() >= 1 and double.in_flight() > 0, worker)  # a post's answer pending

    worker.signal(signal.SIGTERM)

    assert worker.wait(timeout=10) == 0, worker.log
    done = Delivery.objects.filter(status="done").count()
    assert f"notifications worker stopped after {done} deliveries" in worker.log
    assert 1 <= done < Delivery.objects.count()
    assert not Delivery.objects.filter(status="in_progress").exists()
    assert double.in_flight() == 0
    assert "Traceback" not in worker.log


def test_worker_process_refuses_to_run_when_disabled(double):
    env = {**os.environ, "DATABASE_URL": database_url(), "DISCORD_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "manage.py", "notifications_worker", "--once"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 1
    assert "DISCORD_ENABLED is off" in done.stderr


def test_two_worker_processes_deliver_each_once_in_order(double):
    sessions = conversations(sessions=8, exchanges=2)
    Delivery.objects.update(next_attempt_at=timezone.now() + timezone.timedelta(hours=1))  # held until both run
    double.set_mode("slow", delay=0.03)
    workers = [worker_process(double), worker_process(double)]
    wait_for(lambda: all("discord worker started" in w.log for w in workers), *workers)

    Delivery.objects.update(next_attempt_at=timezone.now())
    wait_for(lambda: not Delivery.objects.exclude(status="done").exists(), *workers, timeout=60)
    for worker in workers:
        worker.signal(signal.SIGTERM)

    assert [worker.wait() for worker in workers] == [0, 0], [worker.log for worker in workers]
    assert_every_message_once_in_its_thread(double, sessions)
    assert Delivery.objects.values("claimed_by").distinct().count() == 2  # both took part
