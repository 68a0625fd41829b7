"""The HTTP test doubles say nothing when a client hangs up on them, and still report their real errors."""

import socket
import struct
import time

from testing.llm_server import StubModelServer

CHAT = b'{"messages": [{"role": "user", "content": "hi"}]}'


def reset(connection: socket.socket) -> None:
    """Close with a reset, as a client does that gives up: its unread answer is thrown away."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def post(address: tuple[str, int], body: bytes) -> socket.socket:
    connection = socket.create_connection(address)
    connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    connection.sendall(body)
    return connection


def test_stub_model_is_quiet_when_clients_hang_up(capfd):
    with StubModelServer() as model:
        address = model.httpd.server_address[:2]
        reset(socket.create_connection(address))  # a kept-alive connection dropped before its next request
        reset(post(address, CHAT))  # gone before the answer is written
        model.behaviour.chunks, model.behaviour.chunk_delay = 50, 0.01
        streamed = post(address, CHAT[:-1] + b', "stream": true}')
        streamed.recv(100)
        reset(streamed)  # gone mid-stream
        time.sleep(0.5)

    assert "Traceback" not in capfd.readouterr().err


def test_stub_model_still_reports_a_real_error(capfd):
    with StubModelServer() as model:
        post(model.httpd.server_address[:2], b"{not json").recv(100)
        time.sleep(0.2)

    err = capfd.readouterr().err
    assert "Traceback" in err and "JSONDecodeError" in err
