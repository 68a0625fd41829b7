"""Reads of the delivery queue: what a worker may claim now, and a session's Discord thread."""

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet

from notifications_app.models import Delivery, DiscordThread


def deliveries_claimable(*, now: datetime, lease: timedelta) -> QuerySet[Delivery]:
    """Due deliveries, oldest first, each the earliest still open in its session.

    Due: pending with `next_attempt_at` passed, or claimed longer than `lease` ago (its worker is
    taken for dead). A later delivery of a session waits while an earlier one is pending (even
    backing off) or in progress, so a session's deliveries arrive in the order they were queued.
    """
    earlier_open = Delivery.objects.filter(
        session_id=OuterRef("session_id"), id__lt=OuterRef("id"), status__in=Delivery.OPEN_STATUSES
    )
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.IN_PROGRESS, claimed_at__lt=now - lease
    )
    return Delivery.objects.filter(due).filter(~Exists(earlier_open)).order_by("id")


def discord_thread_for_session(*, session_id: str) -> DiscordThread | None:
    return DiscordThread.objects.filter(session_id=session_id).first()


def deliveries_open_count() -> int:
    return Delivery.objects.filter(status__in=Delivery.OPEN_STATUSES).count()
