"""CPU of one model reply, whole and streamed, through each client, in this process alone (the stub runs apart).

`python bench/stream_cpu.py` (with the project's .venv), against the stub model's 200-chunk replies,
CPU time (user + system) per reply, the mean of 40 after 5 not counted:
- streamed: litellm's stream wrapper (`litellm.acompletion(..., stream=True)`); the project's
  `chat_app.llm.ModelStream` with an OpenAI-compatible model (`openai/...`), which reads the openai
  SDK's raw lines; the same with `hosted_vllm/...`, a provider that goes through litellm's wrapper;
  the openai SDK's own chunk objects, alone;
- whole: `litellm.acompletion`, and the project's `chat_app.llm.chat_complete` (the openai SDK).
"""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapi.settings")
os.environ.setdefault("SECRET_KEY", "stream-cpu-benchmark-" + "x" * 40)
os.environ.setdefault("ENV_FILE", "/nonexistent")
os.environ.setdefault("LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from servers import free_port, wait_for  # noqa: E402  (bench/servers.py, beside this file)

from chat_app import llm  # noqa: E402

CHUNKS = 200
REPLIES = 40
MESSAGES = [{"role": "user", "content": " ".join(f"word{n}" for n in range(CHUNKS))}]  # no repeats


def cpu_per_reply(read) -> tuple[float, int]:
    async def measured() -> tuple[float, int]:
        for _ in range(5):  # warm-up: imports, connection pool
            await read()
        started = time.process_time()
        for _ in range(REPLIES):
            pieces = await read()
        return (time.process_time() - started) / REPLIES * 1000, pieces

    return asyncio.run(measured())


def litellm_arguments() -> dict:
    return {"model": settings.LLM_MODEL, "messages": MESSAGES, "api_base": settings.LLM_API_BASE, "api_key": "stub"}


async def litellm_wrapper() -> int:
    stream = await llm.litellm_client().acompletion(**litellm_arguments(), stream=True)
    return sum([1 async for chunk in stream if chunk.choices and chunk.choices[0].delta.content])


async def litellm_whole() -> int:
    response = await llm.litellm_client().acompletion(**litellm_arguments())
    return len(response.choices)


async def project_stream() -> int:
    return sum([1 async for _ in llm.ModelStream(MESSAGES).pieces()])


async def project_whole() -> int:
    await llm.chat_complete(messages=MESSAGES)
    return 1


async def openai_sdk_chunks() -> int:
    client = llm._openai_client(llm._current_route())  # the project's one client for this event loop
    stream = await client.chat.completions.create(model="stub", messages=MESSAGES, stream=True)
    return sum([1 async for chunk in stream if chunk.choices and chunk.choices[0].delta.content])


def main() -> None:
    port = free_port()
    stub = subprocess.Popen(  # noqa: S603 - our own argv
        [sys.executable, str(ROOT / "bench" / "stub.py"), "--port", str(port), "--chunks", str(CHUNKS)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/", ok=range(200, 600))
        settings.LLM_API_BASE, settings.LLM_API_KEY = f"http://127.0.0.1:{port}/v1", "stub"
        rows = []
        settings.LLM_MODEL = "openai/stub"
        rows.append(("streamed: litellm's stream wrapper (openai/stub)", *cpu_per_reply(litellm_wrapper)))
        rows.append(("streamed: chat_app.llm.ModelStream, openai/stub", *cpu_per_reply(project_stream)))
        rows.append(("streamed: the openai SDK's chunk objects", *cpu_per_reply(openai_sdk_chunks)))
        rows.append(("whole: litellm.acompletion (openai/stub)", *cpu_per_reply(litellm_whole)))
        rows.append(("whole: chat_app.llm.chat_complete, openai/stub", *cpu_per_reply(project_whole)))
        settings.LLM_MODEL = "hosted_vllm/stub"
        rows.append(("streamed: chat_app.llm.ModelStream, hosted_vllm/stub", *cpu_per_reply(project_stream)))
    finally:
        stub.terminate()
        stub.wait()
    print(f"CPU per model reply ({CHUNKS} chunks when streamed), mean of {REPLIES}:\n")
    print("| read through | CPU per reply | pieces |\n|---|---|---|")
    for name, cpu_ms, pieces in rows:
        print(f"| {name} | {cpu_ms:.1f} ms | {pieces} |")


if __name__ == "__main__":
    main()
