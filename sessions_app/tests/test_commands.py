"""`manage.py cleanup_sessions`: arguments, defaults and what it prints."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from sessions_app.tests.factories import ended_session_make, exchange_make, session_make

pytestmark = pytest.mark.django_db


def cleanup(*args: str) -> str:
    out = StringIO()
    call_command("cleanup_sessions", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def sessions() -> dict[str, ChatSession]:
    now = timezone.now()
    made = {
        "live": session_make().session,
        "expired": session_make(expires_at=now - timedelta(hours=1)).session,
        "ended_5_days": ended_session_make(ended_at=now - timedelta(days=5)),
        "ended_15_days": ended_session_make(ended_at=now - timedelta(days=15)),
    }
    exchange_make(session=made["ended_15_days"])
    return made


def test_cleanup_sessions_uses_retention_setting_by_default(sessions, settings):
    settings.SESSION_RETENTION_DAYS = 10

    output = cleanup()

    assert "mark 1 expired session(s)" in output
    assert "delete 1 session(s)" in output
    assert "10 day(s)" in output
    assert "with 2 message(s)" in output
    assert not ChatSession.objects.filter(pk=sessions["ended_15_days"].pk).exists()
    assert not ChatMessage.objects.exists()
    assert ChatSession.objects.count() == 3
    assert not ChatSession.objects.get(pk=sessions["expired"].pk).is_active


def test_cleanup_sessions_older_than_overrides_setting(sessions, settings):
    settings.SESSION_RETENTION_DAYS = 30

    output = cleanup("--older-than", "3")

    assert "delete 2 session(s)" in output
    assert "3 day(s)" in output
    assert set(ChatSession.objects.values_list("pk", flat=True)) == {sessions["live"].pk, sessions["expired"].pk}


def test_cleanup_sessions_dry_run_changes_nothing(sessions):
    before = list(ChatSession.objects.order_by("pk").values_list("pk", "is_active", "ended_at"))

    output = cleanup("--dry-run", "--older-than", "3")

    assert output.startswith("Would mark 1 expired session(s)")
    assert "would delete 2 session(s)" in output
    assert list(ChatSession.objects.order_by("pk").values_list("pk", "is_active", "ended_at")) == before
    assert ChatMessage.objects.count() == 2


def test_cleanup_sessions_reports_what_it_did(sessions):
    assert cleanup("--older-than=3").startswith("Did mark 1 expired session(s)")
    assert "delete 0 session(s)" in cleanup("--older-than=3")


@pytest.mark.parametrize("args", [("--older-than", "-1"), ("--older-than=-5",)])
def test_cleanup_sessions_refuses_negative_days(sessions, args):
    with pytest.raises(CommandError, match="older-than"):
        cleanup(*args)

    assert ChatSession.objects.count() == 4


def test_cleanup_sessions_refuses_non_integer_days():
    with pytest.raises(CommandError):
        cleanup("--older-than", "soon")
