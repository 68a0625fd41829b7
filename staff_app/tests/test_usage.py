"""Usage for staff: `GET /api/v1/staff/usage` (JSON and CSV), `/admin/usage/`, and each session's totals."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from sessions_app.models import ChatSession
from sessions_app.tests.factories import exchange_make, session_make
from usage_app.recording import usage_add, utc_day

pytestmark = pytest.mark.django_db
USAGE = "/api/v1/staff/usage"
PAGE = "/admin/usage/"
FIELDS = [
    "date", "sessions", "visitor_messages", "replies", "fallbacks", "flagged", "prompt_tokens", "completion_tokens",
    "cost_usd", "latency_p50_ms", "latency_p95_ms",
]  # fmt: skip


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser(username="root", password="a-strong-admin-password-1")
    client.force_login(user)
    return client


def days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_usage_lists_the_last_thirty_days_newest_first_in_the_contracts_shape(staff_client):
    usage_add(at=days_ago(1), latency_ms=900, visitor_messages=2, replies=2, prompt_tokens=30, cost_usd=Decimal("0.5"))

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(USAGE)

    assert response.status_code == 200
    days = response.json()["days"]
    assert len(days) == 30
    assert [day["date"] for day in days[:2]] == [str(utc_day()), str(utc_day() - timedelta(days=1))]
    assert list(days[1]) == FIELDS
    assert days[1] | {"latency_p50_ms": None, "latency_p95_ms": None} == {
        "date": str(utc_day() - timedelta(days=1)), "sessions": 0, "visitor_messages": 2, "replies": 2,
        "fallbacks": 0, "flagged": 0, "prompt_tokens": 30, "completion_tokens": 0, "cost_usd": "0.50000000",
        "latency_p50_ms": None, "latency_p95_ms": None,
    }  # fmt: skip
    assert 750 <= days[1]["latency_p50_ms"] <= 900
    assert days[0]["latency_p50_ms"] is None and days[0]["cost_usd"] == "0.00000000"
    assert len(queries) == 2  # the staff user behind the token, the roll-up's rows


def test_usage_takes_a_range(staff_client):
    usage_add(at=datetime(2026, 3, 1, 12, tzinfo=UTC), sessions=4)

    days = staff_client.get(USAGE, {"from": "2026-02-27", "to": "2026-03-01"}).json()["days"]

    assert [(day["date"], day["sessions"]) for day in days] == [("2026-03-01", 4), ("2026-02-28", 0), ("2026-02-27", 0)]
    assert len(staff_client.get(USAGE, {"from": "2025-03-01", "to": "2026-03-01"}).json()["days"]) == 366


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-02-28", "to": "2026-03-01"}, "from"),  # 367 days
        ({"from": "2026-03-01T00:00:00Z"}, "from"),
    ],
)
def test_a_bad_range_gets_a_400_naming_the_field(staff_client, query, field):
    response = staff_client.get(USAGE, query)

    assert response.status_code == 400
    assert field in response.json()


def test_usage_as_csv_has_a_header_line_and_the_same_rows(staff_client):
    usage_add(at=datetime(2026, 3, 1, 12, tzinfo=UTC), latency_ms=1000, replies=1, cost_usd=Decimal("0.25"))

    response = staff_client.get(USAGE, {"from": "2026-02-28", "to": "2026-03-01", "format": "csv"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == FIELDS
    assert rows[1][:9] == ["2026-03-01", "0", "0", "1", "0", "0", "0", "0", "0.25000000"]
    assert rows[2] == ["2026-02-28", "0", "0", "0", "0", "0", "0", "0", "0.00000000", "", ""]


def test_a_bad_range_asked_as_csv_is_still_a_json_400(staff_client):
    response = staff_client.get(USAGE, {"from": "soon", "format": "csv"})

    assert response.status_code == 400 and response["Content-Type"] == "application/json"


def test_an_unknown_format_is_a_json_400_for_staff_and_a_403_for_visitors(staff_client, visitor):
    response = staff_client.get(USAGE, {"format": "xml"})
    as_visitor = APIClient(HTTP_AUTHORIZATION=f"Bearer {visitor.access_token}").get(USAGE, {"format": "xml"})

    assert response.status_code == 400 and response.json() == {"format": ["Must be json or csv."]}
    assert as_visitor.status_code == 403


def test_usage_is_for_staff_only(visitor_client):
    assert APIClient().get(USAGE).status_code == 401
    assert visitor_client.get(USAGE).status_code == 403


def test_a_sessions_detail_carries_its_totals_and_each_reply_its_usage(staff_client):
    session = session_make().session
    _, reply = exchange_make(session=session)
    reply.prompt_tokens, reply.completion_tokens, reply.usage_estimated = 40, 9, True
    reply.save()
    ChatSession.objects.filter(pk=session.pk).update(prompt_tokens=40, completion_tokens=9, cost_usd=Decimal("0.001"))

    detail = staff_client.get(f"/api/v1/staff/sessions/{session.pk}").json()
    messages = staff_client.get(f"/api/v1/staff/sessions/{session.pk}/messages").json()["results"]

    assert (detail["prompt_tokens"], detail["completion_tokens"], detail["cost_usd"]) == (40, 9, "0.00100000")
    assert messages[1]["usage_estimated"] is True and messages[0]["usage_estimated"] is False


def test_the_usage_page_draws_charts_on_the_server_and_lists_the_days(admin_client):
    usage_add(at=days_ago(2), latency_ms=800, visitor_messages=3, replies=3, cost_usd=Decimal("0.12"))
    usage_add(at=days_ago(2), latency_ms=2400, replies=1)

    response = admin_client.get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    charts = page.split('id="content-main"')[1]
    assert charts.count('<svg xmlns="http://www.w3.org/2000/svg" width=') == 3 and "<script" not in charts
    assert page.count('<rect class="bar"') == 60  # 30 days, two bar charts
    assert page.count('<polyline class="line') == 2  # p50 and p95
    assert f"<td>{utc_day() - timedelta(days=2)}</td>" in page
    assert "0.12000000" in page
    assert 'format=csv"' in page
    assert re.search(r'points="[0-9.]+,[0-9.]+"', page)  # one day with latencies: one point per line
    assert page.count('<circle class="dot') == 2  # which shows as a dot, since one point draws no line


def test_the_usage_page_downloads_the_same_csv(admin_client):
    usage_add(at=datetime(2026, 3, 1, 12, tzinfo=UTC), sessions=2)

    response = admin_client.get(PAGE, {"from": "2026-03-01", "to": "2026-03-01", "format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert list(csv.reader(io.StringIO(response.content.decode())))[1][:2] == ["2026-03-01", "2"]


def test_the_usage_page_answers_a_bad_range_with_the_reason(admin_client):
    response = admin_client.get(PAGE, {"from": "2026-03-02", "to": "2026-03-01"})

    assert response.status_code == 400
    assert "must not be after" in response.content.decode()


def test_the_usage_page_is_for_staff_only(client):
    response = client.get(PAGE)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_console_shows_a_banner_once_the_daily_budget_is_spent(admin_client, settings):
    settings.DAILY_COST_BUDGET_USD = Decimal("1")
    usage_add(cost_usd=Decimal("0.5"))
    assert "budget-banner" not in admin_client.get("/admin/").content.decode()

    usage_add(cost_usd=Decimal("0.5"))

    for page in ("/admin/", PAGE, "/admin/sessions_app/chatsession/"):
        assert "model budget is spent" in admin_client.get(page).content.decode(), page


def test_the_console_links_to_the_usage_page(admin_client):
    assert f'href="{PAGE}"' in admin_client.get("/admin/").content.decode()


def test_the_session_list_shows_and_sorts_by_tokens_and_cost(admin_client):
    small, large = session_make().session, session_make(email="b@example.com").session
    ChatSession.objects.filter(pk=small.pk).update(prompt_tokens=5, completion_tokens=5, cost_usd=Decimal("0.2"))
    ChatSession.objects.filter(pk=large.pk).update(prompt_tokens=500, completion_tokens=1, cost_usd=Decimal("0.1"))
    url = "/admin/sessions_app/chatsession/"
    columns = admin_client.get(url).context["cl"].list_display

    by_tokens = admin_client.get(url, {"o": f"-{columns.index('tokens')}"}).context["cl"].result_list
    by_cost = admin_client.get(url, {"o": f"-{columns.index('cost_usd')}"}).context["cl"].result_list

    assert [session.pk for session in by_tokens] == [large.pk, small.pk]
    assert [session.pk for session in by_cost] == [small.pk, large.pk]
    page = admin_client.get(f"/admin/sessions_app/chatsession/{large.pk}/change/").content.decode()
    assert "500 prompt + 1 completion tokens" in page
