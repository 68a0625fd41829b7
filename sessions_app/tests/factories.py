"""Builders for sessions and messages in tests; each returns rows already stored."""

from datetime import datetime

from django.db.models import F

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from sessions_app.services import StartedSession, chat_session_start

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) pytest"


def session_make(
    *, email: str = "visitor@example.com", ip_address: str = "203.0.113.7", **fields: object
) -> StartedSession:
    """Start a session through the service, then overwrite any of its fields (times, flags)."""
    started = chat_session_start(email=email, user_agent=BROWSER_UA, ip_address=ip_address)
    if fields:
        ChatSession.objects.filter(pk=started.session.pk).update(**fields)
        started.session.refresh_from_db()
    return started


def ended_session_make(*, ended_at: datetime, reason: str = ChatSession.EndReason.LOGOUT, **fields) -> ChatSession:
    return session_make(is_active=False, ended_at=ended_at, end_reason=reason, **fields).session


def exchange_make(
    *, session: ChatSession, text: str = "Hello there", reply: str = "Hi, how can I help?", flagged: bool = False
) -> tuple[ChatMessage, ChatMessage]:
    """A visitor message and its linked reply, counted against the session's cap."""
    message = ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content=text, flagged=flagged)
    answer = ChatMessage.objects.create(
        session=session, kind=ChatMessage.Kind.ASSISTANT, content=reply, in_reply_to=message
    )
    ChatSession.objects.filter(pk=session.pk).update(user_message_count=F("user_message_count") + 1)
    return message, answer
