"""The chat widget in a real browser: streamed replies, history, safe text, and its error states."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from playwright.sync_api import Response, expect

from tests.browser.conftest import Widget, open_page

pytestmark = pytest.mark.django_db(transaction=True)

XSS = "<img src=x onerror=alert(1)>"
TYPED_CODE = "Why does vector<int> v; print <b>hi</b>?"


def test_widget_chats_three_turns_with_streamed_replies_and_restores_them(production_server, visitor_page, shots):
    page, watch = visitor_page
    page.goto(production_server.url + "/")
    widget = Widget(page)
    expect(page.get_by_role("heading", name="Chat API")).to_be_visible()
    shots.take(page, "email-form")

    widget.start("visitor@example.com")
    expect(widget.remaining).to_have_text("50 messages left")
    turns = ["Hello! What can you do?", "Do you ship to Norway?", "Is 3 < 5 & 4 > 2?"]
    for number, text in enumerate(turns, start=1):
        widget.send(text)
        partial = widget.see_streaming(number)
        final = f"Stub reply to: {text}"
        assert final.startswith(partial) and len(partial) < len(final)  # seen mid-stream
        widget.wait_for_reply(number, final)
        shots.take(page, f"turn-{number}", docs_name="widget.png" if number == len(turns) else None)
    expect(widget.visitor_messages).to_have_text(turns)
    expect(widget.remaining).to_have_text("47 messages left")
    expect(page.locator(".cw-visually-hidden[aria-live=polite]")).to_have_text(f"Assistant: Stub reply to: {turns[-1]}")

    page.reload()

    expect(widget.visitor_messages).to_have_text(turns)
    expect(widget.replies).to_have_text([f"Stub reply to: {text}" for text in turns])
    expect(widget.remaining).to_have_text("47 messages left")
    expect(widget.message_box).to_be_visible()
    shots.take(page, "history-after-reload")
    assert watch.errors == []
    assert watch.dialogs == []


def test_widget_shows_markup_as_text_and_runs_none_of_it(chat_server, visitor_page, shots):
    page, watch = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("visitor@example.com")

    widget.send(XSS)
    widget.wait_for_reply(1, re.compile(r"safety|rephrase"))
    widget.send(TYPED_CODE)
    widget.wait_for_reply(2, f"Stub reply to: {TYPED_CODE}")  # the model read it as typed, too

    expect(widget.visitor_messages).to_have_text([XSS, TYPED_CODE])
    expect(page.locator(".cw-visitor.cw-flagged")).to_have_count(1)
    shots.take(page, "markup-shown-as-text")
    page.reload()  # now from the history: what was stored, shown as text
    expect(widget.visitor_messages).to_have_text([XSS, TYPED_CODE])
    expect(widget.replies.nth(1)).to_have_text(f"Stub reply to: {TYPED_CODE}")
    assert page.locator(".chat-widget img, .chat-widget b").count() == 0
    page.wait_for_timeout(300)  # an onerror handler, had one been created, fires by now
    shots.take(page, "markup-shown-as-text-after-reload")
    assert watch.dialogs == []
    assert watch.errors == []


def test_widget_shows_the_wait_when_rate_limited(chat_server, visitor_page, shots, settings):
    settings.CHAT_RATE_LIMIT = "2/m"
    page, _ = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("visitor@example.com")
    for number in (1, 2):
        widget.send(f"Question {number}")
        widget.wait_for_reply(number, f"Stub reply to: Question {number}")

    widget.send("Question 3")

    expect(widget.status).to_have_text(re.compile(r"Please wait \d+ seconds?\."))
    wait = int(re.search(r"wait (\d+)", widget.status.text_content()).group(1))
    assert 1 <= wait <= 60
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(widget.message_box).to_have_value("Question 3")  # given back, not lost
    expect(widget.visitor_messages).to_have_count(2)
    shots.take(page, "rate-limited")


def test_widget_offers_a_new_chat_at_the_message_limit(chat_server, visitor_page, shots, settings):
    settings.MAX_MESSAGES_PER_SESSION = 1
    page, _ = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("visitor@example.com")
    expect(widget.remaining).to_have_text("1 message left")

    widget.send("My only question")
    widget.wait_for_reply(1, "Stub reply to: My only question")

    expect(widget.status).to_contain_text("message limit")
    expect(widget.message_box).to_be_hidden()
    shots.take(page, "message-limit")
    page.get_by_role("button", name="Start a new chat").click()
    widget.start("visitor@example.com")
    expect(widget.visitor_messages).to_have_count(0)
    expect(widget.remaining).to_have_text("1 message left")


def test_widget_keeps_the_message_when_offline(chat_server, visitor_page, shots):
    page, _ = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("visitor@example.com")
    page.context.set_offline(True)

    widget.send("Are you there?")

    expect(widget.status).to_contain_text("offline")
    expect(widget.message_box).to_have_value("Are you there?")
    shots.take(page, "offline")
    page.context.set_offline(False)
    widget.send("Are you there?")
    widget.wait_for_reply(1, "Stub reply to: Are you there?")


def test_widget_embeds_on_another_site_on_a_phone(chat_server, browser, shots, settings, host_site):
    settings.CORS_ALLOWED_ORIGINS = [host_site.origin]
    page, watch = open_page(browser, viewport={"width": 390, "height": 760})
    host_site.serve(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>Shop</title></head><body><h1>A shop</h1>'
        f'<script src="{chat_server.url}/static/chat_app/widget.js" defer></script></body></html>'
    )
    page.goto(host_site.origin + "/")
    widget = Widget(page)

    launcher = page.get_by_role("button", name="Chat")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    widget.start("visitor@example.com")
    widget.send("Hello from the shop")
    widget.wait_for_reply(1, "Stub reply to: Hello from the shop")

    panel = page.locator(".cw-panel").bounding_box()
    assert panel["width"] <= 390
    shots.take(page, "embedded-on-a-phone")
    assert watch.errors == []
    page.context.close()


def shop_page(body: str, *, head: str = "") -> str:
    """Another site's page: a heading and what `body` holds, no widget unless it embeds one."""
    head = f'<meta charset="utf-8"><title>Shop</title>{head}'
    return f'<!doctype html><html lang="en"><head>{head}</head><body><h1>A shop</h1>{body}</body></html>'


def test_widget_on_another_site_loads_its_parts_beside_widget_js_and_adds_one_name(chat_server, browser, host_site):
    widget_js = f"{chat_server.url}/static/chat_app/widget.js"
    folder = Path(finders.find("chat_app/widget.js")).parent
    part_urls = {f"{chat_server.url}/static/chat_app/{path.name}" for path in folder.glob("widget-*.js")}
    page, watch = open_page(browser)
    host_site.serve(shop_page(""))
    page.goto(host_site.origin + "/")
    names_before = set(page.evaluate("Object.keys(window)"))
    scripts = {}

    def on_response(answer: Response) -> None:
        if answer.request.resource_type == "script":
            scripts[answer.url] = (answer.status, answer.headers.get("content-type", ""))

    page.on("response", on_response)
    host_site.serve(shop_page(f'<script src="{widget_js}" defer></script>'))
    page.reload()

    expect(page.get_by_role("button", name="Chat")).to_be_visible()
    assert set(scripts) == {widget_js} | part_urls
    assert all(status == 200 and kind.startswith("text/javascript") for status, kind in scripts.values()), scripts
    assert sorted(page.evaluate("Object.keys(window.chatApiWidget.parts)")) == sorted(
        url.rsplit("/", 1)[1] for url in part_urls
    )
    assert set(page.evaluate("Object.keys(window)")) - names_before == {"chatApiWidget"}
    assert watch.errors == []
    page.context.close()


def test_widget_on_a_site_whose_csp_allows_scripts_by_nonce_loads_its_parts(chat_server, browser, host_site):
    policy = f"script-src 'nonce-shop123'; style-src {chat_server.url}; connect-src {chat_server.url}"
    page, watch = open_page(browser)
    host_site.serve(
        shop_page(
            f'<script src="{chat_server.url}/static/chat_app/widget.js" nonce="shop123" defer></script>',
            head=f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        )
    )

    page.goto(host_site.origin + "/")

    page.get_by_role("button", name="Chat").click()
    expect(page.get_by_label("Email address")).to_be_visible()
    assert watch.errors == []
    page.context.close()


def test_widget_with_a_part_missing_says_so_and_mounts_nothing(chat_server, browser, host_site):
    page, watch = open_page(browser)
    page.route("**/static/chat_app/widget-log.js", lambda route: route.fulfill(status=404, body="Not Found"))
    host_site.serve(shop_page(f'<script src="{chat_server.url}/static/chat_app/widget.js" defer></script>'))

    page.goto(host_site.origin + "/")

    page.wait_for_function("() => window.chatApiWidget !== undefined")
    page.wait_for_load_state("networkidle")
    assert [error for error in watch.errors if "could not load" in error and "widget-log.js" in error], watch.errors
    expect(page.locator(".chat-widget")).to_have_count(0)
    page.context.close()


def test_widget_end_chat_logs_out_and_forgets_the_token(chat_server, visitor_page, shots):
    page, watch = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("visitor@example.com")
    widget.send("Bye soon")
    widget.wait_for_reply(1, "Stub reply to: Bye soon")

    page.get_by_role("button", name="End chat").click()

    expect(widget.status).to_contain_text("You ended this chat.")
    expect(page.get_by_role("button", name="Start a new chat")).to_be_visible()
    shots.take(page, "ended-by-the-visitor")
    assert page.evaluate("Object.keys(sessionStorage)") == []
    page.reload()
    expect(page.get_by_label("Email address")).to_be_visible()
    expect(widget.visitor_messages).to_have_count(0)
    assert watch.errors == []
