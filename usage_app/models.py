"""Daily usage: counters per UTC day that hold nothing about a person, so they outlive erasure.

Deleting a session (a visitor's erasure, `cleanup_sessions`) leaves these rows as they are: the
day's spend cannot be lowered to dodge DAILY_COST_BUDGET_USD, and last quarter's figures stay.
"""

from django.db import models


class DailyUsage(models.Model):
    """One UTC day's counts for one latency bucket (`latency_le_ms`, its upper bound in ms), in one shard.

    A reply with a model latency counts in its bucket's row; everything else (sessions, replies
    without a latency, messages to staff) counts in the day's row with bound 0. A day's figures are
    the sum of its rows; its latency percentiles come from the replies per bucket (usage_app.buckets).
    """

    day = models.DateField()
    latency_le_ms = models.PositiveIntegerField(default=0)
    # Writers add to one of a few rows per day and bucket (usage_app.recording.SHARDS): a reply's
    # transaction holds the row it adds to until it commits, and one row for all would queue them.
    shard = models.PositiveSmallIntegerField(default=0)
    sessions = models.PositiveBigIntegerField(default=0)
    visitor_messages = models.PositiveBigIntegerField(default=0)
    replies = models.PositiveBigIntegerField(default=0)
    fallbacks = models.PositiveBigIntegerField(default=0)
    flagged = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)

    class Meta:
        verbose_name_plural = "daily usage"
        ordering = ["-day", "latency_le_ms"]
        constraints = [
            models.UniqueConstraint(fields=["day", "latency_le_ms", "shard"], name="usage_unique_day_bucket_shard")
        ]

    def __str__(self) -> str:
        return f"Usage {self.day} (latency up to {self.latency_le_ms} ms)"
