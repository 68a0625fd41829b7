"""Visitor chat sessions: one row per `POST /auth/email`, identified by the token's `jti`."""

import secrets

from django.db import models
from django.utils import timezone


def new_session_id() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 random bits


class ChatSession(models.Model):
    class Mode(models.TextChoices):
        AI = "ai", "Model answers"
        HUMAN = "human", "Staff answer"

    class EndReason(models.TextChoices):
        LOGOUT = "logout", "Visitor logged out"
        STAFF = "staff", "Ended by staff"
        EXPIRED = "expired", "Expired"

    id = models.CharField(primary_key=True, max_length=32, default=new_session_id, editable=False)
    # The address is kept so staff can follow up, which is why it is asked for; it is erased with
    # the session. Look-ups go through the keyed hash, so no index holds the address itself.
    email = models.EmailField(max_length=254)
    email_hash = models.CharField(max_length=64, db_index=True)
    browser_hash = models.CharField(max_length=64)
    ip_address = models.GenericIPAddressField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_activity_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    # Visitor messages stored so far; incremented with a conditional UPDATE so the cap is exact.
    user_message_count = models.PositiveIntegerField(default=0)
    # Human handoff: who answers, since when, and the last staff message (for the idle hand-back).
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.AI)
    mode_changed_at = models.DateTimeField(null=True, blank=True)
    last_staff_message_at = models.DateTimeField(null=True, blank=True)
    human_requested_at = models.DateTimeField(null=True, blank=True)
    # The sequence number of the session's newest conversation event. Taken with an UPDATE in the
    # transaction that writes the event, so the row lock orders a session's events as they commit.
    event_seq = models.PositiveBigIntegerField(default=0)
    # What its replies used and cost, added in each reply's transaction (SESSION_TOKEN_BUDGET reads them).
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["is_active", "expires_at"], name="session_active_expiry"),
            models.Index(fields=["ended_at"], name="session_ended_at"),
            models.Index(fields=["-created_at"], name="session_created_desc"),
            models.Index(fields=["ip_address"], name="session_ip"),
            models.Index(fields=["last_staff_message_at"], name="session_human_idle", condition=models.Q(mode="human")),
        ]

    def __str__(self) -> str:
        return f"Session {self.id[:8]}"

    @property
    def tokens_used(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
