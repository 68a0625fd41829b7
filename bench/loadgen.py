"""The bench's asyncio load generator, for what wrk cannot do: streams, slow clients, idle connections.

    python bench/loadgen.py SPEC.json      (bench/bench.py writes the spec and reads the result)

One process, one event loop (uvloop when installed), raw sockets: a few kilobytes and no thread per
connection, so 2,000 open streams cost the generator little and leave the cores to the server. Every
time is wall-clock (time.time()), so the driver can line it up with its own CPU samples. Progress goes
to stderr; stdout carries "HELD n" (idle mode, once the streams are open) and last "RESULT {json}".

Modes (the spec's "mode"):
- signup: `count` sessions over POST /api/v1/auth/email, `concurrency` at a time.
- streams: `loops` clients, each opening a stream, reading it to the end and opening the next, for
  `warmup` + `seconds`; every stream is recorded (start, first event with text, end, ok).
- stall (row F): `streams` slow streams held open, slow clients sending headers or a body a byte a
  second, and probes of /health, sign-up and chat once a second each, timed.
- idle (row G): `count` GET streams held open with nothing to say, /health probed meanwhile.
"""

import asyncio
import json
import random
import resource
import sys
import time

UA = "Mozilla/5.0 (X11; Linux x86_64) chatapi-bench/1.0"
PROBE_TIMEOUT = 10.0


def log(text: str) -> None:
    print(f"[loadgen {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").split("/")[0].partition(":")
    return host, int(port or 80)


def request_bytes(base: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    host, port = host_port(base)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"User-Agent: {UA}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def dechunk(data: bytes) -> bytes:
    out, at = [], 0
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            return b"".join(out)
        size = int(data[at:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2 : end + 2 + size])
        at = end + 2 + size + 2


async def fetch(base: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request on its own connection: (status, body), status 0 when the connection failed."""
    reader, writer = await asyncio.open_connection(*host_port(base), limit=2**20)
    try:
        writer.write(request_bytes(base, method, path, headers, body))
        data = await reader.read()  # Connection: close, so the answer ends with the connection
    finally:
        writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0, b""
    if b"transfer-encoding: chunked" in head.lower():
        payload = dechunk(payload)
    return status, payload


async def timed_fetch(base: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> dict:
    started = time.time()
    try:
        status, _ = await asyncio.wait_for(fetch(base, method, path, headers, body), PROBE_TIMEOUT)
    except (TimeoutError, OSError) as exc:
        status = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return {"at": started, "seconds": time.time() - started, "status": status}


# --- sign-up ---------------------------------------------------------------------------------------


async def signup(spec: dict) -> dict:
    base, count, tag = spec["base"], spec["count"], spec["tag"]
    sessions: list = [None] * count
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            email = json.dumps({"email": f"bench-{tag}-{i}@example.com"}).encode()
            for attempt in range(5):
                try:
                    status, payload = await fetch(base, "POST", "/api/v1/auth/email", JSON_HEADERS, email)
                except OSError:
                    status, payload = 0, b""
                if status == 201:
                    answer = json.loads(payload)
                    sessions[i] = [answer["session_id"], answer["access_token"]]
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            else:
                raise RuntimeError(f"sign-up {i} failed: {status} {payload[:200]!r}")

    started = time.time()
    await asyncio.gather(*(worker() for _ in range(spec.get("concurrency", 32))))
    log(f"{count} sessions in {time.time() - started:.1f} s")
    return {"sessions": sessions}


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


# --- streams ---------------------------------------------------------------------------------------


async def stream_once(spec: dict, body: bytes, headers: dict[str, str], timeout: float) -> dict:
    """One stream read to its end; `first` is when the first text event arrived."""
    first_marker, end_marker = spec["first"].encode(), spec["end"].encode()
    record = {"start": time.time(), "status": 0, "first": None, "end": None, "done": False, "error": ""}
    data = b""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*host_port(spec["base"]), limit=2**20)
            try:
                writer.write(request_bytes(spec["base"], "POST", spec["path"], headers, body))
                while chunk := await reader.read(65536):
                    seen = len(data)
                    data += chunk
                    if record["first"] is None and first_marker in data[max(0, seen - len(first_marker)) :]:
                        record["first"] = time.time()
            finally:
                writer.close()
    except TimeoutError:
        record["error"] = "timeout"
    except OSError as exc:
        record["error"] = type(exc).__name__
    record["end"] = time.time()
    head = data[:200]
    if head.startswith(b"HTTP/1."):
        record["status"] = int(head.split(b" ", 2)[1])
    at = data.rfind(end_marker)
    record["done"] = at >= 0
    if b"event: error" in data:
        record["error"] = record["error"] or "event: error"
    tail = data[at:] if at >= 0 else b""
    record["fallback"] = b'"fallback": true' in tail or b'"fallback":true' in tail
    record["events"] = data.count(first_marker)
    record["ok"] = record["status"] == 200 and record["done"] and not record["error"] and not record["fallback"]
    return record


def stream_requests(spec: dict) -> list[tuple[bytes, dict[str, str]]]:
    """(body, headers) of each loop: the project's API with a token, or the stub's own API."""
    if spec.get("tokens"):
        body = json.dumps({"message": spec["message"]}).encode()
        return [(body, {**JSON_HEADERS, "Authorization": f"Bearer {token}"}) for token in spec["tokens"]]
    body = json.dumps(
        {"model": "stub", "stream": True, "messages": [{"role": "user", "content": spec["message"]}]}
    ).encode()
    return [(body, {"Content-Type": "application/json"})] * spec["loops"]


async def streams(spec: dict) -> dict:
    began = time.time()
    window = [began + spec["warmup"], began + spec["warmup"] + spec["seconds"]]
    records: list[dict] = []

    async def loop(body: bytes, headers: dict[str, str]) -> None:
        await asyncio.sleep(random.random())  # noqa: S311 - visitors arrive spread over a second
        while time.time() < window[1]:
            records.append(await stream_once(spec, body, headers, spec.get("timeout", 60)))

    await asyncio.gather(*(loop(body, headers) for body, headers in stream_requests(spec)))
    return {"window": window, "records": records}


# --- F: slow streams, slow clients, probes -----------------------------------------------------------


async def slow_client(base: str, kind: str, n: int, stop: asyncio.Event, stats: dict) -> None:
    """Headers a byte a second (never finished), or full headers then a declared body a byte a second."""
    email = json.dumps({"email": f"slow-{n}@example.com"}).encode().ljust(64)
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(*host_port(base))
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        stats["connections"] += 1
        if kind == "headers":
            head = request_bytes(base, "POST", "/api/v1/auth/email", {"X-Padding": "p" * 4000})
            head, trickle = b"", head
        else:
            head = request_bytes(base, "POST", "/api/v1/auth/email", {"Content-Type": "application/json"}, email)
            head, trickle = head[: -len(email)], email
        answered = asyncio.ensure_future(reader.read(1))  # an answer, or the server closing
        stopped = asyncio.ensure_future(stop.wait())
        try:
            writer.write(head)
            for byte in trickle:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.wait([answered, stopped], timeout=1)
                if stopped.done() or answered.done():
                    break
            if not answered.done():
                await asyncio.wait([answered, stopped], timeout=30)
            if answered.done():
                stats["closed_or_answered_by_server"] += 1
        except OSError:
            stats["closed_or_answered_by_server"] += 1
        finally:
            answered.cancel()
            stopped.cancel()
            writer.close()


async def probe_loop(name: str, request, until: float, results: dict) -> None:
    results[name] = []
    while time.time() < until:
        result = await timed_fetch(*request())
        results[name].append(result)
        await asyncio.sleep(max(0.0, 1.0 - result["seconds"]))


async def stall(spec: dict) -> dict:
    base, stop = spec["base"], asyncio.Event()
    stats = {"connections": 0, "connect_failed": 0, "closed_or_answered_by_server": 0}
    stream_spec = {**spec, "path": "/api/v1/chat/stream", "first": "event: delta", "end": "event: done"}
    body = json.dumps({"message": spec["stream_message"]}).encode()

    async def one_stream(token: str) -> dict:
        await asyncio.sleep(2 * random.random())  # noqa: S311 - spread over two seconds
        headers = {**JSON_HEADERS, "Authorization": f"Bearer {token}"}
        return await stream_once(stream_spec, body, headers, spec["stream_timeout"])

    stream_tasks = [asyncio.ensure_future(one_stream(token)) for token in spec["stream_tokens"]]
    slow = [asyncio.ensure_future(slow_client(base, "headers", n, stop, stats)) for n in range(spec["slow_headers"])]
    slow += [asyncio.ensure_future(slow_client(base, "body", n, stop, stats)) for n in range(spec["slow_bodies"])]
    await asyncio.sleep(3)
    log(f"{len(stream_tasks)} streams and {len(slow)} slow clients started; probing for {spec['probe_seconds']} s")
    until, probes, count = time.time() + spec["probe_seconds"], {}, iter(range(10**6))
    chat = json.dumps({"message": "Hello! What are your opening hours on Saturdays?"}).encode()
    chat_headers = {**JSON_HEADERS, "Authorization": f"Bearer {spec['chat_token']}"}

    def signup_request():
        email = json.dumps({"email": f"probe-{spec['tag']}-{next(count)}@example.com"}).encode()
        return base, "POST", "/api/v1/auth/email", JSON_HEADERS, email

    await asyncio.gather(
        probe_loop("health", lambda: (base, "GET", "/health", {"Accept": "application/json"}), until, probes),
        probe_loop("signup", signup_request, until, probes),
        probe_loop("chat", lambda: (base, "POST", "/api/v1/chat", chat_headers, chat), until, probes),
    )
    stop.set()
    await asyncio.gather(*slow)
    log("probes done; waiting for the streams to end")
    return {"streams": await asyncio.gather(*stream_tasks), "probes": probes, "slow": stats}


# --- G: idle streams -------------------------------------------------------------------------------


async def idle(spec: dict) -> dict:
    base, path, opened, failures = spec["base"], spec["path"], [], {}
    gate = asyncio.Semaphore(spec.get("concurrency", 200))
    deadline = time.time() + spec.get("open_seconds", 60)  # a stream not open by then counts as failed
    closed = {"by_server": 0}

    async def hold(token: str) -> None:
        async with gate:
            try:
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*host_port(base), limit=2**20), left)
                headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {token}"}
                writer.write(request_bytes(base, "GET", path, headers))
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.1, deadline - time.time()))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                return
        status = head.split(b" ", 2)[1].decode()
        if status != "200":
            failures[status] = failures.get(status, 0) + 1
            writer.close()
            return
        opened.append(writer)

        async def drain() -> None:  # read what the server sends (comments), and notice when it closes
            try:
                while await reader.read(65536):
                    pass
            except OSError:
                pass
            closed["by_server"] += 1

        drains.append(asyncio.ensure_future(drain()))

    drains: list[asyncio.Future] = []
    started = time.time()
    await asyncio.gather(*(hold(token) for token in spec["tokens"]))
    open_seconds = time.time() - started
    log(f"{len(opened)} streams open in {open_seconds:.1f} s; failures {failures}")
    print(f"HELD {len(opened)}", flush=True)
    probes: dict = {}
    until = time.time() + spec["hold_seconds"]
    await probe_loop("health", lambda: (base, "GET", "/health", {"Accept": "application/json"}), until, probes)
    still_open = len(opened) - closed["by_server"]
    for writer in opened:
        writer.close()
    for task in drains:
        task.cancel()
    return {
        "opened": len(opened),
        "failures": failures,
        "open_seconds": open_seconds,
        "still_open": still_open,
        "probes": probes,
    }


MODES = {"signup": signup, "streams": streams, "stall": stall, "idle": idle}


def main() -> None:
    with open(sys.argv[1]) as spec_file:  # a file the driver wrote
        spec = json.load(spec_file)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(MODES[spec["mode"]](spec))
    else:
        result = uvloop.run(MODES[spec["mode"]](spec))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
