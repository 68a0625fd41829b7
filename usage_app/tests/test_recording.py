"""The daily roll-up: counts add up per UTC day and bucket, and days read back with totals and percentiles."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from usage_app import recording
from usage_app.models import DailyUsage
from usage_app.recording import usage_add, utc_day
from usage_app.selectors import daily_budget_reached, spend_today, usage_days

pytestmark = pytest.mark.django_db


def test_counts_of_one_day_and_bucket_add_up_in_one_row():
    at = datetime(2026, 11, 3, 12, tzinfo=UTC)
    usage_add(at=at, latency_ms=1000, replies=1, prompt_tokens=10, cost_usd=Decimal("0.00000125"))
    usage_add(at=at, latency_ms=1100, replies=1, prompt_tokens=5, cost_usd=Decimal("0.00000250"))

    row = DailyUsage.objects.get()
    assert (row.day, row.replies, row.prompt_tokens, row.cost_usd) == (date(2026, 11, 3), 2, 15, Decimal("0.00000375"))


def test_the_day_is_the_utc_day():
    usage_add(at=datetime(2026, 11, 3, 23, 30, tzinfo=UTC), sessions=1)
    usage_add(at=datetime(2026, 11, 4, 0, 30, tzinfo=UTC), sessions=1)
    usage_add(at=datetime(2026, 11, 4, 0, 30, tzinfo=UTC) + timedelta(hours=-1), sessions=1)

    assert dict(DailyUsage.objects.values_list("day", "sessions")) == {date(2026, 11, 3): 2, date(2026, 11, 4): 1}


def test_only_known_counters_can_be_added():
    with pytest.raises(TypeError, match="not a usage counter: emails"):
        usage_add(emails=1)


def test_usage_days_lists_every_day_newest_first_with_zeros_for_quiet_days():
    usage_add(at=datetime(2026, 11, 2, 9, tzinfo=UTC), sessions=3)

    days = usage_days(first=date(2026, 11, 1), last=date(2026, 11, 3))

    assert [(day.date, day.sessions) for day in days] == [
        (date(2026, 11, 3), 0), (date(2026, 11, 2), 3), (date(2026, 11, 1), 0),
    ]  # fmt: skip
    assert days[0].cost_usd == 0
    assert days[1].latency_p50_ms is None


def test_usage_days_sums_the_buckets_and_reads_percentiles_from_them():
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for latency in [100] * 90 + [2000] * 10:
        usage_add(at=at, latency_ms=latency, visitor_messages=1, replies=1, completion_tokens=2)
    usage_add(at=at, replies=1, fallbacks=1, visitor_messages=1)  # a fallback: no latency

    (day,) = usage_days(first=date(2026, 11, 2), last=date(2026, 11, 2))

    assert (day.visitor_messages, day.replies, day.fallbacks, day.completion_tokens) == (101, 101, 1, 200)
    assert 89 <= day.latency_p50_ms <= 107  # within the bucket of 100 ms (89..107)
    assert 1978 <= day.latency_p95_ms <= 2374  # within the bucket of 2000 ms


def test_spend_today_and_the_daily_budget(settings):
    usage_add(cost_usd=Decimal("0.75"))
    usage_add(at=datetime.now(UTC) - timedelta(days=1), cost_usd=Decimal("9"))  # yesterday's spend does not count

    settings.DAILY_COST_BUDGET_USD = Decimal("1")
    assert spend_today() == Decimal("0.75") and not daily_budget_reached()
    usage_add(latency_ms=300, cost_usd=Decimal("0.25"))
    assert daily_budget_reached()
    settings.DAILY_COST_BUDGET_USD = Decimal(0)
    assert not daily_budget_reached()


def test_utc_day_defaults_to_today():
    assert utc_day() == datetime.now(UTC).date()


def test_writers_in_different_shards_add_up_to_the_same_day(monkeypatch):
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for shard in (0, 3, 3, 7):
        monkeypatch.setattr(recording, "_shard", lambda shard=shard: shard)
        usage_add(at=at, latency_ms=100, replies=1, cost_usd=Decimal("0.25"))

    (day,) = usage_days(first=date(2026, 11, 2), last=date(2026, 11, 2))

    assert DailyUsage.objects.count() == 3
    assert (day.replies, day.cost_usd) == (4, Decimal("1.00000000"))
    assert 89 <= day.latency_p50_ms <= 107  # the bucket's four replies, gathered from three rows
