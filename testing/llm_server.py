"""A small OpenAI-compatible chat-completions server for tests and benchmarks.

Run alone: `python -m testing.llm_server --port 8001 --latency 2`. In tests, use `StubModelServer`
as a context manager; it records every request and can misbehave on purpose.
"""

import argparse
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from testing.quiet_http import QuietHTTPServer


@dataclass
class Behaviour:
    # ok | error | garbage | empty | hang | broken (a stream cut off half-way) | unfinished (a stream
    # that ends cleanly without saying the reply is finished: no finish reason, no [DONE]) |
    # stream_error (an error object in place of the next chunk, half-way) | linger (a stream whose
    # body goes on for 5 s after its [DONE])
    mode: str = "ok"
    latency: float = 0.0
    reply: str | None = None  # None: echo the last user message
    chunks: int = 20
    chunk_delay: float = 0.0  # seconds between streamed chunks
    # ok: the usage in every answer (and, when asked for, in a chunk after a stream's finish);
    # none: no usage at all; nonsense: counts that are no counts
    usage: str = "ok"
    requests: list[dict] = field(default_factory=list)
    aborted: int = 0  # streams the client closed before the end
    connections: int = 0  # TCP connections accepted: a client that reuses its connection opens one


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour: Behaviour

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.behaviour.connections += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = json.loads(body or b"{}")
        behaviour = self.server.behaviour
        behaviour.requests.append(request)
        if behaviour.mode == "hang":
            time.sleep(3600)
        time.sleep(behaviour.latency)
        if behaviour.mode == "error":
            return self._send(500, b'{"error": {"message": "boom", "type": "server_error"}}')
        if behaviour.mode == "garbage":
            return self._send(200, b"<html>not json</html>", "text/html")
        text = behaviour.reply if behaviour.reply is not None else _echo(request)
        if behaviour.mode == "empty":
            text = ""
        if request.get("stream"):
            try:
                return self._stream(request, text, behaviour)
            except (BrokenPipeError, ConnectionResetError):
                behaviour.aborted += 1
                self.close_connection = True
        return self._send(200, json.dumps(_completion(request, text, behaviour)).encode())

    def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, request: dict, text: str, behaviour: Behaviour) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        size = max(1, -(-len(text) // max(1, behaviour.chunks)))
        pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
        for number, piece in enumerate(pieces):
            if behaviour.mode == "broken" and number == len(pieces) // 2:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if behaviour.mode == "stream_error" and number == len(pieces) // 2:
                self._chunk({"error": {"message": "overloaded", "type": "server_error"}})
                break
            self._chunk(_delta(request, {"content": piece}, None))
            time.sleep(behaviour.chunk_delay)
        if behaviour.mode != "unfinished":
            self._chunk(_delta(request, {}, "stop"))
            if (request.get("stream_options") or {}).get("include_usage") and behaviour.usage != "none":
                self._chunk({**_delta(request, {}, None), "choices": [], "usage": _usage(behaviour)})
            self._write_chunk(b"data: [DONE]\n\n")
        if behaviour.mode == "linger":
            time.sleep(5)
            self._write_chunk(b": still here\n\n")
        self._write_chunk(b"")

    def _chunk(self, payload: dict) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _echo(request: dict) -> str:
    users = [m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"]
    return f"Stub reply to: {users[-1] if users else ''}"


def _usage(behaviour: Behaviour) -> dict:
    if behaviour.usage == "nonsense":
        return {"prompt_tokens": "lots", "completion_tokens": -7, "total_tokens": None}
    return {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _completion(request: dict, text: str, behaviour: Behaviour) -> dict:
    answer = {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    return answer if behaviour.usage == "none" else {**answer, "usage": _usage(behaviour)}


def _delta(request: dict, delta: dict, finish: str | None) -> dict:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", "stub"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class _StubHTTPServer(QuietHTTPServer):
    request_queue_size = 1024  # socketserver's default backlog of 5 stalls a benchmark's many connections


class StubModelServer:
    """The server on a free loopback port, in a daemon thread; `api_base` is what litellm needs."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.httpd = _StubHTTPServer((host, port), _Handler)
        self.httpd.behaviour = self.behaviour
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def api_base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "StubModelServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per streamed answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args()
    behaviour = Behaviour(latency=args.latency, chunks=args.chunks, chunk_delay=args.chunk_delay)
    server = StubModelServer(args.host, args.port, behaviour)
    print(f"stub model server on {server.api_base}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
