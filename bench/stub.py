"""The project's stub model (testing.llm_server) for load: a real listen backlog and paced chunks.

The stub listens with a backlog of 1024, not socketserver's 5: when 64 streams or 256 chats connect
at once, a short backlog drops the extra SYNs and clients retry a second later, which would show up
as the stub's latency. A real model streams its tokens over time, so chunks can be paced with --chunk-delay.
Run with PYTHONPATH set to the project.
"""

import argparse

from testing.llm_server import Behaviour, StubModelServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per streamed answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args()
    behaviour = Behaviour(latency=args.latency, chunks=args.chunks, chunk_delay=args.chunk_delay)
    behaviour.requests = _Discard()  # the stub keeps every request for tests; a long run needs none
    server = StubModelServer("127.0.0.1", args.port, behaviour)
    print(f"stub model server on {server.api_base}", flush=True)
    server.httpd.serve_forever()


class _Discard(list):
    def append(self, item) -> None:
        pass


if __name__ == "__main__":
    main()
