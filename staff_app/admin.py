"""The staff console: sessions (read and answer the conversation, end or erase one), messages, Discord deliveries.

Read-only but for what a service does: replying to a visitor and handing the session back to the model,
ending and erasing sessions, retrying failed deliveries.
"""

import re

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from chat_app.handoff import SessionOver, StaffMessageRejected, session_release, staff_message_post, staff_text_clean
from chat_app.models import ChatMessage
from chatapi.admin import ConsoleModelAdmin
from notifications_app.models import Delivery, DiscordThread
from notifications_app.services import deliveries_retry
from sessions_app.hashing import email_hash
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_delete, chat_session_end
from staff_app.api import staff_display_name
from staff_app.selectors import conversation_for_session

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


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


class ModeFilter(admin.SimpleListFilter):
    title = "who answers"
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return ChatSession.Mode.choices

    def queryset(self, request, queryset):
        if self.value() in ChatSession.Mode.values:  # anything else is ignored: the whole list
            return queryset.filter(mode=self.value())
        return queryset


REPLY_SENT = "Sent to the visitor; staff answer this session until it is handed back to the model."
RELEASED = "Handed back to the model: it answers the visitor's next message."
NOT_HUMAN = "The model already answers this session."

LIFETIME_FIELDS = ["created_at", "last_activity_at", "expires_at", "user_message_count", "is_active", "ended_at",
                   "end_reason"]  # fmt: skip


@admin.register(ChatSession)
class ChatSessionAdmin(ConsoleModelAdmin):
    list_display = ["short_id", "email", "ip_address", "created_at", "last_activity_at", "user_message_count",
                    "has_flagged", "mode", "tokens", "cost_usd", "is_active", "is_expired"]  # fmt: skip
    list_filter = ["is_active", ExpiredFilter, FlaggedFilter, ModeFilter]
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
        ("Who answers", {"fields": ["mode", "mode_changed_at", "last_staff_message_at", "human_requested_at"]}),
        ("Model usage", {"fields": ["prompt_tokens", "completion_tokens", "cost_usd"]}),
        ("Keyed hashes", {"fields": ["email_hash", "browser_hash"], "classes": ["collapse"]}),
    ]
    actions = ["end_sessions"]

    class Media:
        css = {"all": ["staff_app/console.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        flagged = Exists(ChatMessage.objects.filter(session=OuterRef("pk"), flagged=True))
        tokens = F("prompt_tokens") + F("completion_tokens")
        return super().get_queryset(request).annotate(has_flagged_messages=flagged, tokens_used_total=tokens)

    @admin.display(description="session")
    def short_id(self, session: ChatSession) -> str:
        return session.pk[:12]

    @admin.display(description="tokens", ordering="tokens_used_total")
    def tokens(self, session: ChatSession) -> int:
        return session.tokens_used_total

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
            can_act = self.has_change_permission(request)
            context["conversation"] = conversation_for_session(session=obj)
            context["can_end_session"] = obj.is_active and can_act
            context["can_reply"] = can_act and obj.is_active and not obj.is_expired
            context["can_release"] = can_act and obj.mode == ChatSession.Mode.HUMAN
            context["reply_author"] = staff_display_name(request.user)
            context["reply_max_length"] = settings.MAX_MESSAGE_LENGTH
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_urls(self):
        def action(view, name: str):
            return path(
                f"<path:object_id>/{name}/", self.admin_site.admin_view(view), name=f"sessions_app_chatsession_{name}"
            )

        urls = [action(self.end_view, "end"), action(self.reply_view, "reply"), action(self.release_view, "release")]
        return [*urls, *super().get_urls()]

    def session_to_act_on(self, request: HttpRequest, object_id: str) -> ChatSession:
        """The session a console action names; 403 without the right to change sessions, 404 for no session."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        session = self.get_object(request, unquote(object_id))
        if session is None:
            raise Http404
        return session

    def reply_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Send a staff reply as the staff API does: to the visitor, into the Discord thread once, human mode.

        A refusal (blank, too long, the session over) is an error message on the session's page.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.session_to_act_on(request, object_id)
        # A form sends a textarea's line breaks as CRLF; as typed (and as the API receives it) they are LF.
        raw = request.POST.get("message", "").replace("\r\n", "\n")
        try:
            text = staff_text_clean(raw)
            staff_message_post(session_id=session.pk, content=text, author=staff_display_name(request.user))
        except (StaffMessageRejected, SessionOver) as refused:
            self.message_user(request, refused.detail, messages.ERROR)
        else:
            self.message_user(request, REPLY_SENT, messages.SUCCESS)
        return HttpResponseRedirect(self.change_url(session))

    def release_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Hand the session back to the model, as the staff API's release does."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.session_to_act_on(request, object_id)
        if session_release(session_id=session.pk, author=staff_display_name(request.user)):
            self.message_user(request, RELEASED, messages.SUCCESS)
        else:
            self.message_user(request, NOT_HUMAN, messages.INFO)
        return HttpResponseRedirect(self.change_url(session))

    def change_url(self, session: ChatSession) -> str:
        return reverse("admin:sessions_app_chatsession_change", args=[quote(session.pk)])

    def end_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask, then end one session; its token is refused from the visitor's next request on."""
        session = self.session_to_act_on(request, object_id)
        change_url = self.change_url(session)
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


class ViewOnlyAdmin(ConsoleModelAdmin):
    """Rows staff read but never add, change or delete one by one: they go with their session."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ChatMessage)
class ChatMessageAdmin(ViewOnlyAdmin):
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
class DiscordThreadAdmin(ViewOnlyAdmin):
    list_display = ["session", "thread_id", "channel_id", "created_at"]
    list_select_related = ["session"]
    search_fields = ["=session__id", "=thread_id"]
    ordering = ["-created_at"]
    readonly_fields = [field.name for field in DiscordThread._meta.fields]
