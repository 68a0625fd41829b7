"""The single owner of litellm and openai: the configured model, awaited, whole or as it writes."""

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from types import ModuleType

import orjson
from django.conf import settings

from chat_app.sanitization import control_characters_remove
from usage_app.selectors import CENT_MICRO

logger = logging.getLogger(__name__)

# Before any import of litellm, whoever makes it: litellm otherwise fetches its price map over the
# network at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# litellm's loggers, which it gives a handler of its own (plain text on stdout/stderr) at import.
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
_loading = threading.Lock()


@cache
def litellm_client() -> ModuleType:
    """litellm, imported and set up on first use: a command that calls no model never loads it (~3.5 s).

    The server's master process calls this before it forks (gunicorn.conf.py), so workers share it.
    """
    with _loading:  # two first requests at once: one imports, the other waits for the set-up
        import litellm

        litellm.turn_off_message_logging = True  # prompts and replies never reach litellm's loggers
        litellm.suppress_debug_info = True
        litellm.drop_params = True  # a provider without `temperature` or `max_tokens` still answers
        litellm.disable_streaming_logging = True  # per-chunk logging costs 100+ ms of CPU per streamed reply
        for name in LITELLM_LOGGERS:
            # Its records go to the root handler instead, in the app's format and through its filters.
            logging.getLogger(name).handlers.clear()
        return litellm


class ModelUnavailable(Exception):
    """The model failed, timed out or answered nothing usable."""


class StreamCutOff(Exception):
    """The model's stream ended before it said the reply was finished."""


class StreamError(Exception):
    """The model sent an error in place of the next chunk."""


@dataclass(frozen=True)
class Completion:
    """A whole reply and what it cost: the model that answered, its latency, tokens and price."""

    content: str
    model: str
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: Decimal | None
    usage_estimated: bool = False  # the provider sent no usage: counted here with litellm's token counter


@dataclass(frozen=True)
class Route:
    """How the configured model is reached: an OpenAI-compatible endpoint directly, else through litellm."""

    openai_compatible: bool
    model: str  # the name the endpoint knows (an OpenAI-compatible one without litellm's prefix)
    api_base: str | None
    api_key: str | None


@lru_cache(maxsize=8)
def _route(model: str, api_base: str | None, api_key: str | None) -> Route:
    """An OpenAI-compatible endpoint speaks the openai SDK's protocol, so the SDK calls it: a reply
    costs about half the CPU litellm's wrapper adds around the same SDK call (bench/stream_cpu.py)."""
    name, provider, _key, _base = litellm_client().get_llm_provider(model=model, api_base=api_base)
    if provider == "openai":
        return Route(openai_compatible=True, model=name, api_base=api_base, api_key=api_key)
    return Route(openai_compatible=False, model=model, api_base=api_base, api_key=api_key)


def _current_route() -> Route:
    return _route(settings.LLM_MODEL, settings.LLM_API_BASE, settings.LLM_API_KEY)


# One client (one HTTP connection pool) per event loop: a client is bound to the loop it first ran on.
_openai_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def _openai_client(route: Route):
    import openai

    per_loop = _openai_clients.setdefault(asyncio.get_running_loop(), {})
    key = (route.api_base, route.api_key, settings.LLM_TIMEOUT)
    if key not in per_loop:
        # No retries: the visitor waits, and a retry would break the LLM_TIMEOUT bound.
        per_loop[key] = openai.AsyncOpenAI(
            base_url=route.api_base, api_key=route.api_key, timeout=settings.LLM_TIMEOUT, max_retries=0
        )
    return per_loop[key]


def _request(messages: list[dict[str, str]]) -> dict:
    return {"messages": messages, "max_tokens": settings.LLM_MAX_TOKENS, "temperature": settings.LLM_TEMPERATURE}


def _litellm_arguments(route: Route, messages: list[dict[str, str]]) -> dict:
    endpoint = {"model": route.model, "api_key": route.api_key, "api_base": route.api_base}
    return {**endpoint, "timeout": settings.LLM_TIMEOUT, "num_retries": 0, "max_retries": 0, **_request(messages)}


async def chat_complete(*, messages: list[dict[str, str]]) -> Completion:
    """Ask the configured model for one reply, bounded as a whole by LLM_TIMEOUT.

    Raises ModelUnavailable on any failure, a timeout or an empty answer.
    """
    started = time.perf_counter()
    try:
        route = _current_route()
        async with asyncio.timeout(settings.LLM_TIMEOUT):
            if route.openai_compatible:
                answer = await _openai_answer(route, messages)
            else:
                response = await litellm_client().acompletion(**_litellm_arguments(route, messages))
                answer = _object_chunk(response, "message")
    except Exception as exc:  # the boundary: any failure of the call is the visitor's fallback reply
        logger.warning("model call failed: %s", type(exc).__name__)
        raise ModelUnavailable(type(exc).__name__) from exc
    content = answer.text
    if isinstance(content, str):
        content = control_characters_remove(content)  # untrusted text: no NUL or lone surrogate reaches the database
    if not isinstance(content, str) or not content.strip():
        logger.warning("model answered with no text")
        raise ModelUnavailable("empty reply")
    return _completion(
        content[: settings.LLM_MAX_REPLY_CHARS],
        model=answer.model,
        started=started,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        messages=messages,
    )


async def _openai_post(route: Route, body: dict, *, stream: bool = False):
    """A chat completion request sent by the openai SDK as given, its answer raw.

    The SDK's documented way to make a request as built ("Making custom/undocumented requests":
    `client.post(path, cast_to=httpx.Response, body=...)`): the typed `create()` first walks the
    whole context through its parameter transform, about 1.5 ms of CPU a call, more than the rest
    of the call (bench/stream_cpu.py). Failures still come out as the SDK's own errors.
    """
    import httpx

    return await _openai_client(route).post("/chat/completions", cast_to=httpx.Response, body=body, stream=stream)


async def _openai_answer(route: Route, messages: list[dict[str, str]]) -> "_Chunk":
    response = await _openai_post(route, {"model": route.model, **_request(messages)})
    return _json_chunk(_json_loads(response.content), "message")


def _completion(
    content: str, *, model, started: float, prompt_tokens, completion_tokens, messages: list[dict[str, str]]
) -> Completion:
    """The reply with its usage: the provider's counts; counted here when it sent none at all; none
    when it sent nonsense (not a whole number, negative), which is never guessed over."""
    answered = str(model or settings.LLM_MODEL)[:128]
    estimated = prompt_tokens is None and completion_tokens is None
    if estimated:
        prompt_tokens, completion_tokens = _tokens_counted(messages, content)
        estimated = prompt_tokens is not None
    prompt_tokens, completion_tokens = _token_count(prompt_tokens), _token_count(completion_tokens)
    return Completion(
        content=content,
        model=answered,
        latency_ms=int((time.perf_counter() - started) * 1000),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=_cost(answered, prompt_tokens, completion_tokens),
        usage_estimated=estimated,
    )


def _token_count(value) -> int | None:
    """A provider's token count, or None when it sent none or nonsense (not a whole number, negative)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _tokens_counted(messages: list[dict[str, str]], content: str) -> tuple[int | None, int | None]:
    """The prompt's and the reply's tokens by litellm's counter (the model's tokenizer, else tiktoken's)."""
    litellm = litellm_client()
    try:
        prompt = litellm.token_counter(model=settings.LLM_MODEL, messages=messages)
        reply = litellm.token_counter(model=settings.LLM_MODEL, text=content, count_response_tokens=True)
    except Exception as exc:  # noqa: BLE001 - a counter failing leaves the figures empty, never the reply
        logger.warning("tokens could not be counted: %s", type(exc).__name__)
        return None, None
    return prompt, reply


_MILLION = Decimal(1_000_000)
_unpriced: set[str] = set()  # models already warned about, once per process


def _cost(answered: str, prompt_tokens: int | None, completion_tokens: int | None) -> Decimal | None:
    """The reply's price: LLM_INPUT/OUTPUT_COST_PER_MILLION where set, else litellm's price map for the
    configured model (then the one that answered); None, with a warning once per model, when unpriced."""
    if prompt_tokens is None or completion_tokens is None:
        return None
    input_price, output_price = settings.LLM_INPUT_COST_PER_MILLION, settings.LLM_OUTPUT_COST_PER_MILLION
    if input_price is None or output_price is None:
        mapped = next(filter(None, map(_mapped_prices, dict.fromkeys((settings.LLM_MODEL, answered)))), None)
        if mapped is None:
            if answered not in _unpriced:
                _unpriced.add(answered)
                logger.warning(
                    "no price for model %s: its replies store no cost; set LLM_INPUT_COST_PER_MILLION and "
                    "LLM_OUTPUT_COST_PER_MILLION",
                    answered,
                )
            return None
        input_price = mapped[0] if input_price is None else input_price
        output_price = mapped[1] if output_price is None else output_price
    return ((prompt_tokens * input_price + completion_tokens * output_price) / _MILLION).quantize(CENT_MICRO)


_PROBE_TOKENS = 1000  # well below any tier of a price map (some models cost more past 128k prompt tokens)


@lru_cache(maxsize=32)
def _mapped_prices(model: str) -> tuple[Decimal, Decimal] | None:
    """litellm's prices of `model` in USD per million prompt and completion tokens, looked up once per
    model; None when its map does not have the model."""
    try:
        prompt, completion = litellm_client().cost_per_token(
            model=model, prompt_tokens=_PROBE_TOKENS, completion_tokens=_PROBE_TOKENS
        )
    except Exception:  # noqa: BLE001 - litellm raises for a model missing from its map
        return None
    scale = _MILLION / _PROBE_TOKENS
    return Decimal(repr(prompt)) * scale, Decimal(repr(completion)) * scale


@dataclass
class _Chunk:
    text: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: object = None
    completion_tokens: object = None


class ModelStream:
    """The configured model's reply as it writes it.

    `async for piece in stream.pieces()` yields the text; once it ends, `completion` holds the whole
    reply with its usage. Raises ModelUnavailable when the call fails or the stream breaks; closing
    the iterator early closes the model's HTTP stream, which cancels the call. `so_far()` is what
    arrived before a break: the text, the model and the time, without usage.
    """

    def __init__(self, messages: list[dict[str, str]]) -> None:
        self.messages = messages
        self.completion: Completion | None = None
        self._parts: list[str] = []
        self._said = _Chunk()
        self._started = time.perf_counter()

    async def pieces(self) -> AsyncIterator[str]:
        self._started = time.perf_counter()
        room = settings.LLM_MAX_REPLY_CHARS
        finished = False
        try:
            async for chunk in self._chunks():
                self._said = _merged(self._said, chunk)
                text = control_characters_remove(chunk.text) if isinstance(chunk.text, str) else None
                if text and room > 0 and not finished:
                    self._parts.append(text[:room])
                    room -= len(text)
                    yield self._parts[-1]
                if room <= 0:
                    break  # capped: stop reading, and closing the stream stops the model writing
                finished = finished or bool(chunk.finish_reason)
            else:
                if not finished:
                    raise StreamCutOff()
        except Exception as exc:  # a stream that failed to start or broke mid-way
            if not finished:
                logger.warning("model stream broke: %s", type(exc).__name__)
                raise ModelUnavailable(type(exc).__name__) from exc
            # The reply is whole (its finish reason came): what broke is the usage chunk after it, which
            # litellm refuses when its counts are no counts. The reply is kept, its figures empty.
            logger.warning("model usage unreadable: %s", type(exc).__name__)
            self._said = _merged(self._said, _Chunk(prompt_tokens=_UNREADABLE, completion_tokens=_UNREADABLE))
        said = self._said
        self.completion = _completion(
            "".join(self._parts),
            model=said.model,
            started=self._started,
            prompt_tokens=said.prompt_tokens,
            completion_tokens=said.completion_tokens,
            messages=self.messages,
        )

    @property
    def text(self) -> str:
        """The reply's text so far."""
        return "".join(self._parts)

    def so_far(self) -> Completion:
        """What arrived before the stream broke off; the provider sends no usage then, so it is counted."""
        return _completion(
            "".join(self._parts),
            model=self._said.model,
            started=self._started,
            prompt_tokens=None,
            completion_tokens=None,
            messages=self.messages,
        )

    async def _chunks(self) -> AsyncIterator[_Chunk]:
        route = _current_route()
        if route.openai_compatible:
            async for chunk in _openai_chunks(route, self.messages):
                yield chunk
        else:
            async for chunk in _litellm_chunks(route, self.messages):
                yield chunk


def _merged(last: _Chunk, chunk: _Chunk) -> _Chunk:
    """What the stream has said so far: the model's name and its usage arrive in some chunk or other."""
    return _Chunk(
        model=chunk.model or last.model,
        prompt_tokens=chunk.prompt_tokens if chunk.prompt_tokens is not None else last.prompt_tokens,
        completion_tokens=chunk.completion_tokens if chunk.completion_tokens is not None else last.completion_tokens,
    )


_UNREADABLE = "unreadable"  # a usage that came but could not be read: not counted here, left empty
# The usage comes in one more chunk after the finish reason, when asked for.
_STREAM_OPTIONS = {"include_usage": True}


async def _openai_chunks(route: Route, messages: list[dict[str, str]]) -> AsyncIterator[_Chunk]:
    """An OpenAI-compatible stream read from its raw event lines, as plain JSON.

    The SDK's own chunk objects cost about 0.1 ms of CPU each (pydantic), 20 ms for a 200-chunk reply;
    the raw answer of _openai_post hands the lines over instead. The rules are the SDK's: `[DONE]`
    ends the stream, an `error` member is an error.
    """
    request = {"model": route.model, "stream": True, "stream_options": _STREAM_OPTIONS, **_request(messages)}
    response = await _openai_post(route, request, stream=True)
    lines = response.aiter_lines()
    try:
        async for line in lines:
            if not line.startswith("data:"):
                continue  # blank separators, comments, event names
            data = line[5:].strip()
            if data.startswith("[DONE]"):
                break
            event = _json_loads(data)
            if event.get("error"):
                raise StreamError()
            yield _json_chunk(event, "delta")
        else:
            return
        await _body_end_read(lines)
    finally:
        await response.aclose()  # early too (capped, or the visitor left): the model's stream is closed


_BODY_END_SECONDS = 1.0


async def _body_end_read(lines: AsyncIterator[str]) -> None:
    """Read on past `[DONE]` to the end of the body, which follows at once: a response read to its end
    leaves its connection to the pool for the next call, where closing it early costs a new connection
    (a TCP, or TLS, handshake) on every stream. A server still writing after a second stops the wait."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_BODY_END_SECONDS):
            async for _ in lines:
                pass


async def _litellm_chunks(route: Route, messages: list[dict[str, str]]) -> AsyncIterator[_Chunk]:
    """Any other provider, through litellm's stream wrapper, which turns its chunks into OpenAI's."""
    arguments = _litellm_arguments(route, messages)
    stream = await litellm_client().acompletion(**arguments, stream=True, stream_options=_STREAM_OPTIONS)
    async for chunk in stream:
        yield _object_chunk(chunk, "delta")


def _json_loads(data: bytes | str) -> dict:
    """orjson, or the standard library for the JSON orjson refuses: a lone surrogate escape (`\\ud800`)
    is valid JSON, and a model may write one; the text is cleaned of it before it is stored."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _json_chunk(event: dict, part: str) -> "_Chunk":
    """What an OpenAI-format answer (`part` "message") or stream event ("delta") says, read from its JSON."""
    choice = (event.get("choices") or [{}])[0]
    usage = event.get("usage") or {}
    return _Chunk(
        text=(choice.get(part) or {}).get("content"),
        finish_reason=choice.get("finish_reason"),
        model=event.get("model"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _object_chunk(response, part: str) -> "_Chunk":
    """The same, read from litellm's objects."""
    choice = response.choices[0] if response.choices else None
    usage = getattr(response, "usage", None)
    return _Chunk(
        text=getattr(getattr(choice, part, None), "content", None),
        finish_reason=getattr(choice, "finish_reason", None),
        model=getattr(response, "model", None),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
    )


NO_MODEL_CONFIGURED = (
    "no model is configured, so every chat gets the fallback reply: set LLM_MODEL and LLM_API_KEY (or LLM_API_BASE "
    "for an OpenAI-compatible server), see the README, Using a real model"
)


def model_client_prepare() -> None:
    """At server start: load the model client before a visitor waits on it; say once if no model is configured."""
    litellm_client()
    if not llm_is_configured():
        logger.warning(NO_MODEL_CONFIGURED)


def llm_is_configured() -> bool:
    """True when the model has credentials or an endpoint of its own to call."""
    return _configured(settings.LLM_MODEL, bool(settings.LLM_API_KEY), bool(settings.LLM_API_BASE))


@lru_cache(maxsize=8)
def _configured(model: str, has_key: bool, has_base: bool) -> bool:
    if has_key or has_base:
        return True
    try:
        # validate_environment reports an unknown provider as having all its keys; resolve it first.
        litellm = litellm_client()
        litellm.get_llm_provider(model=model)
        return bool(litellm.validate_environment(model=model).get("keys_in_environment"))
    except Exception:  # noqa: BLE001 - an unknown provider string is simply unconfigured
        return False
