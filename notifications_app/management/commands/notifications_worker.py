"""`manage.py notifications_worker`: deliver queued Discord notifications until stopped."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications_app.worker import DeliveryWorker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(BaseCommand):
    help = (
        "Deliver queued Discord notifications. Runs until SIGTERM or SIGINT, which finish the "
        "delivery in hand (or release it after a grace period) and exit 0."
    )
    # The checks import the URLconf and with it the model client (seconds); a worker serves no URL.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
        parser.add_argument(
            "--poll-interval", type=float, default=1.0, help="seconds between looks at an idle queue (default 1)"
        )

    def handle(self, *args, once: bool, poll_interval: float, **options) -> None:
        if not settings.DISCORD_ENABLED:
            raise CommandError("DISCORD_ENABLED is off: there is nothing to deliver")
        if poll_interval <= 0:
            raise CommandError("--poll-interval must be positive")
        worker = DeliveryWorker(poll_interval=poll_interval)
        previous = {signum: signal.signal(signum, lambda *_: worker.stop()) for signum in STOP_SIGNALS}
        try:
            with worker:
                handled = worker.run(once=once)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(f"notifications worker stopped after {handled} deliveries")
