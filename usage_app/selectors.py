"""Reads of the daily roll-up: a range of days with their totals and latency percentiles, today's spend."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum

from usage_app.buckets import percentile
from usage_app.models import DailyUsage
from usage_app.recording import utc_day

CENT_MICRO = Decimal("0.00000001")  # the cost column's precision: shown as 0.00000000, never 0E-8


@dataclass
class UsageDay:
    date: date
    sessions: int = 0
    visitor_messages: int = 0
    replies: int = 0
    fallbacks: int = 0
    flagged: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None


SUMMED = ("sessions", "visitor_messages", "replies", "fallbacks", "flagged", "prompt_tokens", "completion_tokens")


def usage_days(*, first: date, last: date) -> list[UsageDay]:
    """Every UTC day from `last` back to `first`, newest first, days without use as zeros; one query.

    The query reads the roll-up's rows of those days (a few hundred per day at most), never the messages.
    """
    days = {first + timedelta(days=n): UsageDay(first + timedelta(days=n)) for n in range((last - first).days + 1)}
    latencies: dict[date, dict[int, int]] = defaultdict(dict)
    rows = DailyUsage.objects.filter(day__range=(first, last)).values_list("day", "latency_le_ms", *SUMMED, "cost_usd")
    for day, bucket, *counts, cost in rows:
        figures = days[day]
        for name, count in zip(SUMMED, counts, strict=True):
            setattr(figures, name, getattr(figures, name) + count)
        figures.cost_usd += cost
        if bucket:  # a bucket's replies may stand in several shards
            latencies[day][bucket] = latencies[day].get(bucket, 0) + counts[SUMMED.index("replies")]
    for day, counts in latencies.items():
        days[day].latency_p50_ms = percentile(counts, 0.50)
        days[day].latency_p95_ms = percentile(counts, 0.95)
    for figures in days.values():
        figures.cost_usd = Decimal(figures.cost_usd).quantize(CENT_MICRO)
    return sorted(days.values(), key=lambda figures: figures.date, reverse=True)


def spend_today() -> Decimal:
    """What replies cost so far today (UTC), from the roll-up: erasing sessions does not lower it."""
    total = DailyUsage.objects.filter(day=utc_day()).aggregate(total=Sum("cost_usd"))["total"]
    return Decimal(total or 0)


def daily_budget_reached() -> bool:
    """True once today's spend has reached DAILY_COST_BUDGET_USD (0: no budget, and no query)."""
    budget = settings.DAILY_COST_BUDGET_USD
    return bool(budget) and spend_today() >= budget
