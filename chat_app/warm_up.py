"""The model clients' first calls, made before any visitor waits on them: all they import lazily is imported."""

import asyncio
import re
from decimal import Decimal

from django.conf import settings

from chat_app import llm

# What an OpenAI-compatible endpoint answers, whole and streamed (the usage after the finish reason).
_COMPLETION = (
    b'{"model": "warm-up", "usage": {"prompt_tokens": 1, "completion_tokens": 1},'
    b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "warm"}, "finish_reason": "stop"}]}'
)
_STREAM = (
    b'data: {"choices": [{"index": 0, "delta": {"content": "warm"}, "finish_reason": "stop"}]}\n\n'
    b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}\n\ndata: [DONE]\n\n'
)
_MESSAGES = [{"role": "user", "content": "warm-up"}]


async def _canned_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    body = await reader.readexactly(int(length[1])) if length else b""
    answer = _STREAM if re.search(rb'"stream": *true', body) else _COMPLETION
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer))
    await writer.drain()
    writer.close()


def client_warm_up() -> None:
    """A whole reply and a stream on each path (the openai SDK's and litellm's), from a canned answer on
    loopback: the real clients and transports, no model and no credentials.

    litellm starts its logging threads on the way, so gunicorn.conf.py runs this in a throwaway child
    of the master (whose settings it changes) and only imports, in the master, the modules it reports.
    """

    async def calls() -> None:
        server = await asyncio.start_server(_canned_answer, "127.0.0.1", 0)
        settings.LLM_API_BASE = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        settings.LLM_API_KEY = "warm-up"
        # Priced, so the made-up models raise no "no price" warning at every start.
        settings.LLM_INPUT_COST_PER_MILLION = settings.LLM_OUTPUT_COST_PER_MILLION = Decimal(0)
        for model in ("openai/warm-up", "hosted_vllm/warm-up"):
            settings.LLM_MODEL = model
            await llm.chat_complete(messages=_MESSAGES)
            async for _piece in llm.ModelStream(_MESSAGES).pieces():
                pass
        server.close()

    asyncio.run(calls())
