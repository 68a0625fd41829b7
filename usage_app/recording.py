"""Counting into the daily roll-up: one upsert per call, in the caller's transaction."""

import os
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache

from django.db import connection
from django.utils import timezone

from usage_app.buckets import latency_bucket
from usage_app.models import DailyUsage

SHARDS = 8
COUNTERS = (
    "sessions", "visitor_messages", "replies", "fallbacks", "flagged", "prompt_tokens", "completion_tokens", "cost_usd",
)  # fmt: skip


def utc_day(moment: datetime | None = None) -> date:
    return (moment or timezone.now()).astimezone(UTC).date()


def usage_add(*, at: datetime | None = None, latency_ms: int | None = None, **counts: int | Decimal) -> None:
    """Add `counts` to the day of `at` (UTC), in the bucket of `latency_ms` when there is one.

    One INSERT ... ON CONFLICT DO UPDATE (PostgreSQL, SQLite >= 3.24): the first count of a day
    creates its row, racing writers add up, and no read comes before the write.
    """
    unknown = set(counts) - set(COUNTERS)
    if unknown:
        raise TypeError(f"not a usage counter: {', '.join(sorted(unknown))}")
    bucket = latency_bucket(latency_ms) if latency_ms is not None else 0
    values = [counts.get(name, 0) for name in COUNTERS]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(), [utc_day(at).isoformat(), bucket, _shard(), *values])


def _shard() -> int:
    """This thread's row: threads (in every process) writing at once mostly add to different rows."""
    return hash((os.getpid(), threading.get_ident())) % SHARDS


@cache
def _upsert_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(DailyUsage._meta.db_table)  # the model's own names, never input
    columns = ", ".join(quote(name) for name in ("day", "latency_le_ms", "shard", *COUNTERS))
    added = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in COUNTERS)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * (len(COUNTERS) + 3))}) "  # noqa: S608  # nosec B608
        f"ON CONFLICT (day, latency_le_ms, shard) DO UPDATE SET {added}"
    )
