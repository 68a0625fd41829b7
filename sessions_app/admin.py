"""Staff console for visitor sessions: read the conversation, end or erase the session."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from chat_app.models import ChatMessage
from chatapi.admin import ConsoleModelAdmin
from notifications_app.models import Delivery, DiscordThread
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


DELIVERY_LABELS = {
    Delivery.Status.PENDING: "queued",
    Delivery.Status.IN_PROGRESS: "sending",
    Delivery.Status.DONE: "delivered",
    Delivery.Status.FAILED: "failed",
}


@dataclass(frozen=True)
class DeliveryState:
    status: str
    label: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class Conversation:
    messages: list[ChatMessage]
    flagged_count: int
    discord_enabled: bool
    opening: DeliveryState | None
    thread: DiscordThread | None


def delivery_state(delivery: Delivery) -> DeliveryState:
    return DeliveryState(delivery.status, DELIVERY_LABELS[delivery.status], delivery.attempts, delivery.last_error)


def conversation_for_session(session: ChatSession) -> Conversation:
    """The session's messages in order, each with its Discord delivery state; three queries."""
    conversation = list(ChatMessage.objects.filter(session=session).order_by("id"))
    kinds = [Delivery.Kind.SESSION_OPENED, Delivery.Kind.MESSAGE_POSTED]
    deliveries = Delivery.objects.filter(session=session, kind__in=kinds).order_by("id")
    per_message: dict[int, DeliveryState] = {}
    opening = None
    for delivery in deliveries:  # the latest wins, so a retried delivery shows its newest state
        if delivery.message_id is None:
            opening = delivery_state(delivery)
        else:
            per_message[delivery.message_id] = delivery_state(delivery)
    for message in conversation:
        message.delivery = per_message.get(message.pk)
    return Conversation(
        messages=conversation,
        flagged_count=sum(message.flagged for message in conversation),
        discord_enabled=settings.DISCORD_ENABLED,
        opening=opening,
        thread=DiscordThread.objects.filter(session=session).first(),
    )


LIFETIME_FIELDS = ["created_at", "last_activity_at", "expires_at", "user_message_count", "is_active", "ended_at",
                   "end_reason"]  # fmt: skip


@admin.register(ChatSession)
class ChatSessionAdmin(ConsoleModelAdmin):
    list_display = ["short_id", "email", "ip_address", "created_at", "last_activity_at", "user_message_count",
                    "has_flagged", "is_active", "is_expired"]  # fmt: skip
    list_filter = ["is_active", ExpiredFilter, FlaggedFilter]
    search_fields = ["=id", "email", "ip_address"]
    search_help_text = "An email address, an IP address or a session id. Pick a day with the dates above."
    ordering = ["-created_at"]
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in ChatSession._meta.fields]
    fieldsets = [
        (None, {"fields": ["email", "ip_address", "id"]}),
        ("Lifetime", {"fields": LIFETIME_FIELDS}),
        ("Keyed hashes", {"fields": ["email_hash", "browser_hash"], "classes": ["collapse"]}),
    ]
    actions = ["end_sessions"]

    class Media:
        css = {"all": ["sessions_app/console.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        flagged = Exists(ChatMessage.objects.filter(session=OuterRef("pk"), flagged=True))
        return super().get_queryset(request).annotate(has_flagged_messages=flagged)

    @admin.display(description="session")
    def short_id(self, session: ChatSession) -> str:
        return session.pk[:12]

    @admin.display(boolean=True, description="flagged")
    def has_flagged(self, session: ChatSession) -> bool:
        return session.has_flagged_messages

    @admin.display(boolean=True, description="expired")
    def is_expired(self, session: ChatSession) -> bool:
        return session.is_expired

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Staff act on sessions (end, erase) but never edit one: a single session is only viewed.
        return obj is None and super().has_change_permission(request)

    def render_change_form(self, request: HttpRequest, context: dict, *args, obj=None, **kwargs):
        if obj is not None:
            context["conversation"] = conversation_for_session(obj)
            context["can_end_session"] = obj.is_active and self.has_change_permission(request)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_urls(self):
        end = self.admin_site.admin_view(self.end_view)
        return [path("<path:object_id>/end/", end, name="sessions_app_chatsession_end"), *super().get_urls()]

    def end_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask, then end one session; its token is refused from the visitor's next request on."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        session = self.get_object(request, unquote(object_id))
        if session is None:
            raise Http404
        change_url = reverse("admin:sessions_app_chatsession_change", args=[quote(session.pk)])
        if request.method == "POST":
            if session.is_active:
                chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)
                self.message_user(request, f"Ended {session}; the visitor is offered a new chat.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": session,
            "title": "End this chat session?",
            "change_url": change_url,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/sessions_app/chatsession/end_confirmation.html", context)

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
