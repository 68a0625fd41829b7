"""The model call through the real litellm client to the stub server over a real socket."""

import time
from decimal import Decimal

import pytest

from chat_app import llm
from chat_app.models import ChatMessage
from chat_app.services import FALLBACK_REPLY

pytestmark = pytest.mark.django_db


def test_chat_reaches_model_over_socket_and_stores_usage(visitor_client, model_server):
    response = visitor_client.post("/api/v1/chat", {"message": "Hello there"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["response"] == "Stub reply to: Hello there"
    assert body["fallback"] is False
    sent = model_server.behaviour.requests[-1]
    assert sent["model"] == "stub-model"
    assert sent["messages"][-1] == {"role": "user", "content": "Hello there"}
    assert sent["messages"][0]["role"] == "system"


def test_chat_stores_model_usage_on_reply_over_socket(visitor_client, model_server):
    body = visitor_client.post("/api/v1/chat", {"message": "Count my tokens"}, format="json").json()

    reply = ChatMessage.objects.get(pk=body["response_id"])
    assert (reply.prompt_tokens, reply.completion_tokens) == (11, 7)
    assert reply.model.endswith("stub-model")
    assert reply.latency_ms is not None
    assert reply.fallback is False
    assert reply.in_reply_to_id == body["message_id"]


def test_chat_sends_context_and_settings_over_socket(visitor_client, model_server, settings):
    settings.LLM_MAX_TOKENS = 123
    visitor_client.post("/api/v1/chat", {"message": "first"}, format="json")

    visitor_client.post("/api/v1/chat", {"message": "second"}, format="json")

    sent = model_server.behaviour.requests[-1]
    assert [(m["role"], m["content"]) for m in sent["messages"][1:]] == [
        ("user", "first"),
        ("assistant", "Stub reply to: first"),
        ("user", "second"),
    ]
    assert sent["max_tokens"] == 123


@pytest.mark.parametrize("mode", ["error", "garbage", "empty"])
def test_chat_falls_back_when_model_misbehaves_over_socket(visitor_client, model_server, mode):
    model_server.behaviour.mode = mode

    response = visitor_client.post("/api/v1/chat", {"message": "Hello"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["response"], body["fallback"]) == (FALLBACK_REPLY, True)
    assert len(model_server.behaviour.requests) == 1  # no retry behind the visitor's back
    assert ChatMessage.objects.get(pk=body["message_id"]).content == "Hello"


def test_chat_falls_back_within_timeout_when_model_hangs(visitor_client, model_server, settings):
    settings.LLM_TIMEOUT = 1
    model_server.behaviour.mode = "hang"

    started = time.monotonic()
    response = visitor_client.post("/api/v1/chat", {"message": "Anyone there?"}, format="json")
    elapsed = time.monotonic() - started

    assert elapsed < 4
    assert response.status_code == 200
    assert response.json()["fallback"] is True
    assert ChatMessage.objects.get(pk=response.json()["message_id"]).content == "Anyone there?"


def test_chat_complete_raises_model_unavailable_on_refused_connection(settings):
    settings.LLM_API_BASE = "http://127.0.0.1:9/v1"  # discard port: nothing listens

    with pytest.raises(llm.ModelUnavailable):
        llm.chat_complete(messages=[{"role": "user", "content": "hi"}])


def test_chat_stores_cost_when_litellm_knows_it(visitor_client, model_server, settings):
    settings.LLM_MODEL = "openai/gpt-4o-mini"  # in litellm's price map; the stub answers 11 + 7 tokens

    body = visitor_client.post("/api/v1/chat", {"message": "Price me"}, format="json").json()

    # 11 x $0.15 + 7 x $0.60 per million tokens
    assert ChatMessage.objects.get(pk=body["response_id"]).cost_usd == Decimal("0.00000585")


def test_chat_stores_no_cost_when_model_is_not_priced(visitor_client, model_server):
    body = visitor_client.post("/api/v1/chat", {"message": "Price me"}, format="json").json()

    assert ChatMessage.objects.get(pk=body["response_id"]).cost_usd is None


def test_client_warm_up_makes_no_model_request(model_server):
    llm.client_warm_up()

    assert model_server.behaviour.requests == []  # mocked: nothing reached the model


# The openai SDK's own chunks (an OpenAI-compatible endpoint), and litellm's stream wrapper (a
# provider whose chunks litellm converts; hosted_vllm talks to the same stub).
STREAMING_PROVIDERS = ["openai/stub-model", "hosted_vllm/stub-model"]
HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("model", STREAMING_PROVIDERS)
def test_chat_stream_yields_the_whole_reply_over_socket(model_server, settings, model):
    settings.LLM_MODEL = model
    model_server.behaviour.reply = "one two three four five six"
    model_server.behaviour.chunks = 6

    assert "".join(llm.chat_stream(messages=HELLO)) == "one two three four five six"


@pytest.mark.parametrize("model", STREAMING_PROVIDERS)
@pytest.mark.parametrize("mode", ["broken", "unfinished", "stream_error"])
def test_chat_stream_cut_off_before_its_finish_raises_model_unavailable(model_server, settings, model, mode):
    settings.LLM_MODEL = model
    model_server.behaviour.mode = mode
    model_server.behaviour.reply = "one two three four five six"
    model_server.behaviour.chunks = 6

    received = []
    with pytest.raises(llm.ModelUnavailable):
        for piece in llm.chat_stream(messages=HELLO):
            received.append(piece)
    sent = "".join(received)  # half of it, or (unfinished) all of it but never said to be complete
    assert sent and model_server.behaviour.reply.startswith(sent)


READERS = [("openai/stub-model", "_openai_events_parts"), ("hosted_vllm/stub-model", "_wrapped_chunks_parts")]


@pytest.mark.parametrize(("model", "reader"), READERS)
def test_an_openai_compatible_stream_is_read_as_json_not_through_the_wrapper(model_server, settings, model, reader):
    settings.LLM_MODEL = model
    stream = llm.litellm_client().completion(**llm._completion_arguments(HELLO), stream=True)
    try:
        parts = llm._reply_parts(stream)
        assert parts.__name__ == reader  # the JSON reader costs a fifth of the CPU (bench/stream_cpu.py)
        assert "".join(text for text, _ in parts if text) == "Stub reply to: hi"
    finally:
        stream.close()
