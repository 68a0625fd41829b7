"""The discord.py client against the REST double over a real socket: posts, threads, errors."""

import asyncio

import pytest

from notifications_app.discord import DiscordClient, DiscordRejected, DiscordUnavailable
from testing.discord_server import DiscordDouble

EMBED = {"title": "Visitor", "description": "hello"}


@pytest.fixture
def server():
    with DiscordDouble() as double:
        yield double


def run(server: DiscordDouble, scenario):
    """Run `scenario(client)` on a fresh event loop with a client pointed at the double."""

    async def main():
        client = DiscordClient(token=server.token, api_base=server.api_base, channel_id=server.channel_id)
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


def test_thread_open_posts_embed_and_starts_thread(server):
    opened = run(server, lambda c: c.thread_open(embed=EMBED, name="Chat abc", nonce="n-open"))

    (opening,) = server.opening_messages()
    (thread,) = server.threads()
    assert opened.message_id == int(opening["id"]) == opened.thread_id
    assert opened.channel_id == server.channel_id
    assert (thread["name"], thread["type"], thread["parent_id"]) == ("Chat abc", 11, str(server.channel_id))
    assert thread["thread_metadata"]["auto_archive_duration"] == 1440
    assert opening["embeds"][0]["title"] == "Visitor"
    assert opening["allowed_mentions"] == {"parse": []}


def test_thread_open_repeated_returns_the_same_thread(server):
    async def twice(client):
        first = await client.thread_open(embed=EMBED, name="Chat abc", nonce="n-open")
        return first, await client.thread_open(embed=EMBED, name="Chat abc", nonce="n-open")

    first, second = run(server, twice)

    assert first == second
    assert len(server.opening_messages()) == len(server.threads()) == 1


def test_thread_post_with_same_nonce_posts_once(server):
    async def post_twice(client):
        opened = await client.thread_open(embed=EMBED, name="t", nonce="n-open")
        ids = [await client.thread_post(thread_id=opened.thread_id, embed=EMBED, nonce="n-1") for _ in range(2)]
        return opened, ids

    opened, ids = run(server, post_twice)

    assert ids[0] == ids[1]
    assert len(server.thread_posts()[opened.thread_id]) == 1


def test_thread_post_to_missing_thread_is_rejected(server):
    with pytest.raises(DiscordRejected, match="HTTP 404"):
        run(server, lambda c: c.thread_post(thread_id=123456789012345678, embed=EMBED, nonce="n"))


def test_thread_delete_removes_thread_and_opening_and_tolerates_repeats(server):
    async def open_then_delete_twice(client):
        opened = await client.thread_open(embed=EMBED, name="t", nonce="n-open")
        for _ in range(2):
            await client.thread_delete(
                thread_id=opened.thread_id, channel_id=opened.channel_id, message_id=opened.message_id
            )

    run(server, open_then_delete_twice)

    assert server.threads() == [] and server.opening_messages() == []
    assert len(server.requests("DELETE", 404)) == 2


def test_rate_limit_is_waited_out(server):
    server.set_mode("rate_limited", retry_after=0.1, count=2)

    opened = run(server, lambda c: c.thread_open(embed=EMBED, name="t", nonce="n"))

    assert opened.thread_id
    assert len(server.requests(status=429)) == 2


def test_long_rate_limit_comes_back_with_retry_after(server):
    server.set_mode("rate_limited", retry_after=45)

    with pytest.raises(DiscordUnavailable) as raised:
        run(server, lambda c: c.thread_open(embed=EMBED, name="t", nonce="n"))

    assert raised.value.retry_after == 45


def test_server_error_is_unavailable(server):
    server.set_mode("error", status=503)

    with pytest.raises(DiscordUnavailable, match="HTTP 503"):
        run(server, lambda c: c.thread_open(embed=EMBED, name="t", nonce="n"))


def test_down_is_unavailable_and_recovers(server):
    async def down_then_up(client):
        opened = await client.thread_open(embed=EMBED, name="t", nonce="n")
        server.set_mode("down")
        with pytest.raises(DiscordUnavailable, match="connection"):
            await client.thread_post(thread_id=opened.thread_id, embed=EMBED, nonce="p1")
        with pytest.raises(DiscordUnavailable, match="connection"):
            await client.thread_post(thread_id=opened.thread_id, embed=EMBED, nonce="p1")
        server.set_mode("ok")
        return opened, await client.thread_post(thread_id=opened.thread_id, embed=EMBED, nonce="p1")

    opened, _ = run(server, down_then_up)

    assert len(server.thread_posts()[opened.thread_id]) == 1


def test_login_while_down_is_unavailable_then_works(server):
    async def login_twice(client):
        server.set_mode("down")
        with pytest.raises(DiscordUnavailable):
            await client.thread_open(embed=EMBED, name="t", nonce="n")
        server.set_mode("ok")
        return await client.thread_open(embed=EMBED, name="t", nonce="n")

    assert run(server, login_twice).thread_id


def test_bad_token_is_unavailable(server):
    async def wrong_token(_):
        client = DiscordClient(token="wrong", api_base=server.api_base, channel_id=server.channel_id)
        try:
            await client.thread_open(embed=EMBED, name="t", nonce="n")
        finally:
            await client.close()

    with pytest.raises(DiscordUnavailable, match="DISCORD_BOT_TOKEN"):
        run(server, wrong_token)


def test_oversized_embed_is_rejected(server):
    with pytest.raises(DiscordRejected, match="HTTP 400"):
        run(server, lambda c: c.thread_open(embed={"title": "t", "description": "x" * 5000}, name="t", nonce="n"))


def test_remote_double_switches_modes_and_reads_records_over_its_control_port():
    from testing.discord_server import RemoteDouble

    with DiscordDouble(control_port=0) as double:
        remote = RemoteDouble(
            api_port=double.port, control_port=double.control_port, token=double.token, channel_id=double.channel_id
        )
        opened = run(double, lambda c: c.thread_open(embed=EMBED, name="t", nonce="n"))
        remote.set_mode("error", status=503, count=1)

        assert remote.state()["mode"] == "error"
        assert remote.total_posts() == 1 and remote.in_flight() == 0
        assert [int(t["id"]) for t in remote.threads()] == [opened.thread_id]
        assert remote.thread_posts() == {opened.thread_id: []}


def test_discord_py_builds_every_rest_url_from_the_base_we_set():
    """Pins the one non-public behaviour relied on (notifications_app.discord.discord_api_base_set)."""
    from notifications_app.discord import _discord, discord_api_base_set

    discord = _discord()
    previous = discord.http.Route.BASE
    try:
        discord_api_base_set("http://127.0.0.1:9/api/v10")
        route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=123)
    finally:
        discord.http.Route.BASE = previous

    assert route.url == "http://127.0.0.1:9/api/v10/channels/123/messages"
