"""Real server processes and a cuttable TCP proxy, for the multi-server and fault tests.

Each server is the production server as the README starts it (`gunicorn -c gunicorn.conf.py`) in its own
OS process: its own memory, so only what lives in the shared database and cache can hold between two.
"""

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) pytest"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(*, host: str | None = None, port: int | None = None) -> str:
    """The test database (the one this test process uses) as a DATABASE_URL, optionally via a proxy."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host or db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{db['NAME']}"


def is_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


class ServerProcess:
    """One server on a free port with `env` on top of this process's environment."""

    def __init__(self, env: dict[str, str], *, name: str = "server"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"chatapi-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        environment = {**os.environ, "DATABASE_URL": database_url(), "LOG_FORMAT": "text", **env}
        environment["PORT"] = str(self.port)
        command = [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py"]
        self.process = subprocess.Popen(  # noqa: S603 - our own server, fixed command lines
            command, cwd=ROOT, env=environment, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 90) -> "ServerProcess":
        """Until /health answers at all (200 or 503): the URLconf and litellm are loaded by then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                requests.get(f"{self.url}/health", timeout=30)
            except requests.ConnectionError:
                time.sleep(0.2)
                continue
            return self
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """SIGINT, as Ctrl-C: the server exits cleanly (and coverage, if on, saves its data)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` refuses and drops every connection, `restore()` heals.

    Cutting closes the listening socket, so new connections are refused as if the target were down,
    and closes every open pipe, so pooled connections break the way a crashed server breaks them.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._pipes: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)  # shutdown() wakes the thread blocked in accept(); close() alone would not
        with self._lock:
            pipes, self._pipes = self._pipes, set()
        for pipe in pipes:
            _close(pipe)

    def close(self) -> None:
        self._stopped.set()
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            if self._listener is not listener:  # accepted just as it was cut
                _close(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._pipes.update({client, upstream})
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for end in peers:
                end.setblocking(True)
                selector.register(end, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select(timeout=1):
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)
            except (OSError, ValueError):
                return
            finally:
                for end in peers:
                    _close(end)
                with self._lock:
                    self._pipes.difference_update(peers)


def _close(end: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        end.shutdown(socket.SHUT_RDWR)
    end.close()
