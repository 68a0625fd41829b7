"""The staff console for deliveries: a cheap read-only list, and failed deliveries retried from it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications_app.models import Delivery
from sessions_app.tests.factories import exchange_make, session_make

pytestmark = pytest.mark.django_db

DELIVERIES = "/admin/notifications_app/delivery/"


@pytest.fixture
def staff(client, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_superuser(username="root", password="a-strong-admin-password-1")
    client.force_login(user)
    return client


def queued(sessions: int) -> None:
    for n in range(sessions):
        exchange_make(session=session_make(email=f"v{n}@example.com").session)


def list_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_delivery_admin_list_queries_do_not_grow_with_rows(staff, discord_on):
    queued(1)
    few = list_queries(staff, DELIVERIES)
    queued(10)

    assert list_queries(staff, DELIVERIES) == few


def test_delivery_admin_filters_by_status_and_kind(staff, discord_on):
    queued(2)
    Delivery.objects.filter(kind="session_opened").update(status="failed")

    response = staff.get(DELIVERIES, {"status__exact": "failed", "kind__exact": "session_opened"})

    assert {d.kind for d in response.context["cl"].result_list} == {"session_opened"}
    assert len(response.context["cl"].result_list) == 2


def test_delivery_admin_is_read_only(staff, discord_on):
    queued(1)
    delivery = Delivery.objects.first()

    page = staff.get(f"{DELIVERIES}{delivery.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert staff.get(f"{DELIVERIES}add/").status_code == 403
    assert staff.post(f"{DELIVERIES}{delivery.pk}/delete/", {"post": "yes"}).status_code == 403


def test_delivery_admin_retry_action_requeues_failed(staff, discord_on):
    queued(1)
    failed = Delivery.objects.get(kind="session_opened")
    Delivery.objects.filter(pk=failed.pk).update(status="failed", attempts=8, last_error="HTTP 403 (code 50001)")
    done = Delivery.objects.filter(kind="message_posted").first()
    Delivery.objects.filter(pk=done.pk).update(status="done")

    response = staff.post(DELIVERIES, {"action": "retry_failed", "_selected_action": [failed.pk, done.pk]}, follow=True)

    assert response.status_code == 200
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)
    assert Delivery.objects.get(pk=done.pk).status == "done"
    notes = [str(m) for m in response.context["messages"]]
    assert "Queued again: 1 failed delivery." in notes


def test_discord_thread_admin_lists_threads(staff, discord_on):
    from notifications_app.models import DiscordThread

    session = session_make().session
    thread = DiscordThread.objects.create(session=session, thread_id=42, channel_id=1, opening_message_id=42)

    response = staff.get("/admin/notifications_app/discordthread/")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [thread]
    assert str(thread) == "Discord thread 42"
