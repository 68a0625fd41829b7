"""Session writes: start, end, delete, and the retention clean-up."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from chat_app.models import ChatMessage
from sessions_app.hashing import browser_hash, email_hash
from sessions_app.models import ChatSession
from sessions_app.services import (
    CleanupReport,
    chat_session_delete,
    chat_session_end,
    chat_session_start,
    sessions_cleanup,
)
from sessions_app.tests.factories import BROWSER_UA, ended_session_make, exchange_make, session_make
from sessions_app.tokens import SessionToken

pytestmark = pytest.mark.django_db

RETENTION = 30


def test_chat_session_start_stores_session_and_signs_token():
    started = chat_session_start(email="Someone@Example.com", user_agent=BROWSER_UA, ip_address="2001:db8::1")

    session = ChatSession.objects.get(pk=started.session.pk)
    assert session.is_active
    assert session.email_hash == email_hash("someone@example.com")
    assert session.browser_hash == browser_hash(BROWSER_UA)
    assert session.ip_address == "2001:db8::1"
    assert session.expires_at - session.created_at == timedelta(hours=settings.JWT_EXPIRE_HOURS)
    assert started.expires_in == int(settings.JWT_EXPIRE_HOURS * 3600)
    assert SessionToken(started.access_token)["jti"] == session.pk


def test_chat_session_start_lifetime_follows_setting(settings):
    settings.JWT_EXPIRE_HOURS = 0.5

    started = chat_session_start(email="a@b.co", user_agent=BROWSER_UA, ip_address="127.0.0.1")

    assert started.expires_in == 1800
    assert started.session.expires_at - started.session.created_at == timedelta(minutes=30)


def test_chat_session_start_ids_are_unique_and_unguessable():
    ids = {chat_session_start(email="a@b.co", user_agent=BROWSER_UA, ip_address="127.0.0.1").session.pk
           for _ in range(5)}  # fmt: skip

    assert len(ids) == 5
    assert all(len(session_id) >= 32 for session_id in ids)


def test_chat_session_end_marks_ended():
    session = session_make().session

    returned = chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)

    stored = ChatSession.objects.get(pk=session.pk)
    assert returned is session
    assert not stored.is_active
    assert stored.end_reason == ChatSession.EndReason.STAFF
    assert stored.ended_at is not None
    assert (session.is_active, session.end_reason, session.ended_at) == (False, "staff", stored.ended_at)


def test_chat_session_end_twice_is_a_noop():
    session = session_make().session
    chat_session_end(session=session, reason=ChatSession.EndReason.LOGOUT)
    first = ChatSession.objects.get(pk=session.pk)

    chat_session_end(session=ChatSession.objects.get(pk=session.pk), reason=ChatSession.EndReason.STAFF)

    again = ChatSession.objects.get(pk=session.pk)
    assert (again.ended_at, again.end_reason) == (first.ended_at, ChatSession.EndReason.LOGOUT)


def test_chat_session_delete_removes_session_and_messages_only():
    doomed = session_make().session
    kept = session_make(email="other@example.com").session
    for _ in range(3):
        exchange_make(session=doomed)
    exchange_make(session=kept)

    chat_session_delete(session=doomed)

    assert not ChatSession.objects.filter(pk=doomed.pk).exists()
    assert not ChatMessage.objects.filter(session_id=doomed.pk).exists()
    assert ChatMessage.objects.filter(session=kept).count() == 2


@dataclass
class World:
    live: ChatSession
    expired_recent: ChatSession
    expired_old: ChatSession
    ended_recent: ChatSession
    ended_old: ChatSession


def world_make() -> World:
    """One session of each kind the clean-up tells apart, each with one exchange."""
    now = timezone.now()
    world = World(
        live=session_make().session,
        expired_recent=session_make(expires_at=now - timedelta(days=1)).session,
        expired_old=session_make(
            created_at=now - timedelta(days=RETENTION + 11), expires_at=now - timedelta(days=RETENTION + 10)
        ).session,
        ended_recent=ended_session_make(ended_at=now - timedelta(days=RETENTION - 1)),
        ended_old=ended_session_make(ended_at=now - timedelta(days=RETENTION + 1)),
    )
    for session in vars(world).values():
        exchange_make(session=session)
    return world


def snapshot() -> list[tuple]:
    sessions = ChatSession.objects.order_by("pk").values_list("pk", "is_active", "ended_at", "end_reason")
    messages = ChatMessage.objects.order_by("pk").values_list("pk", "session_id")
    return [*sessions, *messages]


def test_sessions_cleanup_marks_expired_and_deletes_old():
    world = world_make()

    report = sessions_cleanup(older_than_days=RETENTION)

    assert report == CleanupReport(expired_marked=2, sessions_deleted=2, messages_deleted=4)
    assert set(ChatSession.objects.values_list("pk", flat=True)) == {
        world.live.pk,
        world.expired_recent.pk,
        world.ended_recent.pk,
    }
    assert not ChatMessage.objects.filter(session_id__in=[world.expired_old.pk, world.ended_old.pk]).exists()
    assert ChatMessage.objects.count() == 6
    expired = ChatSession.objects.get(pk=world.expired_recent.pk)
    assert not expired.is_active
    assert expired.ended_at == world.expired_recent.expires_at
    assert expired.end_reason == ChatSession.EndReason.EXPIRED
    assert ChatSession.objects.get(pk=world.live.pk).is_active
    assert ChatSession.objects.get(pk=world.ended_recent.pk).end_reason == ChatSession.EndReason.LOGOUT


def test_sessions_cleanup_zero_days_deletes_every_ended_session():
    world = world_make()

    report = sessions_cleanup(older_than_days=0)

    assert report == CleanupReport(expired_marked=2, sessions_deleted=4, messages_deleted=8)
    assert list(ChatSession.objects.values_list("pk", flat=True)) == [world.live.pk]


def test_sessions_cleanup_dry_run_reports_the_same_and_changes_nothing():
    world_make()
    before = snapshot()

    dry = sessions_cleanup(older_than_days=RETENTION, dry_run=True)

    assert snapshot() == before
    assert dry == sessions_cleanup(older_than_days=RETENTION)
    assert snapshot() != before


def test_sessions_cleanup_works_across_batches():
    now = timezone.now()
    for _ in range(5):
        exchange_make(session=session_make(expires_at=now - timedelta(days=RETENTION + 2)).session)
        exchange_make(session=ended_session_make(ended_at=now - timedelta(days=RETENTION + 3)))
        exchange_make(session=session_make(expires_at=now - timedelta(hours=1)).session)
    live = session_make().session

    dry = sessions_cleanup(older_than_days=RETENTION, dry_run=True, batch_size=2)
    report = sessions_cleanup(older_than_days=RETENTION, batch_size=2)

    assert report == dry == CleanupReport(expired_marked=10, sessions_deleted=10, messages_deleted=20)
    assert ChatSession.objects.count() == 6
    assert ChatSession.objects.filter(is_active=True).get() == live
    assert ChatSession.objects.filter(end_reason=ChatSession.EndReason.EXPIRED).count() == 5


def test_sessions_cleanup_twice_is_idempotent():
    world_make()
    sessions_cleanup(older_than_days=RETENTION)
    after_first = snapshot()

    second = sessions_cleanup(older_than_days=RETENTION)

    assert second == CleanupReport(expired_marked=0, sessions_deleted=0, messages_deleted=0)
    assert snapshot() == after_first
    assert sessions_cleanup(older_than_days=RETENTION, dry_run=True) == second


def test_sessions_cleanup_nothing_to_do_on_empty_table():
    assert sessions_cleanup(older_than_days=RETENTION) == CleanupReport(0, 0, 0)
