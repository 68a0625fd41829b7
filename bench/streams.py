"""Scenario D's client: concurrent Server-Sent Event streams over raw sockets, timed to the first event.

Each of N loops opens a stream, reads it to the end, and opens the next, so N streams are in
flight all the time; loops start spread over a second, as visitors would, not in one burst.
"""

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass

from servers import UA

# The stub answers "Stub reply to: " + the message: 400 characters, so 200 chunks of two.
STREAM_MESSAGE = ("Please explain, step by step, how your service keeps my data safe. " * 6)[:385]


@dataclass
class Stream:
    started: float  # monotonic
    ok: bool
    ttfb_ms: float | None  # until the first event carrying text
    total_ms: float
    events: int


async def stream_once(base: str, path: str, body: bytes, headers: str, first: bytes, end: bytes) -> Stream:
    host, port = base.removeprefix("http://").split("/")[0].split(":")
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {UA}\r\n{headers}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(request.encode() + body)
    await writer.drain()
    data, ttfb = b"", None
    while chunk := await reader.read(65536):
        data += chunk
        if ttfb is None and first in data:
            ttfb = 1000 * (time.monotonic() - started)
    total = 1000 * (time.monotonic() - started)
    writer.close()
    ok = data.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) and end in data and ttfb is not None
    return Stream(started, ok, ttfb, total, data.count(first))


async def _loops(base: str, path: str, bodies: list[tuple[bytes, str]], until: float, markers) -> list[Stream]:
    done: list[Stream] = []

    async def loop(body: bytes, headers: str) -> None:
        await asyncio.sleep(random.random())  # noqa: S311 - spread, not secrecy
        while time.monotonic() < until:
            done.append(await stream_once(base, path, body, headers, *markers))

    await asyncio.gather(*(loop(body, headers) for body, headers in bodies))
    return done


def streams_run(base: str, tokens: list[str], seconds: float) -> list[Stream]:
    """Streams from the project's /chat/stream, one loop per token, for `seconds`."""
    body = json.dumps({"message": STREAM_MESSAGE}).encode()
    bodies = [(body, f"Authorization: Bearer {token}\r\n") for token in tokens]
    until = time.monotonic() + seconds
    return asyncio.run(_loops(base, "/api/v1/chat/stream", bodies, until, (b"event: delta", b"event: done")))


def stub_streams_run(api_base: str, count: int, seconds: float) -> list[Stream]:
    """The stub's own streams at the same concurrency: what the model alone takes to its first chunk."""
    body = json.dumps({"model": "stub", "stream": True, "messages": [{"role": "user", "content": STREAM_MESSAGE}]})
    until = time.monotonic() + seconds
    markers = (b'"content": "', b"[DONE]")
    return asyncio.run(_loops(api_base, "/v1/chat/completions", [(body.encode(), "")] * count, until, markers))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * pct / 100) - 1))]
