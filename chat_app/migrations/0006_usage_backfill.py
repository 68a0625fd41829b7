"""Usage for what was stored before usage was counted: each session's totals, and the daily roll-up."""

from collections import defaultdict
from datetime import UTC
from decimal import Decimal

from django.db import migrations
from django.db.models import Sum

from usage_app.buckets import latency_bucket

BATCH = 2000


def usage_backfill(apps, schema_editor):
    ChatMessage = apps.get_model("chat_app", "ChatMessage")
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    DailyUsage = apps.get_model("usage_app", "DailyUsage")

    replies = ChatMessage.objects.filter(kind="assistant")
    totals = replies.values("session_id").annotate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost_usd")
    )
    for row in totals.order_by().iterator(chunk_size=BATCH):
        ChatSession.objects.filter(pk=row["session_id"]).update(
            prompt_tokens=row["prompt"] or 0, completion_tokens=row["completion"] or 0, cost_usd=row["cost"] or 0
        )

    days: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    for created_at in ChatSession.objects.values_list("created_at", flat=True).iterator(chunk_size=BATCH):
        days[(created_at.astimezone(UTC).date(), 0)]["sessions"] += 1
    visitor = ChatMessage.objects.filter(kind="user").values_list("created_at", "flagged")
    for created_at, flagged in visitor.iterator(chunk_size=BATCH):
        row = days[(created_at.astimezone(UTC).date(), 0)]
        row["visitor_messages"] += 1
        row["flagged"] += flagged
    fields = ("created_at", "latency_ms", "fallback", "partial", "prompt_tokens", "completion_tokens", "cost_usd")
    for created_at, latency, fallback, partial, prompt, completion, cost in replies.values_list(*fields).iterator(
        chunk_size=BATCH
    ):
        timed = latency is not None and not fallback and not partial
        row = days[(created_at.astimezone(UTC).date(), latency_bucket(latency) if timed else 0)]
        row["replies"] += 1
        row["fallbacks"] += fallback
        row["prompt_tokens"] += prompt or 0
        row["completion_tokens"] += completion or 0
        row["cost_usd"] += cost or Decimal(0)
    DailyUsage.objects.bulk_create(
        (DailyUsage(day=day, latency_le_ms=bucket, **counts) for (day, bucket), counts in days.items()),
        batch_size=BATCH,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chat_app", "0005_usage_estimated"),
        ("sessions_app", "0003_usage_totals"),
        ("usage_app", "0001_initial"),
    ]

    operations = [migrations.RunPython(usage_backfill, migrations.RunPython.noop, elidable=True)]
