"""The single owner of litellm: one typed call to the configured model, nothing else imports it."""

import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as DeadlinePassed
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from types import ModuleType

from django.conf import settings

from chat_app.sanitization import control_characters_remove

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


# The client's timeout bounds each socket read, not the call: a model trickling its answer a byte at a
# time would hold the visitor for ever. Calls run here, and the visitor waits LLM_TIMEOUT at most.
_model_calls = ThreadPoolExecutor(max_workers=512, thread_name_prefix="model-call")


class ModelUnavailable(Exception):
    """The model failed, timed out or answered nothing usable."""


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: Decimal | None


def _completion_arguments(messages: list[dict[str, str]]) -> dict:
    return {
        "model": settings.LLM_MODEL,
        "messages": messages,
        "api_key": settings.LLM_API_KEY,
        "api_base": settings.LLM_API_BASE,
        "timeout": settings.LLM_TIMEOUT,
        "max_tokens": settings.LLM_MAX_TOKENS,
        "temperature": settings.LLM_TEMPERATURE,
        "num_retries": 0,
        "max_retries": 0,  # the visitor waits; a retry would break the LLM_TIMEOUT bound
    }


def chat_complete(*, messages: list[dict[str, str]]) -> Completion:
    """Ask the configured model for one reply; raise ModelUnavailable on any failure."""
    started = time.perf_counter()
    try:
        response = _completion_within_deadline(_completion_arguments(messages))
        content = response.choices[0].message.content
    except Exception as exc:
        logger.warning("model call failed: %s", type(exc).__name__)
        raise ModelUnavailable(type(exc).__name__) from exc
    if isinstance(content, str):
        content = control_characters_remove(content)  # untrusted text: no NUL or lone surrogate reaches the database
    if not isinstance(content, str) or not content.strip():
        logger.warning("model answered with no text")
        raise ModelUnavailable("empty reply")
    usage = getattr(response, "usage", None)
    return Completion(
        content=content[: settings.LLM_MAX_REPLY_CHARS],
        model=str(getattr(response, "model", None) or settings.LLM_MODEL)[:128],
        latency_ms=int((time.perf_counter() - started) * 1000),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        cost_usd=_cost_of(response),
    )


def _completion_within_deadline(arguments: dict):
    call = _model_calls.submit(litellm_client().completion, **arguments)
    try:
        return call.result(timeout=settings.LLM_TIMEOUT)
    except DeadlinePassed:
        call.cancel()  # a call still queued never starts; a running one ends with its socket
        raise


def chat_stream(*, messages: list[dict[str, str]]) -> Iterator[str]:
    """Yield the reply's text as the model produces it; raise ModelUnavailable on any failure.

    Closing the iterator early closes the model's HTTP stream, which cancels the call.
    """
    try:
        stream = litellm_client().completion(**_completion_arguments(messages), stream=True)
    except Exception as exc:  # the boundary, as in chat_complete
        logger.warning("model stream failed to start: %s", type(exc).__name__)
        raise ModelUnavailable(type(exc).__name__) from exc
    room = settings.LLM_MAX_REPLY_CHARS
    try:
        for piece, finish_reason in _reply_parts(stream):
            piece = control_characters_remove(piece) if isinstance(piece, str) else None
            if piece and room > 0:
                yield piece[:room]
                room -= len(piece)
            if room <= 0:
                break  # capped: stop reading, and closing the stream stops the model writing
            if finish_reason:
                # The text is complete. Reading on would only make litellm's wrapper (other
                # providers) rebuild the whole reply for its usage logging, a quarter of their CPU.
                break
        else:  # the stream ended with no finish reason: cut off, not complete
            raise StreamCutOff()
    except Exception as exc:  # a stream broken mid-way
        logger.warning("model stream broke: %s", type(exc).__name__)
        raise ModelUnavailable(type(exc).__name__) from exc
    finally:
        stream.close()


class StreamCutOff(Exception):
    """The model's stream ended before it said the reply was finished."""


class StreamError(Exception):
    """The model sent an error in place of the next chunk."""


def _reply_parts(stream) -> Iterator[tuple[object, object]]:
    """The text and the finish reason of each chunk of the model's stream (either may be None).

    litellm's stream wrapper turns every provider's chunks into OpenAI's, and the openai SDK builds
    pydantic objects of each: together about 0.5 ms of CPU per chunk, 100 ms and more for a 200-chunk
    reply (bench/stream_cpu.py). An OpenAI-compatible endpoint sends OpenAI's format already, so its
    events (parsed by the SDK's own SSE decoder) are read as the JSON they are; every other provider
    goes through the wrapper. What the wrapper would add here is unused: per-chunk logging (off),
    usage and cost (not reported in a stream), a guard against a model repeating itself (bounded by
    LLM_MAX_REPLY_CHARS).
    """
    import openai  # litellm's own client for OpenAI-compatible endpoints, loaded with it

    provider_stream = getattr(stream, "completion_stream", None)
    if isinstance(provider_stream, openai.Stream) and hasattr(provider_stream, "_iter_events"):
        return _openai_events_parts(provider_stream)
    return _wrapped_chunks_parts(stream)


def _openai_events_parts(provider_stream) -> Iterator[tuple[object, object]]:
    # The same rules as the SDK's Stream.__stream__: [DONE] ends it, an `error` member is an error.
    for event in provider_stream._iter_events():
        if event.data.startswith("[DONE]"):
            return
        data = json.loads(event.data)
        if data.get("error"):
            raise StreamError()
        choices = data.get("choices") or [{}]
        delta = choices[0].get("delta") or {}
        yield delta.get("content"), choices[0].get("finish_reason")


def _wrapped_chunks_parts(stream) -> Iterator[tuple[object, object]]:
    for chunk in stream:
        if chunk.choices:
            yield chunk.choices[0].delta.content, chunk.choices[0].finish_reason


# What a real call imports on top of a mocked one: the HTTP transport, and litellm's service logger.
_TRANSPORT_MODULES = (
    "httpcore._sync.connection_pool",
    "httpcore._sync.http11",
    "httpcore._sync.http2",
    "h11",
    "litellm._service_logger",
)


def client_warm_up() -> None:
    """Import everything litellm imports lazily on its first completion and first stream.

    The calls are mocked (litellm's `mock_response`: no network, no credentials). litellm starts its
    logging threads on the way, so gunicorn.conf.py runs this in a throwaway child of the master and
    only imports, in the master, the modules it reports.
    """
    litellm = litellm_client()
    messages = [{"role": "user", "content": "warm-up"}]
    litellm.completion(model=settings.LLM_MODEL, messages=messages, mock_response="warm-up")
    for _chunk in litellm.completion(model=settings.LLM_MODEL, messages=messages, mock_response="warm up", stream=True):
        pass
    for name in _TRANSPORT_MODULES:
        importlib.import_module(name)


def _cost_of(response) -> Decimal | None:
    """The cost litellm worked out while it handled the response (None for a model it has no price for).

    Read where litellm documents it, not recomputed: completion_cost() would cost 0.3 to 0.5 ms more.
    """
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    return Decimal(str(round(cost, 8))) if isinstance(cost, int | float) and cost > 0 else None


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
