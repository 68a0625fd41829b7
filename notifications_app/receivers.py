"""Receivers that queue Discord deliveries in the writer's own transaction; no network here."""

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from chat_app.models import ChatMessage
from chat_app.signals import human_requested
from notifications_app.models import Delivery, DiscordThread
from notifications_app.services import delivery_enqueue, delivery_worker_wake, thread_deletion_enqueue
from sessions_app.models import ChatSession


@receiver(post_save, sender=ChatSession, dispatch_uid="discord_session_opened")
def session_opened_enqueue(sender, instance: ChatSession, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw and settings.DISCORD_ENABLED:
        delivery_enqueue(kind=Delivery.Kind.SESSION_OPENED, session_id=instance.pk)
        transaction.on_commit(delivery_worker_wake, robust=True)


def _posts_to_thread(message: ChatMessage) -> bool:
    """Staff replies from the admin or the API always (not those relayed from the thread itself); the
    visitor's messages in human mode always, since staff answer them there; the rest as configured."""
    if message.kind == ChatMessage.Kind.STAFF:
        return message.discord_message_id is None
    return settings.DISCORD_NOTIFY_MESSAGES or message.to_staff


@receiver(post_save, sender=ChatMessage, dispatch_uid="discord_message_posted")
def message_posted_enqueue(sender, instance: ChatMessage, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw and settings.DISCORD_ENABLED and _posts_to_thread(instance):
        delivery_enqueue(kind=Delivery.Kind.MESSAGE_POSTED, session_id=instance.session_id, message_id=instance.pk)
        transaction.on_commit(delivery_worker_wake, robust=True)


@receiver(human_requested, dispatch_uid="discord_human_requested")
def human_requested_enqueue(sender, session: ChatSession, **kwargs) -> None:
    if settings.DISCORD_ENABLED:
        delivery_enqueue(kind=Delivery.Kind.HUMAN_REQUESTED, session_id=session.pk)
        transaction.on_commit(delivery_worker_wake, robust=True)


@receiver(pre_delete, sender=DiscordThread, dispatch_uid="discord_thread_deleted")
def thread_deleted_enqueue(sender, instance: DiscordThread, **kwargs) -> None:
    """Reached through the cascade when a session is erased, so the thread goes from Discord too.

    Listening on the thread rather than on the session means a batch delete of sessions loads their
    threads in one query, and sessions without a thread cost nothing.
    """
    if settings.DISCORD_ENABLED:
        thread_deletion_enqueue(thread=instance)
