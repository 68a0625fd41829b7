"""The usage page in a real browser: staff chat, then read the day's figures as charts and download the CSV."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Widget, open_page

pytestmark = pytest.mark.django_db(transaction=True)

STAFF_PASSWORD = "a-strong-staff-password-1"


def test_staff_see_todays_usage_as_charts_and_download_it(
    chat_server, browser, visitor_page, django_user_model, shots, settings
):
    settings.LLM_INPUT_COST_PER_MILLION = settings.LLM_OUTPUT_COST_PER_MILLION = 1000  # a visible cost
    page, watch = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("alice@example.com")
    widget.send("What does this cost?")
    widget.wait_for_reply(1, "Stub reply to: What does this cost?")
    django_user_model.objects.create_superuser(username="staff", password=STAFF_PASSWORD)

    staff, staff_watch = open_page(browser)
    staff.goto(chat_server.url + "/admin/")
    staff.get_by_label("Username").fill("staff")
    staff.get_by_label("Password").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    staff.get_by_role("link", name="Usage").click()

    charts = staff.locator("figure.usage-chart svg")
    expect(charts).to_have_count(3)
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box["width"] > 600 and box["height"] > 150  # drawn, not collapsed by a refused style
    today = staff.locator(".usage-table tbody tr").first
    # 11 + 7 tokens at $1,000 per million each: $0.018
    expect(today.locator("td")).to_have_text(
        [re.compile(r"\d{4}-\d\d-\d\d"), "1", "1", "1", "0", "0", "11", "7", "0.01800000", re.compile(r"\d+"),
         re.compile(r"\d+")]
    )  # fmt: skip
    tallest = staff.locator("figure.usage-chart").first.locator("rect.bar").last
    assert tallest.bounding_box()["height"] > 100  # today's cost is the whole scale
    expect(staff.locator("circle.dot")).to_have_count(2)  # today's p50 and p95
    shots.take(staff, "usage-page", full_page=True)

    with staff.expect_download() as download:
        staff.get_by_role("link", name="Download CSV").click()
    lines = download.value.path().read_text().splitlines()
    assert lines[0].startswith("date,sessions,visitor_messages,replies") and len(lines) == 31
    assert watch.errors == staff_watch.errors == []
