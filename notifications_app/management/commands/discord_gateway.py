"""`manage.py discord_gateway`: relay what staff type in sessions' Discord threads to the visitors."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(BaseCommand):
    help = (
        "Listen on Discord's gateway as the bot and relay staff messages, `!ai` and edits from each "
        "session's thread. Runs until SIGTERM or SIGINT. Needs the bot's message content intent."
    )
    requires_system_checks = []  # the checks import the URLconf and the model client; a listener serves none

    def handle(self, *args, **options) -> None:
        if not settings.DISCORD_ENABLED:
            raise CommandError("DISCORD_ENABLED is off: there is no Discord thread to listen to")
        from notifications_app.gateway import GatewayListener, IntentRefused

        listener = GatewayListener()
        previous = {signum: signal.signal(signum, lambda *_: listener.stop()) for signum in STOP_SIGNALS}
        try:
            listener.run()
        except IntentRefused as exc:
            raise CommandError(str(exc)) from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(f"discord gateway listener stopped after relaying {listener.relayed} messages")
