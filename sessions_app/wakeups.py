"""Wake-ups for a session's open `/chat/events` streams and long polls, whichever process holds them.

A write that adds to a session's conversation (a message, a mode change, its end) calls
`session_wake` after its commit. Every server process holds one subscription, whatever number of
visitors it serves, and fans each wake-up out in memory to the watches of that session:

- with a Redis cache (`CACHE_URL=redis://...`): Redis pub/sub on one channel;
- else on PostgreSQL: LISTEN/NOTIFY on one channel;
- else (the embedded default, SQLite and local memory): one query per process every
  POLL_SECONDS over the sessions it watches, comparing their event counter and state.

A wake-up says only "look again": the watcher re-reads the database from its cursor, so a lost or
repeated wake-up costs a read, never an event. After the subscription reconnects every watch is
woken once, for what may have been published while it was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator

from django.conf import settings
from django.db import connection

from sessions_app.models import ChatSession

logger = logging.getLogger(__name__)

CHANNEL = "chatapi_session_events"
POLL_SECONDS = 0.25
RECONNECT_SECONDS = (0.5, 1, 2, 5)


def transport() -> str:
    """Which shared channel carries wake-ups between processes: redis, postgresql or poll."""
    if settings.CACHES["default"]["BACKEND"].startswith("django_redis"):
        return "redis"
    if connection.vendor == "postgresql":
        return "postgresql"
    return "poll"


def session_wake(session_id: str) -> None:
    """Tell every process that `session_id` has something new. Call it after the commit.

    Never raises: a wake-up that cannot be sent delays an event until the watcher's next look, it
    does not undo the write.
    """
    try:
        kind = transport()
        if kind == "redis":
            from django_redis import get_redis_connection

            get_redis_connection("default").publish(CHANNEL, session_id)
        elif kind == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, session_id])
        else:
            hub.wake(session_id)  # this process at once; others at their next poll
    except Exception:  # a wake-up is best effort; the write has committed
        logger.warning("session wake-up not sent", extra={"session_id": session_id}, exc_info=True)


class Watch:
    """A visitor's interest in one session: `changed` is set by every wake-up after it began."""

    def __init__(self, session_id: str, loop: asyncio.AbstractEventLoop):
        self.session_id = session_id
        self.loop = loop
        self.changed = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when woken within `timeout` seconds; the next wait waits for a newer wake-up."""
        try:
            async with asyncio.timeout(timeout):
                await self.changed.wait()
        except TimeoutError:
            return False
        self.changed.clear()
        return True

    def wake_threadsafe(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.changed.set)


class WakeHub:
    """The process's one subscription, held by one thread of its own, and the watches it wakes.

    A thread rather than a task: it outlives any one event loop (the server has one; tests make one
    per request), and its blocking reads cost the loop that serves visitors nothing.
    """

    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = defaultdict(set)
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._seen: dict[str, tuple] = {}  # poll transport: each watched session's state last seen

    @contextlib.asynccontextmanager
    async def watch(self, session_id: str) -> AsyncIterator[Watch]:
        """Watch `session_id`; begin watching before reading, so no wake-up falls in between."""
        watch = Watch(session_id, asyncio.get_running_loop())
        with self._lock:
            self._watches[session_id].add(watch)
            self._listening()
        try:
            yield watch
        finally:
            with self._lock:
                watchers = self._watches.get(session_id)
                if watchers is not None:
                    watchers.discard(watch)
                    if not watchers:
                        del self._watches[session_id]

    @property
    def watched(self) -> int:
        with self._lock:
            return sum(len(watchers) for watchers in self._watches.values())

    def wake(self, session_id: str) -> None:
        """Wake the watches of `session_id`; from any thread."""
        with self._lock:
            watches = list(self._watches.get(session_id, ()))
        for watch in watches:
            watch.wake_threadsafe()

    def wake_all(self) -> None:
        with self._lock:
            watches = [watch for watchers in self._watches.values() for watch in watchers]
        for watch in watches:
            watch.wake_threadsafe()

    def _listening(self) -> None:
        """Start the subscription's thread once per process (again if it ever died)."""
        if self._listener is None or not self._listener.is_alive():
            self._listener = threading.Thread(target=self._subscribed, name="session-wakeups", daemon=True)
            self._listener.start()

    def _subscribed(self) -> None:
        """Listen for good: after any failure, wait a little, reconnect, and wake every watch."""
        listen = {"redis": self._listen_redis, "postgresql": self._listen_postgresql}.get(transport(), self._poll)
        failures = 0
        while True:
            try:
                listen()
            except Exception:
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning("session wake-up subscription lost; reconnecting", exc_info=True)
                time.sleep(delay)
            else:
                failures = 0
            self.wake_all()

    def _listen_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(_redis_location(), socket_connect_timeout=2, health_check_interval=30)
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(CHANNEL)
            self.wake_all()  # anything published before the subscription took
            while True:
                message = pubsub.get_message(timeout=30)
                if message is not None:
                    self.wake(message["data"].decode())
        finally:
            client.close()

    def _listen_postgresql(self) -> None:
        import psycopg

        params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
        with psycopg.connect(**params, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            self.wake_all()
            while True:
                for notice in listener.notifies(timeout=30):
                    self.wake(notice.payload)

    def _poll(self) -> None:
        while True:
            with self._lock:
                watched = list(self._watches)
            for gone in set(self._seen) - set(watched):
                del self._seen[gone]
            if watched:
                for session_id, state in _session_states(watched).items():
                    if self._seen.get(session_id) != state:
                        # A session seen for the first time is woken too: it may have changed
                        # between its watcher's read and this poll.
                        self._seen[session_id] = state
                        self.wake(session_id)
            time.sleep(POLL_SECONDS)


def _redis_location() -> str:
    location = settings.CACHES["default"]["LOCATION"]
    return location if isinstance(location, str) else location[0]


def _session_states(session_ids: list[str]) -> dict[str, tuple]:
    try:
        rows = ChatSession.objects.filter(pk__in=session_ids).values_list("pk", "event_seq", "is_active", "expires_at")
        states = {pk: tuple(state) for pk, *state in rows}
    finally:
        connection.close()
    for missing in set(session_ids) - states.keys():  # erased: wake its watchers once, to end them
        states[missing] = ("gone",)
    return states


hub = WakeHub()
