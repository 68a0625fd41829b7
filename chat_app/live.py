"""`/chat/events` awaited: a page of events (long poll) or a live Server-Sent Events stream.

A waiting visitor holds a watch (sessions_app.wakeups), not a thread nor a database connection;
the database is read once at the start and again only when a wake-up names the session.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import monotonic

from django.utils import timezone

from chat_app.events import EVENTS_PAGE, end_event, events_after
from chatapi.db import shared_database_sync_to_async
from chatapi.renderers import json_bytes
from sessions_app.models import ChatSession
from sessions_app.wakeups import hub

KEEPALIVE_SECONDS = 15.0
GONE = {"type": "end", "reason": "deleted"}


@dataclass(frozen=True)
class Page:
    events: list[dict]
    cursor: int


@shared_database_sync_to_async
def _read(session: ChatSession, after: int, refresh: bool) -> tuple[list[dict], ChatSession | None]:
    """Events after `after` and the session as it now is (None once erased)."""
    if refresh:
        session = ChatSession.objects.filter(pk=session.pk).first()
        if session is None:
            return [], None
    return events_after(session=session, after=after), session


def _with_end(events: list[dict], session: ChatSession | None, cursor: int) -> list[dict]:
    if session is None:
        return [*events, {"id": str(cursor), **GONE, "timestamp": timezone.now()}]
    end = end_event(session, cursor)
    return [*events, end] if end else events


def _cursor_of(events: list[dict], after: int) -> int:
    return int(events[-1]["id"]) if events else after


async def events_page(*, session: ChatSession, after: int, wait: float) -> Page:
    """The events after the cursor; with `wait`, held until there is one or `wait` seconds pass."""
    deadline = monotonic() + wait
    async with hub.watch(session.pk) as watch:
        events, current = await _read(session, after, refresh=False)
        while not events and current is not None and end_event(current, after) is None:
            left = min(deadline, monotonic() + _seconds_to_expiry(current)) - monotonic()
            if left <= 0:
                break
            await watch.wait(left)
            events, current = await _read(session, after, refresh=True)
        cursor = _cursor_of(events, after)
        return Page(_with_end(events, current, cursor), cursor)


async def events_stream(*, session: ChatSession, after: int, hold: bool = True) -> AsyncIterator[bytes]:
    """Server-Sent Events: each event as it commits, a comment every KEEPALIVE_SECONDS, `end` last.

    The database is read at the start and after each wake-up, never on a timer: an idle stream
    costs no query, and its expiry is known from the session row it started with. Without `hold`
    the stream ends after what exists now, and the client comes back after `retry`.
    """
    async with hub.watch(session.pk) as watch:
        yield b"retry: 2000\n\n"  # reconnect soon after a drop; Last-Event-ID resumes the stream
        current: ChatSession | None = session
        read, refresh = True, False
        while True:
            events = []
            if read:
                events, current = await _read(session, after, refresh=refresh)
                after, refresh = _cursor_of(events, after), True
            final = _with_end(events, current, after)
            if final:
                yield b"".join(sse_frame(event) for event in final)
            if len(final) > len(events):  # ended: the end event went out last
                return
            if len(events) == EVENTS_PAGE:  # more are waiting
                continue
            if not hold:
                return
            read = await watch.wait(min(KEEPALIVE_SECONDS, _seconds_to_expiry(current)))
            if not read:
                yield b": keep-alive\n\n"


def sse_frame(event: dict) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event["id"].encode(), event["type"].encode(), json_bytes(event))


def _seconds_to_expiry(session: ChatSession) -> float:
    return max(0.0, (session.expires_at - timezone.now()).total_seconds()) + 0.05
