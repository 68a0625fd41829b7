"""What the listener makes of each thread message, as plain values (the gateway tests drive it end to end)."""

import pytest

from chat_app.models import ChatMessage
from notifications_app.models import DiscordThread
from notifications_app.relay import ThreadMessage, catch_up_points, thread_message_relay
from sessions_app.tests.factories import session_make

pytestmark = pytest.mark.django_db
THREAD = 1100000000000000900


@pytest.fixture
def session(settings):
    settings.DISCORD_STAFF_ROLE_ID = 0
    started = session_make().session
    DiscordThread.objects.create(session=started, thread_id=THREAD, channel_id=1, opening_message_id=THREAD)
    return started


def said(content: str, message_id: int = 1, **fields) -> ThreadMessage:
    return ThreadMessage(id=message_id, channel_id=THREAD, author_name="Ana", content=content, **fields)


def test_a_message_longer_than_a_chat_message_is_stored_whole(session, settings):
    settings.MAX_MESSAGE_LENGTH = 100
    text = "word " * 100

    assert thread_message_relay(said(text)).outcome == "stored"
    assert ChatMessage.objects.get(kind="staff").content == text.strip()


@pytest.mark.parametrize(
    "fields",
    [{"system": True}, {"author_is_bot": True}, {"from_webhook": True}, {"embed_titles": ("a link preview",)}],
)
def test_system_notices_bots_webhooks_and_embeds_alone_are_not_relayed(session, fields):
    content = "" if "embed_titles" in fields else "hello"

    assert thread_message_relay(said(content, **fields)).outcome == "ignored"
    assert not ChatMessage.objects.exists()


def test_a_thread_that_is_not_a_sessions_is_ignored(session):
    message = ThreadMessage(id=5, channel_id=THREAD + 1, author_name="Ana", content="hello")

    assert thread_message_relay(message).outcome == "ignored"


def test_catch_up_starts_after_the_newest_relayed_message_else_the_opening(session):
    assert [(p.thread_id, p.after_id) for p in catch_up_points()] == [(THREAD, THREAD)]

    thread_message_relay(said("first", message_id=THREAD + 10))
    thread_message_relay(said("second", message_id=THREAD + 20))

    assert [(p.thread_id, p.after_id) for p in catch_up_points()] == [(THREAD, THREAD + 20)]
