"""The benchmark's fixed shape, its BENCH_* knobs (see bench/bench.py) and the rows asked for on its command line."""

import os
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = BENCH / ".runs"
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
B_SECONDS = int(os.environ.get("BENCH_B_SECONDS", "20"))
B_SKIP = 4  # two model calls' time: the first answers come all at once, 2 s after the connections open
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "10"))
F_SECONDS = int(os.environ.get("BENCH_F_SECONDS", "20"))
G_SECONDS = int(os.environ.get("BENCH_G_SECONDS", "15"))
CORES = os.cpu_count() or 1
ALL_ROWS = ["A", "C", "D", "B256", "B1024", "F", "G", "E"]  # the order they run in, on one server
CONNS = 32  # A and C
D_STREAMS = int(os.environ.get("BENCH_D_STREAMS", "64"))  # fewer: how the first delta grows with the load
CHUNKS, CHUNK_DELAY = 200, 0.01  # a 200-chunk reply written over 2 s
F_STREAMS, F_SLOW = 200, 25  # streams; slow clients of each kind
G_STREAMS = 2000
SETTLE_SECONDS = 30  # how long a row's leftovers may keep the server busy before the next row
CHAT = "Hello! What are your opening hours on Saturdays?"
B_CHAT = "stub:wait=2000 " + CHAT  # the stub answers after 2 s
# The stub answers "Stub reply to: " + the message: 400 characters, so 200 chunks of two.
STREAM_MESSAGE = ("Please explain, step by step, how your service keeps my data safe. " * 6)[:385]
F_MESSAGE = f"stub:chunks={F_SECONDS + 10} stub:every=1000 " + STREAM_MESSAGE  # a chunk a second
NOT_BUILT = "not measured: /api/v1/chat/events is not built yet"


def parse(argv: list[str]) -> tuple[list[str], list[str]] | None:
    targets, rows = [], []
    for word in argv:
        if word.lower() in ("project", "yardstick"):
            targets.append(word.lower())
        elif word.upper() == "B":
            rows += ["B256", "B1024"]
        elif word.upper() in ALL_ROWS or re.fullmatch(r"B\d+", word.upper()):
            rows.append(word.upper())
        else:
            return None

    def place(row: str) -> float:  # any other B<n> runs with the B rows, before F
        return ALL_ROWS.index(row) if row in ALL_ROWS else ALL_ROWS.index("B1024") + 0.5

    return targets or ["project", "yardstick"], sorted(dict.fromkeys(rows or ALL_ROWS), key=place)
