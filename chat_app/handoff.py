"""Human handoff: staff messages, who answers a session (the model or staff), and asking for a person.

Every write here locks the session row first (through the event sequence or SELECT ... FOR UPDATE),
so a staff message, a hand-back and the idle sweep racing on one session apply one after another.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from chat_app.events import NewEvent, events_append
from chat_app.models import ChatEvent, ChatMessage
from chat_app.sanitization import control_characters_remove
from chatapi.errors import DomainError
from sessions_app.models import ChatSession

logger = logging.getLogger(__name__)

HUMAN_REQUEST_QUIET = timedelta(minutes=1)
SESSION_OVER = "This chat session has ended; staff can no longer write to it."
STAFF_MESSAGE_BLANK = "Message must not be blank."
STAFF_MESSAGE_TOO_LONG = "Message must be at most {limit} characters."


class SessionOver(DomainError):
    status_code = 409
    default_detail = SESSION_OVER
    code = "session_ended"


class StaffMessageRejected(DomainError):
    field = "message"
    code = "invalid"


def staff_text_clean(raw: object) -> str:
    """A staff message as typed, less control characters and surrounding whitespace (chat rule 4)."""
    if not isinstance(raw, str):
        raise StaffMessageRejected("Must be a string.")
    if len(raw) > settings.MAX_MESSAGE_LENGTH:
        raise StaffMessageRejected(STAFF_MESSAGE_TOO_LONG.format(limit=settings.MAX_MESSAGE_LENGTH))
    text = control_characters_remove(raw).strip()
    if not text:
        raise StaffMessageRejected(STAFF_MESSAGE_BLANK)
    return text


def _live_locked(session_id: str) -> ChatSession:
    """The session row, locked to the end of the transaction; SessionOver once it ended or expired."""
    session = ChatSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None or not session.is_active or session.is_expired:
        raise SessionOver()
    return session


def staff_message_post(
    *, session_id: str, content: str, author: str, discord_message_id: int | None = None
) -> ChatMessage | None:
    """Store a staff message, put the session in human mode, and tell the visitor; one transaction.

    From Discord (`discord_message_id` set) it is stored once however many listeners relay it: the
    second gets None. From the API or the admin, the message's delivery posts it in the thread.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            session = _live_locked(session_id)
            message = ChatMessage.objects.create(
                session=session, kind=ChatMessage.Kind.STAFF, content=content, author=author[:100],
                discord_message_id=discord_message_id, created_at=now,
            )  # fmt: skip
            events = [NewEvent(ChatEvent.Kind.MESSAGE, message)]
            if session.mode != ChatSession.Mode.HUMAN:
                events.append(_mode_event(ChatSession.Mode.HUMAN, author))
            ChatSession.objects.filter(pk=session.pk).update(
                mode=ChatSession.Mode.HUMAN, last_staff_message_at=now,
                mode_changed_at=now if session.mode != ChatSession.Mode.HUMAN else session.mode_changed_at,
            )  # fmt: skip
            events_append(session_id=session.pk, events=events, now=now)
    except IntegrityError:
        if (
            discord_message_id is not None
            and ChatMessage.objects.filter(discord_message_id=discord_message_id).exists()
        ):
            return None  # another listener relayed it first
        raise
    logger.info("staff message stored", extra={"session_id": session_id, "message_id": message.pk})
    return message


def staff_message_edit(*, discord_message_id: int, content: str) -> ChatMessage | None:
    """A staff message edited in Discord: the new text, and an `edit` event; None if not ours."""
    now = timezone.now()
    with transaction.atomic():
        message = ChatMessage.objects.select_for_update().filter(discord_message_id=discord_message_id).first()
        if message is None or message.deleted_at or message.content == content:
            return None
        message.content, message.edited_at = content, now
        message.save(update_fields=["content", "edited_at"])
        events_append(
            session_id=message.session_id,
            events=[NewEvent(ChatEvent.Kind.EDIT, message, {"content": content})],
            now=now,
        )
    return message


def staff_message_withdraw(*, discord_message_id: int) -> ChatMessage | None:
    """A staff message deleted in Discord: kept for staff, marked deleted, and a `delete` event."""
    now = timezone.now()
    with transaction.atomic():
        message = ChatMessage.objects.select_for_update().filter(discord_message_id=discord_message_id).first()
        if message is None or message.deleted_at:
            return None
        message.deleted_at = now
        message.save(update_fields=["deleted_at"])
        events_append(session_id=message.session_id, events=[NewEvent(ChatEvent.Kind.DELETE, message)], now=now)
    return message


def session_release(*, session_id: str, author: str | None = None) -> bool:
    """Hand the session back to the model; False when the model already answers it."""
    now = timezone.now()
    with transaction.atomic():
        released = ChatSession.objects.filter(pk=session_id, mode=ChatSession.Mode.HUMAN).update(
            mode=ChatSession.Mode.AI, mode_changed_at=now
        )
        if released:
            events_append(session_id=session_id, events=[_mode_event(ChatSession.Mode.AI, author)], now=now)
    if released:
        logger.info("session handed back to the model", extra={"session_id": session_id})
    return bool(released)


def idle_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.HANDOFF_IDLE_SECONDS)


def is_human_idle(session: ChatSession, now: datetime | None = None) -> bool:
    """In human mode with no staff message for HANDOFF_IDLE_SECONDS."""
    last = session.last_staff_message_at or session.mode_changed_at
    return session.mode == ChatSession.Mode.HUMAN and (last is None or last <= idle_cutoff(now))


def idle_sessions_release(*, now: datetime | None = None, batch_size: int = 100) -> int:
    """The idle hand-back's sweep: every human-mode session idle for HANDOFF_IDLE_SECONDS goes back."""
    cutoff = idle_cutoff(now)
    idle = ChatSession.objects.filter(mode=ChatSession.Mode.HUMAN).filter(
        Q(last_staff_message_at__lte=cutoff) | Q(last_staff_message_at__isnull=True, mode_changed_at__lte=cutoff)
    )
    released = 0
    for session_id in idle.values_list("pk", flat=True)[:batch_size]:
        released += session_release(session_id=session_id)
    return released


def human_request(*, session: ChatSession) -> bool:
    """The visitor asks for a person: True when staff are pinged, False within a minute of the last ask."""
    now = timezone.now()
    with transaction.atomic():  # receivers queue the ping inside this same transaction
        asked = ChatSession.objects.filter(
            Q(human_requested_at__isnull=True) | Q(human_requested_at__lte=now - HUMAN_REQUEST_QUIET), pk=session.pk
        ).update(human_requested_at=now)
        if asked:
            from chat_app.signals import human_requested

            human_requested.send(sender=ChatSession, session=session)
    return bool(asked)


def _mode_event(mode: str, author: str | None) -> NewEvent:
    return NewEvent(ChatEvent.Kind.MODE, data={"mode": mode, "author": author or None})
