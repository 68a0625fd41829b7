"""The writes of a chat turn: check, then store the visitor's message (commit); later, store the reply.

The model is called between the two, with no transaction or connection held (chat_app.turns).
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from chat_app import llm
from chat_app.events import SessionUsage, message_event_append
from chat_app.handoff import is_human_idle, session_release
from chat_app.models import ChatMessage
from chat_app.sanitization import (
    control_characters_remove,
    html_leftovers_remove,
    html_strip,
    html_strip_once,
    is_dangerous,
)
from chat_app.selectors import context_for_message, reply_of, turn_for_idempotency_key
from chatapi.db import update_returning
from chatapi.errors import DomainError, LimitExceeded
from sessions_app.authentication import SESSION_ENDED
from sessions_app.models import ChatSession
from usage_app.recording import usage_add
from usage_app.selectors import daily_budget_reached

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = "Message limit reached: a session holds at most {limit} messages. Start a new session to continue."
SESSION_BUDGET_SPENT = (
    "Token budget reached: this session's replies have used its budget of {limit} tokens. "
    "Start a new session to continue."
)
REFUSAL_REPLY = (
    "I'm sorry, but I can't help with that message: parts of it look like code or commands that "
    "could be unsafe. For everyone's safety, please rephrase your question in plain words."
)
FALLBACK_REPLY = "Sorry, I can't answer right now. Your message has been saved; please try again in a moment."
STREAM_BROKEN = "The answer broke off; what arrived has been saved. Please ask again."
IDEMPOTENCY_IN_PROGRESS = "A request with this Idempotency-Key is still being answered; retry shortly."
MESSAGE_REQUIRED = "This field is required."
MESSAGE_NULL = "This field may not be null."
MESSAGE_NOT_TEXT = "Must be a string."
NO_MESSAGE = object()  # a body without a `message` member
MESSAGE_BLANK = "Message must not be blank."
MESSAGE_TOO_LONG = "Message must be at most {limit} characters."
MESSAGE_ONLY_MARKUP = "Message has no text once HTML markup is removed."


class SessionCapReached(LimitExceeded):
    """The session holds its last message; Retry-After is the seconds until it expires."""

    code = "session_cap_reached"

    def __init__(self, *, session: ChatSession):
        detail = MESSAGE_LIMIT.format(limit=settings.MAX_MESSAGES_PER_SESSION)
        super().__init__(detail, retry_after=(session.expires_at - timezone.now()).total_seconds())


class TokenBudgetReached(LimitExceeded):
    """The session's replies have used SESSION_TOKEN_BUDGET tokens; Retry-After is the seconds until it expires."""

    code = "token_budget_reached"

    def __init__(self, *, session: ChatSession):
        detail = SESSION_BUDGET_SPENT.format(limit=settings.SESSION_TOKEN_BUDGET)
        super().__init__(detail, retry_after=(session.expires_at - timezone.now()).total_seconds())


def is_over_token_budget(session: ChatSession) -> bool:
    """Rule 7: the budget binds the model's replies, so a session in human mode (no model) is not held by it."""
    budget = settings.SESSION_TOKEN_BUDGET
    return bool(budget) and session.mode == ChatSession.Mode.AI and session.tokens_used >= budget


class SessionEnded(DomainError):
    status_code = 401
    default_detail = SESSION_ENDED
    code = "session_ended"


class IdempotencyConflict(DomainError):
    status_code = 409
    default_detail = IDEMPOTENCY_IN_PROGRESS
    code = "idempotency_in_progress"


class MessageRejected(DomainError):
    """The message breaks rule 4 (a string, not blank, not too long): a 400 naming the field."""

    field = "message"
    code = "invalid"


@dataclass(frozen=True)
class VisitorText:
    """A visitor's message: plain text to store, and whether it matched a dangerous pattern."""

    text: str
    flagged: bool


@dataclass(frozen=True)
class TurnOpening:
    """A turn whose visitor message is stored: either its reply already (a replay, a refusal), or the
    model's input; `waiting` when a racing request with the same key has not stored its reply yet."""

    message: ChatMessage
    reply: ChatMessage | None = None
    model_messages: list[dict[str, str]] | None = None
    waiting: bool = False

    @property
    def to_staff(self) -> bool:
        """Sent in human mode: staff answer it, the model is not called and no reply is stored."""
        return self.message.to_staff


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


def check_chat_turn(*, session: ChatSession, message: object) -> VisitorText:
    """Rules 3 to 5 and 7 in the contract's order, with no side effect: the cap, the text, the patterns,
    the session's token budget.

    The cap and the budget are checked here on the session row as loaded; chat_message_store
    re-checks both exactly.
    """
    if session.user_message_count >= settings.MAX_MESSAGES_PER_SESSION:
        raise SessionCapReached(session=session)
    if message is NO_MESSAGE:
        raise MessageRejected(MESSAGE_REQUIRED)
    if message is None:
        raise MessageRejected(MESSAGE_NULL)
    if not isinstance(message, str):
        raise MessageRejected(MESSAGE_NOT_TEXT)
    if len(message) > settings.MAX_MESSAGE_LENGTH:
        raise MessageRejected(MESSAGE_TOO_LONG.format(limit=settings.MAX_MESSAGE_LENGTH))
    if not control_characters_remove(message).strip():
        raise MessageRejected(MESSAGE_BLANK)
    text = visitor_text_prepare(message)
    if not text.text:  # only under INPUT_MARKUP_POLICY=strip, for a message of nothing but markup
        raise MessageRejected(MESSAGE_ONLY_MARKUP)
    if is_over_token_budget(session):
        raise TokenBudgetReached(session=session)
    return text


def chat_message_store(*, session: ChatSession, text: VisitorText, idempotency_key: str | None) -> ChatMessage:
    """Count the message against the cap and store it, in one short transaction.

    The conditional UPDATE makes the cap exact however many requests race for the last slot, and
    the token budget too: turns already past this point may each still spend, none after. The same
    UPDATE numbers the message's event and reads who answers the session now.
    Raises IntegrityError when another request already stored this idempotency key.
    """
    now = timezone.now()
    live = ChatSession.objects.filter(
        pk=session.pk, is_active=True, expires_at__gt=now, user_message_count__lt=settings.MAX_MESSAGES_PER_SESSION
    )
    if settings.SESSION_TOKEN_BUDGET:
        within_budget = Q(mode=ChatSession.Mode.HUMAN) | Q(
            prompt_tokens__lt=settings.SESSION_TOKEN_BUDGET - F("completion_tokens")
        )
        live = live.filter(within_budget)
    with transaction.atomic():
        counted = update_returning(
            live,
            ["event_seq", "mode"],
            user_message_count=F("user_message_count") + 1,
            last_activity_at=now,
            event_seq=F("event_seq") + 1,
        )
        if not counted:
            session.refresh_from_db(
                fields=["user_message_count", "is_active", "expires_at", "mode", "prompt_tokens", "completion_tokens"]
            )
            if not session.is_active or session.is_expired:
                raise SessionEnded()
            if session.user_message_count >= settings.MAX_MESSAGES_PER_SESSION:
                raise SessionCapReached(session=session)
            raise TokenBudgetReached(session=session)
        [(seq, session.mode)] = counted
        message = ChatMessage.objects.create(
            session=session,
            kind=ChatMessage.Kind.USER,
            content=text.text,
            flagged=text.flagged,
            idempotency_key=idempotency_key,
            created_at=now,
            to_staff=session.mode == ChatSession.Mode.HUMAN,
        )
        message_event_append(message, seq=seq)
        if message.to_staff:  # no reply will count it
            usage_add(at=now, visitor_messages=1, flagged=int(message.flagged))
        return message


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
) -> ChatMessage:
    """Store the reply to `message`, with the model that answered and what the reply used and cost.

    In the same transaction, two statements count the usage: the session's totals (on the UPDATE
    that numbers the reply's event) and the day's roll-up, where the visitor's message counts too.
    """
    usage = _usage_of(completion)
    with transaction.atomic():  # receivers queue deliveries inside this same transaction
        reply = ChatMessage.objects.create(
            session_id=message.session_id,
            kind=ChatMessage.Kind.ASSISTANT,
            in_reply_to=message,
            content=content,
            fallback=fallback,
            partial=partial,
            model=completion.model if completion else "",
            latency_ms=completion.latency_ms if completion else None,
            prompt_tokens=completion.prompt_tokens if completion else None,
            completion_tokens=completion.completion_tokens if completion else None,
            cost_usd=completion.cost_usd if completion else None,
            usage_estimated=completion.usage_estimated if completion else False,
        )
        message_event_append(reply, session_usage=usage)
        usage_add(
            at=reply.created_at,
            latency_ms=completion.latency_ms if completion and not partial else None,
            visitor_messages=1,
            flagged=int(message.flagged),
            replies=1,
            fallbacks=int(fallback),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
        )
        return reply


def _usage_of(completion: llm.Completion | None) -> SessionUsage:
    """What a reply adds to the totals: its figures, with an unknown one (no usage, no price) as 0."""
    if completion is None:
        return SessionUsage()
    return SessionUsage(
        prompt_tokens=completion.prompt_tokens or 0,
        completion_tokens=completion.completion_tokens or 0,
        cost_usd=completion.cost_usd or Decimal(0),
    )


def chat_turn_open(*, session: ChatSession, message: object, idempotency_key: str | None) -> TurnOpening:
    """The turn for this request: the first one again for a repeated key; else check, then do."""
    first = chat_turn_replay(session=session, key=idempotency_key) if idempotency_key else None
    if first is not None:
        return first
    text = check_chat_turn(session=session, message=message)
    if is_human_idle(session):  # the sweep has not run yet: nobody answered for too long
        session_release(session_id=session.pk)
        session.mode = ChatSession.Mode.AI
    try:
        return do_chat_turn_open(session=session, text=text, idempotency_key=idempotency_key)
    except IntegrityError:  # a racing request with the same key stored its message first
        first = chat_turn_replay(session=session, key=idempotency_key) if idempotency_key else None
        if first is None:
            raise
        return first


def do_chat_turn_open(*, session: ChatSession, text: VisitorText, idempotency_key: str | None) -> TurnOpening:
    """Store the visitor's message; answer a refused one at once, else read the model's input."""
    message = chat_message_store(session=session, text=text, idempotency_key=idempotency_key)
    if message.to_staff:
        logger.info("message relayed to staff", extra={"message_id": message.pk})
        return TurnOpening(message=message)
    if message.flagged and settings.INPUT_PATTERN_POLICY == "refuse":
        logger.info("flagged message refused", extra={"message_id": message.pk})
        return TurnOpening(message=message, reply=chat_reply_store(message=message, content=REFUSAL_REPLY))
    if daily_budget_reached():
        logger.warning("daily cost budget reached: the reply falls back", extra={"message_id": message.pk})
        return TurnOpening(
            message=message, reply=chat_reply_store(message=message, content=FALLBACK_REPLY, fallback=True)
        )
    return TurnOpening(message=message, model_messages=chat_model_messages(message=message))


def chat_turn_replay(*, session: ChatSession, key: str) -> TurnOpening | None:
    """The turn first stored under `key` (waiting, while its reply is not stored); None if no message has it."""
    message = turn_for_idempotency_key(session=session, key=key)
    if message is None:
        return None
    reply = reply_of(message)
    return TurnOpening(message=message, reply=reply, waiting=reply is None and not message.to_staff)
