"""Usage (contract rules 7 and 9): every reply's tokens, cost and latency, the session's totals, the day's
roll-up, and the two budgets; the model is the stub server over a real socket."""

import logging
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat_app import llm
from chat_app.handoff import staff_message_post
from chat_app.models import ChatMessage
from chat_app.services import FALLBACK_REPLY, TokenBudgetReached, chat_message_store, check_chat_turn
from chat_app.tests.test_stream import streamed
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_delete, sessions_cleanup
from usage_app.models import DailyUsage
from usage_app.recording import usage_add, utc_day
from usage_app.selectors import spend_today, usage_days

pytestmark = pytest.mark.django_db
CHAT = "/api/v1/chat"


def session_of(visitor) -> ChatSession:
    return ChatSession.objects.get(pk=visitor.session.pk)


def today():
    (day,) = usage_days(first=utc_day(), last=utc_day())
    return day


def chat(client, message: str = "Hello"):
    response = client.post(CHAT, {"message": message}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def reply_to(client, message: str, *, stream: bool) -> ChatMessage:
    """The stored reply to `message`, sent to /chat or to /chat/stream."""
    if stream:
        return ChatMessage.objects.get(pk=streamed(client, message)[1][-1][1]["response_id"])
    return ChatMessage.objects.get(pk=chat(client, message)["response_id"])


@pytest.fixture
def priced(settings):
    settings.LLM_INPUT_COST_PER_MILLION = Decimal("1.5")
    settings.LLM_OUTPUT_COST_PER_MILLION = Decimal("4")


# 11 prompt tokens at $1.5 and 7 completion tokens at $4 per million
PRICED_COST = Decimal("0.00004450")


def test_a_plain_reply_stores_its_model_latency_usage_and_cost(visitor_client, visitor, model_server, priced):
    body = chat(visitor_client)

    reply = ChatMessage.objects.get(pk=body["response_id"])
    assert (reply.model, reply.prompt_tokens, reply.completion_tokens) == ("stub-model", 11, 7)
    assert (reply.cost_usd, reply.usage_estimated) == (PRICED_COST, False)
    assert reply.latency_ms is not None
    session = session_of(visitor)
    assert (session.prompt_tokens, session.completion_tokens, session.cost_usd) == (11, 7, PRICED_COST)


def test_a_streamed_reply_stores_the_same_usage_asked_of_the_provider(visitor_client, visitor, model_server, priced):
    _, events = streamed(visitor_client, "Hello")

    reply = ChatMessage.objects.get(pk=events[-1][1]["response_id"])
    assert model_server.behaviour.requests[-1]["stream_options"] == {"include_usage": True}
    assert (reply.model, reply.prompt_tokens, reply.completion_tokens, reply.cost_usd) == (
        "stub-model", 11, 7, PRICED_COST,
    )  # fmt: skip
    assert reply.latency_ms is not None and reply.usage_estimated is False
    assert session_of(visitor).tokens_used == 18


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_provider_without_usage_gets_its_tokens_counted_here(visitor_client, visitor, model_server, priced, stream):
    model_server.behaviour.usage = "none"

    reply = reply_to(visitor_client, "Count these words for me please", stream=stream)
    assert reply.usage_estimated is True
    assert reply.prompt_tokens > 10 and reply.completion_tokens > 5  # the system prompt, the message, the echo
    expected = (reply.prompt_tokens * Decimal("1.5") + reply.completion_tokens * 4) / 1_000_000
    assert reply.cost_usd == expected.quantize(Decimal("0.00000001"))
    assert today().prompt_tokens == reply.prompt_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_provider_sending_nonsense_usage_leaves_the_figures_empty(visitor_client, visitor, model_server, stream):
    model_server.behaviour.usage = "nonsense"

    reply = reply_to(visitor_client, "Hi", stream=stream)
    assert reply.content == "Stub reply to: Hi"  # the reply itself is kept
    assert (reply.prompt_tokens, reply.completion_tokens, reply.cost_usd, reply.usage_estimated) == (
        None, None, None, False,
    )  # fmt: skip
    assert session_of(visitor).tokens_used == 0
    assert today().replies == 1


def test_configured_prices_override_litellms_map(visitor_client, model_server, settings):
    settings.LLM_MODEL = "openai/gpt-4o-mini"  # litellm prices it at $0.15 / $0.60 per million
    settings.LLM_INPUT_COST_PER_MILLION = Decimal(0)
    settings.LLM_OUTPUT_COST_PER_MILLION = Decimal(1)

    body = chat(visitor_client)

    assert ChatMessage.objects.get(pk=body["response_id"]).cost_usd == Decimal("0.00000700")


def test_one_configured_price_keeps_litellms_for_the_other(visitor_client, model_server, settings):
    settings.LLM_MODEL = "openai/gpt-4o-mini"
    settings.LLM_OUTPUT_COST_PER_MILLION = Decimal(1)

    body = chat(visitor_client)

    # 11 x $0.15 (litellm's) + 7 x $1 (configured) per million tokens
    assert ChatMessage.objects.get(pk=body["response_id"]).cost_usd == Decimal("0.00000865")


def test_an_unpriced_model_stores_no_cost_and_is_warned_about_once(visitor_client, model_server, caplog, monkeypatch):
    monkeypatch.setattr(llm, "_unpriced", set())
    caplog.set_level(logging.WARNING, logger="chat_app.llm")

    first, second = chat(visitor_client), chat(visitor_client)

    assert ChatMessage.objects.get(pk=first["response_id"]).cost_usd is None
    assert ChatMessage.objects.get(pk=second["response_id"]).cost_usd is None
    warnings = [record.getMessage() for record in caplog.records if "no price for model" in record.getMessage()]
    assert warnings == ["no price for model stub-model: its replies store no cost; set LLM_INPUT_COST_PER_MILLION "
                        "and LLM_OUTPUT_COST_PER_MILLION"]  # fmt: skip


def test_the_day_counts_sessions_messages_replies_fallbacks_and_flags(visitor_client, model_server, settings, priced):
    settings.INPUT_PATTERN_POLICY = "flag"
    chat(visitor_client, "Hello")
    chat(visitor_client, "<script>alert(1)</script>")  # flagged, answered normally
    model_server.behaviour.mode = "error"
    chat(visitor_client, "Are you there?")  # the fallback

    day = today()
    assert (day.sessions, day.visitor_messages, day.replies, day.fallbacks, day.flagged) == (1, 3, 3, 1, 1)
    assert (day.prompt_tokens, day.completion_tokens, day.cost_usd) == (22, 14, 2 * PRICED_COST)
    assert day.latency_p50_ms is not None


def test_recording_usage_adds_one_statement_to_the_replys_transaction(visitor, model_server):
    """The session's totals ride on the UPDATE that numbers the reply's event; the day's roll-up is one upsert."""
    from chat_app.services import chat_reply_store

    message = ChatMessage.objects.create(session=visitor.session, kind="user", content="hi")
    completion = llm.Completion("hello", "m", 5, 3, 4, Decimal("0.00000100"))

    with CaptureQueriesContext(connection) as queries:
        chat_reply_store(message=message, content="hello", completion=completion)

    statements = [query["sql"].split()[0].upper() for query in queries.captured_queries]
    assert [s for s in statements if s not in {"SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"}] == [
        "INSERT", "UPDATE", "INSERT", "INSERT",
    ]  # fmt: skip  # the reply, the session (event seq and totals), the event, the day


def test_a_session_past_its_token_budget_gets_429_and_nothing_is_stored(
    visitor_client, visitor, model_server, settings
):
    settings.SESSION_TOKEN_BUDGET = 18  # the stub's 11 + 7: one reply uses it all
    chat(visitor_client)

    response = visitor_client.post(CHAT, {"message": "One more"}, format="json")

    assert response.status_code == 429
    assert "budget" in response.json()["detail"] and "18" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    assert ChatMessage.objects.filter(session=visitor.session).count() == 2  # the first turn only
    assert len(model_server.behaviour.requests) == 1
    streamed_response = visitor_client.post("/api/v1/chat/stream", {"message": "One more"}, format="json")
    assert streamed_response.status_code == 429 and streamed_response["Content-Type"] == "application/json"


def test_the_token_budget_is_rechecked_exactly_when_the_message_is_stored(visitor, settings):
    """A turn that read the session before a racing reply spent the budget is refused as it stores: the
    overspend is at most the turns already past this point."""
    settings.SESSION_TOKEN_BUDGET = 100
    stale = session_of(visitor)
    text = check_chat_turn(session=stale, message="hi")
    ChatSession.objects.filter(pk=stale.pk).update(prompt_tokens=60, completion_tokens=40)

    with pytest.raises(TokenBudgetReached):
        chat_message_store(session=stale, text=text, idempotency_key=None)

    assert not ChatMessage.objects.exists()
    assert session_of(visitor).user_message_count == 0


def test_the_token_budget_does_not_hold_messages_to_staff(visitor_client, visitor, model_server, settings):
    settings.SESSION_TOKEN_BUDGET = 10
    ChatSession.objects.filter(pk=visitor.session.pk).update(prompt_tokens=10)
    staff_message_post(session_id=visitor.session.pk, content="Ana here", author="Ana")

    body = chat(visitor_client, "Can a person help?")

    assert body["mode"] == "human" and body["response_id"] is None
    assert model_server.behaviour.requests == []
    assert today().visitor_messages == 1 and today().replies == 0  # a message to staff counts too


def test_once_the_daily_budget_is_spent_messages_are_kept_and_answered_with_the_fallback(
    visitor_client, visitor, model_server, settings
):
    settings.DAILY_COST_BUDGET_USD = Decimal("0.01")
    usage_add(latency_ms=500, replies=1, cost_usd=Decimal("0.01"))

    body = chat(visitor_client, "Still there?")
    _, events = streamed(visitor_client, "And streamed?")

    assert (body["fallback"], body["response"]) == (True, FALLBACK_REPLY)
    assert events[-1][0] == "done" and events[-1][1]["fallback"] is True
    assert model_server.behaviour.requests == []  # the model is never called
    kept = ChatMessage.objects.filter(session=visitor.session, kind="user").values_list("content", flat=True)
    assert list(kept) == ["Still there?", "And streamed?"]


def test_under_the_daily_budget_the_model_answers(visitor_client, model_server, settings):
    settings.DAILY_COST_BUDGET_USD = Decimal("0.01")
    usage_add(cost_usd=Decimal("0.00999999"))

    assert chat(visitor_client)["fallback"] is False
    assert len(model_server.behaviour.requests) == 1


def test_erasing_sessions_does_not_lower_the_days_figures(visitor_client, visitor, model_server, priced, settings):
    chat(visitor_client)
    before = today()

    chat_session_delete(session=visitor.session)
    sessions_cleanup(older_than_days=0)

    assert not ChatMessage.objects.exists()
    after = today()
    assert (after.sessions, after.replies, after.cost_usd) == (before.sessions, before.replies, before.cost_usd) == (
        1, 1, PRICED_COST,
    )  # fmt: skip
    assert spend_today() == PRICED_COST
    assert DailyUsage.objects.exists()


def test_an_erased_visitor_cannot_dodge_the_daily_budget(api_client, model_server, settings, priced):
    """Spend, erase the session, start another: today's spend still stands against the budget."""
    settings.DAILY_COST_BUDGET_USD = PRICED_COST
    token = api_client.post("/api/v1/auth/email", {"email": "a@example.com"}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")
    assert chat(api_client)["fallback"] is False
    assert api_client.delete("/api/v1/auth/session").status_code == 204

    token = api_client.post("/api/v1/auth/email", {"email": "a@example.com"}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")

    assert chat(api_client)["fallback"] is True
    assert len(model_server.behaviour.requests) == 1
