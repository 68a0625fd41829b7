"""Reads of visitor sessions."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from sessions_app.models import ChatSession


def chat_session_live_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists, is active and has not expired; one query."""
    return ChatSession.objects.filter(pk=session_id, is_active=True, expires_at__gt=timezone.now()).first()


def staff_session_list() -> QuerySet[ChatSession]:
    """Every session with its flagged-message count, for staff; one query per page."""
    return ChatSession.objects.annotate(flagged_count=Count("messages", filter=Q(messages__flagged=True)))
