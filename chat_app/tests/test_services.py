"""The chat turn: pattern policy, model failure, context, reply bookkeeping, cap and idempotency."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import IntegrityError
from django.utils import timezone

from chat_app.models import ChatMessage
from chat_app.services import (
    FALLBACK_REPLY,
    REFUSAL_REPLY,
    IdempotencyConflict,
    SessionEnded,
    VisitorText,
    chat_model_messages,
    chat_turn_replay,
    check_chat_turn,
    visitor_text_prepare,
)
from chat_app.turns import chat_turn_answer, chat_turn_start
from chatapi.errors import LimitExceeded
from sessions_app.models import ChatSession

pytestmark = pytest.mark.django_db

ATTACK = "'; DROP TABLE users; --"


def run(session: ChatSession, raw: str, idempotency_key: str | None = None):
    """One turn as the views run it: opened (checks, the message stored), then answered."""

    async def turn():
        opening = await chat_turn_start(session=session, message=raw, idempotency_key=idempotency_key)
        return await chat_turn_answer(opening)

    return async_to_sync(turn)()


@pytest.mark.parametrize("markup_policy", ["keep", "strip"])
def test_visitor_text_prepare_flags_and_keeps_text_as_received(settings, markup_policy):
    settings.INPUT_MARKUP_POLICY = markup_policy

    prepared = visitor_text_prepare(" <img src=x onerror=alert(1)>hello <b>there</b>\n")

    assert prepared.flagged is True
    assert prepared.text == "<img src=x onerror=alert(1)>hello <b>there</b>"  # staff see what was tried


@pytest.mark.parametrize("text", ["vector<int> v;", "<b>hi</b>", "Mail me at <someone@example.com>", "&lt; <"])
def test_visitor_text_prepare_keep_policy_keeps_text_as_typed(settings, text):
    settings.INPUT_MARKUP_POLICY = "keep"

    assert visitor_text_prepare(f"\t{text} \x00") == VisitorText(text=text, flagged=False)


def test_visitor_text_prepare_strip_policy_removes_markup(settings):
    settings.INPUT_MARKUP_POLICY = "strip"

    assert visitor_text_prepare(" <p>Hello <b>world</b></p> ") == VisitorText(text="Hello world", flagged=False)


def test_visitor_text_prepare_flags_pattern_split_by_control_character():
    prepared = visitor_text_prepare("java\x00script:alert(1)")

    assert prepared.flagged is True
    assert prepared.text == "javascript:alert(1)"


def test_visitor_text_prepare_strip_policy_flags_pattern_joined_by_stripping(settings):
    settings.INPUT_MARKUP_POLICY = "strip"
    raw = "<<b>script>alert(1)<</b>/script>"

    prepared = visitor_text_prepare(raw)

    assert prepared.flagged is True  # on the tag one pass re-forms
    assert prepared.text == raw


def test_chat_model_messages_strip_policy_sends_user_turns_without_markup(visitor, settings):
    settings.INPUT_MARKUP_POLICY = "strip"
    earlier = ChatMessage.objects.create(session=visitor.session, kind="user", content="<b>bold</b> try", flagged=True)
    ChatMessage.objects.create(session=visitor.session, kind="assistant", content="<i>kept</i>", in_reply_to=earlier)
    message = ChatMessage.objects.create(session=visitor.session, kind="user", content="<img src=x>now", flagged=True)

    turns = chat_model_messages(message=message)[1:]

    assert turns == [
        {"role": "user", "content": "bold try"},
        {"role": "assistant", "content": "<i>kept</i>"},  # the model's own words are not the visitor's input
        {"role": "user", "content": "now"},
    ]


def test_visitor_text_prepare_off_policy_flags_nothing(settings):
    settings.INPUT_PATTERN_POLICY = "off"

    assert visitor_text_prepare("<script>alert(1)</script>hi").flagged is False


def test_chat_turn_run_refuses_flagged_message_without_model(visitor, fake_model, settings):
    settings.INPUT_PATTERN_POLICY = "refuse"

    turn = run(visitor.session, ATTACK)

    assert fake_model.calls == []
    message = ChatMessage.objects.get(pk=turn.message.pk)
    assert message.flagged is True
    assert message.content == ATTACK
    assert turn.reply.content == REFUSAL_REPLY
    assert "safety" in turn.reply.content or "rephrase" in turn.reply.content
    assert turn.reply.in_reply_to_id == message.pk
    assert turn.reply.fallback is False


def test_chat_turn_run_flag_policy_stores_flagged_and_answers(visitor, fake_model, settings):
    settings.INPUT_PATTERN_POLICY = "flag"

    turn = run(visitor.session, ATTACK)

    assert ChatMessage.objects.get(pk=turn.message.pk).flagged is True
    assert len(fake_model.calls) == 1
    assert fake_model.calls[0][-1] == {"role": "user", "content": ATTACK}
    assert turn.reply.content == fake_model.reply


def test_chat_turn_run_off_policy_checks_nothing(visitor, fake_model, settings):
    settings.INPUT_PATTERN_POLICY = "off"

    turn = run(visitor.session, ATTACK)

    assert ChatMessage.objects.get(pk=turn.message.pk).flagged is False
    assert len(fake_model.calls) == 1
    assert turn.reply.content == fake_model.reply


def test_chat_turn_run_model_failure_falls_back_and_keeps_message(visitor, fake_model):
    fake_model.error = True

    turn = run(visitor.session, "Are you there?")

    assert len(fake_model.calls) == 1
    assert turn.reply.content == FALLBACK_REPLY
    assert turn.reply.fallback is True
    stored = ChatMessage.objects.filter(session=visitor.session).order_by("id")
    assert [(m.kind, m.content, m.fallback) for m in stored] == [
        ("user", "Are you there?", False),
        ("assistant", FALLBACK_REPLY, True),
    ]
    assert stored[1].in_reply_to_id == stored[0].pk


def test_chat_turn_run_sends_system_then_last_context_messages_as_stored(visitor, fake_model, settings):
    settings.LLM_CONTEXT_MESSAGES = 8
    for number in range(1, 7):
        fake_model.reply = f"answer <{number}> & more"
        run(visitor.session, f"question <b>{number}</b> & 3 < 5")

    run(visitor.session, "the new one")

    stored = list(ChatMessage.objects.filter(session=visitor.session).order_by("id"))
    last_eight = stored[4:12]  # exchanges 3 to 6, before the new message
    expected = [
        {"role": "system", "content": settings.SYSTEM_PROMPT},
        *({"role": m.kind, "content": m.content} for m in last_eight),
        {"role": "user", "content": "the new one"},
    ]
    assert fake_model.calls[-1] == expected
    assert [turn["role"] for turn in expected[1:-1]] == ["user", "assistant"] * 4
    assert expected[1]["content"] == "question <b>3</b> & 3 < 5"  # as typed
    assert expected[2]["content"] == "answer <3> & more"


def test_chat_turn_run_without_context_sends_system_and_new_message(visitor, fake_model, settings):
    settings.LLM_CONTEXT_MESSAGES = 0
    for number in range(3):
        run(visitor.session, f"question {number}")

    run(visitor.session, "alone")

    assert fake_model.calls[-1] == [
        {"role": "system", "content": settings.SYSTEM_PROMPT},
        {"role": "user", "content": "alone"},
    ]


def test_chat_turn_run_odd_context_counts_single_messages(visitor, fake_model, settings):
    settings.LLM_CONTEXT_MESSAGES = 3
    for number in range(1, 4):
        fake_model.reply = f"answer {number}"
        run(visitor.session, f"question {number}")

    run(visitor.session, "new")

    assert [turn["content"] for turn in fake_model.calls[-1][1:]] == ["answer 2", "question 3", "answer 3", "new"]


def test_chat_turn_run_context_skips_exchange_still_waiting_for_reply(visitor, fake_model, settings):
    settings.LLM_CONTEXT_MESSAGES = 8
    run(visitor.session, "answered")
    ChatMessage.objects.create(session=visitor.session, kind=ChatMessage.Kind.USER, content="pending")

    run(visitor.session, "new")

    roles = [turn["role"] for turn in fake_model.calls[-1]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "pending" not in [turn["content"] for turn in fake_model.calls[-1]]


def test_chat_turn_run_stores_reply_with_model_bookkeeping(visitor, fake_model):
    turn = run(visitor.session, "Hello")

    reply = ChatMessage.objects.get(pk=turn.reply.pk)
    assert reply.kind == ChatMessage.Kind.ASSISTANT
    assert reply.in_reply_to_id == turn.message.pk
    assert reply.session_id == visitor.session.pk
    assert (reply.content, reply.model, reply.latency_ms) == ("A helpful answer.", "fake-model", 12)
    assert (reply.prompt_tokens, reply.completion_tokens) == (30, 5)
    assert reply.fallback is False


def test_chat_turn_run_counts_messages_against_session(visitor, fake_model):
    run(visitor.session, "one")
    run(visitor.session, "two")

    visitor.session.refresh_from_db()
    assert visitor.session.user_message_count == 2
    assert visitor.session.last_activity_at >= visitor.session.created_at


def test_chat_turn_run_refuses_message_past_cap(visitor, fake_model, settings):
    settings.MAX_MESSAGES_PER_SESSION = 3
    for number in range(3):
        run(visitor.session, f"message {number}")

    with pytest.raises(LimitExceeded) as raised:
        run(visitor.session, "one too many")

    expected_wait = (visitor.session.expires_at - timezone.now()).total_seconds()
    assert "Message limit" in str(raised.value.detail)
    assert abs(raised.value.retry_after - expected_wait) <= 2
    assert ChatMessage.objects.filter(session=visitor.session, kind="user").count() == 3
    assert len(fake_model.calls) == 3


def test_check_chat_turn_refuses_full_session(visitor, settings):
    settings.MAX_MESSAGES_PER_SESSION = 3
    visitor.session.user_message_count = 2
    check_chat_turn(session=visitor.session, message="hello")
    visitor.session.user_message_count = 3

    with pytest.raises(LimitExceeded) as raised:
        check_chat_turn(session=visitor.session, message="hello")

    assert "Message limit" in str(raised.value.detail)
    assert raised.value.retry_after > 24 * 3600 - 5


def test_chat_turn_run_refuses_ended_session(visitor, fake_model):
    ChatSession.objects.filter(pk=visitor.session.pk).update(is_active=False)

    with pytest.raises(SessionEnded):
        run(visitor.session, "hello")

    assert not ChatMessage.objects.filter(session=visitor.session).exists()
    assert fake_model.calls == []


def test_chat_turn_run_same_idempotency_key_answers_once(visitor, fake_model):
    first = run(visitor.session, "only once", idempotency_key="key-1")
    second = run(visitor.session, "only once", idempotency_key="key-1")

    assert (second.message.pk, second.reply.pk) == (first.message.pk, first.reply.pk)
    assert ChatMessage.objects.filter(session=visitor.session, kind="user").count() == 1
    assert len(fake_model.calls) == 1
    visitor.session.refresh_from_db()
    assert visitor.session.user_message_count == 1


def test_chat_turn_run_other_key_stores_new_turn(visitor, fake_model):
    first = run(visitor.session, "same text", idempotency_key="key-1")
    second = run(visitor.session, "same text", idempotency_key="key-2")

    assert second.message.pk != first.message.pk
    assert len(fake_model.calls) == 2


def test_chat_turn_replay_without_stored_key_is_none(visitor):
    assert chat_turn_replay(session=visitor.session, key="never-used") is None


def test_chat_turn_replay_conflicts_while_reply_pending(visitor, settings):
    settings.LLM_TIMEOUT = -5  # the wait for the first request's reply is already over
    ChatMessage.objects.create(session=visitor.session, kind="user", content="slow", idempotency_key="key-1")

    with pytest.raises(IdempotencyConflict):
        async_to_sync(chat_turn_start)(session=visitor.session, message="slow", idempotency_key="key-1")


def test_chat_turn_replay_waits_for_first_reply(visitor, monkeypatch):
    from chat_app import turns

    message = ChatMessage.objects.create(session=visitor.session, kind="user", content="slow", idempotency_key="k")

    @sync_to_async
    def reply_arrives(seconds):
        ChatMessage.objects.create(session=visitor.session, kind="assistant", content="late", in_reply_to=message)

    monkeypatch.setattr(turns.asyncio, "sleep", reply_arrives)

    turn = async_to_sync(chat_turn_start)(session=visitor.session, message="slow", idempotency_key="k")

    assert turn.message.pk == message.pk
    assert turn.reply.content == "late"


def test_chat_turn_run_does_not_swallow_unrelated_integrity_error(visitor, fake_model, monkeypatch):
    from chat_app import services

    def clash(**kwargs):
        raise IntegrityError("some other constraint")

    monkeypatch.setattr(services, "chat_message_store", clash)

    with pytest.raises(IntegrityError):
        run(visitor.session, "hello", idempotency_key="fresh-key")

    assert fake_model.calls == []
