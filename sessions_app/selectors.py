"""Reads of visitor sessions."""

from django.utils import timezone

from sessions_app.models import ChatSession


def chat_session_live_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists, is active and has not expired; one query."""
    return ChatSession.objects.filter(pk=session_id, is_active=True, expires_at__gt=timezone.now()).first()


def chat_session_unexpired_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists and has not expired, live or ended (logout, staff); one query."""
    return ChatSession.objects.filter(pk=session_id, expires_at__gt=timezone.now()).first()
