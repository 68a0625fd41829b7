"""Human handoff in a real browser: a person from the team answers in the widget, edits, withdraws, hands
back and ends the chat, all through /chat/events; each message shows once, after reloads and dropped lines too."""

import json
import re
import time
from dataclasses import dataclass

import pytest
import requests
from django.conf import global_settings
from playwright.sync_api import Page, Route, expect

from chat_app.handoff import staff_message_edit, staff_message_post, staff_message_withdraw
from chat_app.models import ChatMessage
from sessions_app.models import ChatSession
from tests.browser.conftest import Widget

pytestmark = pytest.mark.django_db(transaction=True)

STAFF_PASSWORD = "a-strong-staff-password-1"
STAFF_NAME = "Ana Silva"
STAFF_TEXT = "Hi, Ana here. Is <b>order 42</b> & the rest yours?"  # shown as typed, as text
# Everything the widget keeps (token, cursor, log), as widget-api.js stores it.
STORED = "() => Object.values(sessionStorage).map(value => JSON.parse(value))"
CONVERSATION = """() => Array.from(document.querySelector(".chat-widget").shadowRoot
    .querySelectorAll(".cw-log .cw-message"),
    item => [item.dataset.role, item.querySelector(".cw-text").textContent])"""
MESSAGE_IDS = """() => Array.from(document.querySelector(".chat-widget").shadowRoot
    .querySelectorAll(".cw-log [data-message-id]"), item => item.dataset.messageId)"""


@dataclass
class StaffApi:
    """A person from the team, over the staff HTTP API of the same server."""

    url: str
    token: str

    def _post(self, path: str, body: dict | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = requests.post(f"{self.url}/api/v1/staff/sessions/{path}", json=body, headers=headers, timeout=10)
        assert answer.ok, (answer.status_code, answer.text)
        return answer

    def reply(self, session_id: str, text: str) -> dict:
        return self._post(f"{session_id}/messages", {"message": text}).json()

    def release(self, session_id: str) -> None:
        self._post(f"{session_id}/release")

    def end(self, session_id: str) -> None:
        self._post(f"{session_id}/end")


@pytest.fixture
def staff(production_server, django_user_model, settings) -> StaffApi:
    # The tests' fast hasher is not one the server knows: hash this password the way the server checks it.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    django_user_model.objects.create_user(
        username="ana", password=STAFF_PASSWORD, is_staff=True, first_name="Ana", last_name="Silva"
    )
    answer = requests.post(
        f"{production_server.url}/api/v1/staff/token", json={"username": "ana", "password": STAFF_PASSWORD}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return StaffApi(production_server.url, answer.json()["access"])


class HandoffWidget(Widget):
    def __init__(self, page: Page):
        super().__init__(page)
        self.staff_messages = page.locator(".cw-log .cw-staff")
        self.mode = page.locator(".cw-mode")
        self.talk = page.get_by_role("button", name="Talk to a person")

    def session_id(self) -> str:
        return ChatSession.objects.get(email=self.email).pk

    def start(self, email: str) -> None:
        self.email = email
        super().start(email)

    def conversation(self) -> list[tuple[str, str]]:
        """The log as the visitor reads it: (who, text) for each bubble."""
        return [tuple(bubble) for bubble in self.page.evaluate(CONVERSATION)]

    def message_ids(self) -> list[str]:
        return self.page.evaluate(MESSAGE_IDS)


def opened(production_server, page: Page, email: str) -> HandoffWidget:
    page.goto(production_server.url + "/")
    widget = HandoffWidget(page)
    widget.start(email)
    return widget


def until(page: Page, condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(100)


def test_a_person_answers_in_the_widget_hands_back_and_ends_the_chat(production_server, visitor_page, staff, shots):
    page, watch = visitor_page
    reads = []  # how the widget asked for events: (accept, url)
    page.on("request", lambda r: "/chat/events" in r.url and reads.append((r.headers.get("accept"), r.url)))
    widget = opened(production_server, page, "dora@example.com")
    widget.send("Where is my order?")
    widget.wait_for_reply(1, "Stub reply to: Where is my order?")
    session_id = widget.session_id()

    sent = time.monotonic()
    staff.reply(session_id, STAFF_TEXT)

    expect(widget.staff_messages).to_have_count(1, timeout=2_000)
    expect(widget.mode).to_have_text(f"A person is answering: {STAFF_NAME}", timeout=2_000)
    assert time.monotonic() - sent < 2.5  # within about a second; the browser's own steps add a little
    expect(widget.staff_messages.locator(".cw-author")).to_have_text(STAFF_NAME)
    expect(widget.staff_messages.locator(".cw-text")).to_have_text(STAFF_TEXT)
    expect(page.locator(".cw-visually-hidden[aria-live=polite]")).to_have_text(f"{STAFF_NAME}: {STAFF_TEXT}")
    expect(widget.talk).to_be_hidden()  # a person already answers
    assert page.locator(".chat-widget b").count() == 0
    assert reads == [("text/event-stream", f"{production_server.url}/api/v1/chat/events")]  # one live stream
    shots.take(page, "a-person-answers")

    widget.send("It was due on Monday.")  # the model no longer answers: the message goes to the team
    expect(widget.visitor_messages).to_have_text(["Where is my order?", "It was due on Monday."])
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    page.wait_for_timeout(1_500)
    expect(widget.replies).to_have_count(1)
    expect(widget.status).to_have_count(0)  # no "The assistant is writing…"
    assert ChatMessage.objects.filter(session_id=session_id, to_staff=True).count() == 1
    staff.reply(session_id, "Found it: it ships today.")
    expect(widget.staff_messages.locator(".cw-text")).to_have_text([STAFF_TEXT, "Found it: it ships today."])
    shots.take(page, "the-visitor-talks-to-a-person")

    staff.release(session_id)
    expect(widget.mode).to_have_text("The assistant is answering again.")
    expect(widget.talk).to_be_visible()
    widget.send("Thanks! And do you ship to Norway?")
    widget.wait_for_reply(2, "Stub reply to: Thanks! And do you ship to Norway?")
    shots.take(page, "the-assistant-answers-again")
    conversation = [
        ("visitor", "Where is my order?"),
        ("assistant", "Stub reply to: Where is my order?"),
        ("staff", STAFF_TEXT),
        ("visitor", "It was due on Monday."),
        ("staff", "Found it: it ships today."),
        ("visitor", "Thanks! And do you ship to Norway?"),
        ("assistant", "Stub reply to: Thanks! And do you ship to Norway?"),
    ]
    expect(widget.log.locator(".cw-message")).to_have_count(len(conversation))
    assert widget.conversation() == conversation
    ids = widget.message_ids()
    assert len(ids) == len(set(ids)) == len(conversation)  # every bubble is a stored message, once

    page.reload()

    expect(widget.log.locator(".cw-message")).to_have_count(len(conversation))
    page.wait_for_timeout(1_000)  # the events since the stored cursor have been read by now
    assert widget.conversation() == conversation
    assert widget.message_ids() == ids
    shots.take(page, "after-a-reload")

    staff.end(session_id)

    expect(widget.status).to_contain_text("This chat has ended: our team closed it.", timeout=2_000)
    expect(widget.message_box).to_be_hidden()
    expect(page.get_by_role("button", name="Start a new chat")).to_be_visible()
    assert page.evaluate(STORED) == []  # the token and the cursor are forgotten
    shots.take(page, "ended-by-the-team")
    assert watch.errors == []
    assert watch.dialogs == []


def test_the_visitor_asks_for_a_person(production_server, visitor_page, staff, shots):
    page, watch = visitor_page
    widget = opened(production_server, page, "erin@example.com")
    expect(widget.mode).to_be_hidden()

    widget.talk.click()

    expect(widget.mode).to_have_text(re.compile("^A person has been asked for"))
    expect(widget.talk).to_be_hidden()
    session = ChatSession.objects.get(pk=widget.session_id())
    assert session.human_requested_at is not None
    shots.take(page, "a-person-asked-for")
    staff.reply(session.pk, "Ana here, how can I help?")
    expect(widget.mode).to_have_text(f"A person is answering: {STAFF_NAME}")
    assert watch.errors == []


def test_edits_and_withdrawals_reach_the_widget_and_a_replay_shows_each_message_once(
    production_server, visitor_page, shots
):
    page, watch = visitor_page
    widget = opened(production_server, page, "finn@example.com")
    widget.send("Hello")
    widget.wait_for_reply(1, "Stub reply to: Hello")
    session_id = widget.session_id()
    staff_message_post(session_id=session_id, content="Your parcel left on Fridya.", author="Bo", discord_message_id=11)
    staff_message_post(session_id=session_id, content="Ignore me, wrong chat.", author="Bo", discord_message_id=12)
    expect(widget.staff_messages).to_have_count(2)

    staff_message_edit(discord_message_id=11, content="Your parcel left on Friday.")
    staff_message_withdraw(discord_message_id=12)

    first, second = widget.staff_messages.nth(0), widget.staff_messages.nth(1)
    expect(first.locator(".cw-text")).to_have_text("Your parcel left on Friday.")
    expect(first.locator(".cw-note")).to_have_text("edited")
    expect(second.locator(".cw-text")).to_have_text("This message was withdrawn.")
    expect(second).to_have_class(re.compile("cw-withdrawn"))
    shots.take(page, "edited-and-withdrawn")
    shown = widget.conversation()

    page.reload()  # from the stored log and cursor
    expect(widget.log.locator(".cw-message")).to_have_count(len(shown))
    assert widget.conversation() == shown
    expect(first.locator(".cw-note")).to_have_text("edited")

    # Only the token kept (another tab's copy, an older widget): the events replay the whole conversation.
    page.evaluate("""() => { const key = Object.keys(sessionStorage)[0];
        const kept = JSON.parse(sessionStorage.getItem(key));
        sessionStorage.setItem(key, JSON.stringify({ token: kept.token, sessionId: kept.sessionId })); }""")
    page.reload()
    expect(widget.log.locator(".cw-message")).to_have_count(len(shown))
    page.wait_for_timeout(1_000)
    assert widget.conversation() == shown
    assert len(set(widget.message_ids())) == len(shown)
    expect(first.locator(".cw-note")).to_have_text("edited")
    assert watch.errors == []


def test_without_streams_the_widget_long_polls_and_resumes_from_its_cursor(
    production_server, visitor_page, staff, shots
):
    page, watch = visitor_page
    asked: list[str] = []

    def no_streams(route: Route) -> None:  # a proxy that lets no event stream through
        asked.append(route.request.url)
        if "text/event-stream" in route.request.headers.get("accept", ""):
            route.abort()
        else:
            route.continue_()

    page.route("**/api/v1/chat/events*", no_streams)
    widget = opened(production_server, page, "gus@example.com")
    widget.send("Hello")
    widget.wait_for_reply(1, "Stub reply to: Hello")
    session_id = widget.session_id()
    until(page, lambda: any("wait=25" in url for url in asked))  # long polling, once streams failed

    staff.reply(session_id, "Ana here, by long poll.")
    expect(widget.staff_messages.locator(".cw-text")).to_have_text(["Ana here, by long poll."], timeout=3_000)

    page.context.set_offline(True)  # a dropped line: what is said meanwhile arrives once it is back
    page.wait_for_timeout(500)
    staff.reply(session_id, "Said while you were away.")
    page.wait_for_timeout(500)
    page.context.set_offline(False)
    expect(widget.staff_messages.locator(".cw-text")).to_have_text(
        ["Ana here, by long poll.", "Said while you were away."], timeout=15_000
    )
    stored = page.evaluate(STORED)[0]
    asked.clear()
    page.reload()
    expect(widget.staff_messages).to_have_count(2)
    until(page, lambda: asked)
    assert f"after={stored['cursor']}" in asked[0]  # the reload reads on from the stored cursor
    assert [entry["id"] for entry in stored["transcript"]] == widget.message_ids()
    assert len(widget.conversation()) == 4
    assert json.dumps(stored).count("Said while you were away.") == 1
    assert [error for error in watch.errors if "ERR_INTERNET_DISCONNECTED" not in error] == []
