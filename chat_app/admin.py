"""Staff console for single messages: search them across sessions, read-only."""

from django.contrib import admin
from django.http import HttpRequest

from chat_app.models import ChatMessage


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "kind", "excerpt", "flagged", "fallback", "model", "created_at"]
    list_filter = ["kind", "flagged", "fallback"]
    search_fields = ["content", "=session__id"]
    list_select_related = ["session"]
    ordering = ["-id"]
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [field.name for field in ChatMessage._meta.fields]

    @admin.display(description="text")
    def excerpt(self, message: ChatMessage) -> str:
        return message.content if len(message.content) <= 80 else message.content[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a conversation is erased whole, from its session
