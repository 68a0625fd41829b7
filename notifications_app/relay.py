"""What staff type in a session's Discord thread, turned into the session's conversation.

Plain values in, database writes out: the listener (notifications_app.gateway) reduces each
discord.py object to a `ThreadMessage` and calls these from its one database thread, in order.
Whether a thread is ours is decided by the thread id stored in our database, never by discord.py's
cache. Relaying is idempotent by the Discord message id, so catching up twice, or several
listeners at once, store each message once.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max
from django.utils import timezone

from chat_app.handoff import (
    SessionOver,
    session_release,
    staff_message_edit,
    staff_message_post,
    staff_message_withdraw,
)
from chat_app.models import ChatMessage
from notifications_app.models import DiscordThread, ListenerHeartbeat

logger = logging.getLogger(__name__)

HAND_BACK = "!ai"
NOTE = "!note"
COMMANDS_HELP = "Unknown command {command}: `!ai` hands the visitor back to the model, `!note ...` stays among staff."


@dataclass(frozen=True)
class ThreadMessage:
    """A message posted in a Discord channel or thread, as plain values."""

    id: int
    channel_id: int
    author_name: str
    content: str
    author_is_bot: bool = False
    from_webhook: bool = False
    system: bool = False
    role_ids: frozenset[int] = frozenset()
    attachment_urls: tuple[str, ...] = ()
    sticker_names: tuple[str, ...] = ()
    embed_titles: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Relayed:
    """What happened to a thread message: `stored`, `released`, `note`, `unknown_command` or `ignored`."""

    outcome: str
    reply: str | None = None  # a line for the bot to answer in the thread


def session_of_thread(thread_id: int) -> str | None:
    return DiscordThread.objects.filter(thread_id=thread_id).values_list("session_id", flat=True).first()


def speaks_for_staff(message: ThreadMessage) -> bool:
    """People only (no bots, no webhooks, no system notices); with DISCORD_STAFF_ROLE_ID, only that role."""
    if message.author_is_bot or message.from_webhook or message.system:
        return False
    role = settings.DISCORD_STAFF_ROLE_ID
    return not role or role in message.role_ids


def visitor_text(message: ThreadMessage) -> str:
    """The text the visitor gets: the content as typed, attachments as links, stickers by name."""
    parts = [message.content.strip()] if message.content.strip() else []
    parts += list(message.attachment_urls)
    parts += [f"[sticker: {name}]" for name in message.sticker_names]
    return "\n".join(parts)


def thread_message_relay(message: ThreadMessage) -> Relayed:
    """Relay one thread message: a staff reply, `!ai`, `!note`, or nothing (not ours, not staff)."""
    session_id = session_of_thread(message.channel_id)
    if session_id is None or not speaks_for_staff(message):
        return Relayed("ignored")
    command = message.content.strip().split(maxsplit=1)[0].lower() if message.content.strip() else ""
    if command == HAND_BACK:
        session_release(session_id=session_id, author=message.author_name)
        return Relayed("released")
    if command == NOTE:
        return Relayed("note")
    if command.startswith("!") and len(command) > 1:
        return Relayed("unknown_command", reply=COMMANDS_HELP.format(command=f"`{command[:32]}`"))
    text = visitor_text(message)
    if not text:
        return Relayed("ignored")  # an embed alone, say: nothing a visitor could read
    try:
        stored = staff_message_post(
            session_id=session_id, content=text, author=message.author_name, discord_message_id=message.id
        )
    except SessionOver:
        logger.info("thread message not relayed: the session has ended", extra={"session_id": session_id})
        return Relayed("ignored")
    return Relayed("stored" if stored is not None else "ignored")


def thread_message_edit(*, message_id: int, content: str) -> bool:
    return staff_message_edit(discord_message_id=message_id, content=content) is not None


def thread_message_delete(*, message_id: int) -> bool:
    return staff_message_withdraw(discord_message_id=message_id) is not None


@dataclass(frozen=True)
class CatchUpPoint:
    thread_id: int
    after_id: int  # the newest Discord message already relayed, else the thread's opening message


def catch_up_points(*, max_age: timedelta = timedelta(days=1)) -> list[CatchUpPoint]:
    """Threads of live sessions active within `max_age`, each with where its catch-up starts."""
    now = timezone.now()
    threads = DiscordThread.objects.filter(
        session__is_active=True, session__expires_at__gt=now, session__last_activity_at__gte=now - max_age
    ).values_list("thread_id", "session_id", "opening_message_id")
    newest = dict(
        ChatMessage.objects.filter(session_id__in=[s for _, s, _ in threads], discord_message_id__isnull=False)
        .order_by()
        .values("session_id")
        .annotate(newest=Max("discord_message_id"))
        .values_list("session_id", "newest")
    )
    return [CatchUpPoint(thread_id, newest.get(session_id) or opening) for thread_id, session_id, opening in threads]


def listener_heard(*, name: str) -> None:
    """The listener is alive: `/health` answers `listening` for a minute after this."""
    ListenerHeartbeat.objects.update_or_create(name=name[:100], defaults={"heard_at": timezone.now()})


def listener_recently_heard(*, within: timedelta = timedelta(minutes=1)) -> bool:
    try:
        return ListenerHeartbeat.objects.filter(heard_at__gte=timezone.now() - within).exists()
    except DatabaseError:  # /health says the database is down; this probe just says "silent"
        return False
