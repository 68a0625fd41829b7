"""The conversation: visitors' messages, the assistant's replies (linked one to one), staff messages,
and the events a visitor's widget reads them by (`/chat/events`)."""

from django.db import models
from django.utils import timezone

from sessions_app.models import ChatSession


class ChatMessage(models.Model):
    class Kind(models.TextChoices):
        USER = "user", "Visitor"
        ASSISTANT = "assistant", "Assistant"
        STAFF = "staff", "Staff"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    content = models.TextField(blank=True)
    flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # A reply points at the visitor message it answers. DO_NOTHING: both always go in the same
    # session-wide DELETE, which lets Django fast-delete a session's messages in one statement.
    in_reply_to = models.OneToOneField("self", on_delete=models.DO_NOTHING, null=True, blank=True, related_name="reply")
    # NULL, not "", for "no key": the unique constraint must not join every keyless message.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    # Assistant replies only: which model answered and what it cost.
    model = models.CharField(max_length=128, blank=True)
    fallback = models.BooleanField(default=False)
    # A streamed reply cut short (the visitor left, or the model broke off): the text so far.
    partial = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    # The provider sent no usage: the token counts were counted here, with litellm's token counter.
    usage_estimated = models.BooleanField(default=False)
    # Visitor messages sent while staff answered (human mode): no model reply is coming.
    to_staff = models.BooleanField(default=False)
    # Staff messages only: the person's display name, and the Discord message it was relayed from
    # (unique, so several listeners relaying the same Discord message store it once).
    author = models.CharField(max_length=100, blank=True)
    discord_message_id = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # withdrawn in Discord; kept for staff

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["session", "kind", "id"], name="message_session_kind_id"),
            models.Index(fields=["session", "id"], name="message_session_id"),
            models.Index(fields=["flagged"], name="message_flagged", condition=models.Q(flagged=True)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="message_unique_idempotency_key",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["user", "staff"], in_reply_to__isnull=True) | models.Q(kind="assistant"),
                name="message_only_replies_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} message {self.pk}"


class ChatEvent(models.Model):
    """One entry of a session's conversation as its visitor sees it, numbered per session.

    `seq` comes from the session row (ChatSession.event_seq) in the writing transaction, so events
    become visible in seq order and a cursor never skips one that commits later. A global id would
    not do: PostgreSQL may commit a smaller id after a larger one is read.
    """

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        EDIT = "edit", "Edit"
        DELETE = "delete", "Delete"
        MODE = "mode", "Mode"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # DO_NOTHING: events and messages go in the same session-wide DELETE (see in_reply_to).
    message = models.ForeignKey(ChatMessage, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="events")
    data = models.JSONField(default=dict, blank=True)  # edit: content; mode: mode and author
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="event_unique_session_seq")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} event {self.seq}"
