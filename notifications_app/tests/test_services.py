"""The queue rules: per-session order, claims that never collide, leases, backoff, failure, retry."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications_app.models import Delivery, DiscordThread
from notifications_app.services import (
    deliveries_claim,
    deliveries_retry,
    delivery_claim,
    delivery_claim_renew,
    delivery_done,
    delivery_policy,
    delivery_release,
    delivery_retry_later,
    discord_thread_store,
    retry_delay,
)
from sessions_app.models import ChatSession
from sessions_app.tests.factories import exchange_make, session_make

pytestmark = pytest.mark.django_db


def queue(session: ChatSession, exchanges: int = 1) -> list[Delivery]:
    """The session's deliveries: its opening, then two per exchange."""
    for _ in range(exchanges):
        exchange_make(session=session)
    return list(Delivery.objects.filter(session=session).order_by("id"))


def claim(worker: str = "w1") -> Delivery | None:
    return delivery_claim(worker_id=worker)


def test_delivery_claim_marks_in_progress_and_counts_attempt(discord_on):
    opening, *_ = queue(session_make().session)

    claimed = claim()

    assert claimed.pk == opening.pk
    stored = Delivery.objects.get(pk=opening.pk)
    assert (stored.status, stored.attempts, stored.claimed_by) == ("in_progress", 1, "w1")
    assert stored.claimed_at is not None


def test_delivery_claim_keeps_each_session_in_order(discord_on):
    a_open, a_first, _ = queue(session_make(email="a@example.com").session)
    b_open, *_ = queue(session_make(email="b@example.com").session)

    assert claim().pk == a_open.pk
    assert claim().pk == b_open.pk  # a's next waits while a's opening is in progress
    assert claim() is None

    delivery_done(delivery=Delivery.objects.get(pk=a_open.pk), worker_id="w1")
    assert claim().pk == a_first.pk


def test_delivery_claim_waits_behind_an_earlier_delivery_backing_off(discord_on):
    _, first, _ = queue(session_make().session)
    delivery_done(delivery=claim(), worker_id="w1")

    delivery_retry_later(delivery=claim(), worker_id="w1", reason="HTTP 503 (code 0)")

    assert Delivery.objects.get(pk=first.pk).status == "pending"
    assert claim() is None  # the reply must not overtake the message it answers


def test_delivery_claim_passes_a_failed_delivery(discord_on):
    opening, first, reply = queue(session_make().session)
    Delivery.objects.filter(pk__in=[opening.pk, first.pk]).update(status="failed")

    assert claim().pk == reply.pk


def test_deliveries_claim_batch_takes_one_per_session_in_id_order(discord_on):
    a_open, *_ = queue(session_make(email="a@example.com").session, exchanges=2)
    b_open, *_ = queue(session_make(email="b@example.com").session, exchanges=2)

    batch = deliveries_claim(worker_id="w1", limit=10)

    assert [d.pk for d in batch] == [a_open.pk, b_open.pk]
    assert all(d.status == "in_progress" and d.attempts == 1 for d in batch)
    assert Delivery.objects.filter(status="in_progress").count() == 2


def test_deliveries_claim_query_count_is_flat(discord_on, django_assert_num_queries):
    for n in range(5):
        queue(session_make(email=f"v{n}@example.com").session)

    with django_assert_num_queries(4):  # savepoint, select for update, one update, release
        assert len(deliveries_claim(worker_id="w1", limit=10)) == 5


def test_delivery_claim_renew_keeps_a_held_claim_and_spots_a_lost_one(discord_on):
    (opening,) = queue(session_make().session, exchanges=0)
    held = claim("w1")
    assert delivery_claim_renew(delivery=held, worker_id="w1") is True  # fresh: no query needed

    old = timezone.now() - delivery_policy().lease + timedelta(seconds=1)
    Delivery.objects.filter(pk=opening.pk).update(claimed_at=old)
    held.claimed_at = old
    assert delivery_claim_renew(delivery=held, worker_id="w1") is True
    assert Delivery.objects.get(pk=opening.pk).claimed_at > old

    Delivery.objects.filter(pk=opening.pk).update(claimed_by="w2")
    held.claimed_at = old
    assert delivery_claim_renew(delivery=held, worker_id="w1") is False


def test_delivery_claim_skips_deliveries_not_yet_due(discord_on):
    (opening,) = queue(session_make().session, exchanges=0)
    Delivery.objects.filter(pk=opening.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert claim() is None


def test_delivery_claim_reclaims_after_lease_expires(discord_on):
    (opening,) = queue(session_make().session, exchanges=0)
    first = claim("dead-worker")
    assert claim("w2") is None

    lease = delivery_policy().lease
    Delivery.objects.filter(pk=opening.pk).update(claimed_at=timezone.now() - lease - timedelta(seconds=1))
    taken = claim("w2")

    assert (taken.pk, taken.claimed_by, taken.attempts) == (opening.pk, "w2", 2)
    delivery_done(delivery=first, worker_id="dead-worker")  # the old holder no longer settles it
    assert Delivery.objects.get(pk=opening.pk).status == "in_progress"
    delivery_done(delivery=taken, worker_id="w2")
    assert Delivery.objects.get(pk=opening.pk).status == "done"


def test_delivery_claim_query_count(discord_on, django_assert_num_queries):
    queue(session_make().session)

    with django_assert_num_queries(4):  # savepoint, select for update, update, release
        claim()


@pytest.mark.django_db(transaction=True)
def test_delivery_claim_concurrent_claimers_take_each_delivery_once(discord_on):
    for n in range(6):
        queue(session_make(email=f"v{n}@example.com").session)
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        try:
            while (delivery := delivery_claim(worker_id=name)) is not None:
                with lock:
                    claimed.append(delivery.pk)
                delivery_done(delivery=delivery, worker_id=name)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(claimed) == sorted(Delivery.objects.values_list("pk", flat=True))
    assert len(claimed) == len(set(claimed)) == 18


def test_retry_delay_grows_exponentially_with_jitter(discord_on):
    discord_on.DISCORD_RETRY_BASE_SECONDS, discord_on.DISCORD_RETRY_MAX_SECONDS = 5, 600
    policy = delivery_policy()

    delays = {n: [retry_delay(attempts=n, policy=policy) for _ in range(50)] for n in (1, 4, 20)}

    assert all(2.5 <= d <= 5 for d in delays[1])
    assert all(20 <= d <= 40 for d in delays[4])
    assert all(300 <= d <= 600 for d in delays[20])
    assert len(set(delays[4])) > 1  # jittered
    assert retry_delay(attempts=1, policy=policy, retry_after=30) == 30  # Discord's wait wins


def test_delivery_retry_later_reschedules_then_fails_after_max_attempts(discord_on):
    discord_on.DISCORD_MAX_ATTEMPTS = 3
    discord_on.DISCORD_RETRY_BASE_SECONDS = 0
    (opening,) = queue(session_make().session, exchanges=0)

    statuses = []
    for _ in range(3):
        delivery = claim()
        statuses.append(delivery_retry_later(delivery=delivery, worker_id="w1", reason="HTTP 503 (code 0)").status)

    assert statuses == ["pending", "pending", "failed"]
    stored = Delivery.objects.get(pk=opening.pk)
    assert (stored.status, stored.attempts, stored.last_error) == ("failed", 3, "HTTP 503 (code 0)")
    assert claim() is None


def test_delivery_retry_later_honours_retry_after(discord_on):
    (opening,) = queue(session_make().session, exchanges=0)
    before = timezone.now()

    delivery_retry_later(delivery=claim(), worker_id="w1", reason="rate limited", retry_after=42)

    assert Delivery.objects.get(pk=opening.pk).next_attempt_at >= before + timedelta(seconds=42)


def test_delivery_release_gives_back_without_counting(discord_on):
    (opening,) = queue(session_make().session, exchanges=0)

    delivery_release(delivery=claim(), worker_id="w1")

    stored = Delivery.objects.get(pk=opening.pk)
    assert (stored.status, stored.attempts) == ("pending", 0)
    assert claim().pk == opening.pk


def test_deliveries_retry_requeues_only_failed(discord_on):
    opening, first, reply = queue(session_make().session)
    Delivery.objects.filter(pk=opening.pk).update(status="failed", attempts=8, last_error="HTTP 403 (code 50001)")
    Delivery.objects.filter(pk=first.pk).update(status="done")

    assert deliveries_retry(delivery_ids=[opening.pk, first.pk, reply.pk]) == 1

    stored = Delivery.objects.get(pk=opening.pk)
    assert (stored.status, stored.attempts) == ("pending", 0)
    assert stored.next_attempt_at <= timezone.now()
    assert Delivery.objects.get(pk=first.pk).status == "done"


def test_discord_thread_store_records_thread(discord_on):
    session = session_make().session

    thread = discord_thread_store(session_id=session.pk, thread_id=42, channel_id=1, opening_message_id=42)

    assert DiscordThread.objects.get(session=session) == thread
    assert discord_thread_store(session_id=session.pk, thread_id=42, channel_id=1, opening_message_id=42) == thread


def test_discord_thread_store_queues_deletion_when_session_erased_meanwhile(discord_on):
    session = session_make().session
    session_id = session.pk
    session.delete()

    assert discord_thread_store(session_id=session_id, thread_id=42, channel_id=1, opening_message_id=42) is None

    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.payload["thread_id"]) == ("thread_deleted", "42")
    assert not DiscordThread.objects.exists()
