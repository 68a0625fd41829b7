"""Writes of the delivery queue: enqueue, claim, settle (done, retry later, fail, release), retry."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_guid import get_guid

from notifications_app.models import Delivery, DiscordThread
from notifications_app.selectors import deliveries_claimable
from sessions_app.models import ChatSession

WAKE_CHANNEL = "notifications_delivery"


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    lease: timedelta
    attempt_timeout: float


def delivery_policy() -> DeliveryPolicy:
    """Retry and lease settings, read at each use so a changed setting takes effect at once.

    The lease outlasts a delivery's two Discord calls at most (opening a missing thread, then the
    post) and stays inside the few minutes in which Discord de-duplicates a post by its nonce, so
    a delivery taken over from a dead worker is never posted twice.
    """
    return DeliveryPolicy(
        max_attempts=settings.DISCORD_MAX_ATTEMPTS,
        retry_base_seconds=settings.DISCORD_RETRY_BASE_SECONDS,
        retry_max_seconds=settings.DISCORD_RETRY_MAX_SECONDS,
        lease=timedelta(seconds=settings.DISCORD_LEASE_SECONDS),
        attempt_timeout=settings.DISCORD_ATTEMPT_TIMEOUT,
    )


def delivery_enqueue(
    *,
    kind: str,
    session_id: str | None = None,
    message_id: int | None = None,
    payload: dict | None = None,
) -> Delivery:
    """Queue a delivery in the caller's transaction: it commits or rolls back with the caller's write.

    Wake the workers with `transaction.on_commit(delivery_worker_wake)`, never before the commit.
    """
    return Delivery.objects.create(
        kind=kind,
        session_id=session_id,
        message_id=message_id,
        payload=payload or {},
        request_id=(get_guid() or "")[:64],
    )


def delivery_worker_wake() -> None:
    """Tell idle workers there is work. PostgreSQL workers LISTEN for it; elsewhere they poll."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {WAKE_CHANNEL}")


def deliveries_claim(*, worker_id: str, limit: int = 1, now: datetime | None = None) -> list[Delivery]:
    """Take up to `limit` deliverable deliveries for `worker_id`, at most one per session, oldest first.

    Deliver them outside any transaction. SKIP LOCKED lets concurrent workers pass over rows another
    is claiming (PostgreSQL); SQLite's IMMEDIATE transactions serialize the claims instead. The
    attempt is counted here, so a delivery that kills its worker every time still ends up failed.
    """
    now = now or timezone.now()
    claimable = deliveries_claimable(now=now, lease=delivery_policy().lease)
    with transaction.atomic():
        batch = list(
            claimable.select_related("session", "message").select_for_update(skip_locked=True, of=("self",))[:limit]
        )
        if batch:
            Delivery.objects.filter(pk__in=[d.pk for d in batch]).update(
                status=Delivery.Status.IN_PROGRESS, claimed_at=now, claimed_by=worker_id, attempts=F("attempts") + 1
            )
    for delivery in batch:
        delivery.status, delivery.claimed_at, delivery.claimed_by = Delivery.Status.IN_PROGRESS, now, worker_id
        delivery.attempts += 1
    return batch


def delivery_claim(*, worker_id: str, now: datetime | None = None) -> Delivery | None:
    batch = deliveries_claim(worker_id=worker_id, limit=1, now=now)
    return batch[0] if batch else None


def delivery_claim_renew(*, delivery: Delivery, worker_id: str) -> bool:
    """Extend the lease of a delivery still held, before starting on it; False if another took it."""
    now = timezone.now()
    if now - delivery.claimed_at < delivery_policy().lease / 2:
        return True  # nobody can have taken it over yet
    renewed = _held(delivery, worker_id).update(claimed_at=now)
    delivery.claimed_at = now
    return bool(renewed)


def _held(delivery: Delivery, worker_id: str):
    """The delivery while `worker_id` still holds it; empty once another worker took over its lease."""
    return Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.IN_PROGRESS, claimed_by=worker_id)


def delivery_done(*, delivery: Delivery, worker_id: str) -> Delivery:
    delivery.delivered_at = timezone.now()
    _held(delivery, worker_id).update(status=Delivery.Status.DONE, delivered_at=delivery.delivered_at, last_error="")
    delivery.status = Delivery.Status.DONE
    return delivery


def retry_delay(*, attempts: int, policy: DeliveryPolicy, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), never sooner than Discord asked."""
    ceiling = min(policy.retry_max_seconds, policy.retry_base_seconds * 2 ** max(0, attempts - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security  # nosec B311
    return max(delay, retry_after or 0.0)


def delivery_retry_later(
    *, delivery: Delivery, worker_id: str, reason: str, retry_after: float | None = None
) -> Delivery:
    """Schedule another attempt with backoff, or mark the delivery failed once attempts run out."""
    policy = delivery_policy()
    if delivery.attempts >= policy.max_attempts:
        return delivery_fail(delivery=delivery, worker_id=worker_id, reason=reason)
    delay = retry_delay(attempts=delivery.attempts, policy=policy, retry_after=retry_after)
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    delivery.status, delivery.last_error = Delivery.Status.PENDING, reason[:200]
    _held(delivery, worker_id).update(
        status=delivery.status,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        claimed_at=None,
    )
    return delivery


def delivery_fail(*, delivery: Delivery, worker_id: str, reason: str) -> Delivery:
    delivery.status, delivery.last_error = Delivery.Status.FAILED, reason[:200]
    _held(delivery, worker_id).update(status=delivery.status, last_error=delivery.last_error, claimed_at=None)
    return delivery


def delivery_release(*, delivery: Delivery, worker_id: str) -> Delivery:
    """Give back a delivery the worker stopped before finishing; its attempt does not count."""
    delivery.status, delivery.attempts = Delivery.Status.PENDING, delivery.attempts - 1
    _held(delivery, worker_id).update(
        status=delivery.status, attempts=F("attempts") - 1, next_attempt_at=timezone.now(), claimed_at=None
    )
    return delivery


def deliveries_retry(*, delivery_ids: list[int]) -> int:
    """Put failed deliveries back in the queue with a fresh set of attempts; returns how many."""
    retried = Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), claimed_at=None, claimed_by=""
    )
    if retried:
        transaction.on_commit(delivery_worker_wake, robust=True)
    return retried


def discord_thread_store(
    *, session_id: str, thread_id: int, channel_id: int, opening_message_id: int
) -> DiscordThread | None:
    """Record the thread opened for a session; None, with the thread queued for deletion, if the
    session was erased while the thread was being opened.
    """
    try:
        with transaction.atomic():
            if not ChatSession.objects.filter(pk=session_id).exists():
                raise IntegrityError("session erased while its thread was opened")
            thread, _ = DiscordThread.objects.get_or_create(
                session_id=session_id,
                defaults={"thread_id": thread_id, "channel_id": channel_id, "opening_message_id": opening_message_id},
            )
        return thread
    except IntegrityError:  # the session's own deletion missed this thread: erase it from Discord too
        orphan = DiscordThread(
            session_id=session_id, thread_id=thread_id, channel_id=channel_id, opening_message_id=opening_message_id
        )
        with transaction.atomic():
            thread_deletion_enqueue(thread=orphan)
        return None


def thread_deletion_enqueue(*, thread: DiscordThread) -> Delivery:
    """Queue the deletion of a session's thread and opening message, to outlive the session."""
    payload = {
        "thread_id": str(thread.thread_id),
        "channel_id": str(thread.channel_id),
        "message_id": str(thread.opening_message_id),
    }
    delivery = delivery_enqueue(kind=Delivery.Kind.THREAD_DELETED, payload=payload)
    transaction.on_commit(delivery_worker_wake, robust=True)
    return delivery
