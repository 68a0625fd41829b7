"""A Server-Sent Events reader over a real socket, for the tests that hold `/chat/events` streams open."""

import json
import queue
import threading
import time

import requests


class EventStream:
    """Reads a `text/event-stream` answer in a thread; `next()` gives each event with its arrival time."""

    def __init__(self, url: str, *, token: str, user_agent: str, last_event_id: str | None = None):
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "User-Agent": user_agent}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(url, headers=headers, stream=True, timeout=(5, 60))
        self.events: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        block: dict[str, str] = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line:
                    field, _, value = line.partition(": ")
                    block[field] = value
                    continue
                if "event" in block:
                    self.events.put((time.monotonic(), block["id"], block["event"], json.loads(block["data"])))
                block = {}
        except (requests.RequestException, AttributeError):  # AttributeError: urllib3 read after close()
            pass
        finally:
            self.closed.set()

    def next(self, timeout: float = 10) -> tuple[float, str, str, dict]:
        return self.events.get(timeout=timeout)

    def next_of(self, kind: str, timeout: float = 10) -> tuple[float, str, str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(timeout=max(0.01, deadline - time.monotonic()))
            if event[2] == kind:
                return event

    def close(self) -> None:
        self.response.close()
