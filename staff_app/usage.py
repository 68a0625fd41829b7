"""The daily usage as staff read it: the range asked for, checked at the edge, and its CSV form."""

from datetime import date, timedelta

from rest_framework import serializers
from rest_framework_csv.renderers import PaginatedCSVRenderer

from usage_app.recording import utc_day

DEFAULT_DAYS = 30
MOST_DAYS = 366
FROM_AFTER_TO = "`from` must not be after `to`."
RANGE_TOO_LONG = f"A range covers at most {MOST_DAYS} days."
USAGE_FIELDS = [
    "date", "sessions", "visitor_messages", "replies", "fallbacks", "flagged", "prompt_tokens",
    "completion_tokens", "cost_usd", "latency_p50_ms", "latency_p95_ms",
]  # fmt: skip


class UsageRange(serializers.Serializer):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD` (UTC days, both included); by default the last 30 days."""

    def get_fields(self):
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        return {
            "from": serializers.DateField(required=False, help_text="First UTC day (default: `to` less 29 days)."),
            "to": serializers.DateField(required=False, help_text="Last UTC day (default: today)."),
        }

    def validate(self, attrs: dict) -> dict:
        last = attrs.get("to") or utc_day()
        first = attrs.get("from") or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise serializers.ValidationError({"from": [FROM_AFTER_TO]})
        if (last - first).days + 1 > MOST_DAYS:
            raise serializers.ValidationError({"from": [RANGE_TOO_LONG]})
        return {"first": first, "last": last}


def usage_range(query) -> tuple[date, date]:
    """The days a query string asks for; ValidationError (400) for bad dates or a bad range."""
    checked = UsageRange(data={key: query[key] for key in ("from", "to") if key in query})
    checked.is_valid(raise_exception=True)
    return checked.validated_data["first"], checked.validated_data["last"]


class UsageDayOutput(serializers.Serializer):
    date = serializers.DateField()
    sessions = serializers.IntegerField()
    visitor_messages = serializers.IntegerField()
    replies = serializers.IntegerField(help_text="Every reply stored, fallbacks included.")
    fallbacks = serializers.IntegerField()
    flagged = serializers.IntegerField(help_text="Visitor messages that matched a dangerous pattern.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=8, help_text="USD, as a decimal string.")
    latency_p50_ms = serializers.IntegerField(
        allow_null=True, help_text="Approximate: read from latency buckets 20% wide."
    )
    latency_p95_ms = serializers.IntegerField(allow_null=True)


class UsageOutput(serializers.Serializer):
    days = UsageDayOutput(many=True)


class UsageCSVRenderer(PaginatedCSVRenderer):
    """`?format=csv`: the days as rows under a header line, columns as in the JSON."""

    results_field = "days"
    header = USAGE_FIELDS
