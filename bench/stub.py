"""The bench's stub model: an OpenAI-compatible chat-completions server on asyncio, standard library only.

    python bench/stub.py --port P [--latency S] [--chunks N] [--chunk-delay S]

It answers "Stub reply to: " + the last user message, as the project's testing/llm_server.py does,
whole or streamed in N chunks. One event loop holds any number of waiting calls and open streams at
the cost of a few kilobytes each, so the stub stays out of the way when the bench opens 1,024 chats or
200 slow streams at once (uvloop is used when it is installed). The listen backlog is 4,096: a short
one drops SYNs under a burst of connections, and clients retry a second later.

A message can ask for other behaviour than the command line's with words of the form stub:NAME=VALUE,
which are removed from the echoed reply:
- stub:wait=MS     milliseconds before answering (B's 2 s model: stub:wait=2000);
- stub:chunks=N    chunks in a streamed answer;
- stub:every=MS    milliseconds between streamed chunks (F's slow stream: stub:chunks=30 stub:every=1000).
So one stub and one server carry every row. A stream asked with stream_options.include_usage ends with
a usage chunk after the finish chunk, as OpenAI's API does. GET /inflight answers {"inflight": n}, the
calls not yet answered in full: the bench waits for none before it starts a row.
"""

import argparse
import asyncio
import json
import re
import time

DIRECTIVE = re.compile(r"\s*\bstub:(wait|chunks|every)=(\d+)\b")
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class Stub:
    def __init__(self, latency: float, chunks: int, chunk_delay: float):
        self.latency, self.chunks, self.chunk_delay = latency, chunks, chunk_delay
        self.inflight = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: the model clients pool their connections
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.lower().split(":", 1) for line in lines if ":" in line)
                length = int(headers.get("content-length", "0").strip() or 0)
                body = await reader.readexactly(length) if length else b""
                method, path = request_line.split(" ")[:2]
                if method == "POST" and path.endswith("/chat/completions"):
                    self.inflight += 1
                    try:
                        await self.complete(json.loads(body or b"{}"), writer)
                    finally:
                        self.inflight -= 1
                elif path == "/inflight":
                    self.send(writer, 200, json.dumps({"inflight": self.inflight}).encode())
                else:
                    self.send(writer, 200, b'{"stub": true}')
                await writer.drain()
                if headers.get("connection", "").strip().lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    @staticmethod
    def send(writer: asyncio.StreamWriter, status: int, payload: bytes, content_type: str = "application/json") -> None:
        writer.write(
            f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )

    async def complete(self, request: dict, writer: asyncio.StreamWriter) -> None:
        users = [m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"]
        said = users[-1] if users and isinstance(users[-1], str) else ""
        asked = {name: int(value) for name, value in DIRECTIVE.findall(said)}
        text = "Stub reply to: " + DIRECTIVE.sub("", said).strip()
        latency = asked["wait"] / 1000 if "wait" in asked else self.latency
        if latency:
            await asyncio.sleep(latency)
        model = request.get("model", "stub")
        if not request.get("stream"):
            answer = {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": USAGE,
            }
            self.send(writer, 200, json.dumps(answer).encode())
            return
        chunks = max(1, asked.get("chunks", self.chunks))
        delay = asked["every"] / 1000 if "every" in asked else self.chunk_delay
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        size = max(1, -(-len(text) // chunks))
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        created = int(time.time())

        def event(delta: dict, finish: str | None, usage: dict | None = None) -> bytes:
            chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": created, "model": model}
            chunk["choices"] = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
            if usage:
                chunk["usage"] = usage
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        for number, piece in enumerate(pieces):
            if number and delay:
                await asyncio.sleep(delay)
            self.write_chunk(writer, event({"content": piece}, None))
            await writer.drain()
        tail = event({}, "stop")
        if (request.get("stream_options") or {}).get("include_usage"):
            tail += event({}, None, USAGE)
        self.write_chunk(writer, tail + b"data: [DONE]\n\n")
        self.write_chunk(writer, b"")

    @staticmethod
    def write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per streamed answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args()
    stub = Stub(args.latency, args.chunks, args.chunk_delay)
    server = await asyncio.start_server(stub.serve, "127.0.0.1", args.port, backlog=4096, limit=2**20)
    print(f"stub model server on http://127.0.0.1:{args.port}/v1", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
