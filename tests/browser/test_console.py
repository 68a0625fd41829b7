"""Staff in a real browser: find a visitor's session in the admin, read it, answer it, hand it back, end it."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from notifications_app.models import Delivery, DiscordThread
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_start
from sessions_app.tests.factories import BROWSER_UA, exchange_make
from tests.browser.conftest import Widget, open_page

pytestmark = pytest.mark.django_db(transaction=True)

STAFF_PASSWORD = "a-strong-staff-password-1"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def staff_member(django_user_model):
    return django_user_model.objects.create_superuser(username="staff", password=STAFF_PASSWORD)


def worker_delivers_all_but_the_last(session: ChatSession) -> None:
    """Stand in for the Discord worker: open the thread and deliver every queued post but the newest."""
    DiscordThread.objects.create(session=session, thread_id=1300000000000000001, channel_id=1200000000000000001,
                                 opening_message_id=1300000000000000001)  # fmt: skip
    queued = Delivery.objects.filter(session=session).order_by("id")
    newest = queued.last()
    queued.exclude(pk=newest.pk).update(status=Delivery.Status.DONE, delivered_at=timezone.now())


def test_staff_reads_and_ends_a_session_and_the_widget_offers_a_new_one(
    chat_server, browser, visitor_page, staff_member, shots, settings
):
    settings.DISCORD_ENABLED = True  # deliveries are queued; no worker runs, the test stands in for it
    page, watch = visitor_page
    page.goto(chat_server.url + "/")
    widget = Widget(page)
    widget.start("alice@example.com")
    widget.send("Where is my parcel?\nIt was due on Monday.")
    widget.wait_for_reply(1, "Stub reply to: Where is my parcel?\nIt was due on Monday.")
    widget.send(XSS)
    widget.wait_for_reply(2, re.compile("safety|rephrase"))
    widget.send("Thanks, and 3 < 5 & 4 > 2")
    widget.wait_for_reply(3, "Stub reply to: Thanks, and 3 < 5 & 4 > 2")
    session = ChatSession.objects.get(email="alice@example.com")
    for other in ("bob@example.com", "carol@example.com"):
        chat_session_start(email=other, user_agent="Mozilla/5.0 (X11; Linux x86_64)", ip_address="198.51.100.9")
    worker_delivers_all_but_the_last(session)

    staff, staff_watch = open_page(browser)
    staff.goto(chat_server.url + "/admin/")
    staff.get_by_label("Username").fill("staff")
    staff.get_by_label("Password").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    staff.get_by_role("link", name="Chat sessions").first.click()
    expect(staff.locator("#result_list tbody tr")).to_have_count(3)
    staff.locator("#searchbar").fill("alice@example.com")
    staff.locator("#searchbar").press("Enter")
    rows = staff.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    shots.take(staff, "staff-finds-the-session")

    rows.first.get_by_role("link", name=session.pk[:12]).click()
    turns = staff.locator(".conversation-log .turn")
    expect(turns).to_have_count(6)
    expect(turns.locator(".turn-text")).to_have_text([
        "Where is my parcel?\nIt was due on Monday.",
        "Stub reply to: Where is my parcel?\nIt was due on Monday.",
        XSS,  # stored as typed, shown as text: staff see what was tried
        re.compile("safety|rephrase"),
        "Thanks, and 3 < 5 & 4 > 2",
        "Stub reply to: Thanks, and 3 < 5 & 4 > 2",
    ])  # fmt: skip
    expect(turns.nth(2)).to_have_class(re.compile("turn-flagged"))
    expect(turns.nth(2).locator(".badge-flagged")).to_have_text("Flagged")
    expect(staff.locator(".conversation-summary")).to_contain_text("1 flagged")
    expect(staff.locator(".conversation-summary")).to_contain_text("Discord thread 1300000000000000001")
    expect(turns.nth(0).locator(".badge-delivery-done")).to_have_text("Discord: delivered")
    expect(turns.nth(5).locator(".badge-delivery-pending")).to_have_text("Discord: queued")
    shots.take(staff, "staff-reads-the-conversation", docs_name="admin-conversation.png", full_page=True)

    widget.message_box.fill("Are you still there?")  # typed, not yet sent, as staff end the chat
    staff.get_by_role("link", name="End session").click()
    shots.take(staff, "staff-confirms")
    staff.get_by_role("button", name="Yes, end the session").click()
    expect(staff.locator(".messagelist")).to_contain_text("Ended")
    expect(staff.get_by_role("link", name="End session")).to_have_count(0)
    shots.take(staff, "staff-ended-the-session")
    session.refresh_from_db()
    assert (session.is_active, session.end_reason) == (False, ChatSession.EndReason.STAFF)

    # The widget hears of the end from /chat/events, without waiting for the visitor's next send.
    expect(widget.status).to_contain_text("This chat has ended")
    expect(widget.message_box).to_be_hidden()
    shots.take(page, "visitor-is-offered-a-new-chat")
    page.get_by_role("button", name="Start a new chat").click()
    widget.start("alice@example.com")
    expect(widget.message_box).to_have_value("Are you still there?")  # the unsent text was kept
    widget.send("Are you still there?")
    widget.wait_for_reply(1, "Stub reply to: Are you still there?")
    assert ChatSession.objects.filter(email="alice@example.com", is_active=True).count() == 1
    assert watch.dialogs == staff_watch.dialogs == []
    assert watch.errors == staff_watch.errors == []
    staff.context.close()


def staff_logs_in(page, server_url: str) -> None:
    page.goto(server_url + "/admin/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_staff_answers_a_visitor_from_the_admin_and_hands_the_session_back(
    live_server, browser, staff_member, shots, settings
):
    settings.DISCORD_ENABLED = True  # the reply is queued for the session's thread; no worker runs
    staff_member.first_name, staff_member.last_name = "Ana", "Silva"
    staff_member.save()
    started = chat_session_start(email="dora@example.com", user_agent=BROWSER_UA, ip_address="198.51.100.7")
    session = started.session
    exchange_make(session=session, text="Can a person help me?", reply="I will ask someone.")
    reply = "Hi, Ana here <b>& a person</b>.\nWhat can I do for you?"

    staff, staff_watch = open_page(browser)
    staff_logs_in(staff, live_server.url)
    staff.get_by_role("link", name="Chat sessions").first.click()
    staff.locator("#result_list tbody tr").first.get_by_role("link", name=session.pk[:12]).click()
    mode = staff.locator(".handoff .mode")
    expect(mode).to_have_text("ai")
    expect(staff.get_by_role("button", name="Hand back to the model")).to_have_count(0)

    staff.get_by_label("Reply to the visitor").fill(reply)
    shots.take(staff, "staff-types-a-reply")
    staff.get_by_role("button", name="Send reply").click()
    expect(staff.locator(".messagelist")).to_contain_text("Sent to the visitor")
    turns = staff.locator(".conversation-log .turn")
    expect(turns).to_have_count(3)
    expect(turns.nth(2)).to_have_class(re.compile("turn-staff"))
    expect(turns.nth(2).locator(".turn-author")).to_have_text("Ana Silva")
    expect(turns.nth(2).locator(".turn-text")).to_have_text(reply)  # as typed, shown as text
    expect(turns.nth(2).locator(".badge-delivery-pending")).to_have_text("Discord: queued")
    expect(mode).to_have_text("human")
    expect(staff.get_by_label("Reply to the visitor")).to_have_value("")
    shots.take(staff, "staff-reply-sent", full_page=True)

    def as_visitor(path: str) -> dict:  # over HTTP: the test client cannot run async views beside Playwright's loop
        headers = {"Authorization": f"Bearer {started.access_token}", "User-Agent": BROWSER_UA}
        answer = staff.request.get(live_server.url + path, headers=headers)
        assert answer.ok, answer.status
        return answer.json()

    staff_said = [event for event in as_visitor("/api/v1/chat/events")["events"] if event.get("role") == "staff"]
    assert [(event["content"], event["author"]) for event in staff_said] == [(reply, "Ana Silva")]
    assert as_visitor("/api/v1/auth/session")["mode"] == "human"

    staff.get_by_role("button", name="Hand back to the model").click()
    expect(staff.locator(".messagelist")).to_contain_text("Handed back to the model")
    expect(mode).to_have_text("ai")
    expect(staff.get_by_role("button", name="Hand back to the model")).to_have_count(0)
    shots.take(staff, "staff-handed-back")
    session.refresh_from_db()
    assert session.mode == ChatSession.Mode.AI
    assert as_visitor("/api/v1/auth/session")["mode"] == "ai"
    assert staff_watch.dialogs == staff_watch.errors == []
    staff.context.close()
