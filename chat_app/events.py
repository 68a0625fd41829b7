"""A session's conversation as events: appended in the writer's transaction, read back by cursor.

The cursor is the decimal `seq` of the last event read, opaque to clients. The `end` event is not
stored: it is the session's own state (logged out, ended by staff, expired), told once at the end.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from chat_app.models import ChatEvent, ChatMessage
from sessions_app.models import ChatSession
from sessions_app.wakeups import session_wake

EVENTS_PAGE = 200
ROLES = {ChatMessage.Kind.USER: "visitor", ChatMessage.Kind.ASSISTANT: "assistant", ChatMessage.Kind.STAFF: "staff"}


@dataclass(frozen=True)
class NewEvent:
    kind: str
    message: ChatMessage | None = None
    data: dict | None = None


@dataclass(frozen=True)
class SessionUsage:
    """Tokens and cost a reply adds to its session's totals."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


def event_seq_take(*, session_id: str, count: int = 1, usage: SessionUsage | None = None) -> int:
    """Reserve `count` sequence numbers of the session; returns the first. Locks the session row.

    One UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35): the row lock held to the commit is what
    makes a session's events commit in seq order. A reply's `usage` joins the session's totals in
    the same statement, so counting it costs the chat turn no statement of its own.
    """
    table = connection.ops.quote_name(ChatSession._meta.db_table)  # the model's own name, not input
    added, values = "", []
    if usage is not None:
        added = (
            ", prompt_tokens = prompt_tokens + %s, completion_tokens = completion_tokens + %s, cost_usd = cost_usd + %s"
        )
        values = [usage.prompt_tokens, usage.completion_tokens, usage.cost_usd]
    sql = f"UPDATE {table} SET event_seq = event_seq + %s{added} WHERE id = %s RETURNING event_seq"  # noqa: S608  # nosec B608
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, *values, session_id])
        (last,) = cursor.fetchone()
    return last - count + 1


def events_append(
    *,
    session_id: str,
    events: list[NewEvent],
    now: datetime | None = None,
    session_usage: SessionUsage | None = None,
    first_seq: int | None = None,
) -> list[ChatEvent]:
    """Store `events` in the caller's transaction and wake the session's watchers once it commits.

    `first_seq`: the caller reserved the numbers itself, in its own UPDATE of the session row in this
    transaction (chat_app.services.chat_message_store); else they are taken here.
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):  # the caller's transaction when there is one
        first = first_seq
        if first is None:
            first = event_seq_take(session_id=session_id, count=len(events), usage=session_usage)
        stored = ChatEvent.objects.bulk_create(
            ChatEvent(
                session_id=session_id, seq=first + n, kind=e.kind, message=e.message, data=e.data or {}, created_at=now
            )
            for n, e in enumerate(events)
        )
        transaction.on_commit(partial(session_wake, session_id), robust=True)
    return stored


def message_event_append(
    message: ChatMessage, *, session_usage: SessionUsage | None = None, seq: int | None = None
) -> ChatEvent:
    event = NewEvent(ChatEvent.Kind.MESSAGE, message)
    return events_append(
        session_id=message.session_id,
        events=[event],
        now=message.created_at,
        session_usage=session_usage,
        first_seq=seq,
    )[0]


def cursor_parse(raw: str | None) -> int | None:
    """The seq a cursor names; 0 for none; None when it is not a cursor this API gave out."""
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def events_after(*, session: ChatSession, after: int, limit: int = EVENTS_PAGE) -> list[dict]:
    """The session's events after seq `after`, oldest first, in the contract's shapes; one query."""
    rows = (
        ChatEvent.objects.filter(session_id=session.pk, seq__gt=after)
        .order_by("seq")
        .values_list(
            "seq", "kind", "data", "created_at", "message_id", "message__kind", "message__content",
            "message__author", "message__created_at", "message__deleted_at",
        )[:limit]
    )  # fmt: skip
    return [_event_shape(*row) for row in rows]


def _event_shape(seq, kind, data, created_at, message_id, role, content, author, message_at, deleted_at) -> dict:
    event = {"id": str(seq), "type": kind}
    if kind == ChatEvent.Kind.MESSAGE:
        # A message withdrawn since is replayed empty; its `delete` event follows.
        return event | {
            "role": ROLES[role], "message_id": message_id, "content": "" if deleted_at else content,
            "author": author or None, "timestamp": message_at,
        }  # fmt: skip
    if kind == ChatEvent.Kind.EDIT:
        return event | {"message_id": message_id, "content": data.get("content", ""), "timestamp": created_at}
    if kind == ChatEvent.Kind.DELETE:
        return event | {"message_id": message_id, "timestamp": created_at}
    return event | {"mode": data.get("mode"), "author": data.get("author"), "timestamp": created_at}


def end_event(session: ChatSession, cursor: int) -> dict | None:
    """The `end` event when the session is over (logout, staff, expiry), else None."""
    now = timezone.now()
    if session.is_active and session.expires_at > now:
        return None
    reason = session.end_reason or ChatSession.EndReason.EXPIRED
    moment = session.ended_at or min(session.expires_at, now)
    return {"id": str(cursor), "type": "end", "reason": reason, "timestamp": moment}
