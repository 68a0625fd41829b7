"""The one door to Discord: a discord.py REST client per worker, and the escaping Discord text needs.

Nothing else in the project imports discord.py. Callers pass plain embed dicts and get plain ids
back; failures come out as `DiscordUnavailable` (try again later) or `DiscordRejected` (retrying
cannot help).
"""

from __future__ import annotations

import contextlib
import logging
import re
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import discord

THREAD_ARCHIVE_MINUTES = 1440
THREAD_ALREADY_CREATED = 160004  # Discord's code when a message already has a thread
MAX_RATELIMIT_WAIT = 30.0  # discord.py sleeps through shorter 429s itself; longer ones come back to us
PERMANENT_STATUSES = {400, 404, 405, 413, 422}


class _NoGuildCacheWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Guilds intent seems to be disabled")


@cache
def _discord() -> ModuleType:
    """discord.py, imported and set up on first use: commands that never call Discord do not load it."""
    import discord

    # REST only: no voice, no gateway and so no guild cache; discord.py's start-up warnings about
    # those would be noise in every worker's log.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    logging.getLogger("discord.state").addFilter(_NoGuildCacheWarning())
    return discord


def discord_api_base_set(api_base: str) -> None:
    """Send every discord.py REST call of this process to `api_base` (DISCORD_API_BASE).

    discord.py has no public option for its REST base URL: every request it makes is a `Route`,
    whose URL starts with the class attribute `Route.BASE`. This is the one place that sets it;
    notifications_app/tests/test_discord.py pins that discord.py still builds its URLs from it.
    """
    _discord().http.Route.BASE = api_base


def _no_mentions() -> discord.AllowedMentions:
    return _discord().AllowedMentions.none()


class DiscordUnavailable(Exception):
    """Discord could not take the request now; `retry_after` is its own wait, when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class DiscordRejected(Exception):
    """Discord refused the request for good (bad request, unknown channel)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OpenedThread:
    channel_id: int
    message_id: int
    thread_id: int


# Discord shows the character after a backslash as itself whenever it is not a letter, a digit or
# whitespace. Every rule it has (Markdown, mentions, masked and plain links, emoji, timestamps,
# commands, headings, lists, subtext) needs ASCII punctuation in place (`https://` its colon, `1. `
# its dot), so with all of it escaped none matches, whatever the shape: a link text across lines,
# nested brackets, `<@&id>`, `-# `.
_ASCII_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def text_escape(text: str) -> str:
    """Text Discord shows exactly as typed: it can mention no one, link nowhere and format nothing.

    discord.utils' escapes leave `[a\\nb](https://x)`, `<#id>`, `</cmd:id>`, `<t:..>`, `1. ` and more.
    """
    return _ASCII_PUNCTUATION.sub(r"\\\g<0>", text)


class DiscordClient:
    """A logged-in discord.py REST client (no gateway), made on first use and reused.

    Use from one event loop. Every request carries `allowed_mentions` none; every post a `nonce`
    with `enforce_nonce`, so Discord answers a repeated post with the message it already made.
    """

    def __init__(self, *, token: str, api_base: str, channel_id: int) -> None:
        self._token = token
        self._api_base = api_base.rstrip("/")
        self._channel_id = channel_id
        self._client: discord.Client | None = None
        self._channel: discord.TextChannel | None = None

    async def _logged_in(self) -> discord.Client:
        if self._client is None:
            discord = _discord()
            discord_api_base_set(self._api_base)
            client = discord.Client(
                intents=discord.Intents.none(),
                allowed_mentions=_no_mentions(),
                max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
            )
            try:
                async with _translated_errors():
                    await client.login(self._token)
            except DiscordUnavailable:
                await client.close()  # a later attempt starts from a fresh client and HTTP session
                raise
            self._client = client
        return self._client

    async def _parent_channel(self) -> discord.TextChannel:
        client = await self._logged_in()
        if self._channel is None:
            async with _translated_errors():
                self._channel = await client.fetch_channel(self._channel_id)
        return self._channel

    async def thread_open(self, *, embed: dict, name: str, nonce: str) -> OpenedThread:
        """Post the opening embed to the channel and start a thread on it; safe to repeat."""
        discord = _discord()
        channel = await self._parent_channel()
        async with _translated_errors():
            message = await channel.send(
                embed=discord.Embed.from_dict(embed), nonce=nonce, allowed_mentions=_no_mentions()
            )
            try:
                thread = await message.create_thread(name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES)
            except discord.HTTPException as exc:
                if exc.code != THREAD_ALREADY_CREATED:
                    raise
                thread_id = message.id  # a repeat: a thread started from a message carries its id
            else:
                thread_id = thread.id
        return OpenedThread(channel_id=channel.id, message_id=message.id, thread_id=thread_id)

    async def thread_post(self, *, thread_id: int, embed: dict, nonce: str) -> int:
        discord = _discord()
        client = await self._logged_in()
        thread = client.get_partial_messageable(thread_id, type=discord.ChannelType.public_thread)
        async with _translated_errors():
            message = await thread.send(
                embed=discord.Embed.from_dict(embed), nonce=nonce, allowed_mentions=_no_mentions()
            )
        return message.id

    async def thread_ping(self, *, thread_id: int, content: str, role_id: int, nonce: str) -> int:
        """Post plain text in the thread, mentioning the staff role `role_id` (0: nobody)."""
        discord = _discord()
        client = await self._logged_in()
        thread = client.get_partial_messageable(thread_id, type=discord.ChannelType.public_thread)
        mentions = discord.AllowedMentions(
            everyone=False, users=False, roles=[discord.Object(role_id)] if role_id else False
        )
        async with _translated_errors():
            message = await thread.send(content=content, nonce=nonce, allowed_mentions=mentions)
        return message.id

    async def thread_delete(self, *, thread_id: int, channel_id: int, message_id: int) -> None:
        """Delete the thread and its opening message; what is already gone counts as deleted."""
        discord = _discord()
        client = await self._logged_in()
        async with _translated_errors():
            with contextlib.suppress(discord.NotFound):
                await client.http.delete_channel(thread_id)
            with contextlib.suppress(discord.NotFound):
                await client.get_partial_messageable(channel_id).get_partial_message(message_id).delete()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._channel = None


@contextlib.asynccontextmanager
async def _translated_errors() -> AsyncIterator[None]:
    """discord.py's and aiohttp's failures as ours; reasons carry status and code, never content."""
    import aiohttp  # discord.py's transport, loaded with it

    discord = _discord()
    try:
        yield
    except discord.RateLimited as exc:
        raise DiscordUnavailable("rate limited", retry_after=exc.retry_after) from exc
    except discord.LoginFailure as exc:
        raise DiscordUnavailable("login refused: check DISCORD_BOT_TOKEN") from exc
    except discord.HTTPException as exc:
        reason = f"HTTP {exc.status} (code {exc.code})"
        if exc.status == 429:  # a 429 without Discord's own body, e.g. from a proxy in front
            raise DiscordUnavailable(reason, retry_after=_retry_after_header(exc.response)) from exc
        if exc.status in PERMANENT_STATUSES:
            raise DiscordRejected(reason) from exc
        raise DiscordUnavailable(reason) from exc
    except (aiohttp.ClientError, OSError) as exc:  # OSError takes in TimeoutError
        raise DiscordUnavailable(f"connection: {type(exc).__name__}") from exc


def _retry_after_header(response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except (AttributeError, ValueError):
        return None
