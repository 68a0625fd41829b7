"""Hypothesis: any text valid under chat rule 4 comes back exactly as typed from every API that shows it.

Exactly means: less control characters (every Unicode Cc but newline and tab) and surrounding
whitespace, as stored, as the model reads it, and as /chat, /chat/stream, the history and the staff
API answer it. Lone surrogates are left out: JSON cannot carry them to a client anyway.
"""

import json
import unicodedata

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from chat_app import llm
from chat_app.models import ChatMessage
from conftest import BROWSER_UA, body_of
from sessions_app.services import chat_session_start

pytestmark = pytest.mark.django_db

MAX_LENGTH = django_settings.MAX_MESSAGE_LENGTH
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])  # fmt: skip

# Shapes that broke text before: markup, entities, controls, odd whitespace, right-to-left marks, emoji.
PIECES = st.sampled_from([
    "<", ">", "&", "<b>", "</b>", "vector<int> v;", "<someone@example.com>", "&lt;", "<!--", "-->", "<<b>b>",
    "<img src=x onerror=alert(1)>", "<script>", "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\r\n", "\n", "\t", " ",
    "\u00a0", "\u2028", "\u3000", "\u200b", "\u202e", "\ufeff", "é", "😀", "👩\u200d💻", "\\", '"', "'", "{{x}}",
])  # fmt: skip
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=MAX_LENGTH)
TYPED = st.one_of(ANY_TEXT, st.lists(st.one_of(PIECES, ANY_TEXT), min_size=1, max_size=30).map("".join))


def as_shown(typed: str) -> str:
    """Rule 4 as the contract words it: controls but newline and tab removed, then trimmed."""
    return "".join(c for c in typed if c in "\n\t" or unicodedata.category(c) != "Cc").strip()


VALID = TYPED.filter(lambda typed: len(typed) <= MAX_LENGTH and as_shown(typed))
EXAMPLES = ["vector<int> v;", "<b>hi</b>", "Mail me at <someone@example.com>", "<img src=x onerror=alert(1)>",
            " \x00<b>\u3000", "3 < 5 & 4 > 2", "a" * MAX_LENGTH]  # fmt: skip


class ModelEcho:
    """The model, replaced at its single owner: records what it reads, answers with `reply`."""

    def __init__(self) -> None:
        self.read: list[list[dict]] = []
        self.reply = ""

    async def complete(self, *, messages):
        self.read.append(messages)
        return llm.Completion(content=self.reply, model="echo", latency_ms=1, prompt_tokens=1, completion_tokens=1,
                              cost_usd=None)  # fmt: skip

    def stream(self, messages):
        """A stand-in for llm.ModelStream: the reply in thirds."""
        self.read.append(messages)
        return EchoStream(self.reply)


class EchoStream:
    def __init__(self, reply: str):
        self.reply, self.completion = reply, None

    async def pieces(self):
        third = max(1, len(self.reply) // 3)
        for start in range(0, len(self.reply), third):
            yield self.reply[start : start + third]
        self.completion = llm.Completion(content=self.reply, model="echo", latency_ms=1, prompt_tokens=1,
                                         completion_tokens=1, cost_usd=None)  # fmt: skip


@pytest.fixture
def model(monkeypatch, settings):
    settings.RATE_LIMITING_ENABLED = False
    settings.INPUT_PATTERN_POLICY = "flag"  # flagged text reaches the model too, so its input is checked
    settings.INPUT_MARKUP_POLICY = "keep"
    echo = ModelEcho()
    monkeypatch.setattr(llm, "chat_complete", echo.complete)
    monkeypatch.setattr(llm, "ModelStream", echo.stream)
    return echo


@pytest.fixture
def staff(django_user_model) -> APIClient:
    user = django_user_model.objects.create_user(username="staff", password="unused-staff-password-1", is_staff=True)
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def new_visitor() -> tuple[APIClient, str]:
    started = chat_session_start(email="visitor@example.com", user_agent=BROWSER_UA, ip_address="203.0.113.7")
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started.access_token}")
    return client, started.session.pk


def stream_events(response) -> list[tuple[str, dict]]:
    blocks = body_of(response).decode().strip().split("\n\n")
    return [(block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1][6:])) for block in blocks]


@PROPERTY
@given(typed=VALID)
@example(EXAMPLES[0])
@example(EXAMPLES[1])
@example(EXAMPLES[2])
@example(EXAMPLES[3])
@example(EXAMPLES[4])
@example(EXAMPLES[5])
@example(EXAMPLES[6])
def test_chat_history_and_staff_api_give_back_the_text_as_typed(model, staff, typed):
    expected = as_shown(typed)
    model.reply = expected  # the model's words travel back through the same outputs
    visitor, session_id = new_visitor()

    answer = visitor.post("/api/v1/chat", {"message": typed}, format="json")

    assert answer.status_code == 200, answer.content
    assert ChatMessage.objects.get(pk=answer.json()["message_id"]).content == expected
    assert model.read[-1][-1] == {"role": "user", "content": expected}
    assert answer.json()["response"] == expected
    (exchange,) = visitor.get("/api/v1/chat/history").json()["messages"]
    assert (exchange["message"], exchange["response"]) == (expected, expected)
    rows = staff.get(f"/api/v1/staff/sessions/{session_id}/messages").json()["results"]
    assert [(row["kind"], row["content"]) for row in rows] == [("user", expected), ("assistant", expected)]


@PROPERTY
@given(typed=VALID)
@example(EXAMPLES[0])
@example(EXAMPLES[3])
@example(EXAMPLES[4])
def test_stream_gives_back_the_text_as_typed(model, typed):
    expected = as_shown(typed)
    model.reply = expected
    visitor, _ = new_visitor()

    response = visitor.post("/api/v1/chat/stream", {"message": typed}, format="json")

    assert response.status_code == 200, response.content
    events = stream_events(response)
    name, done = events[-1]
    assert name == "done"
    assert ChatMessage.objects.get(pk=done["message_id"]).content == expected
    assert model.read[-1][-1] == {"role": "user", "content": expected}
    assert "".join(data["content"] for name, data in events if name == "delta") == expected
    assert visitor.get("/api/v1/chat/history").json()["messages"][0]["message"] == expected
