"""`/api/v1/chat` and `/api/v1/chat/history` over HTTP, in the contract's order of checks."""

from datetime import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from chat_app.api import IDEMPOTENCY_KEY_INVALID
from chat_app.models import ChatMessage
from chat_app.services import MESSAGE_BLANK, MESSAGE_ONLY_MARKUP, MESSAGE_TOO_LONG, REFUSAL_REPLY
from sessions_app.bots import BOT_DETECTED
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_start

pytestmark = pytest.mark.django_db

CHAT = "/api/v1/chat"
HISTORY = "/api/v1/chat/history"
OTHER_UA = "Mozilla/5.0 (Macintosh) another browser"
# Hourly windows: a per-minute window could roll over mid-test and reset the counters.
TWO_PER_WINDOW = "2/h"
# session; savepoint, counted UPDATE (numbering the event too), INSERT, event INSERT, release; context;
# savepoint, reply INSERT, event seq and usage totals UPDATE, event INSERT, the day's usage upsert, release.
# (Savepoints stand for the BEGIN/COMMIT that tests, inside one transaction, cannot show.)
CHAT_HOT_PATH_QUERIES = 13
HISTORY_QUERIES = 2  # the session behind the token, then the exchanges with their replies joined


def exchange_create(session: ChatSession, number: int, *, reply: bool = True, partial: bool = False) -> ChatMessage:
    message = ChatMessage.objects.create(session=session, kind="user", content=f"question {number}")
    if reply:
        ChatMessage.objects.create(
            session=session, kind="assistant", content=f"answer {number}", in_reply_to=message, partial=partial
        )
    return message


@pytest.fixture
def other_visitor() -> tuple[APIClient, ChatSession]:
    """A second visitor on another session, from another address."""
    started = chat_session_start(email="other@example.com", user_agent=OTHER_UA, ip_address="198.51.100.1")
    client = APIClient(HTTP_USER_AGENT=OTHER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started.access_token}")
    return client, started.session


@pytest.mark.parametrize("path", [CHAT, CHAT + "/"])
def test_chat_post_answers_with_contract_body(visitor_client, visitor, fake_model, path):
    response = visitor_client.post(path, {"message": "Hello there"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "message_id", "response", "response_id", "flagged", "fallback", "timestamp", "mode"}
    assert body["mode"] == "ai"
    message = ChatMessage.objects.get(pk=body["message_id"])
    reply = ChatMessage.objects.get(pk=body["response_id"])
    assert body["success"] is True
    assert (message.session_id, message.kind, message.content) == (visitor.session.pk, "user", "Hello there")
    assert (reply.kind, reply.in_reply_to_id, reply.content) == ("assistant", message.pk, body["response"])
    assert body["response"] == fake_model.reply
    assert body["flagged"] is False
    assert body["fallback"] is False
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")) == reply.created_at


def test_chat_post_model_failure_answers_fallback(visitor_client, fake_model):
    fake_model.error = True

    response = visitor_client.post(CHAT, {"message": "Hello"}, format="json")

    assert response.status_code == 200
    assert response.json()["fallback"] is True
    assert ChatMessage.objects.filter(kind="user", content="Hello").exists()


def test_chat_post_dangerous_message_is_refused_politely(visitor_client, fake_model):
    response = visitor_client.post(CHAT, {"message": "'; DROP TABLE users; --"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["flagged"] is True
    assert body["response"] == REFUSAL_REPLY
    assert fake_model.calls == []
    assert ChatMessage.objects.get(pk=body["message_id"]).flagged is True


@pytest.mark.parametrize("markup_policy", ["keep", "strip"])
@pytest.mark.parametrize("attack", ["<script>alert('xss')</script>", "<img src=x onerror=alert(1)>"])
def test_chat_post_flagged_message_is_stored_as_received_and_refused(visitor_client, fake_model, settings,
                                                                     markup_policy, attack):  # fmt: skip
    settings.INPUT_MARKUP_POLICY = markup_policy

    response = visitor_client.post(CHAT, {"message": f"  {attack}\n"}, format="json")

    assert response.status_code == 200
    assert response.json()["flagged"] is True
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == attack  # staff see what was tried
    assert visitor_client.get(HISTORY).json()["messages"][0]["message"] == attack
    assert fake_model.calls == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "This field is required."),
        ({"message": 5}, "Must be a string."),
        ({"message": None}, "This field may not be null."),
        ({"message": ["hello"]}, "Must be a string."),
        ({"message": {"text": "hello"}}, "Must be a string."),
        ({"message": ""}, MESSAGE_BLANK),
        ({"message": "   \n\t  "}, MESSAGE_BLANK),
        ({"message": "\x00\x01\x1f\x7f"}, MESSAGE_BLANK),
        ({"message": " \x00\u3000\x85\u2028 \t"}, MESSAGE_BLANK),
        ({"message": "a" * 4001}, MESSAGE_TOO_LONG.format(limit=4000)),
    ],
    ids=["missing", "int", "null", "list", "object", "empty", "whitespace", "controls", "unicode-blank", "too-long"],
)
def test_chat_post_rejects_invalid_message(visitor_client, fake_model, settings, body, error):
    settings.MAX_MESSAGE_LENGTH = 4000

    response = visitor_client.post(CHAT, body, format="json")

    assert response.status_code == 400
    assert response.json() == {"message": [error]}
    assert not ChatMessage.objects.exists()
    assert fake_model.calls == []


def test_chat_post_accepts_message_of_exactly_max_length(visitor_client, fake_model, settings):
    settings.MAX_MESSAGE_LENGTH = 4000
    text = "a" * 4000

    response = visitor_client.post(CHAT, {"message": text}, format="json")

    assert response.status_code == 200
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == text


def test_chat_post_removes_nul_and_controls_before_storing(visitor_client, fake_model):
    response = visitor_client.post(CHAT, {"message": "hel\x00lo\x07\nworld\tok"}, format="json")

    assert response.status_code == 200
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == "hello\nworld\tok"
    assert fake_model.calls[0][-1]["content"] == "hello\nworld\tok"


def test_chat_post_removes_lone_surrogates_before_storing(visitor_client, fake_model):
    response = visitor_client.post(CHAT, data='{"message": "hi \\ud800 there"}', content_type="application/json")

    assert response.status_code == 200
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == "hi  there"


def test_chat_post_stores_and_returns_comparison_text_exactly(visitor_client, fake_model):
    visitor_client.post(CHAT, {"message": "3 < 5 & 4 > 2"}, format="json")

    assert ChatMessage.objects.get(kind="user").content == "3 < 5 & 4 > 2"
    assert fake_model.calls[0][-1]["content"] == "3 < 5 & 4 > 2"
    history = visitor_client.get(HISTORY).json()
    assert history["messages"][0]["message"] == "3 < 5 & 4 > 2"


@pytest.mark.parametrize(
    "text",
    ["vector<int> v;", "<b>hi</b>", "Mail me at <someone@example.com>", "3 < 5 & 4 > 2", "<p>Hello <b>world</b></p>",
     "a <!-- note --> b", "&lt;b&gt; is how you write <b>", "<b></b>"],
)  # fmt: skip
def test_chat_post_keeps_text_as_typed_by_default(visitor_client, fake_model, text):
    response = visitor_client.post(CHAT, {"message": f"\n {text}\t "}, format="json")

    assert response.status_code == 200
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == text
    assert fake_model.calls[0][-1] == {"role": "user", "content": text}
    assert visitor_client.get(HISTORY).json()["messages"][0]["message"] == text


def test_chat_post_sends_earlier_messages_to_the_model_as_typed(visitor_client, fake_model):
    visitor_client.post(CHAT, {"message": "vector<int> v;"}, format="json")

    visitor_client.post(CHAT, {"message": "and <b>bold</b>?"}, format="json")

    assert fake_model.calls[1][1:] == [
        {"role": "user", "content": "vector<int> v;"},
        {"role": "assistant", "content": fake_model.reply},
        {"role": "user", "content": "and <b>bold</b>?"},
    ]


@pytest.mark.parametrize(
    ("text", "stored"),
    [("<p>Hello <b>world</b></p>", "Hello world"), ("vector<int> v;", "vector"), ("3 < 5 & 4 > 2", "3 < 5 & 4 > 2"),
     ("x <<b>y</b>", "x")],
)  # fmt: skip
def test_chat_post_strip_policy_removes_markup_before_storing_and_the_model(visitor_client, fake_model, settings,
                                                                            text, stored):  # fmt: skip
    settings.INPUT_MARKUP_POLICY = "strip"

    response = visitor_client.post(CHAT, {"message": text}, format="json")

    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == stored
    assert fake_model.calls[0][-1]["content"] == stored


def test_chat_post_strip_policy_rejects_message_of_only_markup(visitor_client, fake_model, settings):
    settings.INPUT_MARKUP_POLICY = "strip"

    response = visitor_client.post(CHAT, {"message": " <b></b> "}, format="json")

    assert response.status_code == 400
    assert response.json() == {"message": [MESSAGE_ONLY_MARKUP]}
    assert not ChatMessage.objects.exists()


def test_chat_post_strip_policy_sends_a_flagged_message_to_the_model_without_markup(visitor_client, fake_model,
                                                                                    settings):  # fmt: skip
    settings.INPUT_MARKUP_POLICY, settings.INPUT_PATTERN_POLICY = "strip", "flag"
    attack = "<img src=x onerror=alert(1)>look at <b>this</b>"

    response = visitor_client.post(CHAT, {"message": attack}, format="json")

    assert response.json()["flagged"] is True
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == attack
    assert fake_model.calls[0][-1]["content"] == "look at this"


def test_chat_post_without_token_is_unauthorized(api_client, fake_model):
    response = api_client.post(CHAT, {"message": "Hello"}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert fake_model.calls == []


def test_chat_post_bot_user_agent_is_refused_before_rate_limit(visitor_client, fake_model, settings):
    settings.CHAT_RATE_LIMIT = "1/h"

    for _ in range(3):
        refused = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_USER_AGENT="curl/8")
        assert refused.status_code == 403
        assert refused.json() == {"detail": BOT_DETECTED}

    assert visitor_client.post(CHAT, {"message": "Hello"}, format="json").status_code == 200
    assert ChatMessage.objects.filter(kind="user").count() == 1


def test_chat_post_short_user_agent_allowed_when_bot_detection_off(visitor_client, fake_model, settings):
    settings.BOT_DETECTION_ENABLED = False

    response = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_USER_AGENT="")

    assert response.status_code == 200


def assert_rate_limited(response) -> None:
    assert response.status_code == 429
    assert set(response.json()) == {"detail"}
    assert 1 <= int(response["Retry-After"]) <= 3600


def test_chat_post_rate_limited_per_client_ip(visitor_client, other_visitor, fake_model, settings):
    settings.CHAT_RATE_LIMIT = TWO_PER_WINDOW
    other_client, _ = other_visitor

    assert visitor_client.post(CHAT, {"message": "one"}, format="json").status_code == 200
    assert visitor_client.post(CHAT, {"message": "two"}, format="json").status_code == 200
    assert_rate_limited(other_client.post(CHAT, {"message": "three"}, format="json"))

    from_elsewhere = other_client.post(CHAT, {"message": "four"}, format="json", REMOTE_ADDR="198.51.100.9")
    assert from_elsewhere.status_code == 200
    assert ChatMessage.objects.filter(kind="user").count() == 3


def test_chat_post_rate_limited_per_session_across_ips(visitor_client, fake_model, settings):
    settings.CHAT_RATE_LIMIT = TWO_PER_WINDOW

    for number in range(2):
        ip = f"198.51.100.{number + 1}"
        assert visitor_client.post(CHAT, {"message": "hi"}, format="json", REMOTE_ADDR=ip).status_code == 200
    assert_rate_limited(visitor_client.post(CHAT, {"message": "hi"}, format="json", REMOTE_ADDR="198.51.100.3"))

    assert ChatMessage.objects.filter(kind="user").count() == 2


def test_chat_limits_are_checked_without_a_round_trip_to_the_event_loop(
    visitor_client, fake_model, settings, monkeypatch
):
    # adrf's check_throttles enters async_to_sync for async throttles even when there are none; the
    # chat view checks its synchronous limits as DRF does, and they still hold.
    def refuse(*args, **kwargs):
        raise AssertionError("adrf's async throttle check ran")

    monkeypatch.setattr("adrf.views.async_to_sync", refuse)
    settings.CHAT_RATE_LIMIT = "1/h"

    assert visitor_client.post(CHAT, {"message": "one"}, format="json").status_code == 200
    assert_rate_limited(visitor_client.post(CHAT, {"message": "two"}, format="json"))


def test_chat_post_not_rate_limited_when_disabled(visitor_client, fake_model, settings):
    settings.CHAT_RATE_LIMIT = "1/h"
    settings.RATE_LIMITING_ENABLED = False

    statuses = [visitor_client.post(CHAT, {"message": "hi"}, format="json").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


def session_fill(session: ChatSession, count: int) -> None:
    ChatSession.objects.filter(pk=session.pk).update(user_message_count=count)


@pytest.mark.parametrize("body", [{"message": "one more"}, {"message": ""}, {}], ids=["valid", "blank", "missing"])
def test_chat_post_at_session_cap_is_refused_before_validation(visitor_client, visitor, fake_model, settings, body):
    settings.MAX_MESSAGES_PER_SESSION = 2
    session_fill(visitor.session, 2)

    response = visitor_client.post(CHAT, body, format="json")

    assert response.status_code == 429
    assert "Message limit" in response.json()["detail"]
    until_expiry = (visitor.session.expires_at - timezone.now()).total_seconds()
    assert abs(int(response["Retry-After"]) - until_expiry) <= 2
    assert not ChatMessage.objects.exists()
    assert fake_model.calls == []


def test_chat_post_cap_allows_last_message_then_refuses(visitor_client, visitor, fake_model, settings):
    settings.MAX_MESSAGES_PER_SESSION = 2

    statuses = [visitor_client.post(CHAT, {"message": "hi"}, format="json").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    visitor.session.refresh_from_db()
    assert visitor.session.user_message_count == 2
    assert ChatMessage.objects.filter(kind="user").count() == 2


def test_chat_post_idempotency_key_replays_first_answer(visitor_client, fake_model):
    first = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    fake_model.reply = "a different answer"
    second = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert ChatMessage.objects.filter(kind="user").count() == 1
    assert ChatMessage.objects.filter(kind="assistant").count() == 1
    assert len(fake_model.calls) == 1


def test_chat_post_idempotency_replay_at_cap_still_answers(visitor_client, fake_model, settings):
    settings.MAX_MESSAGES_PER_SESSION = 1
    first = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")

    second = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    fresh = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY="retry-2")

    assert second.json() == first.json()
    assert fresh.status_code == 429


def test_chat_post_idempotency_key_is_per_session(visitor_client, other_visitor, fake_model):
    other_client, _ = other_visitor
    first = visitor_client.post(CHAT, {"message": "Mine"}, format="json", HTTP_IDEMPOTENCY_KEY="same-key")

    other = other_client.post(CHAT, {"message": "Theirs"}, format="json", HTTP_IDEMPOTENCY_KEY="same-key")

    assert other.status_code == 200
    assert other.json()["message_id"] != first.json()["message_id"]
    assert len(fake_model.calls) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "tab\tkey"], ids=["empty", "space", "long", "tab"])
def test_chat_post_invalid_idempotency_key_is_rejected(visitor_client, fake_model, key):
    response = visitor_client.post(CHAT, {"message": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert response.json() == {"Idempotency-Key": [IDEMPOTENCY_KEY_INVALID]}
    assert not ChatMessage.objects.exists()


def test_chat_post_hot_path_query_count_is_constant(visitor_client, visitor, fake_model, django_assert_num_queries):
    with django_assert_num_queries(CHAT_HOT_PATH_QUERIES):
        assert visitor_client.post(CHAT, {"message": "first"}, format="json").status_code == 200
    for number in range(20):
        exchange_create(visitor.session, number)

    with django_assert_num_queries(CHAT_HOT_PATH_QUERIES):
        assert visitor_client.post(CHAT, {"message": "later"}, format="json").status_code == 200


@pytest.mark.parametrize("path", [HISTORY, HISTORY + "/"])
def test_chat_history_lists_exchanges_oldest_first(visitor_client, visitor, path):
    for number in range(3):
        exchange_create(visitor.session, number)

    response = visitor_client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == visitor.session.pk
    assert [(m["message"], m["response"]) for m in body["messages"]] == [
        ("question 0", "answer 0"),
        ("question 1", "answer 1"),
        ("question 2", "answer 2"),
    ]
    first = ChatMessage.objects.get(content="question 0")
    assert set(body["messages"][0]) == {"id", "message", "response", "timestamp", "flagged", "partial"}
    assert body["messages"][0]["id"] == first.pk
    assert body["messages"][0]["flagged"] is False
    assert body["messages"][0]["partial"] is False
    assert datetime.fromisoformat(body["messages"][0]["timestamp"].replace("Z", "+00:00")) == first.created_at


def test_chat_history_returns_newest_n(visitor_client, visitor):
    for number in range(5):
        exchange_create(visitor.session, number)

    body = visitor_client.get(HISTORY, {"limit": 2}).json()

    assert [m["message"] for m in body["messages"]] == ["question 3", "question 4"]


def test_chat_history_defaults_to_fifty(visitor_client, visitor):
    for number in range(55):
        exchange_create(visitor.session, number)

    messages = visitor_client.get(HISTORY).json()["messages"]

    assert len(messages) == 50
    assert (messages[0]["message"], messages[-1]["message"]) == ("question 5", "question 54")


def test_chat_history_accepts_limit_of_two_hundred(visitor_client, visitor):
    exchange_create(visitor.session, 1)

    assert visitor_client.get(HISTORY, {"limit": 200}).status_code == 200


@pytest.mark.parametrize("limit", ["201", "0", "-1", "abc", "1.5"])
def test_chat_history_rejects_bad_limit(visitor_client, limit):
    response = visitor_client.get(HISTORY, {"limit": limit})

    assert response.status_code == 400
    assert set(response.json()) == {"limit"}


def test_chat_history_pairs_each_message_with_its_own_reply(visitor_client, visitor):
    exchange_create(visitor.session, 1)
    exchange_create(visitor.session, 2, reply=False)
    exchange_create(visitor.session, 3)
    # A reply stored after a later message still belongs to the message it answers.
    late = ChatMessage.objects.get(content="question 2")
    ChatMessage.objects.create(session=visitor.session, kind="assistant", content="late answer 2", in_reply_to=late)
    exchange_create(visitor.session, 4, reply=False)

    messages = visitor_client.get(HISTORY).json()["messages"]

    assert [(m["message"], m["response"]) for m in messages] == [
        ("question 1", "answer 1"),
        ("question 2", "late answer 2"),
        ("question 3", "answer 3"),
        ("question 4", ""),
    ]


def test_chat_history_shows_only_callers_session(visitor_client, visitor, other_visitor):
    other_client, other_session = other_visitor
    exchange_create(visitor.session, 1)
    exchange_create(other_session, 2)

    mine = visitor_client.get(HISTORY).json()
    theirs = other_client.get(HISTORY).json()

    assert [m["message"] for m in mine["messages"]] == ["question 1"]
    assert [m["message"] for m in theirs["messages"]] == ["question 2"]
    assert theirs["session_id"] == other_session.pk


def test_chat_history_marks_a_reply_cut_short(visitor_client, visitor):
    exchange_create(visitor.session, 1)
    exchange_create(visitor.session, 2, partial=True)
    exchange_create(visitor.session, 3, reply=False)

    messages = visitor_client.get(HISTORY).json()["messages"]

    assert [(m["response"], m["partial"]) for m in messages] == [("answer 1", False), ("answer 2", True), ("", False)]


def test_chat_history_shows_flagged_messages(visitor_client, fake_model):
    visitor_client.post(CHAT, {"message": "../../../etc/passwd"}, format="json")

    messages = visitor_client.get(HISTORY).json()["messages"]

    assert messages[0]["flagged"] is True
    assert messages[0]["response"] == REFUSAL_REPLY


def test_chat_history_without_token_is_unauthorized(api_client):
    response = api_client.get(HISTORY)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("exchanges", [5, 60])
def test_chat_history_query_count_is_constant(visitor_client, visitor, django_assert_num_queries, exchanges):
    for number in range(exchanges):
        exchange_create(visitor.session, number, reply=number % 7 != 0, partial=number % 5 == 0)

    with django_assert_num_queries(HISTORY_QUERIES):
        response = visitor_client.get(HISTORY)

    assert len(response.json()["messages"]) == min(exchanges, 50)
