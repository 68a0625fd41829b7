"""The wire of testing.discord_gateway: Discord gateway v10 payload shapes, sessions, connections.

Each builder gives the fields Discord sends (as far as discord.py's `Message`, `Member`, `Guild`,
`Thread` and `ClientUser` read them), so a listener meets the same shapes as in production.
"""

import asyncio
import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15
ALL_INTENTS = (1 << 26) - 1

# Message fields hidden from a client without the MESSAGE_CONTENT intent.
CONTENT_FIELDS = {"content": "", "embeds": [], "attachments": [], "components": [], "sticker_items": []}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def frame(op: int, d=None, *, s: int | None = None, t: str | None = None) -> dict:
    return {"op": op, "d": d, "s": s, "t": t}


def user(user_id: int | str, username: str, *, global_name: str | None = None, bot: bool = False) -> dict:
    payload = {
        "id": str(user_id),
        "username": username,
        "global_name": global_name,
        "discriminator": "0",
        "avatar": None,
        "public_flags": 0,
    }
    if bot:  # Discord leaves `bot` out for people
        payload["bot"] = True
    return payload


def member(roles=(), *, nick: str | None = None, of_user: dict | None = None) -> dict:
    """A guild member; in a message it comes without `user` (the message's author is the user)."""
    payload = {
        "roles": [str(r) for r in roles],
        "nick": nick,
        "avatar": None,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if of_user is not None:
        payload["user"] = of_user
    return payload


def attachment(attachment_id: int, given: dict) -> dict:
    filename = given.get("filename", "file.txt")
    url = f"https://cdn.discordapp.com/attachments/0/{attachment_id}/{filename}"
    return {
        "id": str(attachment_id),
        "filename": filename,
        "size": 0,
        "url": url,
        "proxy_url": url,
        "content_type": "text/plain",
        **given,
    }


def user_message(
    author: dict,
    content: str,
    *,
    attachments=(),
    embeds=(),
    sticker_items=(),
    mentions=(),
    mention_roles=(),
    webhook_id: int | None = None,
) -> dict:
    """A message object as REST returns it, less the id, channel_id and timestamp the store adds."""
    message = {
        "type": 0,
        "author": author,
        "content": content,
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": list(mentions),
        "mention_roles": [str(r) for r in mention_roles],
        "attachments": list(attachments),
        "embeds": list(embeds),
        "pinned": False,
        "flags": 0,
        "components": [],
    }
    if sticker_items:
        message["sticker_items"] = list(sticker_items)
    if webhook_id is not None:
        message["webhook_id"] = str(webhook_id)
    return message


def webhook_author(webhook_id: int, name: str) -> dict:
    return {"id": str(webhook_id), "username": name, "avatar": None, "discriminator": "0000", "bot": True}


def in_guild(message: dict, guild_id: int, member_payload: dict | None) -> dict:
    """MESSAGE_CREATE/MESSAGE_UPDATE data: the message plus guild_id and, unless from a webhook, member."""
    data = {**message, "guild_id": str(guild_id)}
    if member_payload is not None:
        data["member"] = member_payload
    return data


def without_content(data: dict, bot_id: str) -> dict:
    """What a client without MESSAGE_CONTENT sees: empty content, unless it is the bot's or mentions it."""
    if data.get("author", {}).get("id") == bot_id or any(m.get("id") == bot_id for m in data.get("mentions", [])):
        return data
    return {**data, **{k: v for k, v in CONTENT_FIELDS.items() if k in data}}


def as_intents_allow(intents: int, name: str, data: dict, bot_id: str) -> dict | None:
    """An event as a session with `intents` sees it; None when they exclude it."""
    if name.startswith("MESSAGE_"):
        if not intents & GUILD_MESSAGES:
            return None
        if name != "MESSAGE_DELETE" and not intents & MESSAGE_CONTENT:
            return without_content(data, bot_id)
    elif name.startswith("THREAD_") and not intents & GUILDS:
        return None
    return data


def role(role_id: int, name: str, *, position: int = 0, permissions: str = "0") -> dict:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": permissions,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def guild_create(
    guild_id: int, name: str, *, owner_id: str, channels: list, threads: list, roles: list, members: list
) -> dict:
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "owner_id": owner_id,
        "unavailable": False,
        "large": False,
        "member_count": len(members),
        "joined_at": "2024-01-01T00:00:00+00:00",
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "features": [],
        "roles": roles,
        "emojis": [],
        "stickers": [],
        "channels": channels,
        "threads": threads,
        "members": members,
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "system_channel_id": None,
        "rules_channel_id": None,
    }


def ready(*, bot_user: dict, guild_id: int, session_id: str, resume_url: str, shard) -> dict:
    data = {
        "v": 10,
        "user": {**bot_user, "mfa_enabled": False, "verified": True, "flags": 0},
        "guilds": [{"id": str(guild_id), "unavailable": True}],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_url,
        "application": {"id": bot_user["id"], "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "auth": {},
        "user_settings": {},
        "_trace": ['["gateway-double",{"micros":0}]'],
    }
    if shard is not None:
        data["shard"] = shard
    return data


# --- sessions and connections ------------------------------------------------------------


@dataclass(eq=False)
class Session:
    id: str
    intents: int
    shard: list | None
    seq: int = 0
    events: list[tuple[int, str]] = field(default_factory=list)  # (seq, frame) kept for RESUME
    conn: "Connection | None" = None

    def event(self, name: str, data: dict, *, keep: bool = True) -> str:
        self.seq += 1
        text = json.dumps(frame(0, data, s=self.seq, t=name))
        if keep:
            self.events.append((self.seq, text))
        return text


class Connection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self.transport = ws, request.transport
        self.path, self.query = request.path, dict(request.query)
        self.session: Session | None = None
        self.closed_here = False  # the double sent the close frame
        self._compress = compressor(self.query.get("compress"))
        self._lock = asyncio.Lock()  # one frame at a time: a compressed stream must stay in order

    async def send(self, *texts: str) -> bool:
        async with self._lock:
            try:
                for text in texts:
                    if self._compress is None:
                        await self.ws.send_str(text)
                    else:
                        await self.ws.send_bytes(self._compress(text.encode()))
            except (ConnectionError, RuntimeError):
                return False  # gone: its session keeps the events for a RESUME
        return True

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def compressor(kind: str | None):
    """Per-connection transport compression: one stream, flushed at every message's end."""
    if kind == "zlib-stream":
        zlib_stream = zlib.compressobj()
        return lambda data: zlib_stream.compress(data) + zlib_stream.flush(zlib.Z_SYNC_FLUSH)
    if kind == "zstd-stream":
        try:
            import zstandard

            zstd_stream = zstandard.ZstdCompressor().compressobj()
            return lambda data: zstd_stream.compress(data) + zstd_stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        except ImportError:
            from compression.zstd import ZstdCompressor  # Python 3.14

            stdlib_stream = ZstdCompressor()
            return lambda data: stdlib_stream.compress(data, ZstdCompressor.FLUSH_BLOCK)
    return None
