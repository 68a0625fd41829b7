"""Reads for staff: every session with its flagged messages counted."""

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession


def staff_session_list() -> QuerySet[ChatSession]:
    """Every session with its flagged-message count and a `has_flagged` flag, for staff; one query per page.

    Correlated subqueries, not a JOIN with GROUP BY: only the page's own sessions are counted, so a
    page costs the same with a million messages as with ten.
    """
    flagged = ChatMessage.objects.filter(session=OuterRef("pk"), flagged=True)
    flagged_count = flagged.order_by().values("session").annotate(count=Count("pk")).values("count")
    return ChatSession.objects.annotate(
        flagged_count=Coalesce(Subquery(flagged_count, output_field=IntegerField()), 0),
        has_flagged=Exists(flagged),
    )
