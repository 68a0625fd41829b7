"""The message admin: searching by session id uses the index; other terms search the text."""

import pytest

from chat_app.models import ChatMessage
from sessions_app.services import chat_session_start

pytestmark = pytest.mark.django_db
MESSAGES = "/admin/chat_app/chatmessage/"


@pytest.fixture
def admin_client_logged_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-0123456789"))
    return client


def _session_with(text: str):
    session = chat_session_start(email="a@example.com", user_agent="Mozilla/5.0 test", ip_address="192.0.2.1").session
    ChatMessage.objects.create(session=session, kind=ChatMessage.Kind.USER, content=text)
    return session


def test_message_admin_search_by_session_id_lists_only_that_session(admin_client_logged_in):
    mine = _session_with("mine")
    _session_with(f"mentions {mine.pk} in its text")

    response = admin_client_logged_in.get(MESSAGES, {"q": mine.pk})

    assert [message.content for message in response.context["cl"].result_list] == ["mine"]


def test_message_admin_search_by_words_matches_text(admin_client_logged_in):
    _session_with("where is my parcel")
    _session_with("opening hours")

    response = admin_client_logged_in.get(MESSAGES, {"q": "parcel"})

    assert [message.content for message in response.context["cl"].result_list] == ["where is my parcel"]


def test_message_admin_shows_what_the_visitor_typed_as_text(admin_client_logged_in, visitor_client, fake_model):
    sent = visitor_client.post("/api/v1/chat", {"message": "<b>hi</b> & <script>x()</script>"}, format="json")
    message_id = sent.json()["message_id"]

    listing = admin_client_logged_in.get(MESSAGES).content.decode()
    page = admin_client_logged_in.get(f"{MESSAGES}{message_id}/change/").content.decode()

    for html in (listing, page):
        assert "&lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;" in html
        assert "<b>hi</b>" not in html and "<script>x()" not in html
