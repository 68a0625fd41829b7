"""What gets queued, and when: in the writer's transaction, only when Discord is on."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_guid import clear_guid, set_guid

from chat_app.models import ChatMessage
from notifications_app import services
from notifications_app.models import Delivery, DiscordThread
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_delete, sessions_cleanup
from sessions_app.tests.factories import ended_session_make, exchange_make, session_make

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


def kinds() -> list[str]:
    return list(Delivery.objects.order_by("id").values_list("kind", flat=True))


def thread_for(session: ChatSession, thread_id: int = 555) -> DiscordThread:
    return DiscordThread.objects.create(
        session=session, thread_id=thread_id, channel_id=1, opening_message_id=thread_id
    )


def test_session_start_queues_session_opened(discord_on):
    session = session_make().session

    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.session_id, delivery.status) == ("session_opened", session.pk, "pending")


def test_messages_queue_message_posted_in_order(discord_on):
    session = session_make().session
    message, reply = exchange_make(session=session)

    posted = Delivery.objects.filter(kind="message_posted").order_by("id")
    assert [d.message_id for d in posted] == [message.pk, reply.pk]
    assert all(d.session_id == session.pk for d in posted)


def test_enqueue_rolls_back_with_the_message(discord_on):
    session = session_make().session

    with pytest.raises(Boom), transaction.atomic():
        ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content="lost")
        assert Delivery.objects.filter(kind="message_posted").exists()  # queued in the same transaction
        raise Boom

    assert kinds() == ["session_opened"]


def test_enqueue_wakes_worker_only_after_commit(discord_on, django_capture_on_commit_callbacks, monkeypatch):
    woken = []
    monkeypatch.setattr("notifications_app.receivers.delivery_worker_wake", lambda: woken.append(1))

    with django_capture_on_commit_callbacks() as callbacks:
        session_make()
        assert woken == []

    assert len(callbacks) == 1
    for callback in callbacks:
        callback()
    assert woken == [1]


def test_enqueue_after_rollback_wakes_nobody(discord_on, django_capture_on_commit_callbacks):
    session = session_make().session

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(Boom), transaction.atomic():
        ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content="lost")
        raise Boom

    assert callbacks == []


def test_nothing_queued_when_discord_disabled(settings):
    settings.DISCORD_ENABLED = False
    session = session_make().session
    exchange_make(session=session)
    thread_for(session)

    chat_session_delete(session=session)

    assert Delivery.objects.count() == 0


def test_notify_messages_off_queues_only_session_opened(discord_on):
    discord_on.DISCORD_NOTIFY_MESSAGES = False
    exchange_make(session=session_make().session)

    assert kinds() == ["session_opened"]


def test_enqueue_copies_request_id(discord_on):
    set_guid("req-1234")
    try:
        session_make()
    finally:
        clear_guid()

    assert Delivery.objects.get().request_id == "req-1234"


def test_enqueue_is_one_insert(discord_on, django_assert_num_queries):
    session = session_make().session

    with django_assert_num_queries(1):
        services.delivery_enqueue(kind=Delivery.Kind.SESSION_OPENED, session_id=session.pk)


def test_session_delete_removes_pending_deliveries_and_queues_thread_deletion(discord_on):
    session = session_make().session
    exchange_make(session=session)
    thread_for(session, thread_id=777)

    chat_session_delete(session=session)

    delivery = Delivery.objects.get()
    assert delivery.kind == "thread_deleted"
    assert delivery.session_id is None
    assert delivery.payload == {"thread_id": "777", "channel_id": "1", "message_id": "777"}
    assert not DiscordThread.objects.exists()


def test_session_delete_without_thread_queues_nothing(discord_on):
    session = session_make().session
    exchange_make(session=session)

    chat_session_delete(session=session)

    assert Delivery.objects.count() == 0


def test_cleanup_queues_thread_deletion_for_each_erased_session(discord_on):
    long_ago = timezone.now() - timedelta(days=90)
    for n in range(3):
        thread_for(ended_session_make(ended_at=long_ago, email=f"v{n}@example.com"), thread_id=900 + n)
    kept = session_make(email="kept@example.com").session

    sessions_cleanup(older_than_days=30)

    deleted = Delivery.objects.filter(kind="thread_deleted")
    assert sorted(d.payload["thread_id"] for d in deleted) == ["900", "901", "902"]
    assert list(Delivery.objects.exclude(kind="thread_deleted").values_list("session_id", flat=True)) == [kept.pk]
