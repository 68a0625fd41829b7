"""Handoff in the Discord thread: what is posted there, with the real discord.py client and the REST double."""

import pytest

from chat_app.handoff import human_request, staff_message_post
from chat_app.models import ChatMessage
from notifications_app import formatting
from notifications_app.models import Delivery
from notifications_app.tests.conftest import drain
from sessions_app.models import ChatSession
from sessions_app.tests.factories import session_make

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_staff_reply_from_the_api_is_posted_in_the_thread_as_staff(double, worker):
    session = session_make().session
    staff_message_post(session_id=session.pk, content="Ana here *really*", author="Ana")

    drain(worker)

    (posts,) = double.thread_posts().values()
    embed = posts[0]["embeds"][0]
    assert (embed["title"], embed["description"]) == ("Staff · Ana", r"Ana here \*really\*")


def test_a_message_relayed_from_the_thread_is_not_posted_back(double, worker, discord_on):
    session = session_make().session
    staff_message_post(session_id=session.pk, content="typed in Discord", author="Ana", discord_message_id=77)

    assert not Delivery.objects.filter(kind=Delivery.Kind.MESSAGE_POSTED).exists()


def test_in_human_mode_the_visitor_reaches_the_thread_even_with_message_posts_off(discord_on):
    discord_on.DISCORD_NOTIFY_MESSAGES = False
    session = session_make().session
    ChatMessage.objects.create(session=session, kind="user", content="to the bot")
    ChatSession.objects.filter(pk=session.pk).update(mode="human")
    ChatMessage.objects.create(session=session, kind="user", content="to staff", to_staff=True)

    posted = Delivery.objects.filter(kind=Delivery.Kind.MESSAGE_POSTED).values_list("message__content", flat=True)
    assert list(posted) == ["to staff"]


@pytest.mark.parametrize(("role_id", "mention"), [(0, None), (123456789012345678, "<@&123456789012345678> ")])
def test_asking_for_a_person_pings_the_thread_mentioning_the_staff_role(double, worker, discord_on, role_id, mention):
    discord_on.DISCORD_STAFF_ROLE_ID = role_id
    session = session_make().session
    human_request(session=session)

    drain(worker)

    (posts,) = double.thread_posts().values()
    assert posts[0]["content"] == formatting.human_request_text(role_id=role_id)
    assert posts[0]["content"].startswith(mention) if mention else not posts[0]["content"].startswith("<@&")
    expected_roles = [role_id] if role_id else []  # discord.py sends role ids as numbers
    assert posts[0]["allowed_mentions"].get("roles", []) == expected_roles
    assert posts[0]["allowed_mentions"]["parse"] == []


def test_the_worker_hands_idle_sessions_back(double, worker, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.HANDOFF_IDLE_SECONDS = 60
    session = session_make().session
    staff_message_post(session_id=session.pk, content="Ana here", author="Ana")
    ChatSession.objects.filter(pk=session.pk).update(last_staff_message_at=timezone.now() - timedelta(seconds=90))

    drain(worker)

    assert ChatSession.objects.get(pk=session.pk).mode == "ai"
