"""A Discord gateway v10 double beside the REST double: the real discord.py client connects to it.

It speaks JSON over an aiohttp websocket, with zlib-stream transport compression when the client asks
(discord.py 2.x always asks ``compress=zlib-stream``, or ``zstd-stream`` when a zstd module is
importable; both are served). HELLO, heartbeats and ACKs, IDENTIFY (token check: close 4004; a
refused MESSAGE_CONTENT intent: close 4014), READY + GUILD_CREATE (the REST double's text channel and
live threads), RESUME (replays what was dispatched after the client's seq, then RESUMED; an unknown
session gets op 9 false), and MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE / THREAD_CREATE /
THREAD_DELETE, per-session sequence numbers, the intents' filtering (no GUILD_MESSAGES: no message
events; no MESSAGE_CONTENT: empty content). What the bot does through the REST double (posting,
opening or deleting a thread, deleting a message) comes back as events, as on Discord.

Pointing discord.py at it. discord.py 2.7's ``Client.connect`` never asks ``GET /gateway/bot``: it
identifies at the class attribute ``DiscordWebSocket.DEFAULT_GATEWAY`` and resumes at READY's
``resume_gateway_url`` (this double's ``/resume``). So, as ``Route.BASE`` is set for REST::

    import discord, yarl
    discord.http.Route.BASE = rest.api_base                              # DISCORD_API_BASE
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gw.url)  # DISCORD_GATEWAY_URL

``AutoShardedClient`` does ask ``GET /gateway/bot``; the REST double answers it with ``gw.url``.

In tests::

    with DiscordDouble() as rest, GatewayDouble(rest, heartbeat_interval=500) as gw:
        ...  # start a discord.Client, then gw.wait_ready()
        gw.user_message(thread_id, "hello")  # stored (REST history) and dispatched
        gw.drop()  # the client resumes and gets what it missed

Alone: ``python -m testing.discord_gateway --port 8004 --rest-port 8002``.
"""

import argparse
import asyncio
import json
import threading
import time
import uuid

from aiohttp import WSMsgType, web

from testing import discord_payloads as p
from testing.discord_server import DiscordDouble


class GatewayDouble:
    def __init__(
        self,
        rest: DiscordDouble,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: int = 41250,  # milliseconds, as in HELLO
        refuse_message_content: bool = False,
        roles: dict[int, str] | None = None,  # the guild's roles besides @everyone, id -> name
        guild_name: str = "chat-monitor-guild",
    ) -> None:
        self.rest, self.host, self.port = rest, host, port
        self.heartbeat_interval = heartbeat_interval
        self.refuse_message_content = refuse_message_content
        self.roles = dict(roles or {})
        self.guild_name = guild_name
        self.ack_heartbeats = True  # False: a zombied connection, discord.py reconnects after its timeout
        self.identify_count = self.resume_count = self.failed_resumes = self.replayed = 0
        self.close_codes: list[int] = []  # the codes the double closed connections with
        self.handshakes: list[dict] = []  # each websocket's path and query, e.g. {"path": "/resume", ...}
        self._received: list[dict] = []
        self._sessions: dict[str, p.Session] = {}
        self._conns: set[p.Connection] = set()
        self._members: dict[str, dict] = {}  # author id -> member, for their messages' events
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._gate: asyncio.Event | None = None
        self._started = threading.Event()

    # --- running -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_url(self) -> str:
        return f"ws://{self.host}:{self.port}/resume"

    def __enter__(self) -> "GatewayDouble":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="discord-gateway-double", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the gateway double did not start")
        self.rest.gateway_url = self.url
        self.rest.observers.append(self._on_rest)

    def stop(self) -> None:
        if self._loop is None:
            return
        self.rest.observers.remove(self._on_rest)
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._startup())
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _startup(self) -> None:
        self._gate = asyncio.Event()
        self._gate.set()
        app = web.Application()
        app.add_routes([web.get("/", self._socket), web.get("/resume", self._socket)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        self.port = self.port or self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        self._gate.set()
        for conn in list(self._conns):
            conn.abort()
        await self._runner.cleanup()

    def _run(self, coro, timeout: float = 10):
        """Run `coro` on the double's loop from a test's thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _bump(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # --- what tests read -----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Open websockets."""
        return len(self._conns)

    @property
    def ready_connections(self) -> int:
        """Open websockets whose session is live (sent READY or RESUMED)."""
        return sum(1 for c in list(self._conns) if c.session is not None and c.session.conn is c)

    def received(self, op: int | None = None) -> list[dict]:
        """What clients sent, in order (op 1 heartbeats, op 2 identify, op 6 resume...)."""
        return [f for f in list(self._received) if op in (None, f.get("op"))]

    def wait_until(self, predicate, timeout: float = 5.0) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(f"gateway double: still not {getattr(predicate, '__name__', predicate)}")

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Until a client is connected with a live session (its READY or RESUMED sent)."""
        self.wait_until(lambda: self.ready_connections > 0, timeout)

    # --- what people and Discord do, from tests -------------------------------------------------

    def user_message(
        self,
        channel_id: int,
        content: str = "",
        *,
        author_id: int = 1100000000000000500,
        author_name: str = "visitor-helper",
        global_name: str | None = None,
        nick: str | None = None,
        roles=(),
        bot: bool = False,
        webhook_id: int | None = None,
        attachments=(),
        embeds=(),
        sticker_items=(),
        mentions=(),
        dispatch: bool = True,
    ) -> dict:
        """Someone posts in `channel_id` (a thread or the text channel): stored in the REST double
        (its history returns it) and, unless `dispatch=False` (missed while away), a MESSAGE_CREATE.
        """
        if webhook_id is not None:
            author, member = p.webhook_author(webhook_id, author_name), None
        else:
            author = p.user(author_id, author_name, global_name=global_name, bot=bot)
            member = self._members[author["id"]] = p.member(roles, nick=nick)
        files = [p.attachment(self.rest.new_id(), a) for a in attachments]
        extras = {"embeds": embeds, "sticker_items": sticker_items, "mentions": mentions, "webhook_id": webhook_id}
        message = self.rest.add_message(channel_id, p.user_message(author, content, attachments=files, **extras))
        if dispatch:
            self._run(self._dispatch("MESSAGE_CREATE", p.in_guild(message, self.rest.guild_id, member)))
        return message

    def user_edit(self, message_id: int, content: str, *, dispatch: bool = True) -> dict:
        message = self.rest.edit_message(int(message_id), content)
        if dispatch:
            member = None if "webhook_id" in message else self._members.get(message["author"]["id"], p.member())
            self._run(self._dispatch("MESSAGE_UPDATE", p.in_guild(message, self.rest.guild_id, member)))
        return message

    def user_delete(self, message_id: int, *, dispatch: bool = True) -> dict:
        message = self.rest.remove_message(int(message_id))
        if dispatch:
            gone = {"id": message["id"], "channel_id": message["channel_id"], "guild_id": str(self.rest.guild_id)}
            self._run(self._dispatch("MESSAGE_DELETE", gone))
        return message

    def hold(self) -> None:
        """New websockets wait before their HELLO until `release()`: events dispatched meanwhile
        are missed by a dropped client, and replayed when it resumes.
        """
        self._loop.call_soon_threadsafe(self._gate.clear)

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._gate.set)

    def drop(self) -> None:
        """Cut every connection without a close frame (as a network failure); sessions stay resumable."""
        self._run(self._each(lambda conn: self._detach(conn) or conn.abort()))

    def close(self, code: int = 4000, reason: str = "closed by the double") -> None:
        self._run(self._each(lambda conn: self._close(conn, code, reason)))

    def reconnect(self) -> None:
        """Op 7: the client closes and resumes."""
        self._run(self._each(lambda conn: conn.send(json.dumps(p.frame(7)))))

    def invalidate(self, resumable: bool = False) -> None:
        """Op 9: resumable, the client resumes; else the session is forgotten and it identifies again."""

        async def one(conn: p.Connection) -> None:
            if not resumable and conn.session is not None:
                self._sessions.pop(conn.session.id, None)
            await conn.send(json.dumps(p.frame(9, resumable)))

        self._run(self._each(one))

    async def _each(self, action) -> None:
        for conn in list(self._conns):
            result = action(conn)
            if asyncio.iscoroutine(result):
                await result
        self._bump()

    # --- the websocket --------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("compress") not in (None, "zlib-stream", "zstd-stream"):
            raise web.HTTPBadRequest(text="unsupported compress")
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        conn = p.Connection(ws, request)
        self.handshakes.append({"path": conn.path, **conn.query})
        self._conns.add(conn)
        self._bump()
        try:
            await self._gate.wait()
            if request.query.get("v", "10") != "10":
                await self._close(conn, 4012, "Invalid API version.")
            elif request.query.get("encoding", "json") != "json":
                await self._close(conn, 4002, "Error while decoding payload.")
            else:
                await conn.send(json.dumps(p.frame(10, {"heartbeat_interval": self.heartbeat_interval})))
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    await self._close(conn, 4002, "Error while decoding payload.")
                    break
                await self._frame(conn, message.data)
        finally:
            if ws.close_code in (1000, 1001) and not conn.closed_here and conn.session is not None:
                self._sessions.pop(conn.session.id, None)  # the client's clean close ends its session
            self._detach(conn)
            self._conns.discard(conn)
            self._bump()
        return ws

    async def _close(self, conn: p.Connection, code: int, reason: str) -> None:
        conn.closed_here = True  # then the close code is the client's answer, whatever it is
        self.close_codes.append(code)
        self._bump()
        await conn.close(code, reason)

    def _detach(self, conn: p.Connection) -> None:
        if conn.session is not None and conn.session.conn is conn:
            conn.session.conn = None

    async def _frame(self, conn: p.Connection, text: str) -> None:
        try:
            payload = json.loads(text)
            op, data = payload["op"], payload.get("d")
        except (ValueError, KeyError, TypeError):
            return await self._close(conn, 4002, "Error while decoding payload.")
        self._received.append(payload)
        self._bump()
        if op == 1:
            if self.ack_heartbeats:
                await conn.send(json.dumps(p.frame(11)))
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await self._close(conn, 4003, "Not authenticated.")
        elif op == 8:  # member chunks: the bot only, as for a guild without the members intent
            me = p.member(of_user=self.rest.bot_user)
            chunk = {"guild_id": str(self.rest.guild_id), "members": [me], "chunk_index": 0, "chunk_count": 1}
            await self._send_event(conn.session, "GUILD_MEMBERS_CHUNK", {**chunk, "nonce": (data or {}).get("nonce")})
        elif op not in (3, 4):  # presence and voice state updates are accepted and ignored
            await self._close(conn, 4001, "Unknown opcode.")

    def _token_ok(self, data: dict) -> bool:
        return str(data.get("token", "")).removeprefix("Bot ") == self.rest.token

    async def _identify(self, conn: p.Connection, data: dict) -> None:
        intents = data.get("intents")
        if conn.session is not None:
            return await self._close(conn, 4005, "Already authenticated.")
        if not self._token_ok(data):
            return await self._close(conn, 4004, "Authentication failed.")
        if not isinstance(intents, int) or not 0 <= intents <= p.ALL_INTENTS:
            return await self._close(conn, 4013, "Invalid intent(s).")
        if self.refuse_message_content and intents & p.MESSAGE_CONTENT:
            return await self._close(conn, 4014, "Disallowed intent(s).")
        session = p.Session(id=uuid.uuid4().hex, intents=intents, shard=data.get("shard"))
        self._sessions[session.id] = session
        self.identify_count += 1
        ready = p.ready(
            bot_user=self.rest.bot_user,
            guild_id=self.rest.guild_id,
            session_id=session.id,
            resume_url=self.resume_url,
            shard=session.shard,
        )
        # Not kept for RESUME: a resumed client has these already.
        frames = [session.event("READY", ready, keep=False), session.event("GUILD_CREATE", self._guild(), keep=False)]
        await self._attach(conn, session, frames)

    async def _resume(self, conn: p.Connection, data: dict) -> None:
        session = self._sessions.get(data.get("session_id"))
        if not self._token_ok(data):
            return await self._close(conn, 4004, "Authentication failed.")
        if session is None:
            self.failed_resumes += 1
            await conn.send(json.dumps(p.frame(9, False)))
            return self._bump()
        missed = [text for seq, text in session.events if seq > (data.get("seq") or 0)]
        self.resume_count += 1
        self.replayed += len(missed)
        await self._attach(conn, session, [*missed, session.event("RESUMED", {}, keep=False)])

    async def _attach(self, conn: p.Connection, session: p.Session, frames: list[str]) -> None:
        previous, session.conn, conn.session = session.conn, conn, session
        if previous is not None and previous is not conn:
            previous.abort()  # as Discord, one connection per session
        # Dispatches from now on wait for these behind the connection's lock.
        await conn.send(*frames)
        self._bump()

    def _guild(self) -> dict:
        bot = self.rest.bot_user
        roles = [p.role(self.rest.guild_id, "@everyone", permissions="1071698660929")]
        roles += [p.role(rid, name, position=i + 1) for i, (rid, name) in enumerate(self.roles.items())]
        return p.guild_create(
            self.rest.guild_id,
            self.guild_name,
            owner_id=bot["id"],
            channels=[self.rest._text_channel()],
            threads=self.rest.threads(),
            roles=roles,
            members=[p.member(of_user=bot)],
        )

    # --- dispatching ------------------------------------------------------------------------------

    async def _dispatch(self, name: str, data: dict) -> int:
        """Send an event to every live session (buffered for a detached one); how many got it now."""
        sent = 0
        for session in list(self._sessions.values()):
            shaped = p.as_intents_allow(session.intents, name, data, self.rest.bot_user["id"])
            if shaped is not None:
                sent += await self._send_event(session, name, shaped)
        return sent

    async def _send_event(self, session: p.Session, name: str, data: dict) -> bool:
        text = session.event(name, data)
        return session.conn is not None and await session.conn.send(text)

    def _on_rest(self, name: str, data: dict) -> None:
        """The bot changed something through the REST double (on its loop): Discord tells the gateway."""
        guild_id = str(self.rest.guild_id)
        if name == "MESSAGE_CREATE":
            event = p.in_guild(data, self.rest.guild_id, p.member())
        elif name == "THREAD_CREATE":
            event = {**data, "newly_created": True}
        elif name == "THREAD_DELETE":
            event = {k: data[k] for k in ("id", "guild_id", "parent_id", "type")}
        else:
            event = {**data, "guild_id": guild_id}
        asyncio.run_coroutine_threadsafe(self._dispatch(name, event), self._loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8004)
    parser.add_argument("--rest-port", type=int, default=8002)
    parser.add_argument("--token", default="test-bot-token")
    parser.add_argument("--heartbeat-interval", type=int, default=41250)
    parser.add_argument("--refuse-message-content", action="store_true")
    args = parser.parse_args()
    options = {"heartbeat_interval": args.heartbeat_interval, "refuse_message_content": args.refuse_message_content}
    with (
        DiscordDouble(token=args.token, host=args.host, port=args.rest_port) as rest,
        GatewayDouble(rest, host=args.host, port=args.port, **options) as gateway,
    ):
        print(f"Discord REST double on {rest.api_base}, gateway double on {gateway.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
