"""Reads of visitor sessions."""

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions_app.models import ChatSession


def chat_session_live_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists, is active and has not expired; one query."""
    return ChatSession.objects.filter(pk=session_id, is_active=True, expires_at__gt=timezone.now()).first()


def chat_session_unexpired_get(*, session_id: str) -> ChatSession | None:
    """The session if it exists and has not expired, live or ended (logout, staff); one query."""
    return ChatSession.objects.filter(pk=session_id, expires_at__gt=timezone.now()).first()


def staff_session_list() -> QuerySet[ChatSession]:
    """Every session with its flagged-message count and a `has_flagged` flag, for staff; one query per page.

    Correlated subqueries, not a JOIN with GROUP BY: only the page's own sessions are counted, so a
    page costs the same with a million messages as with ten.
    """
    from chat_app.models import ChatMessage  # chat_app depends on sessions_app, not the reverse

    flagged = ChatMessage.objects.filter(session=OuterRef("pk"), flagged=True)
    flagged_count = flagged.order_by().values("session").annotate(count=Count("pk")).values("count")
    return ChatSession.objects.annotate(
        flagged_count=Coalesce(Subquery(flagged_count, output_field=IntegerField()), 0),
        has_flagged=Exists(flagged),
    )
