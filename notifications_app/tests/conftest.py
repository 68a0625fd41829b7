"""Fixtures for the Discord delivery tests: settings that enable it, the REST double, a worker."""

import time

import pytest

from notifications_app.models import Delivery
from notifications_app.worker import DeliveryWorker
from testing.discord_server import DiscordDouble


@pytest.fixture
def discord_on(settings):
    """Deliveries queued, with retries fast enough for tests; Discord itself is unreachable."""
    settings.DISCORD_ENABLED = True
    settings.DISCORD_NOTIFY_MESSAGES = True
    settings.DISCORD_BOT_TOKEN = "test-bot-token"
    settings.DISCORD_CHANNEL_ID = 1100000000000000001
    settings.DISCORD_API_BASE = "http://127.0.0.1:9/api/v10"
    settings.DISCORD_MAX_ATTEMPTS = 8
    settings.DISCORD_RETRY_BASE_SECONDS = 0.05
    settings.DISCORD_RETRY_MAX_SECONDS = 0.2
    settings.DISCORD_LEASE_SECONDS = 120
    settings.DISCORD_ATTEMPT_TIMEOUT = 5.0
    return settings


@pytest.fixture
def double(discord_on):
    with DiscordDouble(token=discord_on.DISCORD_BOT_TOKEN, channel_id=discord_on.DISCORD_CHANNEL_ID) as server:
        discord_on.DISCORD_API_BASE = server.api_base
        yield server


@pytest.fixture
def worker(double):
    with DeliveryWorker(poll_interval=0.05, shutdown_grace=1.0) as running:
        yield running


def drain(worker: DeliveryWorker, timeout: float = 15.0) -> None:
    """Run the worker until no delivery is pending or in progress (waiting out backoffs)."""
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(status__in=Delivery.OPEN_STATUSES).exists():
        assert time.monotonic() < deadline, "deliveries still open after the timeout"
        if not worker.run(once=True):
            time.sleep(0.02)
