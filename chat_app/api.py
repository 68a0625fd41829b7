"""Visitor chat endpoints: send a message, read the history."""

import json
import re
from collections.abc import Generator, Iterator
from contextlib import closing
from time import monotonic

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from chat_app.models import ChatMessage
from chat_app.sanitization import control_characters_remove
from chat_app.selectors import history_for_session
from chat_app.services import (
    ChatTurn,
    StreamEvent,
    chat_message_accept,
    chat_session_cap_check,
    chat_turn_answer,
    chat_turn_events,
    chat_turn_replay,
    chat_turn_stream,
    visitor_text_prepare,
)
from chatapi.fields import StrictTextField
from chatapi.ratelimit import client_ip_key, rate_limit_enforce, visitor_session_key
from sessions_app.bots import NotABot
from sessions_app.permissions import IsVisitor

MESSAGE_BLANK = "Message must not be blank."
MESSAGE_TOO_LONG = "Message must be at most {limit} characters."
MESSAGE_ONLY_MARKUP = "Message has no text once HTML markup is removed."
IDEMPOTENCY_KEY_INVALID = "Must be 1 to 128 visible ASCII characters."
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
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
    message = StrictTextField()

    def validate_message(self, raw: str):
        if len(raw) > settings.MAX_MESSAGE_LENGTH:
            raise ValidationError(MESSAGE_TOO_LONG.format(limit=settings.MAX_MESSAGE_LENGTH))
        if not control_characters_remove(raw).strip():
            raise ValidationError(MESSAGE_BLANK)
        prepared = visitor_text_prepare(raw)
        if not prepared.text:  # only under INPUT_MARKUP_POLICY=strip, for a message of nothing but markup
            raise ValidationError(MESSAGE_ONLY_MARKUP)
        return prepared


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


# Deltas that arrive within this long of the last write go out together in the next one: a model
# writes a token every few milliseconds, and one write per token costs the server more CPU than the
# token itself (a system call, and a turn at the GIL for each). Every event is still its own frame.
SSE_COALESCE_SECONDS = 0.025


def sse_encode(events: Generator[StreamEvent]) -> Iterator[bytes]:
    """Server-Sent Events framing. A generator, so closing the response closes `events` too.

    The first delta goes out at once; later ones are held until SSE_COALESCE_SECONDS have passed
    since the last write; `done` and `error` go out with whatever is held.
    """
    held: list[bytes] = []
    written_at = None
    with closing(events):
        for event in events:
            held.append(f"event: {event.name}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n".encode())
            now = monotonic()
            if event.name != "delta" or written_at is None or now - written_at >= SSE_COALESCE_SECONDS:
                yield b"".join(held)
                held.clear()
                written_at = now
        if held:  # only when the events ended on a delta, which chat_turn_stream never does
            yield b"".join(held)


class ChatViewSet(viewsets.GenericViewSet):
    """`/chat`: the visitor's own conversation, in the contract's order of checks."""

    permission_classes = [IsVisitor, NotABot]

    def get_permissions(self):
        if self.action == "history":
            return [IsVisitor()]
        return super().get_permissions()

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # A stream client sends `Accept: text/event-stream`; its errors before the stream are still JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "stream")

    def chat_accept(self, request: Request) -> ChatTurn | ChatMessage:
        """The contract's checks in order, then the visitor's message stored; shared by every send.

        Rate limits, an idempotent replay (the earlier turn is returned), the session cap, validation.
        """
        rate_limit_enforce(request, group="chat-ip", key=client_ip_key, rate=settings.CHAT_RATE_LIMIT)
        rate_limit_enforce(request, group="chat-session", key=visitor_session_key, rate=settings.CHAT_RATE_LIMIT)
        key = idempotency_key_from(request)
        replay = chat_turn_replay(session=request.auth, key=key) if key else None
        if replay is not None:
            return replay
        chat_session_cap_check(session=request.auth)
        data = ChatInput(data=request.data)
        data.is_valid(raise_exception=True)
        return chat_message_accept(session=request.auth, text=data.validated_data["message"], idempotency_key=key)

    @extend_schema(request=ChatInput, responses={200: ChatOutput}, parameters=[IDEMPOTENCY_HEADER])
    def create(self, request: Request) -> Response:
        accepted = self.chat_accept(request)
        turn = accepted if isinstance(accepted, ChatTurn) else chat_turn_answer(message=accepted)
        return Response(ChatOutput(turn).data)

    @extend_schema(parameters=[HistoryInput], responses=HistoryOutput)
    @action(detail=False, methods=["get"])
    def history(self, request: Request) -> Response:
        params = HistoryInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        exchanges = history_for_session(session=request.auth, limit=params.validated_data["limit"])
        return Response(HistoryOutput({"session_id": request.auth.pk, "messages": exchanges}).data)

    @extend_schema(
        request=ChatInput,
        responses={(200, "text/event-stream"): SSE_EVENT},
        parameters=[IDEMPOTENCY_HEADER],
        description="The same checks as POST /chat, answered as JSON errors before the stream starts; then "
        '`event: delta` lines with `data: {"content"}`, and `event: done` with the stored ids '
        "(`event: error` if the model breaks off).",
    )
    @action(detail=False, methods=["post"])
    def stream(self, request: Request) -> StreamingHttpResponse:
        accepted = self.chat_accept(request)
        events = chat_turn_events(accepted) if isinstance(accepted, ChatTurn) else chat_turn_stream(message=accepted)
        response = StreamingHttpResponse(sse_encode(events), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx and friends: pass each event on at once
        return response
