"""`manage.py discord_gateway`: a discord.py client on Discord's gateway that relays staff's thread messages.

discord.py is imported here and in notifications_app.discord only. Every database step runs on one
thread of its own, in the order Discord sent the events, so relays keep Discord's order and the
gateway's event loop never waits on the database. After each new identify (`on_connect`) and each
resume (`on_resumed`) the listener catches up over REST on every live session's thread, from the
newest Discord message already relayed: idempotent by that id, like everything the listener does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections

from chat_app.handoff import idle_sessions_release
from notifications_app import relay
from notifications_app.discord import _discord, _no_mentions, discord_api_base_set

if TYPE_CHECKING:
    import discord

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 20.0  # /health counts a listener heard from within a minute
IDLE_SWEEP_SECONDS = 10.0
CATCH_UP_LIMIT = 1000  # messages per thread per catch-up: a day of a busy thread
INTENT_REFUSED = (
    "Discord refused the message content intent: enable 'Message Content Intent' for this bot under "
    "Bot > Privileged Gateway Intents at https://discord.com/developers/applications, then start again."
)


class IntentRefused(Exception):
    pass


def thread_message_of(message: discord.Message) -> relay.ThreadMessage:
    """A discord.py message as plain values: who wrote it, with which roles, and what a visitor can read."""
    discord = _discord()
    author = message.author
    return relay.ThreadMessage(
        id=message.id,
        channel_id=message.channel.id,
        author_name=getattr(author, "display_name", None) or author.name,
        content=message.content or "",
        author_is_bot=bool(author.bot),
        from_webhook=message.webhook_id is not None,
        system=message.type not in (discord.MessageType.default, discord.MessageType.reply),
        role_ids=frozenset(role.id for role in getattr(author, "roles", ())),
        attachment_urls=tuple(attachment.url for attachment in message.attachments),
        sticker_names=tuple(sticker.name for sticker in message.stickers),
    )


def _in_database(function, /, *args, **kwargs):
    """Run database work on the listener's database thread; fresh connections after any failure."""
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()


class GatewayListener:
    """Use `run()`; it returns when stopped and raises IntentRefused when Discord refuses the intent."""

    def __init__(self, *, name: str | None = None, catch_up: bool = True) -> None:
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.catch_up = catch_up
        self._database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self._client: discord.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relayed = 0

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._database.shutdown(wait=True)

    def stop(self) -> None:
        """Ask the listener to close; safe from a signal handler or another thread."""
        if self._loop is not None and self._client is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._client.close()))

    async def _db(self, function, /, *args, **kwargs) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._database, partial(_in_database, function, *args, **kwargs)
        )

    async def _main(self) -> None:
        discord = _discord()
        discord_api_base_set(settings.DISCORD_API_BASE)
        if settings.DISCORD_GATEWAY_URL:
            import yarl

            # discord.py identifies at this class attribute (it never asks GET /gateway/bot); a
            # resume goes to READY's resume_gateway_url, which the gateway itself names.
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.DISCORD_GATEWAY_URL)
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.message_content = True
        self._loop = asyncio.get_running_loop()
        self._client = client = discord.Client(intents=intents, allowed_mentions=_no_mentions())
        for handler in (self.on_connect, self.on_resumed, self.on_ready, self.on_message):
            client.event(handler)
        client.event(self.on_raw_message_edit)
        client.event(self.on_raw_message_delete)
        chores = asyncio.create_task(self._chores())
        try:
            async with client:
                await client.start(settings.DISCORD_BOT_TOKEN)
        except discord.PrivilegedIntentsRequired as exc:
            raise IntentRefused(INTENT_REFUSED) from exc
        finally:
            chores.cancel()

    # --- events ------------------------------------------------------------------------------

    async def on_connect(self) -> None:
        """A new session (first connect or a new identify): what happened meanwhile is only in history."""
        logger.info("discord gateway connected", extra={"listener": self.name})
        await self._catch_up()

    async def on_resumed(self) -> None:
        logger.info("discord gateway resumed", extra={"listener": self.name})
        await self._catch_up()

    async def on_ready(self) -> None:
        await self._db(relay.listener_heard, name=self.name)

    async def on_message(self, message: discord.Message) -> None:
        await self._relay(thread_message_of(message))

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        content = payload.data.get("content")
        if content is not None:  # an embed unfurled, say: no new text
            await self._db(relay.thread_message_edit, message_id=payload.message_id, content=content)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._db(relay.thread_message_delete, message_id=payload.message_id)

    async def _relay(self, message: relay.ThreadMessage) -> None:
        try:
            outcome = await self._db(relay.thread_message_relay, message)
        except Exception:  # a boundary: one bad message must not stop the listener
            logger.exception("thread message not relayed", extra={"discord_message_id": message.id})
            return
        self.relayed += outcome.outcome == "stored"
        if outcome.reply:
            await self._answer(message.channel_id, outcome.reply)

    async def _answer(self, channel_id: int, text: str) -> None:
        discord = _discord()
        try:
            channel = self._client.get_partial_messageable(channel_id, type=discord.ChannelType.public_thread)
            await channel.send(content=text, allowed_mentions=_no_mentions())
        except discord.DiscordException:
            logger.warning("answer in the thread not sent", exc_info=True)

    async def _catch_up(self) -> None:
        """Relay what each live session's thread holds after its newest relayed message, oldest first."""
        if not self.catch_up:
            return
        discord = _discord()
        for point in await self._db(relay.catch_up_points):
            channel = self._client.get_partial_messageable(point.thread_id, type=discord.ChannelType.public_thread)
            try:
                async for message in channel.history(
                    after=discord.Object(point.after_id), oldest_first=True, limit=CATCH_UP_LIMIT
                ):
                    await self._relay(thread_message_of(message))
            except discord.DiscordException:
                logger.warning("catch-up of a thread failed", extra={"thread_id": point.thread_id}, exc_info=True)

    async def _chores(self) -> None:
        """The listener's heartbeat for /health, and the idle hand-back's sweep."""
        swept = beat = 0.0
        while True:
            now = time.monotonic()
            try:
                if now - beat >= HEARTBEAT_SECONDS:
                    beat = now
                    await self._db(relay.listener_heard, name=self.name)
                if now - swept >= IDLE_SWEEP_SECONDS:
                    swept = now
                    await self._db(idle_sessions_release)
            except Exception:  # the database is down: try again at the next tick
                logger.warning("listener chores failed", exc_info=True)
            await asyncio.sleep(1.0)
