"""A chat turn in three steps: store the visitor's message (commit), call the model, store the reply."""

import logging
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from chat_app import llm
from chat_app.models import ChatMessage
from chat_app.sanitization import (
    control_characters_remove,
    html_leftovers_remove,
    html_strip,
    html_strip_once,
    is_dangerous,
)
from chat_app.selectors import context_for_message, reply_of, turn_for_idempotency_key
from chatapi.db import connection_release
from chatapi.errors import DomainError, LimitExceeded
from sessions_app.authentication import SESSION_ENDED
from sessions_app.models import ChatSession

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = "Message limit reached: a session holds at most {limit} messages. Start a new session to continue."
REFUSAL_REPLY = (
    "I'm sorry, but I can't help with that message: parts of it look like code or commands that "
    "could be unsafe. For everyone's safety, please rephrase your question in plain words."
)
FALLBACK_REPLY = "Sorry, I can't answer right now. Your message has been saved; please try again in a moment."
STREAM_BROKEN = "The answer broke off; what arrived has been saved. Please ask again."
IDEMPOTENCY_IN_PROGRESS = "A request with this Idempotency-Key is still being answered; retry shortly."


class SessionCapReached(LimitExceeded):
    """The session holds its last message; Retry-After is the seconds until it expires."""

    code = "session_cap_reached"

    def __init__(self, *, session: ChatSession):
        detail = MESSAGE_LIMIT.format(limit=settings.MAX_MESSAGES_PER_SESSION)
        super().__init__(detail, retry_after=(session.expires_at - timezone.now()).total_seconds())


class SessionEnded(DomainError):
    status_code = 401
    default_detail = SESSION_ENDED
    code = "session_ended"


class IdempotencyConflict(DomainError):
    status_code = 409
    default_detail = IDEMPOTENCY_IN_PROGRESS
    code = "idempotency_in_progress"


@dataclass(frozen=True)
class VisitorText:
    """A visitor's message: plain text to store, and whether it matched a dangerous pattern."""

    text: str
    flagged: bool


@dataclass(frozen=True)
class ChatTurn:
    message: ChatMessage
    reply: ChatMessage


def visitor_text_prepare(raw: str) -> VisitorText:
    """Flag on the text as received; keep it as typed, less control characters and surrounding whitespace.

    Under INPUT_MARKUP_POLICY=strip an unflagged message also loses its HTML tags, and the stripped
    text is checked too (removing pieces can join a pattern: `<<b>script>`). A flagged message is
    kept as received under every policy, so staff see what was tried.
    """
    visible = control_characters_remove(raw)
    checked = [raw, visible]
    stripped = None
    if settings.INPUT_MARKUP_POLICY == "strip":
        once = html_strip_once(visible)
        stripped = html_leftovers_remove(once).strip()
        checked += [once, stripped]
    flagged = settings.INPUT_PATTERN_POLICY != "off" and any(map(is_dangerous, checked))
    text = stripped if stripped is not None and not flagged else visible.strip()
    return VisitorText(text=text, flagged=flagged)


def visitor_text_for_model(text: str) -> str:
    """A stored visitor message as the model reads it: under the strip policy, without HTML tags.

    Unflagged messages were stored stripped already (stripping again changes nothing); a flagged
    one was stored as received, for staff, and the model still gets it stripped.
    """
    return html_strip(text).strip() if settings.INPUT_MARKUP_POLICY == "strip" else text


def chat_session_cap_check(*, session: ChatSession) -> None:
    """Refuse early when the session already holds its last message (the store re-checks exactly)."""
    if session.user_message_count >= settings.MAX_MESSAGES_PER_SESSION:
        raise SessionCapReached(session=session)


def chat_message_store(*, session: ChatSession, text: VisitorText, idempotency_key: str | None) -> ChatMessage:
    """Count the message against the cap and store it, in one short transaction.

    The conditional UPDATE makes the cap exact however many requests race for the last slot.
    Raises IntegrityError when another request already stored this idempotency key.
    """
    now = timezone.now()
    with transaction.atomic():
        counted = ChatSession.objects.filter(
            pk=session.pk,
            is_active=True,
            expires_at__gt=now,
            user_message_count__lt=settings.MAX_MESSAGES_PER_SESSION,
        ).update(user_message_count=F("user_message_count") + 1, last_activity_at=now)
        if not counted:
            session.refresh_from_db(fields=["user_message_count", "is_active", "expires_at"])
            if session.is_active and not session.is_expired:
                raise SessionCapReached(session=session)
            raise SessionEnded()
        return ChatMessage.objects.create(
            session=session,
            kind=ChatMessage.Kind.USER,
            content=text.text,
            flagged=text.flagged,
            idempotency_key=idempotency_key,
            created_at=now,
        )


def chat_model_messages(*, message: ChatMessage) -> list[dict[str, str]]:
    """System prompt, the stored context before `message`, then `message` itself."""
    context = context_for_message(message=message, size=settings.LLM_CONTEXT_MESSAGES)
    if settings.INPUT_MARKUP_POLICY == "strip":
        context = [
            {**turn, "content": visitor_text_for_model(turn["content"])} if turn["role"] == "user" else turn
            for turn in context
        ]
    return [
        {"role": "system", "content": settings.SYSTEM_PROMPT},
        *context,
        {"role": "user", "content": visitor_text_for_model(message.content)},
    ]


def chat_reply_store(
    *,
    message: ChatMessage,
    content: str,
    completion: llm.Completion | None = None,
    fallback: bool = False,
    partial: bool = False,
    model: str = "",
) -> ChatMessage:
    with transaction.atomic():  # receivers queue deliveries inside this same transaction
        return ChatMessage.objects.create(
            session_id=message.session_id,
            kind=ChatMessage.Kind.ASSISTANT,
            in_reply_to=message,
            content=content,
            fallback=fallback,
            partial=partial,
            model=completion.model if completion else model,
            latency_ms=completion.latency_ms if completion else None,
            prompt_tokens=completion.prompt_tokens if completion else None,
            completion_tokens=completion.completion_tokens if completion else None,
            cost_usd=completion.cost_usd if completion else None,
        )


def chat_message_accept(
    *, session: ChatSession, text: VisitorText, idempotency_key: str | None
) -> ChatMessage | ChatTurn:
    """Store the visitor's message; or, when a racing request stored this key first, its turn."""
    try:
        return chat_message_store(session=session, text=text, idempotency_key=idempotency_key)
    except IntegrityError:
        first = chat_turn_replay(session=session, key=idempotency_key) if idempotency_key else None
        if first is None:
            raise
        return first


def _is_refused(message: ChatMessage) -> bool:
    if message.flagged and settings.INPUT_PATTERN_POLICY == "refuse":
        logger.info("flagged message refused", extra={"message_id": message.pk})
        return True
    return False


def chat_turn_run(*, session: ChatSession, text: VisitorText, idempotency_key: str | None = None) -> ChatTurn:
    """Store the message, answer it, store the reply. No transaction is open while the model is called."""
    accepted = chat_message_accept(session=session, text=text, idempotency_key=idempotency_key)
    return accepted if isinstance(accepted, ChatTurn) else chat_turn_answer(message=accepted)


def chat_turn_answer(*, message: ChatMessage) -> ChatTurn:
    """Answer a stored visitor message (refusal, model or fallback) and store the reply."""
    if _is_refused(message):
        return ChatTurn(message=message, reply=chat_reply_store(message=message, content=REFUSAL_REPLY))
    model_messages = chat_model_messages(message=message)
    connection_release()  # hold no database connection while the model thinks
    try:
        completion = llm.chat_complete(messages=model_messages)
    except llm.ModelUnavailable:
        reply = chat_reply_store(message=message, content=FALLBACK_REPLY, fallback=True)
    else:
        reply = chat_reply_store(message=message, content=completion.content, completion=completion)
    return ChatTurn(message=message, reply=reply)


def chat_turn_replay(*, session: ChatSession, key: str, poll_seconds: float = 0.2) -> ChatTurn | None:
    """The turn first stored under `key`, waiting for its reply while the first request runs.

    None when no message carries the key; IdempotencyConflict when the reply takes too long.
    """
    deadline = time.monotonic() + settings.LLM_TIMEOUT + 5
    while True:
        message = turn_for_idempotency_key(session=session, key=key)
        if message is None:
            return None
        reply = reply_of(message)
        if reply is not None:
            return ChatTurn(message=message, reply=reply)
        if time.monotonic() >= deadline:
            raise IdempotencyConflict()
        time.sleep(poll_seconds)


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event: `delta` (text), `done` (the stored ids) or `error`."""

    name: str
    data: dict


def chat_turn_events(turn: ChatTurn) -> Iterator[StreamEvent]:
    """A stored turn as a stream: the whole reply in one delta, then done."""
    yield StreamEvent("delta", {"content": turn.reply.content})
    yield StreamEvent("done", _done_data(turn.message, turn.reply))


def _done_data(message: ChatMessage, reply: ChatMessage) -> dict:
    return {"message_id": message.pk, "response_id": reply.pk, "flagged": message.flagged, "fallback": reply.fallback}


def chat_turn_stream(*, message: ChatMessage) -> Iterator[StreamEvent]:
    """Answer a stored visitor message as the model writes; store the reply once, when it ends.

    If the consumer stops early (the visitor left), the model stream is closed, which cancels the
    call, and the text so far is stored as a partial reply.
    """
    if _is_refused(message):
        yield from chat_turn_events(ChatTurn(message, chat_reply_store(message=message, content=REFUSAL_REPLY)))
        return
    parts: list[str] = []
    model_messages = chat_model_messages(message=message)
    connection_release()
    try:
        with closing(llm.chat_stream(messages=model_messages)) as pieces:
            for piece in pieces:
                parts.append(piece)
                yield StreamEvent("delta", {"content": piece})
    except llm.ModelUnavailable:
        if not parts:
            yield from _fallback_events(message)
            return
        reply = chat_reply_store(message=message, content="".join(parts), partial=True, model=settings.LLM_MODEL)
        yield StreamEvent("error", {"detail": STREAM_BROKEN, **_done_data(message, reply)})
        return
    except GeneratorExit:
        chat_reply_store(message=message, content="".join(parts), partial=True, model=settings.LLM_MODEL)
        logger.info("stream closed by the client", extra={"message_id": message.pk})
        raise
    if not "".join(parts).strip():  # an empty answer is no answer, as in chat_complete
        yield from _fallback_events(message)
        return
    reply = chat_reply_store(message=message, content="".join(parts), model=settings.LLM_MODEL)
    yield StreamEvent("done", _done_data(message, reply))


def _fallback_events(message: ChatMessage) -> Iterator[StreamEvent]:
    reply = chat_reply_store(message=message, content=FALLBACK_REPLY, fallback=True)
    yield from chat_turn_events(ChatTurn(message, reply))
