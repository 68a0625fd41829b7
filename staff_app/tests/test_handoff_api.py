"""The staff side of the handoff: a reply from the API puts the session in human mode; release hands it back."""

import pytest
from rest_framework.test import APIClient

from chat_app.models import ChatEvent, ChatMessage
from conftest import BROWSER_UA
from notifications_app.models import Delivery
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end

pytestmark = pytest.mark.django_db
SESSIONS = "/api/v1/staff/sessions"


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_staff_reply_reaches_the_visitor_and_puts_the_session_in_human_mode(staff_client, staff_user, visitor, slash):
    staff_user.first_name, staff_user.last_name = "Ana", "Silva"
    staff_user.save()

    response = staff_client.post(
        f"{SESSIONS}/{visitor.session.pk}/messages{slash}", {"message": " On it <3 "}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"message_id", "role", "content", "author", "timestamp"}
    assert (body["role"], body["content"], body["author"]) == ("staff", "On it <3", "Ana Silva")
    assert ChatSession.objects.get(pk=visitor.session.pk).mode == "human"
    assert ChatEvent.objects.filter(session=visitor.session, message_id=body["message_id"], kind="message").exists()
    detail = staff_client.get(f"{SESSIONS}/{visitor.session.pk}").json()
    assert detail["mode"] == "human"
    listed = staff_client.get(f"{SESSIONS}/{visitor.session.pk}/messages").json()["results"]
    assert [(m["kind"], m["author"]) for m in listed] == [("staff", "Ana Silva")]


def test_a_staff_reply_is_queued_for_the_thread_once_even_with_message_posts_off(staff_client, visitor, settings):
    settings.DISCORD_ENABLED, settings.DISCORD_NOTIFY_MESSAGES = True, False

    body = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/messages", {"message": "Hello"}, format="json").json()

    posted = Delivery.objects.filter(kind=Delivery.Kind.MESSAGE_POSTED)
    assert list(posted.values_list("message_id", flat=True)) == [body["message_id"]]


def test_staff_username_is_the_author_when_no_name_is_set(staff_client, visitor):
    body = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/messages", {"message": "Hello"}, format="json").json()

    assert body["author"] == "staff"


@pytest.mark.parametrize(("payload", "field"), [({}, "message"), ({"message": "  "}, "message"), ([1], "message")])
def test_a_bad_staff_reply_is_a_400_and_stores_nothing(staff_client, visitor, payload, field):
    response = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/messages", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not ChatMessage.objects.exists()


def test_a_staff_reply_to_an_ended_session_is_a_409(staff_client, visitor):
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.LOGOUT)

    response = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/messages", {"message": "Hello"}, format="json")

    assert response.status_code == 409
    assert "detail" in response.json()


def test_a_staff_reply_to_an_unknown_session_is_a_404(staff_client):
    response = staff_client.post(f"{SESSIONS}/nope/messages", {"message": "Hello"}, format="json")

    assert response.status_code == 404


def test_release_hands_the_session_back(staff_client, visitor):
    staff_client.post(f"{SESSIONS}/{visitor.session.pk}/messages", {"message": "Hello"}, format="json")

    response = staff_client.post(f"{SESSIONS}/{visitor.session.pk}/release")

    assert (response.status_code, response.json()) == (200, {"mode": "ai"})
    assert ChatSession.objects.get(pk=visitor.session.pk).mode == "ai"
    assert staff_client.post(f"{SESSIONS}/{visitor.session.pk}/release").json() == {"mode": "ai"}


@pytest.mark.parametrize("action", ["messages", "release"])
def test_handoff_writes_are_for_staff_only(visitor_client, visitor, action):
    as_visitor = visitor_client.post(f"{SESSIONS}/{visitor.session.pk}/{action}", {"message": "x"}, format="json")
    anonymous = APIClient(HTTP_USER_AGENT=BROWSER_UA).post(f"{SESSIONS}/{visitor.session.pk}/{action}")

    assert (as_visitor.status_code, anonymous.status_code) == (403, 401)
    assert ChatSession.objects.get(pk=visitor.session.pk).mode == "ai"
