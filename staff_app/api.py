"""Staff endpoints: tokens for staff users, every session and its messages, and the daily usage."""

import django_filters
from django import forms
from django.http import Http404
from django.utils import timezone
from drf_spectacular.contrib.rest_framework_simplejwt import TokenRefreshSerializerExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from chat_app.handoff import session_release, staff_message_post, staff_text_clean
from chat_app.models import ChatMessage
from chatapi.ratelimit import RateLimit
from chatapi.renderers import FastJSONRenderer
from sessions_app.authentication import VisitorOrPassAuthentication
from sessions_app.hashing import email_hash
from sessions_app.models import ChatSession
from sessions_app.permissions import IsStaff
from sessions_app.services import chat_session_end
from staff_app.selectors import staff_session_list
from staff_app.usage import UsageCSVRenderer, UsageOutput, UsageRange, usage_range
from usage_app.selectors import usage_days

NOT_STAFF = "No active staff account found with the given credentials."
UNKNOWN_FORMAT = "Must be json or csv."


class StaffTokenInput(TokenObtainPairSerializer):
    def validate(self, attrs):
        data = super().validate(attrs)
        if not self.user.is_staff:
            raise AuthenticationFailed(NOT_STAFF, code="no_active_account")
        return data


class StaffTokenRefreshInput(TokenRefreshSerializer):
    """A refresh token speaks for its user only while they exist, are active staff and keep the password
    they had when it was issued: simplejwt's revoke claim, checked here as on every access token."""

    def validate(self, attrs):
        user = JWTAuthentication().get_user(self.token_class(attrs["refresh"]))  # deleted, inactive, new password
        if not user.is_staff:
            raise AuthenticationFailed(NOT_STAFF, code="no_active_account")
        return super().validate(attrs)


class StaffTokenRefreshFields(TokenRefreshSerializerExtension):
    """The staff refresh serializer adds checks, not fields: its body is simplejwt's."""

    target_class = StaffTokenRefreshInput


class StaffTokenLimit(RateLimit):
    """AUTH_RATE_LIMIT token requests per client, to slow down password guessing; the cache down refuses."""

    group = "staff-token"
    rate_setting = "AUTH_RATE_LIMIT"


class StaffTokenView(TokenObtainPairView):
    serializer_class = StaffTokenInput
    throttle_classes = [StaffTokenLimit]


class StaffTokenRefreshView(TokenRefreshView):
    serializer_class = StaffTokenRefreshInput
    throttle_classes = [StaffTokenLimit]


class StaffSessionOutput(serializers.ModelSerializer):
    message_count = serializers.IntegerField(source="user_message_count")
    flagged_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ChatSession
        fields = [
            "id", "email", "email_hash", "ip_address", "browser_hash", "created_at", "expires_at",
            "last_activity_at", "is_active", "ended_at", "end_reason", "message_count", "flagged_count", "mode",
            "mode_changed_at", "last_staff_message_at", "prompt_tokens", "completion_tokens", "cost_usd",
        ]  # fmt: skip


class StaffMessageOutput(serializers.ModelSerializer):
    class Meta:
        model = ChatMessage
        fields = [
            "id", "kind", "content", "flagged", "created_at", "in_reply_to", "fallback", "partial", "model",
            "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "usage_estimated", "author", "to_staff",
            "edited_at", "deleted_at",
        ]  # fmt: skip


class StaffReplyInput(serializers.Serializer):
    message = serializers.CharField(help_text="Sent to the visitor as typed; at most MAX_MESSAGE_LENGTH characters.")


class StaffReplyOutput(serializers.Serializer):
    message_id = serializers.IntegerField(source="pk")
    role = serializers.CharField(default="staff")
    content = serializers.CharField()
    author = serializers.CharField()
    timestamp = serializers.DateTimeField(source="created_at")


class ReleaseOutput(serializers.Serializer):
    mode = serializers.CharField(default="ai")


def staff_display_name(user) -> str:
    """How the visitor sees a staff member: their full name, else their username."""
    return user.get_full_name() or user.get_username()


class IPAddressFilter(django_filters.Filter):
    """A validated address: PostgreSQL's inet column raises on anything else instead of matching nothing."""

    field_class = forms.GenericIPAddressField


class StaffSessionFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(method="filter_email", help_text="Exact address, any case.")
    expired = django_filters.BooleanFilter(method="filter_expired")
    flagged = django_filters.BooleanFilter(method="filter_flagged", help_text="Has flagged messages.")
    ip_address = IPAddressFilter(unpack_ipv4=True)  # `::ffff:a.b.c.d` is the IPv4 client, stored as such
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ChatSession
        fields = ["is_active"]

    def filter_email(self, queryset, name, value):
        return queryset.filter(email_hash=email_hash(value))

    def filter_expired(self, queryset, name, value):
        now = timezone.now()
        return queryset.filter(expires_at__lte=now) if value else queryset.filter(expires_at__gt=now)

    def filter_flagged(self, queryset, name, value):
        return queryset.filter(has_flagged=value)


class StaffPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class StaffSessionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every visitor session, newest first; staff only (a visitor token gets 403)."""

    authentication_classes = [VisitorOrPassAuthentication, JWTAuthentication]
    permission_classes = [IsStaff]
    serializer_class = StaffSessionOutput
    filterset_class = StaffSessionFilter
    pagination_class = StaffPagination
    queryset = staff_session_list().order_by("-created_at", "-pk")

    # The session filters select sessions for the list; on one named session they would only 404 it.
    @extend_schema(responses=StaffMessageOutput(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def messages(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        page = self.paginate_queryset(ChatMessage.objects.filter(session=session).order_by("id"))
        return self.get_paginated_response(StaffMessageOutput(page, many=True).data)

    @extend_schema(
        request=StaffReplyInput,
        responses={201: StaffReplyOutput, 409: OpenApiResponse(description="The session has ended or expired.")},
    )
    @messages.mapping.post
    def message_post(self, request: Request, pk: str | None = None) -> Response:
        """A staff reply: to the visitor, into the Discord thread once, and the session into human mode."""
        session = self.get_object()
        body = request.data if isinstance(request.data, dict) else {}
        if "message" not in body:
            raise ValidationError({"message": ["This field is required."]})
        text = staff_text_clean(body["message"])
        message = staff_message_post(session_id=session.pk, content=text, author=staff_display_name(request.user))
        return Response(StaffReplyOutput(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ReleaseOutput)
    @action(detail=True, methods=["post"], filter_backends=[])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Hand the session back to the model."""
        session_release(session_id=self.get_object().pk, author=staff_display_name(request.user))
        return Response({"mode": "ai"})

    @extend_schema(request=None, responses=StaffSessionOutput)
    @action(detail=True, methods=["post"], filter_backends=[])
    def end(self, request: Request, pk: str | None = None) -> Response:
        session = chat_session_end(session=self.get_object(), reason=ChatSession.EndReason.STAFF)
        return Response(self.get_serializer(session).data)


class StaffUsageView(APIView):
    """Usage per UTC day, newest first: sessions, messages, replies, tokens, cost and latency; staff only.

    A plain view, not a viewset: its answer is one object holding the days, which a viewset's `list`
    would be documented as a list of.
    """

    authentication_classes = [VisitorOrPassAuthentication, JWTAuthentication]
    permission_classes = [IsStaff]
    renderer_classes = [FastJSONRenderer, UsageCSVRenderer]
    unknown_format = False

    def perform_content_negotiation(self, request: Request, force: bool = False):
        """An unknown `?format=` is a mistake in the query: a 400 in JSON, after the permissions, not DRF's 404."""
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            self.unknown_format = True
            return FastJSONRenderer(), FastJSONRenderer.media_type

    @extend_schema(parameters=[UsageRange], responses=UsageOutput)
    def get(self, request: Request) -> Response:
        if self.unknown_format:
            raise ValidationError({"format": [UNKNOWN_FORMAT]})
        first, last = usage_range(request.query_params)
        return Response(UsageOutput({"days": usage_days(first=first, last=last)}).data)
