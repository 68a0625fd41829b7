"""`/admin/usage/`: the daily usage as charts drawn on the server, the table beneath, and a CSV link."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from rest_framework.exceptions import ValidationError

from staff_app.charts import bar_chart, line_chart
from staff_app.usage import UsageCSVRenderer, UsageOutput, usage_range
from usage_app.selectors import spend_today, usage_days


@dataclass(frozen=True)
class BudgetState:
    budget: Decimal
    spent: Decimal

    @property
    def reached(self) -> bool:
        return self.spent >= self.budget


def daily_budget_state() -> BudgetState | None:
    """Today's spend against DAILY_COST_BUDGET_USD; None without a budget."""
    if not settings.DAILY_COST_BUDGET_USD:
        return None
    return BudgetState(budget=settings.DAILY_COST_BUDGET_USD, spent=spend_today())


def usage_page(request: HttpRequest) -> HttpResponse:
    """The page for staff; `?format=csv` the same rows as the API's CSV; a bad range, the page with a 400."""
    try:
        first, last = usage_range(request.GET)
    except ValidationError as refused:
        errors = [str(message) for messages in refused.detail.values() for message in messages]
        return _page(request, {"errors": errors}, status=400)
    rows = UsageOutput({"days": usage_days(first=first, last=last)}).data
    if request.GET.get("format") == "csv":
        response = HttpResponse(UsageCSVRenderer().render(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="usage-{first}-{last}.csv"'
        return response
    days = list(reversed(rows["days"]))  # charts read oldest to newest, left to right
    dates = [row["date"] for row in days]
    charts = [
        bar_chart("Cost per day (USD)", dates, [Decimal(row["cost_usd"]) for row in days], unit="$"),
        bar_chart("Visitor messages per day", dates, [row["visitor_messages"] for row in days]),
        line_chart(
            "Reply latency (ms, approximate)",
            dates,
            {"p50": [row["latency_p50_ms"] for row in days], "p95": [row["latency_p95_ms"] for row in days]},
            unit=" ms",
        ),
    ]
    return _page(request, {"charts": charts, "rows": rows["days"], "first": first, "last": last})


def _page(request: HttpRequest, context: dict, status: int = 200) -> TemplateResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Usage",
        "budget": daily_budget_state(),
        **context,
    }
    return TemplateResponse(request, "staff_app/usage.html", context, status=status)
