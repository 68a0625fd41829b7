"""The worker in-process with the real discord.py client and the REST double over a real socket."""

import logging
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from notifications_app import worker as worker_module
from notifications_app.models import Delivery, DiscordThread
from notifications_app.services import deliveries_retry, delivery_claim
from notifications_app.tests.conftest import drain
from notifications_app.worker import DeliveryWorker
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_delete
from sessions_app.tests.factories import BROWSER_UA, exchange_make, session_make

pytestmark = pytest.mark.django_db(transaction=True)


def conversations(sessions: int, exchanges: int) -> list[ChatSession]:
    """Sessions whose exchanges interleave, as concurrent visitors' would."""
    started = [session_make(email=f"v{n}@example.com").session for n in range(sessions)]
    for turn in range(exchanges):
        for n, session in enumerate(started):
            exchange_make(session=session, text=f"visitor {n} says {turn}", reply=f"answer {n}.{turn}")
    return started


def assert_every_message_once_in_its_thread(double, sessions: list[ChatSession]) -> None:
    posts = double.thread_posts()
    openings = double.opening_messages()
    assert len(openings) == len(posts) == len(sessions)
    for session in sessions:
        thread = DiscordThread.objects.get(session=session)
        expected = [f"message {pk}" for pk in session.messages.order_by("id").values_list("pk", flat=True)]
        assert [post["embeds"][0]["footer"]["text"] for post in posts[thread.thread_id]] == expected
    assert double.total_posts() == len(sessions) + sum(s.messages.count() for s in sessions)
    assert not Delivery.objects.exclude(status="done").exists()


def later(seconds: float, action) -> threading.Thread:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_worker_opens_a_thread_per_session_and_posts_each_message_in_order(double, worker):
    sessions = conversations(sessions=4, exchanges=3)

    drain(worker)

    assert_every_message_once_in_its_thread(double, sessions)
    for post in double.opening_messages() + [p for posts in double.thread_posts().values() for p in posts]:
        assert post["allowed_mentions"] == {"parse": []}
    (opening, *_) = double.opening_messages()
    assert opening["embeds"][0]["title"] == "New chat session"


def test_worker_delivers_everything_once_after_discord_was_down(double, worker):
    double.set_mode("down")
    sessions = conversations(sessions=3, exchanges=2)
    worker.run(once=True)
    assert Delivery.objects.filter(attempts__gte=1, status="pending").exists()
    assert double.total_posts() == 0

    later(0.5, lambda: double.set_mode("ok"))
    drain(worker)

    assert_every_message_once_in_its_thread(double, sessions)
    assert Delivery.objects.filter(attempts__gt=1).exists()


def test_worker_delivers_through_rate_limits(double, worker):
    sessions = conversations(sessions=2, exchanges=2)
    double.set_mode("rate_limited", retry_after=0.05, count=6)

    drain(worker)

    assert_every_message_once_in_its_thread(double, sessions)
    assert len(double.requests(status=429)) == 6


def test_worker_reschedules_long_rate_limit(double, worker):
    sessions = conversations(sessions=1, exchanges=1)
    double.set_mode("rate_limited", retry_after=31, count=1)  # longer than discord.py waits by itself
    worker.run(once=True)

    delivery = Delivery.objects.get(kind="session_opened")
    assert delivery.status == "pending"
    assert delivery.next_attempt_at >= timezone.now() + timezone.timedelta(seconds=29)
    assert delivery.last_error == "rate limited"
    Delivery.objects.update(next_attempt_at=timezone.now())
    drain(worker)
    assert_every_message_once_in_its_thread(double, sessions)


def test_worker_retries_server_errors(double, worker):
    sessions = conversations(sessions=2, exchanges=1)
    double.set_mode("error", status=503, count=3)

    drain(worker)

    assert_every_message_once_in_its_thread(double, sessions)
    assert Delivery.objects.filter(attempts__gt=1).exists()
    assert not Delivery.objects.exclude(last_error="").exists()


def test_worker_fails_after_max_attempts_and_admin_retry_delivers(double, worker, discord_on):
    discord_on.DISCORD_MAX_ATTEMPTS = 2
    sessions = conversations(sessions=1, exchanges=1)
    double.set_mode("error", status=503)

    drain(worker)

    opening = Delivery.objects.get(kind="session_opened")
    assert (opening.status, opening.attempts, opening.last_error) == ("failed", 2, "HTTP 503 (code 0)")
    double.set_mode("ok")
    deliveries_retry(delivery_ids=list(Delivery.objects.filter(status="failed").values_list("pk", flat=True)))
    drain(worker)
    assert_every_message_once_in_its_thread(double, sessions)


def test_worker_fails_rejected_post_at_once(double, worker):
    session = session_make().session
    drain(worker)
    thread = DiscordThread.objects.get(session=session)
    DiscordThread.objects.filter(pk=thread.pk).update(thread_id=123456789012345678)  # gone from Discord
    exchange_make(session=session)

    drain(worker)

    failed = Delivery.objects.filter(status="failed")
    assert failed.count() == 2
    assert {(d.attempts, d.last_error) for d in failed} == {(1, "HTTP 404 (code 10003)")}


def test_worker_opens_missing_thread_before_first_post(double, worker, discord_on):
    discord_on.DISCORD_ENABLED = False
    session = session_make().session  # started while Discord was off: no opening queued
    discord_on.DISCORD_ENABLED = True
    exchange_make(session=session)

    drain(worker)

    assert_every_message_once_in_its_thread(double, [session])


def test_worker_deletes_thread_and_opening_when_session_erased(double, worker):
    (session,) = conversations(sessions=1, exchanges=1)
    drain(worker)
    thread_id = DiscordThread.objects.get(session=session).thread_id

    chat_session_delete(session=session)
    drain(worker)

    assert double.threads() == [] and double.opening_messages() == []
    assert double.records.deleted_channels == [thread_id]
    assert Delivery.objects.get().kind == "thread_deleted"


def test_worker_erases_thread_opened_while_session_was_deleted(double, worker):
    session = session_make().session
    double.set_mode("slow", delay=0.2, count=3)  # the session goes while its thread is being opened

    def erase_once_discord_is_asked():
        while not double.in_flight():
            time.sleep(0.005)
        ChatSession.objects.filter(pk=session.pk).delete()
        connection.close()

    eraser = threading.Thread(target=erase_once_discord_is_asked)
    eraser.start()
    drain(worker)
    eraser.join()

    assert double.threads() == [] and double.opening_messages() == []
    assert list(Delivery.objects.values_list("kind", "status")) == [("thread_deleted", "done")]


def test_worker_logs_request_id_and_no_text(double, worker, caplog, client, fake_model, discord_on):
    discord_on.RATE_LIMITING_ENABLED = False
    response = client.post(
        "/api/v1/auth/email",
        {"email": "secret.person@example.com"},
        content_type="application/json",
        HTTP_USER_AGENT=BROWSER_UA,
        HTTP_X_REQUEST_ID="req-abc-123",
    )
    assert response.status_code == 201

    with caplog.at_level(logging.INFO, logger="notifications_app.worker"):
        drain(worker)

    (done,) = [r for r in caplog.records if r.getMessage() == "discord delivery done"]
    assert done.request_id == "req-abc-123"
    assert done.delivery_id == Delivery.objects.get().pk
    assert "secret.person" not in caplog.text


def test_chat_does_not_wait_on_slow_discord(double, worker, discord_on, api_client, fake_model):
    discord_on.RATE_LIMITING_ENABLED = False
    double.set_mode("slow", delay=5)
    token = api_client.post("/api/v1/auth/email", {"email": "v@example.com"}, format="json").json()["access_token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    started = time.monotonic()
    response = api_client.post("/api/v1/chat", {"message": "hello"}, format="json")

    assert response.status_code == 200
    assert time.monotonic() - started < 2.5  # far below the 5 s Discord takes
    assert double.requests() == []
    assert Delivery.objects.filter(status="pending").count() == 3


def test_worker_stop_finishes_delivery_in_hand(double, discord_on):
    conversations(sessions=2, exchanges=1)
    double.set_mode("slow", delay=0.2)

    with DeliveryWorker(poll_interval=0.05, shutdown_grace=5) as stopping:
        later(0.7, stopping.stop)  # after login and channel look-up, during the opening post
        stopping.run()

    assert Delivery.objects.filter(status="done").count() == 1
    assert not Delivery.objects.filter(status="in_progress").exists()
    assert double.in_flight() == 0


def test_worker_stop_releases_delivery_after_grace_and_nothing_doubles(double, discord_on):
    sessions = conversations(sessions=1, exchanges=1)
    double.set_mode("slow", delay=3)

    with DeliveryWorker(poll_interval=0.05, shutdown_grace=0.2) as stopping:
        later(0.3, stopping.stop)
        started = time.monotonic()
        stopping.run()
    assert time.monotonic() - started < 2.5  # the grace, not the 3 s answer

    opening = Delivery.objects.get(kind="session_opened")
    assert (opening.status, opening.attempts) == ("pending", 0)
    double.set_mode("ok")
    with DeliveryWorker(poll_interval=0.05) as restarted:
        drain(restarted)
    assert_every_message_once_in_its_thread(double, sessions)


class WorkerDied(BaseException):
    """The process vanishing: nothing in the worker catches it."""


def die_after_posting(monkeypatch, kind: str) -> Delivery:
    """Claim the next delivery, carry it to Discord, and die before recording it as done."""

    def died(**kwargs):
        raise WorkerDied

    monkeypatch.setattr(worker_module, "delivery_done", died)
    with DeliveryWorker(worker_id="dead") as dying:
        delivery = delivery_claim(worker_id="dead")
        assert delivery.kind == kind
        with pytest.raises(WorkerDied):
            dying.deliver(delivery)
    monkeypatch.undo()
    lease_expired = timezone.now() - timezone.timedelta(hours=1)
    Delivery.objects.filter(pk=delivery.pk, status="in_progress").update(claimed_at=lease_expired)
    return delivery


def test_worker_crash_after_post_is_not_posted_twice_on_reclaim(double, worker, monkeypatch):
    session = session_make().session
    opening = die_after_posting(monkeypatch, "session_opened")
    worker.run(once=True)  # takes the opening over: its thread is already recorded, nothing is re-sent
    exchange_make(session=session)

    message = die_after_posting(monkeypatch, "message_posted")
    drain(worker)  # takes the post over: Discord answers the repeated nonce with the message it made

    assert_every_message_once_in_its_thread(double, [session])
    assert Delivery.objects.get(pk=opening.pk).attempts == Delivery.objects.get(pk=message.pk).attempts == 2
    assert len(double.requests("POST")) == 1 + 1 + 3  # opening, thread, and the message twice plus its reply


def test_worker_retries_a_delivery_that_crashes_and_carries_on(double, worker, caplog):
    session = session_make().session
    broken = Delivery.objects.create(kind="thread_deleted", payload={"thread_id": "1"})  # lacks its other ids

    worker.run(once=True)

    broken.refresh_from_db()
    assert (broken.status, broken.last_error) == ("pending", "crash: KeyError")
    assert DiscordThread.objects.filter(session=session).exists()  # the others went through
    assert "discord delivery crashed" in caplog.text


def test_worker_waits_out_a_database_outage(double, worker, monkeypatch, caplog):
    calls = []

    def claim_failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        worker.stop()
        return []

    monkeypatch.setattr(worker_module, "deliveries_claim", claim_failing_once)

    assert worker.run() == 0
    assert len(calls) == 2
    assert "discord worker cannot reach the database" in caplog.text
    calls.clear()
    with DeliveryWorker() as once, pytest.raises(OperationalError):
        once.run(once=True)  # `--once` reports the outage instead of waiting


def test_worker_gives_up_on_a_slow_answer_and_retries_without_doubling(double, worker, discord_on):
    discord_on.DISCORD_ATTEMPT_TIMEOUT = 0.3
    first = conversations(sessions=1, exchanges=0)
    drain(worker)  # logged in, channel known: the next request is the post itself
    second = session_make(email="late@example.com").session
    double.set_mode("slow", delay=1.0)  # the post is made, but its answer comes too late
    worker.run(once=True)

    opening = Delivery.objects.get(session=second)
    assert (opening.status, opening.last_error) == ("pending", "no answer within 0.3s")
    assert len(double.opening_messages()) == 2
    double.set_mode("ok")
    drain(worker)
    assert_every_message_once_in_its_thread(double, [*first, second])
