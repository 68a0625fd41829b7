"""Reads for staff: every session with its flagged messages counted, and one session's conversation."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chat_app.models import ChatMessage
from notifications_app.models import Delivery, DiscordThread
from sessions_app.models import ChatSession
from usage_app.selectors import CENT_MICRO


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


DELIVERY_LABELS = {
    Delivery.Status.PENDING: "queued",
    Delivery.Status.IN_PROGRESS: "sending",
    Delivery.Status.DONE: "delivered",
    Delivery.Status.FAILED: "failed",
}


@dataclass(frozen=True)
class DeliveryState:
    status: str
    label: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class Conversation:
    messages: list[ChatMessage]
    flagged_count: int
    discord_enabled: bool
    opening: DeliveryState | None
    thread: DiscordThread | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


def delivery_state(delivery: Delivery) -> DeliveryState:
    return DeliveryState(delivery.status, DELIVERY_LABELS[delivery.status], delivery.attempts, delivery.last_error)


def conversation_for_session(*, session: ChatSession) -> Conversation:
    """The session's messages in order, each with its Discord delivery state, and the replies' usage
    (the session's totals, counted as each reply was stored); three queries."""
    conversation = list(ChatMessage.objects.filter(session=session).order_by("id"))
    kinds = [Delivery.Kind.SESSION_OPENED, Delivery.Kind.MESSAGE_POSTED]
    deliveries = Delivery.objects.filter(session=session, kind__in=kinds).order_by("id")
    per_message: dict[int, DeliveryState] = {}
    opening = None
    for delivery in deliveries:  # the latest wins, so a retried delivery shows its newest state
        if delivery.message_id is None:
            opening = delivery_state(delivery)
        else:
            per_message[delivery.message_id] = delivery_state(delivery)
    for message in conversation:
        message.delivery = per_message.get(message.pk)
    return Conversation(
        messages=conversation,
        flagged_count=sum(message.flagged for message in conversation),
        discord_enabled=settings.DISCORD_ENABLED,
        opening=opening,
        thread=DiscordThread.objects.filter(session=session).first(),
        prompt_tokens=session.prompt_tokens,
        completion_tokens=session.completion_tokens,
        cost_usd=Decimal(session.cost_usd).quantize(CENT_MICRO),
    )
