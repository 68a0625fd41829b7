"""Visitor chat endpoints: send a message (whole or streamed), read the history."""

import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from time import monotonic

from adrf.viewsets import ViewSet as AsyncViewSet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat_app.selectors import history_for_session
from chat_app.services import NO_MESSAGE
from chat_app.turns import StreamEvent, chat_turn_answer, chat_turn_events, chat_turn_start
from chatapi.fields import StrictTextField
from chatapi.ratelimit import RateLimit, visitor_session_key
from sessions_app.bots import NotABot
from sessions_app.permissions import IsVisitor

IDEMPOTENCY_KEY_INVALID = "Must be 1 to 128 visible ASCII characters."
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
NOT_AN_OBJECT = "The body must be a JSON object."
HISTORY_MAX = 200

# One Server-Sent Event, as schemathesis and other OpenAPI tools read a text/event-stream body.
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["delta", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional. A retry with the same key in the same session returns the first answer "
    "and stores nothing twice.",
)


class ChatInput(serializers.Serializer):
    """The body's shape, for the schema: its rules are the chat turn's (chat_app.services.check_chat_turn),
    checked in the contract's order after the rate limits and the session cap."""

    message = StrictTextField(help_text="The visitor's text: not blank, at most MAX_MESSAGE_LENGTH characters.")


class ChatOutput(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    message_id = serializers.IntegerField(source="message.pk")
    response = serializers.CharField(source="reply.content")
    response_id = serializers.IntegerField(source="reply.pk")
    flagged = serializers.BooleanField(source="message.flagged")
    fallback = serializers.BooleanField(source="reply.fallback")
    timestamp = serializers.DateTimeField(source="reply.created_at")


class HistoryInput(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=HISTORY_MAX, default=50)


class ExchangeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    message = serializers.CharField()
    response = serializers.CharField()
    timestamp = serializers.DateTimeField()
    flagged = serializers.BooleanField()
    partial = serializers.BooleanField(help_text="The reply was cut short: a stream broken off, or the visitor left.")


class HistoryOutput(serializers.Serializer):
    session_id = serializers.CharField()
    messages = ExchangeOutput(many=True)


def idempotency_key_from(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ValidationError({"Idempotency-Key": [IDEMPOTENCY_KEY_INVALID]})
    return key


def message_from(request: Request) -> object:
    """The `message` member of a JSON object body, whatever it holds (the chat turn checks it)."""
    if not isinstance(request.data, dict):
        raise ParseError(NOT_AN_OBJECT)
    return request.data.get("message", NO_MESSAGE)


# Deltas that arrive within this long of the last write go out together in the next one: a model
# writes a token every few milliseconds, and one write per token costs the server more CPU than the
# token itself. Every event is still its own frame.
SSE_COALESCE_SECONDS = 0.025


async def sse_encode(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    """Server-Sent Events framing; closing it closes `events` (the visitor left: the turn stores what arrived).

    The first delta goes out at once; later ones are held until SSE_COALESCE_SECONDS have passed
    since the last write; `done` and `error` go out with whatever is held.
    """
    held: list[bytes] = []
    written_at = None
    async with aclosing(events):
        async for event in events:
            held.append(f"event: {event.name}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n".encode())
            now = monotonic()
            if event.name != "delta" or written_at is None or now - written_at >= SSE_COALESCE_SECONDS:
                yield b"".join(held)
                held.clear()
                written_at = now
        if held:  # only when the events ended on a delta, which chat_turn_events never does
            yield b"".join(held)


class ChatPerClientLimit(RateLimit):
    """CHAT_RATE_LIMIT messages per client (an IPv4 address, an IPv6 /64); the cache down lets them pass."""

    group = "chat-ip"
    rate_setting = "CHAT_RATE_LIMIT"


class ChatPerSessionLimit(RateLimit):
    """CHAT_RATE_LIMIT messages per session, whatever client sends them."""

    group = "chat-session"
    rate_setting = "CHAT_RATE_LIMIT"
    key = staticmethod(visitor_session_key)


class ChatViewSet(AsyncViewSet):
    """`/chat` and `/chat/stream`: the contract's checks in order (bot, rate limits, then the turn's own),
    then the turn awaited: a visitor waiting on the model holds no thread and no database connection."""

    permission_classes = [IsVisitor, NotABot]
    throttle_classes = [ChatPerClientLimit, ChatPerSessionLimit]
    # Known, so not worked out again on every request (adrf scans the class's members for coroutines).
    view_is_async = True

    def check_throttles(self, request: Request) -> None:
        # DRF's own check: our throttles are synchronous (cache counters, run in initial()'s thread).
        # adrf's would also enter async_to_sync for its list of async throttles, empty here: a round
        # trip to the event loop and back on every chat, for nothing.
        APIView.check_throttles(self, request)

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # A stream client sends `Accept: text/event-stream`; its errors before the stream are still JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "stream")

    @extend_schema(request=ChatInput, responses={200: ChatOutput}, parameters=[IDEMPOTENCY_HEADER])
    async def create(self, request: Request) -> Response:
        opening = await chat_turn_start(
            session=request.auth, message=message_from(request), idempotency_key=idempotency_key_from(request)
        )
        return Response(ChatOutput(await chat_turn_answer(opening)).data)

    @extend_schema(
        request=ChatInput,
        responses={(200, "text/event-stream"): SSE_EVENT},
        parameters=[IDEMPOTENCY_HEADER],
        description="The same checks as POST /chat, answered as JSON errors before the stream starts; then "
        '`event: delta` lines with `data: {"content"}`, and `event: done` with the stored ids '
        "(`event: error` if the model breaks off).",
    )
    @action(detail=False, methods=["post"])
    async def stream(self, request: Request) -> StreamingHttpResponse:
        opening = await chat_turn_start(
            session=request.auth, message=message_from(request), idempotency_key=idempotency_key_from(request)
        )
        response = StreamingHttpResponse(sse_encode(chat_turn_events(opening)), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx and friends: pass each event on at once
        return response


class ChatHistoryView(APIView):
    """`/chat/history`: plain rows of the visitor's own session, written by the fast JSON renderer.

    A plain view, not an action of the async viewset: its one database read runs in one thread hop.
    """

    permission_classes = [IsVisitor]

    @extend_schema(parameters=[HistoryInput], responses=HistoryOutput)
    def get(self, request: Request) -> Response:
        params = HistoryInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        exchanges = history_for_session(session=request.auth, limit=params.validated_data["limit"])
        return Response({"session_id": request.auth.pk, "messages": exchanges})
