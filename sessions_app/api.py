"""Visitor session endpoints: start a session by email, read it, log out, erase it."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from chatapi.ratelimit import RateLimit
from sessions_app.authentication import ended_session_accepted
from sessions_app.bots import NotABot
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_delete, chat_session_end, chat_session_start


class SessionStartInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class SessionStartOutput(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the session and its token expire.")
    session_id = serializers.CharField()


class SessionOutput(serializers.Serializer):
    session_id = serializers.CharField(source="pk")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    message_count = serializers.IntegerField(source="user_message_count")
    messages_remaining = serializers.SerializerMethodField()
    mode = serializers.ChoiceField(choices=ChatSession.Mode.choices, help_text='"human" while staff answer.')

    def get_messages_remaining(self, session: ChatSession) -> int:
        return max(0, settings.MAX_MESSAGES_PER_SESSION - session.user_message_count)


class SessionStartLimit(RateLimit):
    """AUTH_RATE_LIMIT new sessions per client (an IPv4 address, an IPv6 /64); the cache down refuses."""

    group = "auth-email"
    rate_setting = "AUTH_RATE_LIMIT"


class VisitorSessionViewSet(viewsets.ViewSet):
    """`/auth/...`: the visitor's own chat session, named by the token, never by an id."""

    @extend_schema(request=SessionStartInput, responses={201: SessionStartOutput}, auth=[])
    @action(
        detail=False,
        methods=["post"],
        authentication_classes=[],
        permission_classes=[AllowAny, NotABot],
        throttle_classes=[SessionStartLimit],
    )
    def email(self, request):
        data = SessionStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        started = chat_session_start(
            email=data.validated_data["email"],
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            ip_address=request.client_ip,
        )
        body = {
            "access_token": started.access_token,
            "token_type": "Bearer",  # the scheme name, not a secret  # nosec B105
            "expires_in": started.expires_in,
            "session_id": started.session.pk,
        }
        return Response(SessionStartOutput(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=SessionOutput)
    @action(detail=False, methods=["get"])
    def session(self, request):
        return Response(SessionOutput(request.auth).data)

    @extend_schema(responses={204: None})
    @session.mapping.delete
    @ended_session_accepted
    def session_delete(self, request):
        chat_session_delete(session=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None})
    @action(detail=False, methods=["post"])
    def logout(self, request):
        chat_session_end(session=request.auth, reason=ChatSession.EndReason.LOGOUT)
        return Response(status=status.HTTP_204_NO_CONTENT)
