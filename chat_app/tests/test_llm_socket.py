"""The model call through the real clients (the openai SDK, litellm) to the stub server over a real socket."""

import time
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from chat_app import llm
from chat_app.models import ChatMessage
from chat_app.services import FALLBACK_REPLY
from chat_app.warm_up import client_warm_up

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
        async_to_sync(llm.chat_complete)(messages=[{"role": "user", "content": "hi"}])


def test_chat_stores_cost_when_litellm_knows_it(visitor_client, model_server, settings):
    settings.LLM_MODEL = "openai/gpt-4o-mini"  # in litellm's price map; the stub answers 11 + 7 tokens

    body = visitor_client.post("/api/v1/chat", {"message": "Price me"}, format="json").json()

    # 11 x $0.15 + 7 x $0.60 per million tokens
    assert ChatMessage.objects.get(pk=body["response_id"]).cost_usd == Decimal("0.00000585")


def test_chat_stores_no_cost_when_model_is_not_priced(visitor_client, model_server):
    body = visitor_client.post("/api/v1/chat", {"message": "Price me"}, format="json").json()

    assert ChatMessage.objects.get(pk=body["response_id"]).cost_usd is None


def test_client_warm_up_makes_no_model_request(model_server, caplog, monkeypatch):
    monkeypatch.setattr(llm, "_unpriced", set())
    client_warm_up()

    assert model_server.behaviour.requests == []  # mocked: nothing reached the model
    assert "no price for model" not in caplog.text  # the made-up models warn of nothing at each start


# An OpenAI-compatible endpoint, read by the openai SDK as raw lines; and a provider litellm's stream
# wrapper converts (hosted_vllm talks to the same stub).
STREAMING_PROVIDERS = ["openai/stub-model", "hosted_vllm/stub-model"]
HELLO = [{"role": "user", "content": "hi"}]


def stream_read(stream: llm.ModelStream) -> list[str]:
    """The pieces of the stream, read to their end (or, raising, as far as they went: in stream.so_far())."""

    async def read():
        return [piece async for piece in stream.pieces()]

    return async_to_sync(read)()


@pytest.mark.parametrize("model", STREAMING_PROVIDERS)
def test_chat_stream_yields_the_whole_reply_over_socket(model_server, settings, model):
    settings.LLM_MODEL = model
    model_server.behaviour.reply = "one two three four five six"
    model_server.behaviour.chunks = 6

    assert "".join(stream_read(llm.ModelStream(HELLO))) == "one two three four five six"


@pytest.mark.parametrize("model", STREAMING_PROVIDERS)
def test_chat_stream_asks_for_usage_and_keeps_it_with_the_model_that_answered(model_server, settings, model):
    settings.LLM_MODEL = model
    stream = llm.ModelStream(HELLO)

    stream_read(stream)

    assert model_server.behaviour.requests[-1]["stream_options"] == {"include_usage": True}
    assert (stream.completion.prompt_tokens, stream.completion.completion_tokens) == (11, 7)
    assert stream.completion.model.endswith("stub-model")
    assert stream.completion.content == "Stub reply to: hi"


def test_streams_one_after_another_reuse_the_models_connection(model_server):
    # A stream closed at its `[DONE]` without reading the body's end would cost a new connection each.
    async def two_streams():
        for _ in range(2):
            assert "".join([piece async for piece in llm.ModelStream(HELLO).pieces()]) == "Stub reply to: hi"

    async_to_sync(two_streams)()

    assert len(model_server.behaviour.requests) == 2
    assert model_server.behaviour.connections == 1


def test_a_stream_whose_body_goes_on_after_done_ends_a_second_later(model_server):
    model_server.behaviour.mode = "linger"
    stream = llm.ModelStream(HELLO)
    started = time.monotonic()

    assert "".join(stream_read(stream)) == "Stub reply to: hi"

    assert time.monotonic() - started < 3  # not the 5 s the server lingers
    assert (stream.completion.prompt_tokens, stream.completion.completion_tokens) == (11, 7)


def test_a_reply_with_nonsense_usage_keeps_its_figures_empty(model_server):
    model_server.behaviour.usage = "nonsense"
    stream = llm.ModelStream(HELLO)

    stream_read(stream)
    completion = async_to_sync(llm.chat_complete)(messages=HELLO)

    for answer in (stream.completion, completion):
        assert (answer.content, answer.prompt_tokens, answer.completion_tokens, answer.cost_usd) == (
            "Stub reply to: hi", None, None, None,
        )  # fmt: skip
        assert answer.usage_estimated is False  # nonsense is not guessed over


def test_through_litellm_a_stream_whose_usage_is_nonsense_keeps_its_reply(model_server, settings):
    """litellm refuses the usage chunk after the finish reason; the reply is whole, so it is kept. (A whole
    reply through litellm with such a usage is refused by litellm itself: the visitor gets the fallback.)"""
    settings.LLM_MODEL = "hosted_vllm/stub-model"
    model_server.behaviour.usage = "nonsense"
    stream = llm.ModelStream(HELLO)

    stream_read(stream)

    answer = stream.completion
    assert (answer.content, answer.prompt_tokens, answer.completion_tokens, answer.usage_estimated) == (
        "Stub reply to: hi", None, None, False,
    )  # fmt: skip
    with pytest.raises(llm.ModelUnavailable):
        async_to_sync(llm.chat_complete)(messages=HELLO)


def test_a_reply_without_usage_is_counted_with_litellms_token_counter(model_server):
    model_server.behaviour.usage = "none"
    stream = llm.ModelStream(HELLO)

    stream_read(stream)
    completion = async_to_sync(llm.chat_complete)(messages=HELLO)

    litellm = llm.litellm_client()
    for answer in (stream.completion, completion):
        assert answer.usage_estimated is True
        assert answer.prompt_tokens == litellm.token_counter(model="openai/stub-model", messages=HELLO)
        assert answer.completion_tokens == litellm.token_counter(
            model="openai/stub-model", text="Stub reply to: hi", count_response_tokens=True
        )


def test_through_litellm_a_reply_without_usage_has_litellms_own_count(model_server, settings):
    """litellm counts a stream's tokens itself when the provider sends none, and does not say so."""
    settings.LLM_MODEL = "hosted_vllm/stub-model"
    model_server.behaviour.usage = "none"
    stream = llm.ModelStream(HELLO)

    stream_read(stream)

    assert stream.completion.prompt_tokens > 0 and stream.completion.completion_tokens > 0


def test_a_failing_token_counter_leaves_the_figures_empty(model_server, monkeypatch, caplog):
    model_server.behaviour.usage = "none"
    monkeypatch.setattr(llm.litellm_client(), "token_counter", lambda **_: 1 / 0)

    completion = async_to_sync(llm.chat_complete)(messages=HELLO)

    assert (completion.content, completion.prompt_tokens, completion.usage_estimated) == (
        "Stub reply to: hi",
        None,
        False,
    )
    assert "tokens could not be counted: ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("model", STREAMING_PROVIDERS)
@pytest.mark.parametrize("mode", ["broken", "unfinished", "stream_error"])
def test_chat_stream_cut_off_before_its_finish_raises_model_unavailable(model_server, settings, model, mode):
    settings.LLM_MODEL = model
    model_server.behaviour.mode = mode
    model_server.behaviour.reply = "one two three four five six"
    model_server.behaviour.chunks = 6
    stream = llm.ModelStream(HELLO)

    with pytest.raises(llm.ModelUnavailable):
        stream_read(stream)

    sent = stream.so_far().content  # half of it, or (unfinished) all of it but never said to be complete
    assert sent and model_server.behaviour.reply.startswith(sent)


ROUTES = [("openai/stub-model", True), ("hosted_vllm/stub-model", False), ("gemini/gemini-2.5-flash", False)]


@pytest.mark.parametrize(("model", "direct"), ROUTES)
def test_an_openai_compatible_endpoint_is_called_through_the_openai_sdk_directly(settings, model, direct):
    settings.LLM_MODEL = model

    route = llm._current_route()

    assert route.openai_compatible is direct  # the SDK alone costs about half of litellm's wrapper around it
    assert route.model == ("stub-model" if direct else model)
