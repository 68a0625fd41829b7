"""Reads of visitor sessions."""

from django.utils import timezone

from sessions_app.models import ChatSession


def chat_session_live_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists, is active and has not expired; one query (every visitor request makes it)."""
    return _one(ChatSession.objects.filter(pk=session_id, is_active=True, expires_at__gt=timezone.now()))


def chat_session_unexpired_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists and has not expired, live or ended (logout, staff); one query."""
    return _one(ChatSession.objects.filter(pk=session_id, expires_at__gt=timezone.now()))


def _one(sessions) -> ChatSession | None:
    # get(), not first(): a look-up by primary key needs no ORDER BY (the model's -created_at), whose
    # compiling was a tenth of a history read's CPU.
    try:
        return sessions.get()
    except ChatSession.DoesNotExist:
        return None
