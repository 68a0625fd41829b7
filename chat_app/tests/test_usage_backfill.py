"""The migration that counts what was stored before usage was: each session's totals and the daily roll-up."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("chat_app", "0005_usage_estimated"), ("sessions_app", "0003_usage_totals"), ("usage_app", "0001_initial")]
AFTER = [("chat_app", "0006_usage_backfill")]


def migrated(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_stored_replies_are_counted_into_session_totals_and_their_days():
    apps = migrated(BEFORE)
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    ChatMessage = apps.get_model("chat_app", "ChatMessage")
    day = datetime(2026, 10, 5, 23, 30, tzinfo=UTC)
    session = ChatSession.objects.create(
        id="s" * 32, email="a@example.com", email_hash="h", browser_hash="b", ip_address="203.0.113.9",
        created_at=day, expires_at=day + timedelta(days=1), last_activity_at=day,
    )  # fmt: skip
    asked = ChatMessage.objects.create(session=session, kind="user", content="hi", flagged=True, created_at=day)
    ChatMessage.objects.create(
        session=session, kind="assistant", content="hello", in_reply_to=asked, created_at=day + timedelta(hours=1),
        latency_ms=640, prompt_tokens=30, completion_tokens=12, cost_usd=Decimal("0.00002"),
    )  # fmt: skip
    again = ChatMessage.objects.create(session=session, kind="user", content="?", created_at=day + timedelta(hours=1))
    ChatMessage.objects.create(
        session=session, kind="assistant", content="sorry", in_reply_to=again, fallback=True,
        created_at=day + timedelta(hours=1),
    )  # fmt: skip

    try:
        apps = migrated(AFTER)
        DailyUsage = apps.get_model("usage_app", "DailyUsage")
        totals = apps.get_model("sessions_app", "ChatSession").objects.values_list(
            "prompt_tokens", "completion_tokens", "cost_usd"
        )
        rows = {
            (row.day, row.latency_le_ms): (row.sessions, row.visitor_messages, row.flagged, row.replies, row.fallbacks)
            for row in DailyUsage.objects.all()
        }
        costs = sum(row.cost_usd for row in DailyUsage.objects.all())
    finally:
        migrated(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert list(totals) == [(30, 12, Decimal("0.00002"))]
    assert rows == {
        (date(2026, 10, 5), 0): (1, 1, 1, 0, 0),  # the session and the first question, on its UTC day
        (date(2026, 10, 6), 0): (0, 1, 0, 1, 1),  # the second question and the fallback
        (date(2026, 10, 6), 662): (0, 0, 0, 1, 0),  # the reply, in the bucket of 640 ms (552..662)
    }
    assert costs == Decimal("0.00002")
