"""Visitor chat endpoints: send a message (whole or streamed), read the history."""

import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime
from time import monotonic

from adrf.views import APIView as AsyncAPIView
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

from chat_app.events import cursor_parse
from chat_app.handoff import human_request
from chat_app.live import events_page, events_stream
from chat_app.selectors import history_for_session
from chat_app.services import NO_MESSAGE
from chat_app.turns import StreamEvent, chat_turn_answer, chat_turn_events, chat_turn_start
from chatapi.db import database_sync_to_async, shared_database_sync_to_async
from chatapi.fields import StrictTextField
from chatapi.ratelimit import RateLimit, visitor_session_key
from sessions_app.bots import NotABot
from sessions_app.models import ChatSession
from sessions_app.permissions import IsVisitor

IDEMPOTENCY_KEY_INVALID = "Must be 1 to 128 visible ASCII characters."
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
NOT_AN_OBJECT = "The body must be a JSON object."
NOT_A_CURSOR = "Not a cursor this API gave out: pass back an event's `id` or the answer's `cursor`."
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
    response = serializers.CharField(source="reply.content", default="", help_text='"" in human mode.')
    response_id = serializers.IntegerField(source="reply.pk", allow_null=True, default=None)
    flagged = serializers.BooleanField(source="message.flagged")
    fallback = serializers.BooleanField(source="reply.fallback", default=False)
    timestamp = serializers.SerializerMethodField()
    mode = serializers.ChoiceField(
        choices=ChatSession.Mode.choices, help_text='"human": staff answer; the model was not called.'
    )

    def get_timestamp(self, turn) -> datetime:
        return (turn.reply or turn.message).created_at


class EventsInput(serializers.Serializer):
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The cursor to read after; none: from the start.",
    )
    wait = serializers.IntegerField(
        min_value=0, max_value=30, default=0, help_text="Seconds to hold the answer until an event exists (long poll)."
    )


class EventsOutput(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.DictField(), help_text="`message`, `edit`, `delete`, `mode` and `end` events, oldest first."
    )
    cursor = serializers.CharField(help_text="Pass it as `after` to read on from here.")


class HumanRequestOutput(serializers.Serializer):
    requested = serializers.BooleanField(default=True)


# One Server-Sent Event of /chat/events.
EVENTS_SSE = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string", "enum": ["message", "edit", "delete", "mode", "end"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


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

    def get_throttles(self):
        # Only sending a message counts against CHAT_RATE_LIMIT; asking for a person does not.
        return super().get_throttles() if self.action in ("create", "stream") else []

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

    @extend_schema(request=None, responses={202: HumanRequestOutput})
    @action(detail=False, methods=["post"])
    async def human(self, request: Request) -> Response:
        """Ask for a person: staff are pinged in the session's thread, once a minute at most."""
        await database_sync_to_async(human_request)(session=request.auth)
        return Response({"requested": True}, status=202)


class ChatEventsView(AsyncAPIView):
    """`/chat/events`: a page of events (long poll) or a live stream of them.

    Not an action of the chat viewset: a stream stays open for minutes, and every step that touches
    the database runs on the shared thread pool (chatapi.db.shared_database_sync_to_async). asgiref
    gives each request that uses a thread-sensitive step a thread of its own, kept until the response
    ends: one idle thread per open stream.
    """

    permission_classes = [IsVisitor, NotABot]
    view_is_async = True

    async def async_dispatch(self, request, *args, **kwargs):
        # adrf's dispatch, less its thread-sensitive `initial` (authentication, permissions).
        self.args, self.kwargs = args, kwargs
        request = self.request = self.initialize_request(request, *args, **kwargs)
        self.headers = self.default_response_headers
        try:
            await shared_database_sync_to_async(self.initial)(request, *args, **kwargs)
            handler = (
                getattr(self, request.method.lower(), None)
                if request.method.lower() in self.http_method_names
                else None
            )
            response = await (handler or self.http_method_not_allowed_async)(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - DRF's own handling, as in adrf's dispatch
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    async def http_method_not_allowed_async(self, request, *args, **kwargs):
        return self.http_method_not_allowed(request, *args, **kwargs)

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # A stream client sends `Accept: text/event-stream`; its errors are still JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[EventsInput],
        responses={(200, "application/json"): EventsOutput, (200, "text/event-stream"): EVENTS_SSE},
        description="The conversation as events after the cursor. With `Accept: text/event-stream` they stream "
        "live (`id:` the cursor, resuming from `Last-Event-ID`; a comment line every 15 s).",
    )
    async def get(self, request: Request):
        params = EventsInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        live = "text/event-stream" in request.headers.get("Accept", "")
        raw = (request.headers.get("Last-Event-ID") if live else None) or params.validated_data.get("after")
        if (after := cursor_parse(raw)) is None:
            raise ValidationError({"after": [NOT_A_CURSOR]})
        if live:
            # A WSGI server (manage.py runserver, pytest's live server) sends an async stream only once it
            # ends: there the stream ends after what exists now, and the client reconnects after `retry`.
            hold = "wsgi.version" not in request.META
            response = StreamingHttpResponse(
                events_stream(session=request.auth, after=after, hold=hold), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        page = await events_page(session=request.auth, after=after, wait=params.validated_data["wait"])
        return Response({"events": page.events, "cursor": str(page.cursor)})


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
