"""Latency buckets of the daily roll-up, and percentiles read back from them.

Each bucket's upper bound is 20% above the one before, from 10 ms to about 2 minutes, so a
percentile read from the buckets is within one bucket's width (at most 20% high or low) of the
exact one. The roll-up stores each bucket's bound itself, so these bounds may change later
without misreading stored days.
"""

from bisect import bisect_left

LATENCY_BOUNDS_MS: tuple[int, ...] = tuple(round(10 * 1.2**k) for k in range(53))  # 10 ms .. 131 s


def latency_bucket(latency_ms: int) -> int:
    """The upper bound of the bucket that holds `latency_ms`; the last bucket holds anything longer."""
    index = bisect_left(LATENCY_BOUNDS_MS, latency_ms)
    return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]


def _lower_bound(upper: int) -> int:
    index = bisect_left(LATENCY_BOUNDS_MS, upper)
    if index < len(LATENCY_BOUNDS_MS) and LATENCY_BOUNDS_MS[index] == upper:
        return LATENCY_BOUNDS_MS[index - 1] if index else 0
    return upper  # a bound these buckets do not have: no width to spread over


def percentile(counts: dict[int, int], fraction: float) -> int | None:
    """The `fraction` percentile of latencies counted per bucket bound, interpolated inside its bucket."""
    total = sum(counts.values())
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for upper in sorted(counts):
        count = counts[upper]
        if count and seen + count >= rank:
            lower = _lower_bound(upper)
            return round(lower + (upper - lower) * (rank - seen) / count)
        seen += count
    return max(counts)  # pragma: no cover - the loop always reaches the rank
