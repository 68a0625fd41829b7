"""The chat turn, awaited: one opening for `/chat`, `/chat/stream` and replays, the model, then the reply.

Each database step runs in the request's thread and hands its connection back before the wait
that follows it (chatapi.db.database_sync_to_async); the model is awaited holding nothing.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.conf import settings

from chat_app import llm
from chat_app.models import ChatMessage
from chat_app.selectors import reply_stored_for
from chat_app.services import (
    FALLBACK_REPLY,
    IdempotencyConflict,
    TurnOpening,
    chat_reply_store,
    chat_turn_open,
)
from chatapi.db import database_sync_to_async
from sessions_app.models import ChatSession

logger = logging.getLogger(__name__)

STREAM_BROKEN = "The answer broke off; what arrived has been saved. Please ask again."
REPLAY_POLL_SECONDS = 0.2

_turn_open = database_sync_to_async(chat_turn_open)
_reply_store = database_sync_to_async(chat_reply_store)
_reply_stored_for = database_sync_to_async(reply_stored_for)


@dataclass(frozen=True)
class ChatTurn:
    """A visitor message and its reply; no reply when it went to staff (human mode)."""

    message: ChatMessage
    reply: ChatMessage | None

    @property
    def mode(self) -> str:
        return "human" if self.message.to_staff else "ai"


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event: `delta` (text), `done` (the stored ids) or `error`."""

    name: str
    data: dict


async def chat_turn_start(*, session: ChatSession, message: object, idempotency_key: str | None) -> TurnOpening:
    """The checks, then the visitor's message stored; a repeated key gets its first turn, once answered.

    Raises the checks' domain errors before anything is stored; IdempotencyConflict when the first
    request with the key has not answered within LLM_TIMEOUT + 5 s.
    """
    opening = await _turn_open(session=session, message=message, idempotency_key=idempotency_key)
    if not opening.waiting:
        return opening
    deadline = time.monotonic() + settings.LLM_TIMEOUT + 5
    while (reply := await _reply_stored_for(message=opening.message)) is None:
        if time.monotonic() >= deadline:
            raise IdempotencyConflict()
        await asyncio.sleep(REPLAY_POLL_SECONDS)
    return TurnOpening(message=opening.message, reply=reply)


async def chat_turn_answer(opening: TurnOpening) -> ChatTurn:
    """The whole reply: the stored one, the model's, or the fallback when the model fails."""
    if opening.reply is not None or opening.to_staff:
        return ChatTurn(opening.message, opening.reply)
    try:
        completion = await llm.chat_complete(messages=opening.model_messages)
    except llm.ModelUnavailable:
        reply = await _reply_store(message=opening.message, content=FALLBACK_REPLY, fallback=True)
    else:
        reply = await _reply_store(message=opening.message, content=completion.content, completion=completion)
    return ChatTurn(opening.message, reply)


async def chat_turn_events(opening: TurnOpening) -> AsyncIterator[StreamEvent]:
    """The reply as the model writes it, then `done`; stored once, when it ends.

    A stored reply goes out whole, in one delta. If the model breaks off, what arrived is stored as a
    partial reply and the stream ends with `error`; if the visitor leaves, the model call is cancelled
    and what arrived is stored as a partial reply too.
    """
    if opening.to_staff:  # staff answer it: no delta, and done names no reply
        yield StreamEvent("done", _done_data(opening.message, None))
        return
    if opening.reply is not None:
        for event in _whole(ChatTurn(opening.message, opening.reply)):
            yield event
        return
    stream = llm.ModelStream(opening.model_messages)
    try:
        async for piece in stream.pieces():
            yield StreamEvent("delta", {"content": piece})
    except llm.ModelUnavailable:
        if not stream.text:
            for event in _whole(await _fallback(opening.message)):
                yield event
            return
        reply = await _partial_store(opening.message, stream)
        yield StreamEvent("error", {"detail": STREAM_BROKEN, **_done_data(opening.message, reply)})
        return
    except (asyncio.CancelledError, GeneratorExit):
        await _partial_store(opening.message, stream)
        logger.info("stream closed by the client", extra={"message_id": opening.message.pk})
        raise
    if not stream.completion.content.strip():  # an empty answer is no answer, as in chat_complete
        for event in _whole(await _fallback(opening.message)):
            yield event
        return
    reply = await _reply_store(message=opening.message, content=stream.completion.content, completion=stream.completion)
    yield StreamEvent("done", _done_data(opening.message, reply))


async def _partial_store(message: ChatMessage, stream: llm.ModelStream) -> ChatMessage:
    cut_short = stream.so_far()
    return await _reply_store(message=message, content=cut_short.content, completion=cut_short, partial=True)


async def _fallback(message: ChatMessage) -> ChatTurn:
    return ChatTurn(message, await _reply_store(message=message, content=FALLBACK_REPLY, fallback=True))


def _whole(turn: ChatTurn) -> list[StreamEvent]:
    """A stored turn as a stream: the whole reply in one delta, then done."""
    return [
        StreamEvent("delta", {"content": turn.reply.content}),
        StreamEvent("done", _done_data(turn.message, turn.reply)),
    ]


def _done_data(message: ChatMessage, reply: ChatMessage | None) -> dict:
    return {
        "message_id": message.pk,
        "response_id": reply.pk if reply else None,
        "flagged": message.flagged,
        "fallback": reply.fallback if reply else False,
        "mode": ChatTurn(message, reply).mode,
    }
