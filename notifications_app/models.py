"""Discord deliveries: a durable, per-session ordered queue, and the thread each session posts into.

Why a table of our own rather than a task library: the deliveries of one session must arrive in
order (the thread before its first post, each message after the one before), be retried with
backoff, survive restarts, and be claimed by any number of workers without a double post. No
well-kept Django task library gives per-key ordering with claim semantics: django-tasks' database
backend claims any ready task by priority and time and has no automatic retries, Celery and RQ
need a broker and order nothing per key, and Procrastinate (which has per-lock ordering) runs on
PostgreSQL only, while CI also runs on SQLite. A table with one claim query (`SELECT ... FOR
UPDATE SKIP LOCKED` plus a NOT EXISTS on earlier open deliveries of the same session) does all of
it in the database we already have.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from chat_app.models import ChatMessage
from sessions_app.models import ChatSession


class Delivery(models.Model):
    class Kind(models.TextChoices):
        SESSION_OPENED = "session_opened", "Session opened"
        MESSAGE_POSTED = "message_posted", "Message posted"
        THREAD_DELETED = "thread_deleted", "Thread deleted"
        HUMAN_REQUESTED = "human_requested", "Person asked for"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    OPEN_STATUSES = (Status.PENDING, Status.IN_PROGRESS)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # CASCADE: erasing a session erases what is still queued about it. A thread deletion outlives
    # its session, so it carries no session and names the thread in `payload`.
    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, null=True, blank=True, related_name="discord_deliveries"
    )
    message = models.ForeignKey(
        ChatMessage, on_delete=models.CASCADE, null=True, blank=True, related_name="discord_deliveries"
    )
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    last_error = models.CharField(max_length=200, blank=True)  # status and code only, never message text
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The claim: due pending work in id order, and stale claims of dead workers.
            models.Index(fields=["next_attempt_at", "id"], name="delivery_pending_due", condition=Q(status="pending")),
            models.Index(fields=["claimed_at"], name="delivery_claim_lease", condition=Q(status="in_progress")),
            # The per-session order check: earlier open deliveries of the same session.
            models.Index(
                fields=["session", "id"],
                name="delivery_session_open",
                condition=Q(status__in=["pending", "in_progress"]),
            ),
            models.Index(fields=["status", "kind"], name="delivery_status_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="message_posted") | Q(message__isnull=False, session__isnull=False),
                name="delivery_message_has_message",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class DiscordThread(models.Model):
    """The Discord thread of a session: opened by its first delivery, deleted with the session."""

    session = models.OneToOneField(
        ChatSession, on_delete=models.CASCADE, primary_key=True, related_name="discord_thread"
    )
    thread_id = models.PositiveBigIntegerField(db_index=True)  # the listener's look-up: is this thread ours?
    channel_id = models.PositiveBigIntegerField()
    opening_message_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Discord thread {self.thread_id}"


class ListenerHeartbeat(models.Model):
    """When each `discord_gateway` listener was last heard from; `/health` reads it."""

    name = models.CharField(max_length=100, unique=True)  # host:pid of the listener
    heard_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Listener {self.name}"
