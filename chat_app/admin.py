"""Staff console for single messages: search them across sessions, read-only."""

import re

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from chat_app.models import ChatMessage
from chatapi.admin import ConsoleModelAdmin

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


@admin.register(ChatMessage)
class ChatMessageAdmin(ConsoleModelAdmin):
    list_display = ["id", "session", "kind", "excerpt", "flagged", "fallback", "model", "created_at"]
    list_filter = ["kind", "flagged", "fallback"]
    search_fields = ["content"]
    list_select_related = ["session"]
    ordering = ["-id"]
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [field.name for field in ChatMessage._meta.fields]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """A session id finds that session's messages through the index, not a scan of every text."""
        if SESSION_ID.match(search_term.strip()):
            return queryset.filter(session_id=search_term.strip()), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="text")
    def excerpt(self, message: ChatMessage) -> str:
        return message.content if len(message.content) <= 80 else message.content[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a conversation is erased whole, from its session
