"""Writes of visitor sessions: start, end, delete, and retention clean-up."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from sessions_app.hashing import browser_hash, email_hash
from sessions_app.models import ChatSession
from sessions_app.tokens import SessionToken, session_lifetime
from sessions_app.wakeups import session_wake
from usage_app.recording import usage_add

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartedSession:
    session: ChatSession
    access_token: str
    expires_in: int


def chat_session_start(*, email: str, user_agent: str, ip_address: str) -> StartedSession:
    now = timezone.now()
    lifetime = session_lifetime()
    with transaction.atomic():  # receivers queue deliveries inside this same transaction
        session = ChatSession.objects.create(
            email=email,
            email_hash=email_hash(email),
            browser_hash=browser_hash(user_agent),
            ip_address=ip_address,
            created_at=now,
            last_activity_at=now,
            expires_at=now + lifetime,
        )
        usage_add(at=now, sessions=1)  # the day's count, which outlives the session
    logger.info("chat session started", extra={"session_id": session.pk})
    token = SessionToken.for_session(session)
    return StartedSession(session=session, access_token=str(token), expires_in=int(lifetime.total_seconds()))


def chat_session_end(*, session: ChatSession, reason: str) -> ChatSession:
    """End a live session; ending an ended one changes nothing."""
    now = timezone.now()
    ended = ChatSession.objects.filter(pk=session.pk, is_active=True).update(
        is_active=False, ended_at=now, end_reason=reason
    )
    if ended:
        session.is_active, session.ended_at, session.end_reason = False, now, reason
        transaction.on_commit(partial(session_wake, session.pk), robust=True)  # open streams tell `end`
        logger.info("chat session ended", extra={"session_id": session.pk, "reason": reason})
    return session


def chat_session_delete(*, session: ChatSession) -> None:
    """Erase the session with its messages (and, through cascades, anything queued about it)."""
    session_id = session.pk
    with transaction.atomic():
        session.delete()
        transaction.on_commit(partial(session_wake, session_id), robust=True)  # open streams close
    logger.info("chat session deleted", extra={"session_id": session_id})


@dataclass(frozen=True)
class CleanupReport:
    expired_marked: int
    sessions_deleted: int
    messages_deleted: int


def sessions_cleanup(*, older_than_days: int, dry_run: bool = False, batch_size: int = 500) -> CleanupReport:
    """Mark expired sessions ended, then delete those that ended before the retention cut-off.

    Works in batches of `batch_size` rows so that no statement holds a huge table for long.
    """
    now = timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    expired = ChatSession.objects.filter(is_active=True, expires_at__lte=now)
    if dry_run:
        # An expired session counts as ended at its expiry, exactly as marking would record it.
        doomed = ChatSession.objects.filter(ended_at__lt=cutoff) | expired.filter(expires_at__lt=cutoff)
        return CleanupReport(
            expired_marked=expired.count(),
            sessions_deleted=doomed.count(),
            messages_deleted=doomed.aggregate(count=Count("messages"))["count"],
        )
    expired_marked = _in_batches(
        expired,
        batch_size,
        lambda ids: ChatSession.objects.filter(pk__in=ids, is_active=True).update(
            is_active=False, ended_at=F("expires_at"), end_reason=ChatSession.EndReason.EXPIRED
        ),
    )
    sessions_deleted = messages_deleted = 0
    doomed = ChatSession.objects.filter(is_active=False, ended_at__lt=cutoff)
    messages = _messages_label()
    while ids := list(doomed.values_list("pk", flat=True)[:batch_size]):
        with transaction.atomic():
            _, per_model = ChatSession.objects.filter(pk__in=ids).delete()
        sessions_deleted += per_model.get(ChatSession._meta.label, 0)
        messages_deleted += per_model.get(messages, 0)
    report = CleanupReport(expired_marked, sessions_deleted, messages_deleted)
    logger.info("sessions cleaned up", extra=report.__dict__)
    return report


def _messages_label() -> str:
    """The label of the messages a session holds, found through the reverse relation `messages`.

    Their app (chat_app) stands a floor above this one, so it is never imported here.
    """
    return ChatSession._meta.get_field("messages").related_model._meta.label


def _in_batches(queryset, batch_size: int, apply) -> int:
    done = 0
    while ids := list(queryset.values_list("pk", flat=True)[:batch_size]):
        done += apply(ids)
    return done
