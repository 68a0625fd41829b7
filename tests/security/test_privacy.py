"""Privacy: a visitor erases their conversation; addresses are keyed hashes; logs hold no personal data.

Retention is covered by sessions_app/tests/test_services.py (test_sessions_cleanup_*) and
sessions_app/tests/test_commands.py (cleanup_sessions, its --dry-run and --older-than).
"""

import hashlib
import logging

import pytest
from django.apps import apps

from chat_app.models import ChatMessage
from sessions_app.hashing import email_hash
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end
from tests.security.conftest import OTHER_EMAIL, body_of

pytestmark = pytest.mark.django_db

EMAIL = "Private.Person@Example.com"
SECRET_TEXT = "my account number is 4242-4242"


def delivery_model():
    try:
        return apps.get_model("notifications_app", "Delivery")
    except LookupError:
        return None


def start(api_client) -> str:
    token = api_client.post("/api/v1/auth/email", {"email": EMAIL}, format="json").json()["access_token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return token


def test_delete_session_erases_messages_and_queued_deliveries(api_client, other_visitor, fake_model, settings):
    settings.DISCORD_ENABLED = True  # deliveries are queued in the database; no worker runs here
    settings.DISCORD_BOT_TOKEN, settings.DISCORD_CHANNEL_ID = "test-token", 1
    start(api_client)
    api_client.post("/api/v1/chat", {"message": SECRET_TEXT}, format="json")
    session = ChatSession.objects.get(email=EMAIL)
    message_ids = list(ChatMessage.objects.filter(session=session).values_list("pk", flat=True))
    Delivery = delivery_model()
    if Delivery is not None:
        assert Delivery.objects.filter(session=session).exists()  # queued while the session lived

    response = api_client.delete("/api/v1/auth/session")

    assert response.status_code == 204
    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert not ChatMessage.objects.filter(pk__in=message_ids).exists()
    assert api_client.get("/api/v1/auth/session").status_code == 401
    assert ChatMessage.objects.filter(session=other_visitor.session).count() == 2  # nobody else's
    if Delivery is not None:
        assert not Delivery.objects.filter(session_id=session.pk).exists()
        assert not Delivery.objects.filter(message_id__in=message_ids).exists()
        leftovers = str(list(Delivery.objects.exclude(session=other_visitor.session).values("payload")))
        assert EMAIL.lower() not in leftovers.lower() and SECRET_TEXT not in leftovers


@pytest.mark.parametrize("ended_by", ["logout", "staff"])
def test_delete_session_after_it_ended_erases_it_and_its_discord_thread(api_client, fake_model, settings, ended_by):
    from notifications_app.models import Delivery, DiscordThread

    settings.DISCORD_ENABLED = True  # deliveries are queued in the database; no worker runs here
    settings.DISCORD_BOT_TOKEN, settings.DISCORD_CHANNEL_ID = "test-token", 1
    start(api_client)
    api_client.post("/api/v1/chat", {"message": SECRET_TEXT}, format="json")
    session = ChatSession.objects.get(email=EMAIL)
    DiscordThread.objects.create(session=session, thread_id=111, channel_id=1, opening_message_id=222)
    if ended_by == "logout":
        assert api_client.post("/api/v1/auth/logout").status_code == 204
    else:
        chat_session_end(session=session, reason=ChatSession.EndReason.STAFF)
    assert Delivery.objects.filter(session=session).exists()

    response = api_client.delete("/api/v1/auth/session")

    assert response.status_code == 204
    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert not ChatMessage.objects.filter(session_id=session.pk).exists()
    assert not Delivery.objects.filter(session_id=session.pk).exists()
    deletion = Delivery.objects.get(kind=Delivery.Kind.THREAD_DELETED)
    assert deletion.payload["thread_id"] == "111"
    assert api_client.delete("/api/v1/auth/session").status_code == 401


def test_email_hash_is_keyed_not_a_digest_a_dictionary_reverses(settings):
    stored = email_hash(EMAIL)
    normalised = EMAIL.strip().lower()

    plain_digests = {hashlib.new(name, value.encode()).hexdigest()
                     for name in ("md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b")
                     for value in (EMAIL, normalised)}  # fmt: skip
    assert stored not in plain_digests
    settings.HASH_KEY = "another-server-key-another-server-key-0123456789"
    assert email_hash(EMAIL) != stored  # without the server's key, no guess can be checked


def test_staff_find_an_address_only_through_the_keyed_hash(staff_client, other_visitor):
    found = staff_client.get("/api/v1/staff/sessions", {"email": OTHER_EMAIL.upper()}).json()["results"]

    assert [session["id"] for session in found] == [other_visitor.session.pk]
    assert ChatSession.objects.get(pk=other_visitor.session.pk).email_hash == email_hash(OTHER_EMAIL)


def test_logs_hold_no_address_message_text_or_token(api_client, fake_model, caplog, settings):
    fake_model.reply = "An answer that mentions nothing private."
    with caplog.at_level(logging.INFO):
        token = start(api_client)
        api_client.post("/api/v1/chat", {"message": SECRET_TEXT}, format="json")
        body_of(api_client.post("/api/v1/chat/stream", {"message": SECRET_TEXT}, format="json"))
        api_client.post("/api/v1/chat", {"message": "<script>alert(1)</script>"}, format="json")
        api_client.get("/api/v1/chat/history")
        api_client.delete("/api/v1/auth/session")
        api_client.get("/api/v1/auth/session")  # refused: logs a warning

    logged = "\n".join(
        f"{record.getMessage()} {record.__dict__}" for record in caplog.records if record.levelno >= logging.INFO
    )
    assert caplog.records
    for private in (EMAIL, EMAIL.lower(), SECRET_TEXT, token, token.split(".")[2]):
        assert private not in logged
