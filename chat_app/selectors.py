"""Reads of chat messages, always scoped to the session that owns them."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession


def reply_of(message: ChatMessage) -> ChatMessage | None:
    """The assistant reply linked to a visitor message, or None while there is none."""
    try:
        return message.reply
    except ObjectDoesNotExist:
        return None


def reply_stored_for(*, message: ChatMessage) -> ChatMessage | None:
    """The reply stored for `message`, read afresh: a replay polls it while the first request runs."""
    return ChatMessage.objects.filter(in_reply_to=message).first()


@dataclass(frozen=True)
class Exchange:
    """A visitor message and the text of exactly its own reply ("" while there is none).

    `partial`: the reply was cut short (a stream the model broke off or the visitor left).
    """

    id: int
    message: str
    response: str
    timestamp: datetime
    flagged: bool
    partial: bool


def history_for_session(*, session: ChatSession, limit: int) -> list[Exchange]:
    """The newest `limit` exchanges, oldest first; one query joining each message to its reply.

    Plain rows, not model instances: building 100 instances per page was a quarter of its CPU.
    """
    newest = (
        ChatMessage.objects.filter(session=session, kind=ChatMessage.Kind.USER)
        .order_by("-id")
        .values_list("id", "content", "reply__content", "created_at", "flagged", "reply__partial")[:limit]
    )
    return [
        Exchange(
            id=pk, message=content, response=reply or "", timestamp=created_at, flagged=flagged, partial=bool(partial)
        )
        for pk, content, reply, created_at, flagged, partial in reversed(newest)
    ]


def context_for_message(*, message: ChatMessage, size: int) -> list[dict[str, str]]:
    """The `size` stored messages before `message`, as alternating user/assistant turns; one query.

    Exchanges still waiting for their reply (a concurrent request) are left out, so turns alternate.
    """
    if size <= 0:
        return []
    exchanges = (
        ChatMessage.objects.filter(session_id=message.session_id, kind=ChatMessage.Kind.USER, id__lt=message.id)
        .order_by("-id")
        .values_list("content", "reply__content")[: size // 2 + 1]
    )
    turns: list[dict[str, str]] = []
    for content, reply in reversed(exchanges):  # plain rows: no model instances on the hot path
        if reply is not None:
            turns.append({"role": "user", "content": content})
            turns.append({"role": "assistant", "content": reply})
    return turns[-size:]


def turn_for_idempotency_key(*, session: ChatSession, key: str) -> ChatMessage | None:
    """The visitor message first sent with this key in this session, its reply joined in."""
    return (
        ChatMessage.objects.filter(session=session, kind=ChatMessage.Kind.USER, idempotency_key=key)
        .select_related("reply")
        .first()
    )
