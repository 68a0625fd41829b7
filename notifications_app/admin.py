"""Staff console for Discord deliveries: read-only, with failed ones retryable through the service."""

from django.contrib import admin, messages
from django.http import HttpRequest

from chatapi.admin import ConsoleModelAdmin
from notifications_app.models import Delivery, DiscordThread
from notifications_app.services import deliveries_retry


@admin.register(Delivery)
class DeliveryAdmin(ConsoleModelAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "session",
        "message",
        "attempts",
        "created_at",
        "delivered_at",
        "last_error",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["session", "message"]
    search_fields = ["=session__id", "=request_id"]
    ordering = ["-id"]
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [field.name for field in Delivery._meta.fields]
    actions = ["retry_failed"]

    @admin.action(description="Retry selected failed deliveries", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset) -> None:
        retried = deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - retried
        plural = "y" if retried == 1 else "ies"
        self.message_user(request, f"Queued again: {retried} failed deliver{plural}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Left as they are: {skipped} not failed.", messages.WARNING)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The list may act (retry); a single delivery is only ever viewed.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # deliveries go with their session


@admin.register(DiscordThread)
class DiscordThreadAdmin(ConsoleModelAdmin):
    list_display = ["session", "thread_id", "channel_id", "created_at"]
    list_select_related = ["session"]
    search_fields = ["=session__id", "=thread_id"]
    ordering = ["-created_at"]
    readonly_fields = [field.name for field in DiscordThread._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
