"""A Discord REST double for tests and benchmarks: answers what discord.py asks and records everything.

It speaks just enough of Discord's v10 REST API for the notifications worker: the login calls, one
text channel, messages (with `nonce` + `enforce_nonce` de-duplication), threads started from a
message, a channel's history (newest first, `after`/`before`/`limit`), deleting threads and messages,
and `GET /gateway/bot`. What the API changes is told to `observers` (testing.discord_gateway's double
turns it into gateway events). Its behaviour can be switched while it runs:

- ``ok``: answer at once;
- ``slow``: do the work, then wait ``delay`` seconds before answering (a post exists even when the
  client gave up waiting, as on Discord);
- ``down``: stop listening (connection refused) and drop requests on kept-alive connections;
- ``rate_limited``: 429 with Discord's body and headers (``retry_after``, ``X-RateLimit-*``,
  ``Retry-After``, ``Via``);
- ``error``: a 5xx of ``status`` (500 makes discord.py retry by itself; 503 it raises at once).

``count`` limits ``rate_limited``/``error``/``slow`` to the next N API requests, then back to ``ok``.

In tests: ``with DiscordDouble() as double: ...`` runs it in a thread on a free loopback port;
``double.api_base`` is the value for ``DISCORD_API_BASE``. Alone:
``python -m testing.discord_server --port 8002 --control-port 8003``; then ``POST /mode`` with
``{"mode": "down"}`` and ``GET /state`` on the control port.
"""

import argparse
import asyncio
import itertools
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

DISCORD_EPOCH_MS = 1420070400000
MODES = {"ok", "slow", "down", "rate_limited", "error"}
NONCE_WINDOW = timedelta(minutes=5)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class Behaviour:
    mode: str = "ok"
    delay: float = 1.0
    status: int = 503
    retry_after: float = 0.2
    count: int | None = None  # affected requests left before going back to "ok"; None: until changed


@dataclass
class Records:
    """What the double has been asked and what now exists; read through DiscordDouble's helpers."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)
    messages: dict[int, dict] = field(default_factory=dict)  # id -> message object
    channel_messages: dict[int, list[int]] = field(default_factory=dict)  # channel id -> message ids, in order
    threads: dict[int, dict] = field(default_factory=dict)  # id -> thread object
    deleted_channels: list[int] = field(default_factory=list)
    deleted_messages: list[int] = field(default_factory=list)
    nonces: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    in_flight: int = 0


class DiscordDouble:
    def __init__(
        self,
        *,
        token: str = "test-bot-token",  # noqa: S107 - a test double's token
        channel_id: int = 1100000000000000001,
        guild_id: int = 1100000000000000000,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = None,
    ) -> None:
        self.token = token
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.host = host
        self.port = port
        self.control_port = control_port
        self.behaviour = Behaviour()
        self.records = Records(channel_messages={channel_id: []})
        self.bot_user = {
            "id": "1100000000000000099",
            "username": "monitor-bot",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "flags": 0,
            "mfa_enabled": False,
            "verified": True,
        }
        self.gateway_url = "wss://gateway.discord.gg"  # what GET /gateway/bot answers; a GatewayDouble sets it
        self.observers: list = []  # callables (event name, payload), called on the API's loop after each change
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._control_runner: web.AppRunner | None = None
        self._ready = threading.Event()

    # --- running -----------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    def __enter__(self) -> "DiscordDouble":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="discord-double", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Discord double did not start")

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._startup())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _startup(self) -> None:
        self._runner = web.AppRunner(self._api_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await self._listen()
        if self.control_port is not None:
            self._control_runner = web.AppRunner(self._control_app(), access_log=None)
            await self._control_runner.setup()
            await web.TCPSite(self._control_runner, self.host, self.control_port).start()
            self.control_port = self._control_runner.addresses[0][1]

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        if self._control_runner is not None:
            await self._control_runner.cleanup()

    # --- switching behaviour -----------------------------------------------------------------

    def set_mode(
        self,
        mode: str,
        *,
        delay: float | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        count: int | None = None,
    ) -> None:
        """Switch behaviour now; safe to call from any thread."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        asyncio.run_coroutine_threadsafe(self._set_mode(mode, delay, status, retry_after, count), self._loop).result(10)

    async def _set_mode(self, mode, delay, status, retry_after, count) -> None:
        was_down = self.behaviour.mode == "down"
        with self._lock:
            self.behaviour.mode = mode
            self.behaviour.count = count
            if delay is not None:
                self.behaviour.delay = delay
            if status is not None:
                self.behaviour.status = status
            if retry_after is not None:
                self.behaviour.retry_after = retry_after
        if mode == "down" and not was_down:
            await self._site.stop()
        elif was_down and mode != "down":
            await self._listen()

    def _spend(self) -> str:
        """The mode for this request, counting it against a limited run of misbehaviour."""
        with self._lock:
            mode = self.behaviour.mode
            if self.behaviour.count is not None and mode in {"slow", "rate_limited", "error"}:
                self.behaviour.count -= 1
                if self.behaviour.count <= 0:
                    self.behaviour.mode, self.behaviour.count = "ok", None
            return mode

    # --- reading what happened ---------------------------------------------------------------

    def opening_messages(self) -> list[dict]:
        return self.channel_posts(self.channel_id)

    def channel_posts(self, channel_id: int) -> list[dict]:
        with self._lock:
            return [self.records.messages[i] for i in self.records.channel_messages.get(channel_id, [])]

    def threads(self) -> list[dict]:
        with self._lock:
            return list(self.records.threads.values())

    def thread_posts(self) -> dict[int, list[dict]]:
        """Every live thread's messages in the order they were posted, by thread id."""
        with self._lock:
            return {
                tid: [self.records.messages[i] for i in self.records.channel_messages.get(tid, [])]
                for tid in self.records.threads
            }

    def total_posts(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.records.channel_messages.values())

    def requests(self, method: str | None = None, status: int | None = None) -> list[tuple[str, str, int]]:
        with self._lock:
            return [r for r in self.records.requests if (method in (None, r[0])) and (status in (None, r[2]))]

    def in_flight(self) -> int:
        with self._lock:
            return self.records.in_flight

    def state(self) -> dict:
        with self._lock:
            return {
                "mode": self.behaviour.mode,
                "in_flight": self.records.in_flight,
                "threads": len(self.records.threads),
                "posts": sum(len(ids) for ids in self.records.channel_messages.values()),
                "requests": len(self.records.requests),
                "deleted_channels": len(self.records.deleted_channels),
                "deleted_messages": len(self.records.deleted_messages),
            }

    def history(
        self, channel_id: int, *, after: int | None = None, before: int | None = None, limit: int = 50
    ) -> list[dict]:
        """A channel's messages as Discord's GET /channels/{id}/messages: newest first. With `after`,
        the `limit` oldest after it (discord.py pages forwards from the first item); else the newest.
        """
        with self._lock:
            ids = sorted(
                i
                for i in self.records.channel_messages.get(channel_id, [])
                if (after is None or i > after) and (before is None or i < before)
            )
            picked = ids[:limit] if after is not None else ids[len(ids) - limit :]
            return [self.records.messages[i] for i in reversed(picked)]

    # --- what other people do (the gateway double's users) ------------------------------------

    def new_id(self) -> int:
        return self._snowflake(datetime.now(UTC))

    def add_message(self, channel_id: int, message: dict) -> dict:
        """Store a message posted by someone else than the bot; it gets an id, its channel and a timestamp."""
        now = datetime.now(UTC)
        with self._lock:
            if channel_id != self.channel_id and channel_id not in self.records.threads:
                raise KeyError(f"unknown channel {channel_id}")
            message = {
                **message,
                "id": str(self._snowflake(now)),
                "channel_id": str(channel_id),
                "timestamp": _iso(now),
            }
            self.records.messages[int(message["id"])] = message
            self.records.channel_messages.setdefault(channel_id, []).append(int(message["id"]))
        return message

    def edit_message(self, message_id: int, content: str) -> dict:
        with self._lock:
            message = self.records.messages[message_id]
            message.update(content=content, edited_timestamp=_iso(datetime.now(UTC)))
            return dict(message)

    def remove_message(self, message_id: int) -> dict:
        """Delete a message as its author would (not recorded among the bot's deletions)."""
        with self._lock:
            message = self.records.messages.pop(message_id)
            self.records.channel_messages[int(message["channel_id"])].remove(message_id)
            return message

    def _tell(self, event: str, payload: dict) -> None:
        for observer in list(self.observers):
            observer(event, payload)

    # --- the API -----------------------------------------------------------------------------

    def _api_app(self) -> web.Application:
        app = web.Application(middlewares=[self._behave])
        app.add_routes(
            [
                web.get("/api/v10/users/@me", self._me),
                web.get("/api/v10/oauth2/applications/@me", self._application),
                web.get("/api/v10/gateway/bot", self._gateway_bot),
                web.get("/api/v10/channels/{channel_id}/messages", self._message_list),
                web.get("/api/v10/channels/{channel_id}", self._channel),
                web.delete("/api/v10/channels/{channel_id}", self._channel_delete),
                web.post("/api/v10/channels/{channel_id}/messages", self._message_create),
                web.delete("/api/v10/channels/{channel_id}/messages/{message_id}", self._message_delete),
                web.post("/api/v10/channels/{channel_id}/messages/{message_id}/threads", self._thread_create),
            ]
        )
        return app

    @web.middleware
    async def _behave(self, request: web.Request, handler) -> web.StreamResponse:
        mode = self._spend()
        if mode == "down":  # a request on a connection kept alive from before the outage
            request.transport.abort()
            raise web.HTTPServiceUnavailable()
        with self._lock:
            self.records.in_flight += 1
        try:
            response = await self._answer(request, handler, mode)
        finally:
            with self._lock:
                self.records.in_flight -= 1
        with self._lock:
            self.records.requests.append((request.method, request.path, response.status))
        return response

    async def _answer(self, request: web.Request, handler, mode: str) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        if mode == "rate_limited":
            return self._rate_limited()
        if mode == "error":
            return _error(self.behaviour.status, 0, "Discord double failing on purpose")
        response = await handler(request)
        if mode == "slow":
            await asyncio.sleep(self.behaviour.delay)
        response.headers.update(_bucket_headers(remaining=49, reset_after=0.05))
        return response

    def _rate_limited(self) -> web.Response:
        retry_after = self.behaviour.retry_after
        headers = {
            **_bucket_headers(remaining=0, reset_after=retry_after),
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": "user",
            "Via": "1.1 google",
        }
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False, "code": 0}
        return _json(body, status=429, headers=headers)

    async def _me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": self.bot_user["id"],
                "name": "monitor",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.bot_user,
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
            }
        )

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _message_list(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        with self._lock:
            known = channel_id == self.channel_id or channel_id in self.records.threads
        if not known:
            return _error(404, 10003, "Unknown Channel")
        try:
            options = {k: int(request.query[k]) for k in ("after", "before", "limit") if k in request.query}
        except ValueError:
            return _error(400, 50035, "Invalid Form Body")
        if not 1 <= options.setdefault("limit", 50) <= 100:
            return _error(400, 50035, "Invalid Form Body: limit")
        return _json(self.history(channel_id, **options))

    async def _channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        with self._lock:
            thread = self.records.threads.get(channel_id)
        if thread is not None:
            return _json(thread)
        if channel_id != self.channel_id:
            return _error(404, 10003, "Unknown Channel")
        return _json(self._text_channel())

    def _text_channel(self) -> dict:
        return {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "chat-monitor",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }

    async def _message_create(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, 50109, "The request body contains invalid JSON.")
        problem = _embed_problem(body)
        if problem:
            return _error(400, 50035, f"Invalid Form Body: {problem}")
        with self._lock:
            if channel_id != self.channel_id and channel_id not in self.records.threads:
                return _error(404, 10003, "Unknown Channel")
            nonce = body.get("nonce")
            if nonce is not None and body.get("enforce_nonce"):
                earlier = self.records.nonces.get(str(nonce))
                if earlier and datetime.now(UTC) - earlier[1] < NONCE_WINDOW:
                    return _json(self.records.messages[earlier[0]])
            message = self._message(channel_id, body)
            self.records.messages[int(message["id"])] = message
            self.records.channel_messages.setdefault(channel_id, []).append(int(message["id"]))
            if nonce is not None:
                self.records.nonces[str(nonce)] = (int(message["id"]), datetime.now(UTC))
        self._tell("MESSAGE_CREATE", message)
        return _json(message)

    def _message(self, channel_id: int, body: dict) -> dict:
        now = datetime.now(UTC)
        message = {
            "id": str(self._snowflake(now)),
            "channel_id": str(channel_id),
            "author": self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _iso(now),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
            "allowed_mentions": body.get("allowed_mentions"),
        }
        if body.get("nonce") is not None:
            message["nonce"] = str(body["nonce"])
        return message

    def _snowflake(self, now: datetime) -> int:
        milliseconds = int(now.timestamp() * 1000) - DISCORD_EPOCH_MS
        return (milliseconds << 22) | (next(self._ids) & 0x3FFFFF)

    async def _thread_create(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        message_id = int(request.match_info["message_id"])
        body = await request.json()
        with self._lock:
            message = self.records.messages.get(message_id)
            if message is None or int(message["channel_id"]) != channel_id:
                return _error(404, 10008, "Unknown Message")
            if message.get("thread_id"):
                return _error(400, 160004, "A thread has already been created for this message")
            # As on Discord, a thread started from a message has that message's id.
            thread = self._thread_object(message_id, channel_id, body)
            self.records.threads[message_id] = thread
            message["thread_id"] = str(message_id)
        self._tell("THREAD_CREATE", thread)
        return _json(thread, status=201)

    def _thread_object(self, thread_id: int, parent_id: int, body: dict) -> dict:
        return {
            "id": str(thread_id),
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "owner_id": self.bot_user["id"],
            "name": body.get("name", ""),
            "type": 11,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": _iso(datetime.now(UTC)),
                "locked": False,
            },
        }

    async def _channel_delete(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        with self._lock:
            thread = self.records.threads.pop(channel_id, None)
            if thread is None:
                return _error(404, 10003, "Unknown Channel")
            self.records.deleted_channels.append(channel_id)
            for message_id in self.records.channel_messages.pop(channel_id, []):
                self.records.messages.pop(message_id, None)
        self._tell("THREAD_DELETE", thread)
        return _json(thread)

    async def _message_delete(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        message_id = int(request.match_info["message_id"])
        with self._lock:
            ids = self.records.channel_messages.get(channel_id, [])
            if message_id not in ids:
                return _error(404, 10008, "Unknown Message")
            ids.remove(message_id)
            self.records.messages.pop(message_id, None)
            self.records.deleted_messages.append(message_id)
        self._tell("MESSAGE_DELETE", {"id": str(message_id), "channel_id": str(channel_id)})
        return web.Response(status=204)

    # --- control, for the stand-alone server -------------------------------------------------

    def _control_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.post("/mode", self._control_mode),
                web.get("/state", self._control_state),
                web.get("/threads", self._control_threads),
            ]
        )
        return app

    async def _control_mode(self, request: web.Request) -> web.Response:
        body = await request.json()
        mode = body.pop("mode", "ok")
        if mode not in MODES:
            return _json({"detail": f"unknown mode {mode!r}"}, status=400)
        await self._set_mode(mode, body.get("delay"), body.get("status"), body.get("retry_after"), body.get("count"))
        return _json(self.state())

    async def _control_state(self, request: web.Request) -> web.Response:
        return _json(self.state())

    async def _control_threads(self, request: web.Request) -> web.Response:
        return _json({"threads": self.threads(), "posts": {str(k): v for k, v in self.thread_posts().items()}})


class RemoteDouble:
    """A stand-alone double (`python -m testing.discord_server`) read and switched through its
    control port, with the same methods as DiscordDouble for what benchmarks need.
    """

    def __init__(self, *, api_port: int, control_port: int, token: str, channel_id: int, host: str = "127.0.0.1"):
        self.api_base = f"http://{host}:{api_port}/api/v10"
        self.control = f"http://{host}:{control_port}"
        self.token, self.channel_id = token, channel_id

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self.control + path, data=data, headers=headers)  # noqa: S310 - http only
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def set_mode(self, mode: str, **options) -> None:
        self._call("/mode", {"mode": mode, **options})

    def state(self) -> dict:
        return self._call("/state")

    def in_flight(self) -> int:
        return self.state()["in_flight"]

    def total_posts(self) -> int:
        return self.state()["posts"]

    def threads(self) -> list[dict]:
        return self._call("/threads")["threads"]

    def thread_posts(self) -> dict[int, list[dict]]:
        return {int(k): v for k, v in self._call("/threads")["posts"].items()}


def _bucket_headers(*, remaining: int, reset_after: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": "double-bucket",
    }


def _json(payload, status: int = 200, headers: dict | None = None) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly "application/json", as Discord sends.
    body = json.dumps(payload).encode()
    return web.Response(body=body, status=status, headers={**(headers or {}), "Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _embed_problem(body: dict) -> str:
    """Discord's embed limits, so a formatting mistake fails here as it would there."""
    embeds = body.get("embeds") or []
    if not embeds and not body.get("content"):
        return "Cannot send an empty message"
    for embed in embeds:
        title, description = embed.get("title") or "", embed.get("description") or ""
        fields = embed.get("fields") or []
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        if len(title) > 256 or len(description) > 4096 or len(fields) > 25 or len(footer) > 2048:
            return "embed part too long"
        if any(len(f.get("name", "")) > 256 or len(f.get("value", "")) > 1024 for f in fields):
            return "embed field too long"
        total = len(title) + len(description) + len(footer) + len(author)
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in fields)
        if total > 6000:
            return "embed too long"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--control-port", type=int, default=None)
    parser.add_argument("--token", default="test-bot-token")
    parser.add_argument("--channel-id", type=int, default=1100000000000000001)
    args = parser.parse_args()
    double = DiscordDouble(
        token=args.token, channel_id=args.channel_id, host=args.host, port=args.port, control_port=args.control_port
    )
    double.start()
    print(f"Discord double on {double.api_base} (control port {args.control_port})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
