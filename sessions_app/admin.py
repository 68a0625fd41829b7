"""Staff console for visitor sessions: read the conversation, end or erase the session."""

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from chat_app.models import ChatMessage
from sessions_app.hashing import email_hash
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_delete, chat_session_end


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", "Expired"), ("no", "Not expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "no":
            return queryset.filter(expires_at__gt=now)
        return queryset


class FlaggedFilter(admin.SimpleListFilter):
    title = "flagged messages"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", "Has flagged messages"), ("no", "No flagged messages")]

    def queryset(self, request, queryset):
        flagged = Exists(ChatMessage.objects.filter(session=OuterRef("pk"), flagged=True))
        if self.value() == "yes":
            return queryset.filter(flagged)
        if self.value() == "no":
            return queryset.filter(~flagged)
        return queryset


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = ["created_at", "kind", "content", "flagged", "fallback", "model", "latency_ms"]
    readonly_fields = fields
    ordering = ["id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ["short_id", "email", "ip_address", "created_at", "last_activity_at", "user_message_count",
                    "is_active", "is_expired"]  # fmt: skip
    list_filter = ["is_active", ExpiredFilter, FlaggedFilter]
    search_fields = ["=id", "email", "ip_address"]
    ordering = ["-created_at"]
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in ChatSession._meta.fields]
    inlines = [ChatMessageInline]
    actions = ["end_sessions"]

    @admin.display(description="session")
    def short_id(self, session: ChatSession) -> str:
        return session.pk[:12]

    @admin.display(boolean=True, description="expired")
    def is_expired(self, session: ChatSession) -> bool:
        return session.is_expired

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Also find sessions by an exact address through its keyed hash (uses the index)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if "@" in search_term:
            results |= queryset.filter(email_hash=email_hash(search_term))
        return results, may_have_duplicates

    @admin.action(description="End the selected sessions (their tokens stop working)", permissions=["change"])
    def end_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        live = list(queryset.filter(is_active=True))
        for session in live:
            chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)
        self.message_user(request, f"Ended {len(live)} session(s).", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_deleted_objects(self, objs, request: HttpRequest):
        """A session's messages go with it: erasing it must not need the right to delete single messages."""
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(ChatMessage._meta.verbose_name)
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: ChatSession) -> None:
        chat_session_delete(session=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for session in queryset:
            chat_session_delete(session=session)
