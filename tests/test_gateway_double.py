"""The real discord.py client against the gateway and REST doubles over real sockets, no mocks:
READY, people's messages, edits and deletes, resuming after a drop, re-identifying after an
invalidated session, a refused privileged intent, and the REST history a listener catches up with.
"""

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import zlib

import aiohttp
import discord
import pytest
import yarl

from testing.discord_gateway import GatewayDouble
from testing.discord_server import DiscordDouble

EVENTS = (
    "connect",
    "ready",
    "resumed",
    "message",
    "message_edit",
    "raw_message_edit",
    "raw_message_delete",
    "thread_create",
)


class QuickClient(discord.Client):
    async def before_identify_hook(self, shard_id, *, initial=False) -> None:
        """discord.py waits 5 s before identifying again (Discord's identify rate limit); tests need not."""


class Bot:
    """A discord.Client run in its own thread and event loop, recording the events it is given."""

    def __init__(self, rest: DiscordDouble, *, message_content: bool = True) -> None:
        self.rest, self.message_content = rest, message_content
        self.events: list[tuple[str, tuple]] = []
        self.error: BaseException | None = None
        self.client: discord.Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> "Bot":
        self._thread.start()
        return self

    async def _main(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = self.message_content
        self.loop = asyncio.get_running_loop()
        # guild_ready_timeout: on_ready fires this long after the last GUILD_CREATE (2 s by default).
        self.client = QuickClient(intents=intents, guild_ready_timeout=0.05)
        for name in EVENTS:
            self.client.event(self._recorder(name))
        try:
            async with self.client:
                await self.client.start(self.rest.token)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        self._record("stopped", ())

    def _recorder(self, name: str):
        async def handler(*args) -> None:
            self._record(name, args)

        handler.__name__ = f"on_{name}"
        return handler

    def _record(self, name: str, args: tuple) -> None:
        with self._changed:
            self.events.append((name, args))
            self._changed.notify_all()

    def seen(self, name: str) -> list[tuple]:
        with self._changed:
            return [args for event, args in self.events if event == name]

    def wait(self, name: str, count: int = 1, timeout: float = 4.0) -> tuple:
        """The arguments of the `count`-th `name` event, once it has come."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.seen(name)) >= count, timeout):
                raise TimeoutError(f"no on_{name} #{count}; events: {[e for e, _ in self.events]}")
            return self.seen(name)[count - 1]

    def call(self, action):
        """Run `action(client)` on the client's loop (e.g. a REST call through discord.py)."""
        return asyncio.run_coroutine_threadsafe(action(self.client), self.loop).result(5)

    def stop(self) -> None:
        if self.loop is not None and not self.seen("stopped"):
            # RuntimeError, CancelledError: it stopped by itself meanwhile.
            with contextlib.suppress(concurrent.futures.CancelledError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(5)
        self._thread.join(5)


@pytest.fixture
def doubles(monkeypatch):
    with DiscordDouble() as rest, GatewayDouble(rest, heartbeat_interval=300, roles={7: "staff"}) as gw:
        # What a listener does with DISCORD_API_BASE and DISCORD_GATEWAY_URL.
        monkeypatch.setattr(discord.http.Route, "BASE", rest.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(gw.url))
        yield rest, gw


@pytest.fixture
def start_bot(doubles):
    bots: list[Bot] = []

    def start(**options) -> Bot:
        bot = Bot(doubles[0], **options).start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()


def open_thread(bot: Bot, name: str = "Chat abc") -> int:
    """The bot opens a thread through REST, as the notifications worker does."""

    async def action(client: discord.Client) -> int:
        opening = await client.get_channel(bot.rest.channel_id).send("A visitor is waiting")
        return (await opening.create_thread(name=name)).id

    return bot.call(action)


def test_ready_then_a_person_writes_in_a_thread(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    thread_id = open_thread(bot)
    bot.wait("thread_create")

    sent = gw.user_message(thread_id, "I can help", author_id=42, author_name="helper", roles=[7], nick="Helper")
    (message,) = bot.wait("message", count=2)  # the first is the bot's own opening post, echoed

    assert bot.seen("message")[0][0].author == bot.client.user
    assert (message.id, message.content, message.author.id, message.author.name) == (
        int(sent["id"]),
        "I can help",
        42,
        "helper",
    )
    assert isinstance(message.channel, discord.Thread) and message.channel.id == thread_id
    assert message.author.display_name == "Helper" and [r.name for r in message.author.roles] == ["@everyone", "staff"]
    assert not message.author.bot and message.webhook_id is None
    # discord.py asks zstd-stream when a zstd module is importable, else zlib-stream; both are served.
    assert gw.handshakes[0]["compress"] in ("zlib-stream", "zstd-stream") and gw.handshakes[0]["encoding"] == "json"
    assert [f["op"] for f in gw.received()][:2] == [1, 2]  # a first heartbeat, then IDENTIFY
    assert gw.received(2)[0]["d"]["intents"] & discord.Intents.message_content.flag
    assert [m["content"] for m in rest.history(thread_id)] == ["I can help"]


def test_edits_and_deletes_arrive_as_raw_events_for_uncached_messages(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    missed = gw.user_message(rest.channel_id, "tpyo", dispatch=False)
    seen = gw.user_message(rest.channel_id, "first")
    bot.wait("message")

    gw.user_edit(int(missed["id"]), "typo")
    gw.user_edit(int(seen["id"]), "first, edited")
    gw.user_delete(int(missed["id"]))
    raw_edit = bot.wait("raw_message_edit")[0]
    before, after = bot.wait("message_edit")
    raw_delete = bot.wait("raw_message_delete")[0]

    assert (raw_edit.message_id, raw_edit.data["content"], raw_edit.cached_message) == (int(missed["id"]), "typo", None)
    assert (before.content, after.content) == ("first", "first, edited") and after.edited_at is not None
    assert (raw_delete.message_id, raw_delete.channel_id) == (int(missed["id"]), rest.channel_id)
    assert raw_delete.cached_message is None
    assert [m["content"] for m in rest.history(rest.channel_id)] == ["first, edited"]


def test_a_dropped_client_resumes_and_gets_what_was_dispatched_while_away(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    gw.hold()  # the client's new connection waits: the messages below are missed, then replayed
    gw.drop()
    gw.user_message(rest.channel_id, "while away 1")
    gw.user_message(rest.channel_id, "while away 2")
    gw.release()

    bot.wait("resumed")
    bot.wait("message", count=2)
    assert [args[0].content for args in bot.seen("message")] == ["while away 1", "while away 2"]
    assert (gw.identify_count, gw.resume_count, gw.replayed) == (1, 1, 2)
    assert len(bot.seen("connect")) == 1 and gw.connections == 1
    assert gw.handshakes[-1]["path"] == "/resume"  # READY's resume_gateway_url
    assert gw.received(6)[0]["d"]["session_id"] == bot.client.ws.session_id


@pytest.mark.parametrize("trigger", ["reconnect", "invalidate_resumable", "close_4000"])
def test_server_requests_to_reconnect_are_resumed(doubles, start_bot, trigger):
    _, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    {
        "reconnect": gw.reconnect,
        "invalidate_resumable": lambda: gw.invalidate(resumable=True),
        "close_4000": lambda: gw.close(4000),
    }[trigger]()

    bot.wait("resumed")
    assert (gw.identify_count, gw.resume_count) == (1, 1)


def test_an_invalidated_session_identifies_again(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    gw.invalidate(resumable=False)

    bot.wait("connect", count=2)
    bot.wait("ready", count=2)
    gw.wait_ready()
    gw.user_message(rest.channel_id, "after the new session")
    assert bot.wait("message")[0].content == "after the new session"
    assert (gw.identify_count, gw.resume_count) == (2, 0)


def test_a_refused_message_content_intent_closes_4014(doubles, start_bot):
    _, gw = doubles
    gw.refuse_message_content = True
    bot = start_bot()
    bot.wait("stopped")

    assert isinstance(bot.error, discord.PrivilegedIntentsRequired)
    assert gw.close_codes == [4014] and gw.identify_count == 0


def test_without_the_message_content_intent_content_is_empty(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot(message_content=False)
    bot.wait("ready")
    gw.user_message(rest.channel_id, "secret", embeds=[{"title": "hidden"}])

    message = bot.wait("message")[0]
    assert (message.content, message.embeds) == ("", [])


def test_webhook_posts_attachments_and_stickers_parse(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    sticker = {"id": "749054660769218631", "name": "Wave", "format_type": 1}
    gw.user_message(rest.channel_id, "hook", webhook_id=555, author_name="GitHub", sticker_items=[sticker])
    gw.user_message(rest.channel_id, "see file", attachments=[{"filename": "log.txt", "size": 12}])

    hooked, attached = bot.wait("message", count=1)[0], bot.wait("message", count=2)[0]
    assert (hooked.webhook_id, hooked.author.id, hooked.author.bot) == (555, 555, True)
    assert isinstance(hooked.author, discord.User) and [s.name for s in hooked.stickers] == ["Wave"]
    assert [(a.filename, a.size) for a in attached.attachments] == [("log.txt", 12)]


def test_rest_history_pages_after_an_id_as_discord_does(doubles, start_bot):
    rest, gw = doubles
    bot = start_bot()
    bot.wait("ready")
    ids = [int(gw.user_message(rest.channel_id, f"m{i}", dispatch=False)["id"]) for i in range(5)]

    async def history(client: discord.Client) -> list[str]:
        channel = client.get_channel(rest.channel_id)
        return [m.content async for m in channel.history(after=discord.Object(ids[1]), limit=None)]

    assert bot.call(history) == ["m2", "m3", "m4"]  # discord.py pages with limit=100 and sorts oldest first
    assert [m["content"] for m in rest.history(rest.channel_id, after=ids[0], limit=2)] == ["m2", "m1"]
    assert [m["content"] for m in rest.history(rest.channel_id, before=ids[4], limit=2)] == ["m3", "m2"]
    assert [m["content"] for m in rest.history(rest.channel_id)] == ["m4", "m3", "m2", "m1", "m0"]


def test_the_protocol_edges_with_a_plain_websocket(doubles):
    """HELLO, heartbeat ACK, zlib-stream frames, an unknown RESUME (op 9 false), a wrong token (4004)."""
    rest, gw = doubles

    async def talk() -> tuple[list[dict], int]:
        inflate = zlib.decompressobj()
        url = gw.url + "?v=10&encoding=json&compress=zlib-stream"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:

            async def receive() -> dict:
                return json.loads(inflate.decompress(await ws.receive_bytes(timeout=2)))

            frames = [await receive()]
            await ws.send_json({"op": 1, "d": None})
            frames.append(await receive())
            await ws.send_json({"op": 6, "d": {"token": rest.token, "session_id": "nope", "seq": 3}})
            frames.append(await receive())
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 513, "properties": {}}})
            await ws.receive(timeout=2)
            return frames, ws.close_code

    frames, code = asyncio.run(talk())
    assert [f["op"] for f in frames] == [10, 11, 9]
    assert frames[0]["d"]["heartbeat_interval"] == 300 and frames[2]["d"] is False
    assert code == 4004 and gw.failed_resumes == 1 and gw.identify_count == 0


def test_a_clean_close_ends_the_session_and_uncompressed_frames_are_text(doubles):
    rest, gw = doubles
    url = gw.url + "?v=10&encoding=json"

    async def talk() -> list[dict]:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url) as ws:
                frames = [await ws.receive_json(timeout=2)]
                await ws.send_json({"op": 2, "d": {"token": f"Bot {rest.token}", "intents": 513, "properties": {}}})
                frames += [await ws.receive_json(timeout=2), await ws.receive_json(timeout=2)]
            while gw.connections:  # closed with 1000 on leaving the block
                await asyncio.sleep(0.01)
            async with http.ws_connect(url) as ws:
                await ws.receive_json(timeout=2)
                session_id = frames[1]["d"]["session_id"]
                await ws.send_json({"op": 6, "d": {"token": rest.token, "session_id": session_id, "seq": 2}})
                return [*frames, await ws.receive_json(timeout=2)]

    hello, ready, guild, answer = asyncio.run(talk())
    assert (hello["op"], ready["t"], ready["s"], guild["t"], guild["s"]) == (10, "READY", 1, "GUILD_CREATE", 2)
    assert ready["d"]["user"]["id"] == rest.bot_user["id"] and ready["d"]["resume_gateway_url"] == gw.resume_url
    assert [c["id"] for c in guild["d"]["channels"]] == [str(rest.channel_id)]
    assert (answer["op"], answer["d"]) == (9, False) and gw.failed_resumes == 1
