"""`manage.py notifications_worker` in-process: argument checks and a `--once` run."""

import signal

import pytest
from django.core.management import CommandError, call_command

from notifications_app.models import Delivery
from sessions_app.tests.factories import exchange_make, session_make

pytestmark = pytest.mark.django_db(transaction=True)


def test_notifications_worker_once_delivers_and_restores_signal_handlers(double, capsys):
    exchange_make(session=session_make().session)
    before = signal.getsignal(signal.SIGTERM)

    call_command("notifications_worker", "--once", "--poll-interval", "0.05")

    assert "stopped after 3 deliveries" in capsys.readouterr().out
    assert set(Delivery.objects.values_list("status", flat=True)) == {"done"}
    assert len(double.threads()) == 1
    assert signal.getsignal(signal.SIGTERM) is before


def test_notifications_worker_refuses_when_disabled(settings):
    settings.DISCORD_ENABLED = False

    with pytest.raises(CommandError, match="DISCORD_ENABLED is off"):
        call_command("notifications_worker", "--once")


def test_notifications_worker_refuses_bad_poll_interval(discord_on):
    with pytest.raises(CommandError, match="poll-interval"):
        call_command("notifications_worker", "--once", "--poll-interval", "0")
