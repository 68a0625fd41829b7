"""Latency buckets: every latency lands in the right bucket, and percentiles read back stay within one bucket."""

import itertools
import random

import pytest

from usage_app.buckets import LATENCY_BOUNDS_MS, latency_bucket, percentile


def test_bounds_rise_by_a_fifth_from_ten_ms_to_past_two_minutes():
    assert LATENCY_BOUNDS_MS[0] == 10 and LATENCY_BOUNDS_MS[-1] > 120_000
    assert all(later > earlier for earlier, later in itertools.pairwise(LATENCY_BOUNDS_MS))


@pytest.mark.parametrize(("latency", "bucket"), [(0, 10), (10, 10), (11, 12), (12, 12), (13, 14), (10**7, 131_002)])
def test_a_latency_goes_to_the_first_bucket_that_holds_it(latency, bucket):
    if latency == 10**7:
        bucket = LATENCY_BOUNDS_MS[-1]  # anything longer stays in the last bucket
    assert latency_bucket(latency) == bucket


def test_percentile_of_nothing_is_none():
    assert percentile({}, 0.5) is None
    assert percentile({120: 0}, 0.5) is None


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_from_buckets_stay_within_a_fifth_of_the_exact_ones(seed):
    rng = random.Random(seed)
    latencies = sorted(int(rng.lognormvariate(6.5, 0.8)) + 1 for _ in range(5000))
    counts: dict[int, int] = {}
    for latency in latencies:
        counts[latency_bucket(latency)] = counts.get(latency_bucket(latency), 0) + 1

    for fraction in (0.5, 0.95):
        exact = latencies[int(fraction * len(latencies)) - 1]
        assert abs(percentile(counts, fraction) - exact) <= 0.2 * exact


def test_a_bound_these_buckets_do_not_have_reads_as_itself():
    assert percentile({1000: 4}, 0.5) == 1000  # no neighbouring bound known: no width to spread over
