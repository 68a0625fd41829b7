"""The first pages in a real browser: nothing they load fails, the icon included; admin lists on a phone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_start
from tests.browser.conftest import open_page

pytestmark = pytest.mark.django_db(transaction=True)

STAFF_PASSWORD = "a-strong-staff-password-1"
PHONE = {"width": 390, "height": 844}

# The icon a browser asks for: the page's own <link rel="icon">, else /favicon.ico at the site's root.
ICON_STATUS = """async () => {
  const link = document.querySelector('link[rel~="icon"]');
  const url = link ? link.href : new URL("/favicon.ico", location.href).href;
  const answer = await fetch(url);
  return [url, answer.status, answer.headers.get("content-type")];
}"""
PAGE_WIDTHS = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/api/v1/docs"])
def test_a_page_loads_everything_it_names_and_has_an_icon(live_server, browser, shots, path):
    page, watch = open_page(browser)
    failed = []
    page.on("response", lambda answer: answer.status >= 400 and failed.append(f"{answer.status} {answer.url}"))
    page.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))

    page.goto(live_server.url + path)
    page.wait_for_load_state("networkidle")
    icon_url, icon_status, icon_type = page.evaluate(ICON_STATUS)
    shots.take(page, "page")
    page.context.close()

    assert failed == []
    assert watch.errors == []
    assert icon_status == 200, icon_url
    assert icon_type.startswith("image/")


def staff_signs_in_on_a_phone(browser, live_server, django_user_model) -> Page:
    django_user_model.objects.create_superuser(username="staff", password=STAFF_PASSWORD)
    page, _ = open_page(browser, viewport=PHONE)
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))).to_be_attached()
    return page


def sessions_with_long_rows(count: int) -> None:
    """Sessions over several years, with the longest addresses and texts a row can show."""
    now = timezone.now()
    for number in range(count):
        email = f"{'a' * 60}{number}@{'b' * 50}.example.com"
        session = chat_session_start(
            email=email, user_agent="Mozilla/5.0 (X11; Linux)", ip_address="2001:db8::7334"
        ).session
        ChatSession.objects.filter(pk=session.pk).update(created_at=now - timedelta(days=45 * number))
        asked = ChatMessage.objects.create(session=session, kind="user", content="x" * 300, flagged=number % 4 == 0)
        ChatMessage.objects.create(session=session, kind="assistant", content="A long answer. " * 20, in_reply_to=asked,
                                   model="openai/a-model-with-a-rather-long-name")  # fmt: skip


def assert_usable_on_a_phone(page: Page) -> None:
    """No sideways scrolling of the page; the search and the filters on the way to the list, not after it."""
    scroll_width, client_width = page.evaluate(PAGE_WIDTHS)
    assert scroll_width <= client_width
    results = page.locator("#changelist-form .results")
    assert results.evaluate("box => box.scrollWidth > box.clientWidth")  # the table scrolls in its own box
    search = page.locator("#searchbar").bounding_box()
    filters = page.locator("#changelist-filter").bounding_box()
    table = page.locator("#result_list").bounding_box()
    assert search["x"] >= 0 and search["x"] + search["width"] <= client_width
    assert search["y"] + search["height"] <= PHONE["height"]  # on the first screen
    assert filters["x"] >= 0 and filters["x"] + filters["width"] <= client_width
    assert filters["y"] < table["y"]  # before the list, not after its last row


def test_the_session_and_message_lists_are_usable_on_a_phone(live_server, browser, django_user_model, shots):
    sessions_with_long_rows(60)
    page = staff_signs_in_on_a_phone(browser, live_server, django_user_model)

    page.goto(live_server.url + "/admin/sessions_app/chatsession/")
    assert_usable_on_a_phone(page)
    shots.take(page, "sessions-on-a-phone")
    page.locator("#changelist-filter").get_by_role("link", name="Has flagged messages").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(15)
    page.locator("#searchbar").fill(f"{'a' * 60}0@{'b' * 50}.example.com")
    page.locator("#searchbar").press("Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    page.goto(live_server.url + "/admin/chat_app/chatmessage/")
    assert_usable_on_a_phone(page)
    shots.take(page, "messages-on-a-phone")
    page.locator("#changelist-filter").get_by_role("link", name="Assistant").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(50)  # a full page of replies
    expect(page.locator("#result_list tbody tr").first).to_contain_text("Assistant")
    page.context.close()
