"""`discord_gateway`: the real discord.py client against the gateway and REST doubles over real sockets."""

import threading
import time

import pytest
from django.core.management import CommandError, call_command

from chat_app.models import ChatEvent, ChatMessage
from notifications_app.gateway import GatewayListener
from notifications_app.models import DiscordThread, ListenerHeartbeat
from notifications_app.tests.conftest import drain
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end
from sessions_app.tests.factories import session_make
from testing.discord_gateway import GatewayDouble

pytestmark = pytest.mark.django_db(transaction=True)
STAFF_ROLE = 1100000000000000777
ANA = {"author_id": 1100000000000000601, "author_name": "ana", "global_name": "Ana"}


@pytest.fixture
def gateway(double, discord_on):
    with GatewayDouble(double, heartbeat_interval=500, roles={STAFF_ROLE: "staff"}) as gw:
        discord_on.DISCORD_GATEWAY_URL = gw.url
        yield gw


class Running:
    """A listener in its own thread, as `manage.py discord_gateway` runs it."""

    def __init__(self, **options):
        self.listener = GatewayListener(**options)
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.listener.run()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def stop(self):
        self.listener.stop()
        self.thread.join(timeout=10)


@pytest.fixture
def listening(gateway):
    started = []

    def start(count: int = 1, **options):
        for _ in range(count):
            started.append(Running(**options))
        gateway.wait_until(lambda: gateway.ready_connections >= len(started), timeout=10)
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def thread_id(double, worker):
    """A live session whose thread the delivery worker opened in the REST double."""
    session_make()
    drain(worker)
    return DiscordThread.objects.get().thread_id


def eventually(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.02)
    return result


def staff_messages() -> list[tuple[str, str]]:
    return list(ChatMessage.objects.filter(kind="staff").order_by("id").values_list("author", "content"))


def session() -> ChatSession:
    return ChatSession.objects.get()


def test_a_person_typing_in_the_thread_reaches_the_visitor_and_takes_over(gateway, listening, thread_id):
    listening()

    gateway.user_message(thread_id, "Hello, I'm *Ana* <3", **ANA)

    assert eventually(staff_messages) == [("Ana", "Hello, I'm *Ana* <3")]
    assert session().mode == "human"
    kinds = list(ChatEvent.objects.order_by("seq").values_list("kind", flat=True))
    assert kinds == ["message", "mode"]
    assert ListenerHeartbeat.objects.exists()


def test_bots_webhooks_the_bot_itself_and_unknown_threads_are_not_relayed(gateway, listening, thread_id, double):
    listening()

    gateway.user_message(thread_id, "beep", bot=True, author_name="otherbot")
    gateway.user_message(thread_id, "hook", webhook_id=555, author_name="GitHub")
    gateway.user_message(double.channel_id, "in the channel, not a thread", **ANA)
    gateway.user_message(thread_id, "the marker", **ANA)

    assert eventually(staff_messages) == [("Ana", "the marker")]  # Discord's order: the rest came first


def test_with_a_staff_role_only_its_members_speak_for_staff(gateway, listening, thread_id, discord_on):
    discord_on.DISCORD_STAFF_ROLE_ID = STAFF_ROLE
    listening()

    gateway.user_message(thread_id, "not staff", author_id=1100000000000000602, author_name="eve")
    gateway.user_message(thread_id, "staff", roles=[STAFF_ROLE], **ANA)

    assert eventually(staff_messages) == [("Ana", "staff")]


def test_ai_hands_back_note_stays_among_staff_and_unknown_commands_get_help(gateway, listening, thread_id, double):
    listening()
    gateway.user_message(thread_id, "Taking this one", **ANA)
    eventually(lambda: session().mode == "human")

    gateway.user_message(thread_id, "!note the visitor seems upset", **ANA)
    gateway.user_message(thread_id, "!frobnicate", **ANA)
    gateway.user_message(thread_id, "!AI", **ANA)

    eventually(lambda: session().mode == "ai")
    assert staff_messages() == [("Ana", "Taking this one")]
    help_posts = eventually(
        lambda: [p for p in double.thread_posts()[thread_id] if "Unknown command" in p.get("content", "")]
    )
    assert "`!frobnicate`" in help_posts[0]["content"]
    assert list(ChatEvent.objects.filter(kind="mode").values_list("data", flat=True)) == [
        {"mode": "human", "author": "Ana"}, {"mode": "ai", "author": "Ana"},
    ]  # fmt: skip


def test_attachments_are_relayed_as_links_and_stickers_by_name(gateway, listening, thread_id):
    listening()

    gateway.user_message(thread_id, "see this", attachments=[{"filename": "steps.png", "size": 10}], **ANA)
    gateway.user_message(
        thread_id, "", sticker_items=[{"id": "749054660769218631", "name": "Wave", "format_type": 1}], **ANA
    )

    (first, second) = eventually(lambda: len(staff_messages()) == 2 and staff_messages())
    assert first[1].startswith("see this\nhttp") and first[1].endswith("steps.png")
    assert second[1] == "[sticker: Wave]"


def test_edits_and_deletions_in_the_thread_reach_the_visitor(gateway, listening, thread_id):
    listening()
    posted = gateway.user_message(thread_id, "Our hours are 9-5", **ANA)
    eventually(staff_messages)

    gateway.user_edit(int(posted["id"]), "Our hours are 9-6")
    eventually(lambda: ChatEvent.objects.filter(kind="edit").exists())
    gateway.user_delete(int(posted["id"]))
    eventually(lambda: ChatEvent.objects.filter(kind="delete").exists())

    message = ChatMessage.objects.get(kind="staff")
    assert (message.content, message.edited_at is not None, message.deleted_at is not None) == (
        "Our hours are 9-6",
        True,
        True,
    )


def test_messages_in_an_ended_session_are_not_relayed(gateway, listening, thread_id):
    listening()
    chat_session_end(session=session(), reason=ChatSession.EndReason.LOGOUT)

    gateway.user_message(thread_id, "too late", **ANA)
    gateway.user_message(thread_id, "!ai", **ANA)
    time.sleep(0.5)

    assert staff_messages() == []


def test_messages_sent_while_disconnected_are_relayed_once_after_the_resume(gateway, listening, thread_id):
    listening()
    gateway.hold()
    gateway.drop()
    gateway.user_message(thread_id, "while away", **ANA)
    gateway.release()

    eventually(lambda: gateway.resume_count == 1)
    assert eventually(staff_messages) == [("Ana", "while away")]
    time.sleep(0.3)  # the replay and the catch-up over REST both saw it
    assert staff_messages() == [("Ana", "while away")]


def test_messages_missed_entirely_are_caught_up_from_history_after_a_new_identify(gateway, listening, thread_id):
    listening()
    gateway.user_message(thread_id, "before", **ANA)
    eventually(staff_messages)
    gateway.user_message(thread_id, "missed one", dispatch=False, **ANA)
    gateway.user_message(thread_id, "missed two", dispatch=False, **ANA)

    gateway.invalidate(resumable=False)  # discord.py identifies again after its 5 s pause

    assert eventually(lambda: len(staff_messages()) == 3 and staff_messages(), timeout=15) == [
        ("Ana", "before"), ("Ana", "missed one"), ("Ana", "missed two"),
    ]  # fmt: skip


def test_two_listeners_at_once_relay_each_message_once(gateway, listening, thread_id):
    listening(count=2)

    for n in range(5):
        gateway.user_message(thread_id, f"message {n}", **ANA)

    eventually(lambda: len(staff_messages()) == 5)
    time.sleep(0.3)
    assert [content for _, content in staff_messages()] == [f"message {n}" for n in range(5)]
    assert ChatEvent.objects.filter(kind="message").count() == 5


def test_a_refused_message_content_intent_stops_the_command_with_how_to_enable_it(gateway):
    gateway.refuse_message_content = True

    with pytest.raises(CommandError, match="Message Content Intent"):
        call_command("discord_gateway")


def test_the_command_needs_discord_enabled(settings):
    settings.DISCORD_ENABLED = False

    with pytest.raises(CommandError, match="DISCORD_ENABLED"):
        call_command("discord_gateway")


@pytest.mark.parametrize(("heard_seconds_ago", "answer"), [(None, "silent"), (5, "listening"), (90, "silent")])
def test_health_says_whether_a_listener_was_heard_from_in_the_last_minute(
    api_client, discord_on, heard_seconds_ago, answer
):
    from datetime import timedelta

    from django.utils import timezone

    if heard_seconds_ago is not None:
        ListenerHeartbeat.objects.create(name="host:1", heard_at=timezone.now() - timedelta(seconds=heard_seconds_ago))

    body = api_client.get("/health").json()

    assert (body["status"], body["discord_gateway"]) == ("healthy", answer)


def test_health_leaves_the_listener_out_without_discord(api_client, settings):
    settings.DISCORD_ENABLED = False

    assert "discord_gateway" not in api_client.get("/health").json()


def test_the_listener_leaves_logging_to_django(gateway, listening, thread_id):
    """discord.py's `Client.run` installs a stream handler of its own; the listener starts the client
    without it, so discord.py's lines go through Django's logging (request ids, the JSON format)."""
    import logging

    listening()

    handlers = logging.getLogger("discord").handlers
    assert not any(isinstance(handler, logging.StreamHandler) for handler in handlers)
