"""The delivery benchmark (bench/delivery.py), run small against the test database and the in-thread double."""

import pytest

from bench.delivery import bench_run

# The delivery tests' own fixtures, found by pytest under these names in this module.
from notifications_app.tests.conftest import discord_on, double  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_run_reports_every_post_in_order_and_a_clean_sigterm(double, discord_on, fake_model):  # noqa: F811
    discord_on.RATE_LIMITING_ENABLED = False

    report = bench_run(double=double, sessions=3, messages=2, concurrency=2, slow_seconds=0.2)

    assert (report.threads, report.posts, report.expected_posts) == (3, 15, 15)
    assert report.in_order_exactly_once is True
    assert report.latency_ms["all"]["count"] == 15
    assert report.sigterm["exit_code"] == 0
    assert report.sigterm["in_progress_left"] == 0
