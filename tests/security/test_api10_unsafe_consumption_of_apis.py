"""OWASP API10:2023 Unsafe Consumption of APIs: the model's output is untrusted text.

A compromised or confused provider can answer anything: markup, control characters, NUL, broken
Unicode, a reply of any length. It is stored and returned as plain JSON text, capped at
LLM_MAX_REPLY_CHARS, with the characters no database can hold removed, and it is never rendered
as HTML. Covered elsewhere: 500s, garbage and empty answers fall back (chat_app/tests/test_llm_socket.py);
the widget shows replies through textContent (tests/browser/test_widget.py); Discord posts carry
`allowed_mentions` none and escaped Markdown (notifications_app/tests/test_text_escape.py,
test_formatting.py, test_discord.py, test_worker.py).
"""

import pytest

from chat_app.models import ChatMessage
from chat_app.services import FALLBACK_REPLY
from staff_app.tests.factories import admin_session_url
from tests.security.conftest import body_of

pytestmark = pytest.mark.django_db

HOSTILE_HTML = "<script>alert(document.cookie)</script><img src=x onerror=alert(1)> & done"
PATHS = ["/api/v1/chat", "/api/v1/chat/stream"]


def reply_of(response) -> ChatMessage:
    body_of(response)
    return ChatMessage.objects.get(kind="assistant")


@pytest.mark.parametrize("path", PATHS)
def test_model_markup_is_stored_and_returned_as_plain_json_text(visitor_client, model_server, path):
    model_server.behaviour.reply = HOSTILE_HTML

    response = visitor_client.post(path, {"message": "hi"}, format="json")
    reply = reply_of(response)

    assert reply.content == HOSTILE_HTML  # kept verbatim: it is text, encoded for each output
    history = visitor_client.get("/api/v1/chat/history")
    assert history["Content-Type"] == "application/json"
    assert history.json()["messages"][0]["response"] == HOSTILE_HTML


def test_model_markup_is_escaped_in_the_staff_console(client, staff_user, visitor_client, visitor, model_server):
    model_server.behaviour.reply = HOSTILE_HTML
    visitor_client.post("/api/v1/chat", {"message": "hi"}, format="json")
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)

    page = client.get(admin_session_url(visitor.session)).content.decode()

    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in page
    assert "<script>alert(document.cookie)" not in page and "<img src=x onerror" not in page


@pytest.mark.parametrize("path", PATHS)
def test_model_reply_is_capped_at_max_reply_chars(visitor_client, model_server, settings, path):
    settings.LLM_MAX_REPLY_CHARS = 500
    model_server.behaviour.reply = "x" * 5000

    reply = reply_of(visitor_client.post(path, {"message": "hi"}, format="json"))

    assert len(reply.content) == 500


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("raw", "stored"),
    [("hello\x00world", "helloworld"), ("bad \ud800 surrogate", "bad  surrogate"), ("ansi \x1b[31mred", "ansi [31mred"),
     ("keeps\ttabs\nand newlines", "keeps\ttabs\nand newlines")],
    ids=["nul", "lone-surrogate", "escape", "tab-newline"],
)  # fmt: skip
def test_model_control_characters_never_break_the_turn(visitor_client, model_server, path, raw, stored):
    model_server.behaviour.reply = raw

    response = visitor_client.post(path, {"message": "hi"}, format="json")

    assert response.status_code == 200
    assert reply_of(response).content == stored
    assert visitor_client.get("/api/v1/chat/history").json()["messages"][0]["response"] == stored


def test_model_reply_of_only_control_characters_falls_back(visitor_client, model_server):
    model_server.behaviour.reply = "\x00\x01\x02"

    body = visitor_client.post("/api/v1/chat", {"message": "hi"}, format="json").json()

    assert (body["response"], body["fallback"]) == (FALLBACK_REPLY, True)
