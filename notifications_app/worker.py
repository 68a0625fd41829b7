"""The delivery worker: claims queued deliveries in small batches and carries them to Discord in turn.

One event loop and one Discord client live as long as the worker. ORM calls run in plain sync code
between `loop.run_until_complete` calls, so no transaction or row lock is ever held across a
request to Discord.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django_guid import clear_guid, set_guid

from chat_app.handoff import idle_sessions_release
from notifications_app import formatting
from notifications_app.discord import DiscordClient, DiscordRejected, DiscordUnavailable
from notifications_app.models import Delivery
from notifications_app.selectors import discord_thread_for_session
from notifications_app.services import (
    WAKE_CHANNEL,
    deliveries_claim,
    delivery_claim_renew,
    delivery_done,
    delivery_fail,
    delivery_policy,
    delivery_release,
    delivery_retry_later,
    discord_thread_store,
)
from sessions_app.models import ChatSession

logger = logging.getLogger(__name__)

WAIT_SLICE = 0.25  # how often an idle or busy worker looks at its stop flag, in seconds
CLAIM_BATCH = 10  # deliveries claimed in one transaction (at most one per session)


class _Released(Exception):
    """The worker is stopping and the delivery in hand outlasted the grace period."""


class _SessionGone(Exception):
    """The session was erased while its thread was being opened (its thread is queued for deletion)."""


def discord_client_from_settings() -> DiscordClient:
    return DiscordClient(
        token=settings.DISCORD_BOT_TOKEN, api_base=settings.DISCORD_API_BASE, channel_id=settings.DISCORD_CHANNEL_ID
    )


def delivery_nonce(*parts: object) -> str:
    """Discord's nonce for a post (25 characters at most): the same on every retry of it, and
    unguessable across installations because session ids are random.
    """
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:25]


IDLE_SWEEP_SECONDS = 10.0  # the contract allows 15 s past HANDOFF_IDLE_SECONDS


class DeliveryWorker:
    """Use as a context manager; `run()` delivers until `stop()` (or, with `once`, until idle)."""

    def __init__(
        self,
        *,
        client: DiscordClient | None = None,
        poll_interval: float = 1.0,
        shutdown_grace: float = 10.0,
        batch_size: int = CLAIM_BATCH,
        worker_id: str | None = None,
    ) -> None:
        self.client = client or discord_client_from_settings()
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.batch_size = batch_size
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening_on = None
        self._swept_at = 0.0

    def __enter__(self) -> "DeliveryWorker":
        self._loop = asyncio.new_event_loop()
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.run_until_complete(self.client.close())
        self._loop.close()

    def stop(self) -> None:
        """Ask the worker to stop after the delivery in hand; safe from a signal handler."""
        self._stopping = True

    def run(self, *, once: bool = False) -> int:
        """Deliver until stopped, or with `once` until nothing is deliverable now; returns how many."""
        logger.info("discord worker started", extra={"worker_id": self.worker_id})
        handled = 0
        while not self._stopping:
            try:
                self._idle_sessions_release()
                batch = deliveries_claim(worker_id=self.worker_id, limit=self.batch_size)
                if not batch and once:
                    break
                handled += self._deliver_batch(batch) if batch else 0
            except DatabaseError:  # the database restarted or is unreachable: wait, then reconnect
                if once:
                    raise
                logger.exception("discord worker cannot reach the database")
                connection.close()
                self._idle(self.poll_interval)
                continue
            if not batch:
                self._idle(self.poll_interval)
        logger.info("discord worker stopped", extra={"worker_id": self.worker_id, "handled": handled})
        return handled

    def _idle_sessions_release(self) -> None:
        """The idle hand-back's owner: at most every IDLE_SWEEP_SECONDS, human-mode sessions nobody
        answered for HANDOFF_IDLE_SECONDS go back to the model (and their visitors hear of it)."""
        if time.monotonic() - self._swept_at >= IDLE_SWEEP_SECONDS:
            self._swept_at = time.monotonic()
            if released := idle_sessions_release():
                logger.info("idle sessions handed back to the model", extra={"count": released})

    def _deliver_batch(self, batch: list[Delivery]) -> int:
        """Deliver a claimed batch in order; on stop, give back the part not started."""
        handled = 0
        for position, delivery in enumerate(batch):
            if self._stopping:
                for unstarted in batch[position:]:
                    delivery_release(delivery=unstarted, worker_id=self.worker_id)
                break
            if delivery_claim_renew(delivery=delivery, worker_id=self.worker_id):
                self.deliver(delivery)
                handled += 1
        return handled

    # --- one delivery ------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        """Carry a claimed delivery to Discord and settle it: done, later, failed or released."""
        if delivery.request_id:  # every line logged meanwhile, discord.py's too, carries it
            set_guid(delivery.request_id)
        log = {
            "delivery_id": delivery.pk,
            "kind": delivery.kind,
            "attempt": delivery.attempts,
            "request_id": delivery.request_id,
        }
        try:
            self._handlers[delivery.kind](self, delivery)
        except DiscordUnavailable as exc:
            later = delivery_retry_later(
                delivery=delivery, worker_id=self.worker_id, reason=exc.reason, retry_after=exc.retry_after
            )
            logger.warning("discord delivery %s: %s", later.status, exc.reason, extra=log)
        except DiscordRejected as exc:
            delivery_fail(delivery=delivery, worker_id=self.worker_id, reason=exc.reason)
            logger.error("discord delivery failed: %s", exc.reason, extra=log)
        except _Released:
            delivery_release(delivery=delivery, worker_id=self.worker_id)
            logger.warning("discord delivery released at shutdown", extra=log)
        except _SessionGone:
            delivery_done(delivery=delivery, worker_id=self.worker_id)
            logger.info("discord delivery dropped: session erased", extra=log)
        except DatabaseError:
            raise  # the run loop waits for the database; the lease hands this delivery on later
        except Exception as exc:  # a boundary: one bad delivery must not stop the others
            logger.exception("discord delivery crashed", extra=log)
            delivery_retry_later(delivery=delivery, worker_id=self.worker_id, reason=f"crash: {type(exc).__name__}")
        else:
            delivery_done(delivery=delivery, worker_id=self.worker_id)
            latency_ms = round((delivery.delivered_at - delivery.created_at).total_seconds() * 1000)
            logger.info("discord delivery done", extra={**log, "latency_ms": latency_ms})
        finally:
            clear_guid()

    def _session_opened(self, delivery: Delivery) -> None:
        self._thread_id(delivery.session)

    def _message_posted(self, delivery: Delivery) -> None:
        message = delivery.message
        thread_id = self._thread_id(delivery.session)
        embed = formatting.message_embed(
            message_id=message.pk,
            is_visitor=message.kind == message.Kind.USER,
            content=message.content,
            flagged=message.flagged,
            fallback=message.fallback,
            created_at=message.created_at,
            staff_author=message.author if message.kind == message.Kind.STAFF else None,
        )
        nonce = delivery_nonce(message.session_id, "message", message.pk)
        self._call(self.client.thread_post(thread_id=thread_id, embed=embed, nonce=nonce))

    def _human_requested(self, delivery: Delivery) -> None:
        thread_id = self._thread_id(delivery.session)
        content = formatting.human_request_text(role_id=settings.DISCORD_STAFF_ROLE_ID)
        nonce = delivery_nonce(delivery.session_id, "human", delivery.pk)
        self._call(
            self.client.thread_ping(
                thread_id=thread_id, content=content, role_id=settings.DISCORD_STAFF_ROLE_ID, nonce=nonce
            )
        )

    def _thread_deleted(self, delivery: Delivery) -> None:
        ids = {name: int(delivery.payload[name]) for name in ("thread_id", "channel_id", "message_id")}
        self._call(self.client.thread_delete(**ids))

    _handlers = {
        Delivery.Kind.SESSION_OPENED: _session_opened,
        Delivery.Kind.MESSAGE_POSTED: _message_posted,
        Delivery.Kind.THREAD_DELETED: _thread_deleted,
        Delivery.Kind.HUMAN_REQUESTED: _human_requested,
    }

    def _thread_id(self, session: ChatSession) -> int:
        """The session's thread, opened now if it has none yet (so a post never lacks its thread)."""
        thread = discord_thread_for_session(session_id=session.pk)
        if thread is not None:
            return thread.thread_id
        opened = self._call(
            self.client.thread_open(
                embed=formatting.session_embed(
                    session_id=session.pk,
                    email=session.email,
                    ip_address=session.ip_address,
                    started_at=session.created_at,
                ),
                name=formatting.thread_name(session_id=session.pk, email=session.email),
                nonce=delivery_nonce(session.pk, "opening"),
            )
        )
        thread = discord_thread_store(
            session_id=session.pk,
            thread_id=opened.thread_id,
            channel_id=opened.channel_id,
            opening_message_id=opened.message_id,
        )
        if thread is None:
            raise _SessionGone()
        return thread.thread_id

    # --- the event loop ----------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self._loop.run_until_complete(self._guarded(coroutine))

    async def _guarded(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Await a Discord call within the attempt timeout, and within the grace once stopping."""
        task = asyncio.ensure_future(coroutine)
        timeout = delivery_policy().attempt_timeout
        deadline = self._loop.time() + timeout
        stop_deadline = None
        while True:
            done, _ = await asyncio.wait({task}, timeout=WAIT_SLICE)
            if done:
                return task.result()
            now = self._loop.time()
            if self._stopping and stop_deadline is None:
                stop_deadline = now + self.shutdown_grace
            if now >= deadline or (stop_deadline is not None and now >= stop_deadline):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, DiscordUnavailable, DiscordRejected):
                    await task
                if now >= deadline:
                    raise DiscordUnavailable(f"no answer within {timeout:g}s")
                raise _Released()

    # --- waiting for work --------------------------------------------------------------------

    def _idle(self, seconds: float) -> None:
        """Wait up to `seconds` for work, waking early on a PostgreSQL NOTIFY or on stop()."""
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            if connection.vendor == "postgresql":
                if self._notified(min(WAIT_SLICE, left)):
                    return
            else:
                time.sleep(min(WAIT_SLICE, left))

    def _notified(self, timeout: float) -> bool:
        try:
            connection.ensure_connection()
            raw = connection.connection
            if raw is not self._listening_on:  # a new connection (first use, or after a reconnect)
                with connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {WAKE_CHANNEL}")
                self._listening_on = raw
            with connection.wrap_database_errors:  # psycopg's own errors as Django's
                return any(True for _ in raw.notifies(timeout=timeout, stop_after=1))
        except DatabaseError:  # the next claim reports it; until then, plain polling
            connection.close()
            time.sleep(timeout)
            return False
