"""CPU of reading one streamed reply through litellm, in this process alone (the stub runs apart).

`python bench/stream_cpu.py` (with the project's .venv): a 200-chunk reply from the stub model,
read four ways, CPU time (user + system) per reply:
- litellm's stream wrapper, as `for chunk in litellm.completion(..., stream=True)` reads it;
- the project's `chat_app.llm.chat_stream` with an OpenAI-compatible model (`openai/...`), which
  reads the openai SDK's own chunks;
- the same with `hosted_vllm/...`, a provider that goes through litellm's wrapper;
- the openai SDK's stream alone, the floor under both.
"""

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
STREAMS = 40
MESSAGES = [{"role": "user", "content": " ".join(f"word{n}" for n in range(CHUNKS))}]  # no repeats


def cpu_per_stream(read) -> tuple[float, int]:
    for _ in range(5):  # warm-up: imports, connection pool
        read()
    started = time.process_time()
    for _ in range(STREAMS):
        pieces = read()
    return (time.process_time() - started) / STREAMS * 1000, pieces


def litellm_wrapper() -> int:
    stream = llm.litellm_client().completion(**llm._completion_arguments(MESSAGES), stream=True)
    try:
        return sum(1 for chunk in stream if chunk.choices and chunk.choices[0].delta.content)
    finally:
        stream.close()


def project_stream() -> int:
    return sum(1 for _ in llm.chat_stream(messages=MESSAGES))


def openai_sdk_alone(client) -> int:
    stream = client.chat.completions.create(model="stub", messages=MESSAGES, stream=True)
    return sum(1 for chunk in stream if chunk.choices and chunk.choices[0].delta.content)


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
        settings.LLM_API_BASE = f"http://127.0.0.1:{port}/v1"
        settings.LLM_API_KEY = "stub"
        llm.litellm_client()
        openai = sys.modules["openai"]  # loaded with litellm by its one owner, chat_app.llm
        client = openai.OpenAI(base_url=settings.LLM_API_BASE, api_key="stub", max_retries=0)
        rows = []
        settings.LLM_MODEL = "openai/stub"
        rows.append(("litellm's stream wrapper (openai/stub)", *cpu_per_stream(litellm_wrapper)))
        rows.append(("chat_app.llm.chat_stream, openai/stub", *cpu_per_stream(project_stream)))
        settings.LLM_MODEL = "hosted_vllm/stub"
        rows.append(("chat_app.llm.chat_stream, hosted_vllm/stub", *cpu_per_stream(project_stream)))
        rows.append(("the openai SDK alone", *cpu_per_stream(lambda: openai_sdk_alone(client))))
    finally:
        stub.terminate()
        stub.wait()
    print(f"CPU per streamed reply of {CHUNKS} chunks, mean of {STREAMS}:\n")
    print("| read through | CPU per reply | text pieces |\n|---|---|---|")
    for name, cpu_ms, pieces in rows:
        print(f"| {name} | {cpu_ms:.1f} ms | {pieces} |")


if __name__ == "__main__":
    main()
