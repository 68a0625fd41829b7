"""Benchmark driver behind `bench/run`: issue 12's rows, the project against the yardstick, out of the box.

Usage: bench/run [project | yardstick] [A] [B] [B256] [B1024] [C] [D] [E] [F] [G]
  No row: all of them. B is B256 and B1024 (any B<n> works). `project` or `yardstick` runs that side only.
Environment: BENCH_REPEATS (3), BENCH_SECONDS (15: A, C, D), BENCH_WARMUP (3), BENCH_B_SECONDS (20),
  BENCH_TIMEOUT (10: wrk's --timeout, s), BENCH_F_SECONDS (20), BENCH_G_SECONDS (15),
  BENCH_SERVER_ENV ("K=V,K=V" added to the project's environment), BENCH_YARDSTICK_WORKERS (cores),
  BENCH_APP_DIR (another checkout to serve) and BENCH_SERVER_PYTHON (its interpreter, when it has no .venv).
"""

import json
import math
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import servers
from measure import WRK_THREADS, DbWatch, Sampler, connections_open, cpu_seconds, percentile, pss_mb, steady, wrk
from servers import Process

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
D_STREAMS, CHUNKS, CHUNK_DELAY = 64, 200, 0.01  # a 200-chunk reply written over 2 s
F_STREAMS, F_SLOW = 200, 25  # streams; slow clients of each kind
G_STREAMS = 2000
SETTLE_SECONDS = 30  # how long a row's leftovers may keep the server busy before the next row
CHAT = "Hello! What are your opening hours on Saturdays?"
B_CHAT = "stub:wait=2000 " + CHAT  # the stub answers after 2 s
# The stub answers "Stub reply to: " + the message: 400 characters, so 200 chunks of two.
STREAM_MESSAGE = ("Please explain, step by step, how your service keeps my data safe. " * 6)[:385]
F_MESSAGE = f"stub:chunks={F_SECONDS + 10} stub:every=1000 " + STREAM_MESSAGE  # a chunk a second
NOT_BUILT = "not measured: /api/v1/chat/events is not built yet"


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """One server's run: every row asked for, on one server, one stub and one pool of sessions."""

    target: str  # project | yardstick
    number: int
    run_dir: Path
    watch: DbWatch
    max_conn: int
    server: Process = None
    stub: Process = None
    pool: list = field(default_factory=list)
    replaced: list = field(default_factory=list)  # (after which row, PSS in MB) of servers restarted mid-run

    @property
    def dbname(self) -> str:
        return servers.PROJECT_DB if self.target == "project" else servers.YARD_DB

    @property
    def tag(self) -> str:
        return f"{self.target[0]}{self.number}"

    def sampler(self) -> Sampler:
        sampler = Sampler(self.server.popen.pid, self.watch, self.dbname)
        sampler.start()
        return sampler


# --- rows --------------------------------------------------------------------------------------------


def wrk_row(run: Run, name: str, sessions: list, method: str, path: str, message: str, skip: int, seconds: int) -> dict:
    """wrk over `sessions` (one connection each), judged on its steady window of `seconds`."""
    tokens = servers.tokens_file(run.run_dir, f"{run.tag}-{name}", sessions)
    sampler = run.sampler()
    try:
        f = wrk(run.server.base, len(sessions), skip + seconds + 1, tokens, method, path, TIMEOUT, message)
    finally:
        sampler.stop()
    start, end, answers = steady(f, skip, skip + seconds + 1)
    # A request unanswered when wrk stopped, that had waited longer than the timeout, is a timeout too;
    # its age is known only when the server echoed every X-Request-ID.
    stuck = f["stuck"] if f["matched"] == f["received"] else None
    if stuck is None:
        log(f"{name}: the server did not echo X-Request-ID: requests unanswered at the end are not counted")
    socket_errors = f["connect"] + f["read"] + f["write"]
    errors = socket_errors + f["timeout"] + (stuck or 0) + f["non200"] + f["fallbacks"]
    return {
        "rate": answers / max(1, end - start),
        "cpu_ms": 1000 * sampler.cpu_between(start, end) / answers if answers else None,
        "p50_ms": f["p50_us"] / 1000 if f["requests"] else None,
        "p99_ms": f["p99_us"] / 1000 if f["requests"] else None,
        "errors": errors,
        "socket_errors": socket_errors,
        "timeouts": f["timeout"] + (stuck or 0),
        "non200": f["non200"],
        "fallbacks": f["fallbacks"],
        "stuck_unknown": stuck is None,
        "peak_db": sampler.peak_db,
        "machine_busy": sampler.machine_busy_between(start, end),
        "window": [start, end],
        "wrk": {k: v for k, v in f.items() if k != "answered"},
    }


def row_a(run: Run) -> dict:
    log(f"{run.target} {run.number}: A, chat, model 0 ms, {CONNS} connections")
    return wrk_row(run, "A", run.pool[:CONNS], "POST", "/api/v1/chat", CHAT, WARMUP, SECONDS)


def row_b(run: Run, conns: int) -> dict:
    log(f"{run.target} {run.number}: B{conns}, chat, model 2 s, {conns} connections")
    return wrk_row(run, f"B{conns}", run.pool[:conns], "POST", "/api/v1/chat", B_CHAT, B_SKIP, B_SECONDS)


def row_c(run: Run) -> dict:
    log(f"{run.target} {run.number}: C, GET /chat/history?limit=50 on sessions of 50 exchanges, {CONNS} connections")
    sessions = servers.sessions_create(run.server.base, CONNS, f"{run.tag}c", run.run_dir)
    prefill = servers.project_prefill if run.target == "project" else servers.yardstick_prefill
    prefill([sid for sid, _ in sessions], 50)
    return wrk_row(run, "C", sessions, "GET", "/api/v1/chat/history?limit=50", "", WARMUP, SECONDS)


def streams(run: Run, name: str, spec: dict) -> dict:
    spec = {"mode": "streams", "message": STREAM_MESSAGE, "timeout": 60, **spec}
    return servers.loadgen(spec, run.run_dir, f"{run.tag}-{name}")


def row_d(run: Run) -> dict:
    log(f"{run.target} {run.number}: D, {D_STREAMS} streams of {CHUNKS} chunks {CHUNK_DELAY * 1000:g} ms apart")
    stub_base = run.stub.base.removesuffix("/v1")
    spec = {"base": stub_base, "path": "/v1/chat/completions", "loops": D_STREAMS, "warmup": 1, "seconds": 5}
    own = streams(run, "D-stub", {**spec, "first": '"content"', "end": "[DONE]"})
    stub_first = [r["first"] - r["start"] for r in own["records"] if r["first"] and in_window(r["first"], own)]
    sampler = run.sampler()
    try:
        spec = {"base": run.server.base, "path": "/api/v1/chat/stream", "warmup": WARMUP, "seconds": SECONDS}
        spec["tokens"] = [token for _, token in run.pool[:D_STREAMS]]
        got = streams(run, "D", {**spec, "first": "event: delta", "end": "event: done"})
    finally:
        sampler.stop()
    start, end = got["window"]
    ended = [r for r in got["records"] if in_window(r["end"], got)]
    ok = [r for r in ended if r["ok"]]
    first = [r["first"] - r["start"] for r in got["records"] if r["first"] and in_window(r["first"], got)]
    p99, stub_p99 = 1000 * percentile(first, 99), 1000 * percentile(stub_first, 99)
    return {
        "streams": len(ended),
        "failed": len(ended) - len(ok),
        "first_p50_ms": 1000 * percentile(first, 50),
        "first_p99_ms": p99,
        "stub_first_p99_ms": stub_p99,
        "over_stub_p99_ms": p99 - stub_p99,
        "cpu_ms": 1000 * sampler.cpu_between(start, end) / len(ok) if ok else None,  # per stream that ended well
        "events_median": statistics.median(r["events"] for r in ok) if ok else 0,
        "machine_busy": sampler.machine_busy_between(start, end),
    }


def in_window(when: float, result: dict) -> bool:
    return result["window"][0] <= when < result["window"][1]


def probe_figures(probes: list[dict]) -> tuple[float, int]:
    """(slowest answer in seconds, failures): a probe that failed counts at the time it took to fail."""
    failed = sum(not (isinstance(p["status"], int) and 200 <= p["status"] < 300) for p in probes)
    return max((p["seconds"] for p in probes), default=math.nan), failed


def row_f(run: Run) -> dict:
    log(f"{run.target} {run.number}: F, {F_STREAMS} streams at a chunk a second, {2 * F_SLOW} slow clients")
    spec = {
        "mode": "stall",
        "base": run.server.base,
        "tag": run.tag,
        "stream_tokens": [token for _, token in run.pool[:F_STREAMS]],
        "stream_message": F_MESSAGE,
        "stream_timeout": F_SECONDS + 30,  # a 30 s stream, and 20 s of grace to start it
        "slow_headers": F_SLOW,
        "slow_bodies": F_SLOW,
        "probe_seconds": F_SECONDS,
        "chat_token": run.pool[F_STREAMS][1],
    }
    got = servers.loadgen(spec, run.run_dir, f"{run.tag}-F")
    figures = {}
    for name in ("health", "signup", "chat"):
        figures[f"{name}_max_s"], failed = probe_figures(got["probes"][name])
        figures[f"{name}_probes"] = len(got["probes"][name])
        figures["probes_failed"] = figures.get("probes_failed", 0) + failed
    figures["streams_done"] = sum(r["ok"] for r in got["streams"])
    figures["streams"] = len(got["streams"])
    figures["slow"] = got["slow"]
    return figures


def row_g(run: Run) -> dict:
    log(f"{run.target} {run.number}: G, {G_STREAMS} idle GET /chat/events streams held at once")
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {run.pool[0][1] if run.pool else ''}"}
    if not run.pool:
        run.pool = servers.sessions_create(run.server.base, 1, f"{run.tag}g0", run.run_dir)
        headers["Authorization"] = f"Bearer {run.pool[0][1]}"
    with httpx.stream("GET", f"{run.server.base}/api/v1/chat/events", headers=headers, timeout=10) as answer:
        if answer.status_code == 404:
            return {"not_measured": NOT_BUILT}
    tokens = [token for _, token in servers.sessions_create(run.server.base, G_STREAMS, f"{run.tag}g", run.run_dir)]
    before = pss_mb(run.server.pids())
    held: list[float] = []
    holding = threading.Event()

    def watch_memory() -> None:
        while not holding.wait(0.5):
            pass
        while holding.is_set():
            held.append(pss_mb(run.server.pids()))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    spec = {"mode": "idle", "base": run.server.base, "path": "/api/v1/chat/events", "tokens": tokens}
    spec["hold_seconds"] = G_SECONDS
    try:
        got = servers.loadgen(spec, run.run_dir, f"{run.tag}-G", on_line=lambda line: holding.set())
    finally:
        holding.clear()
        watcher.join(5)
    health_max, failed = probe_figures(got["probes"]["health"])
    return {
        "opened": got["opened"],
        "still_open": got["still_open"],
        "open_seconds": got["open_seconds"],
        "failures": got["failures"],
        "health_max_s": health_max,
        "health_failed": failed,
        "pss_before_mb": before,
        "growth_mb": (max(held) - before) if held else None,
    }


def row_e(run: Run) -> dict:
    """Memory at the end of the run; if the server was restarted mid-run, the largest of its instances'."""
    pids = run.server.pids()
    pss = max([pss_mb(pids)] + [mb for _, mb in run.replaced])
    workers = len(run.server.workers())
    return {"pss_mb": pss, "processes": len(pids), "workers": workers, "cores": CORES, "restarts": len(run.replaced)}


def server_start(run: Run, name: str) -> Process:
    if run.target == "project":
        return servers.project_start(run.run_dir, run.stub.base, name)
    return servers.yardstick_start(run.run_dir, run.stub.base, name, run.max_conn)


def idle(run: Run, cpu_before: float) -> bool:
    """No model call in flight at the stub, no connection open on the server's port, and under 3% of a
    core used since `cpu_before` (half a second ago)."""
    try:
        inflight = httpx.get(f"{run.stub.base.removesuffix('/v1')}/inflight", timeout=2).json()["inflight"]
    except (httpx.HTTPError, ValueError, KeyError):
        inflight = 0
    port = int(run.server.base.rsplit(":", 1)[1])
    return inflight == 0 and connections_open(port) == 0 and cpu_seconds(run.server.pids()) - cpu_before < 0.015


def settle(run: Run, after: str) -> None:
    """Let the next row start on an idle server, twice in a row (see idle()), half a second apart.

    Requests a row leaves behind (the load generator gone, the server still working through them)
    would weigh on the next one. A server still busy after SETTLE_SECONDS is replaced by a fresh one
    (same database and sessions); the replacement is logged, shown in the header and counted in E.
    """
    deadline, quiet = time.monotonic() + SETTLE_SECONDS, 0
    while time.monotonic() < deadline:
        before = cpu_seconds(run.server.pids())
        time.sleep(0.5)
        quiet = quiet + 1 if idle(run, before) else 0
        if quiet == 2:
            return
    log(f"{run.target} {run.number}: still busy {SETTLE_SECONDS} s after {after}: a fresh server for the next row")
    run.replaced.append((after, pss_mb(run.server.pids())))
    run.server.stop()
    run.server = server_start(run, f"{run.target}-{run.number}-after-{after}")


POOL_NEEDS = {"A": CONNS, "D": D_STREAMS, "F": F_STREAMS + 1}


def pool_size(rows: list[str]) -> int:
    sizes = [POOL_NEEDS.get(row, 0) for row in rows] + [int(row[1:]) for row in rows if row.startswith("B")]
    return max(sizes, default=0)


def target_run(target: str, number: int, rows: list[str], ctx: dict) -> dict:
    run = Run(target, number, ctx["run_dir"], ctx["watch"], ctx["max_conn"])
    started = time.monotonic()
    log(f"{target} run {number}: starting the stub and the server")
    figures: dict = {}
    run.stub = servers.stub_start(run.run_dir, f"stub-{run.tag}", CHUNKS, CHUNK_DELAY)
    try:
        if target == "project":
            servers.project_reset(run.watch)
        else:
            servers.yardstick_reset(run.watch)
        run.server = server_start(run, f"{target}-{number}")
        try:
            if size := pool_size(rows):
                run.pool = servers.sessions_create(run.server.base, size, run.tag, run.run_dir)
            for done, row in enumerate(rows):
                if done:
                    settle(run, rows[done - 1])
                try:
                    figures[row] = row_runner(row)(run)
                except Exception as exc:  # noqa: BLE001 - one row failing leaves the others measured
                    log(f"{target} {number}: {row} failed: {exc!r}")
                    figures[row] = {"_error": f"{type(exc).__name__}: {exc}"[:200]}
            figures["_server"] = {**run.server.info, "workers": len(run.server.workers()), "replaced": run.replaced}
        finally:
            run.server.stop()
    finally:
        run.stub.stop()
    figures["_seconds"] = time.monotonic() - started
    log(f"{target} run {number} done in {figures['_seconds']:.0f} s")
    return figures


def row_runner(row: str):
    if row.startswith("B"):
        return lambda run: row_b(run, int(row[1:]))
    return {"A": row_a, "C": row_c, "D": row_d, "E": row_e, "F": row_f, "G": row_g}[row]


# --- the table ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    row: str
    label: str
    key: str
    fmt: str = "{:.1f}"
    worst: str = ""  # "max" or "min": judged on the worst run rather than the median
    target: object = None  # (project, yardstick, medians) -> (target text, met or None)
    ratio: bool = False  # judged against the yardstick: the ratio is shown


def vs_yardstick(more_is_better: bool):
    def judge(p, y, medians):
        if y is None:
            return "vs the yardstick (not run)", None
        sign = ">=" if more_is_better else "<="
        met = p >= y if more_is_better else p <= y
        return f"{sign} {y:.1f} (the yardstick's)", met

    return judge


def at_most(limit: float, text: str = ""):
    return lambda p, y, medians: (f"<= {text or limit}", p <= limit)


def below(limit: float, text: str):
    return lambda p, y, medians: (f"< {text}", p < limit)


def at_least(limit: float, text: str):
    return lambda p, y, medians: (text, p >= limit)


def b_target(conns: int):
    def judge(p, y, medians):
        a = medians.get(("A", "rate"))
        ideal = 0.95 * conns / 2
        if a is None:
            return f">= {ideal:.1f}/s (0.95 x {conns}/2; A not run)", p >= ideal
        goal = min(ideal, 0.9 * a)
        return f">= {goal:.1f}/s (min of 0.95 x {conns}/2, 0.9 x A {a:.1f})", p >= goal

    return judge


def figures_for(rows: list[str], max_conn: int) -> list[Figure]:
    out = []
    for row in rows:
        if row == "A":
            out += [
                Figure("A", "chats/s answered", "rate", target=vs_yardstick(True), ratio=True),
                Figure("A", "server CPU per chat, ms", "cpu_ms", target=vs_yardstick(False), ratio=True),
                Figure("A", "latency p99, ms", "p99_ms", "{:.0f}"),
                Figure("A", "errors (socket, timeout, non-200, fallback)", "errors", "{:d}", "max"),
            ]
        elif row.startswith("B"):
            conns = int(row[1:])
            out += [
                Figure(row, "answers/s (wrk, steady window)", "rate", target=b_target(conns)),
                Figure(row, "latency p50, ms", "p50_ms", "{:.0f}"),
                Figure(row, "latency p99, ms", "p99_ms", "{:.0f}"),
                Figure(row, "server CPU per chat, ms", "cpu_ms"),
                Figure(row, "errors (socket, timeout, non-200, fallback)", "errors", "{:d}", "max", at_most(0)),
                Figure(row, "peak PostgreSQL connections", "peak_db", "{:d}", "max", at_most(max_conn // 2)),
            ]
        elif row == "C":
            out += [
                Figure("C", "history reads/s", "rate", target=vs_yardstick(True), ratio=True),
                Figure("C", "server CPU per read, ms", "cpu_ms", target=vs_yardstick(False), ratio=True),
                Figure("C", "latency p99, ms", "p99_ms", "{:.0f}"),
                Figure("C", "errors (socket, timeout, non-200)", "errors", "{:d}", "max"),
            ]
        elif row == "D":
            out += [
                Figure("D", f"streams ended in {SECONDS} s", "streams", "{:d}"),
                Figure("D", "failed streams (not 200, error, fallback, no done)", "failed", "{:d}", "max", at_most(0)),
                Figure("D", "first delta p99, ms", "first_p99_ms"),
                Figure("D", "the stub's own first chunk p99, ms", "stub_first_p99_ms"),
                Figure("D", "first delta p99 over the stub's, ms", "over_stub_p99_ms", target=at_most(30, "30 ms")),
                Figure("D", "server CPU per stream that ended well, ms", "cpu_ms", target=at_most(50, "50 ms")),
            ]
        elif row == "E":
            out += [
                Figure("E", "PSS of all server processes after the run, MB", "pss_mb", "{:.0f}", "", at_most(400)),
                Figure(
                    "E",
                    f"worker processes (on {CORES} cores)",
                    "workers",
                    "{:d}",
                    "min",
                    at_least(CORES, f">= {CORES} (every core)"),
                ),
            ]
        elif row == "F":
            out += [
                Figure("F", "slowest /health, s", "health_max_s", "{:.2f}", "", below(1, "1 s")),
                Figure("F", "slowest sign-up, s", "signup_max_s", "{:.2f}", "", below(2, "2 s")),
                Figure("F", "slowest chat, s", "chat_max_s", "{:.2f}", "", below(3, "3 s")),
                Figure("F", "probes failed (non-2xx or no answer in 10 s)", "probes_failed", "{:d}", "max", at_most(0)),
                Figure(
                    "F",
                    f"streams ended with event: done (of {F_STREAMS})",
                    "streams_done",
                    "{:d}",
                    "min",
                    at_least(F_STREAMS, str(F_STREAMS)),
                ),
            ]
        elif row == "G":
            out += [
                Figure(
                    "G",
                    f"streams open at once (of {G_STREAMS})",
                    "opened",
                    "{:d}",
                    "min",
                    at_least(G_STREAMS, str(G_STREAMS)),
                ),
                Figure("G", "slowest /health meanwhile, s", "health_max_s", "{:.2f}", "", below(1, "1 s")),
                Figure("G", "server memory growth, MB", "growth_mb", "{:.0f}", "", below(150, "150 MB")),
            ]
    return out


def aggregate(runs: list[dict], row: str, figure: Figure) -> tuple[str, float | None]:
    """('v1, v2, v3 -> median', median) for one side; a row that failed or was not measured says so."""
    if not runs:
        return "", None
    values, notes = [], []
    for figures in runs:
        got = figures.get(row, {})
        if "not_measured" in got or "_error" in got:
            notes.append(got.get("not_measured") or "failed: " + got["_error"])
        elif (value := got.get(figure.key)) is not None and not (isinstance(value, float) and math.isnan(value)):
            values.append(value)
    if not values:
        return (notes[0] if notes else "-"), None
    judged = {"max": max, "min": min}.get(figure.worst, statistics.median)(values)
    shown = ", ".join(figure.fmt.format(v) for v in values)
    if len(values) > 1:
        shown += f" -> {figure.fmt.format(judged)} {'median' if not figure.worst else 'worst'}"
    if notes:
        shown += f" ({len(notes)} not measured)"
    return shown, judged


def table(results: dict, rows: list[str], max_conn: int) -> str:
    lines = [("row", "figure", "project", "yardstick", "target", "met")]
    medians: dict = {}
    for figure in figures_for(rows, max_conn):
        p_text, p = aggregate(results.get("project", []), figure.row, figure)
        y_text, y = aggregate(results.get("yardstick", []), figure.row, figure)
        medians[(figure.row, figure.key)] = p
        repeated = lines[-1][0] == figure.row and lines[-1][2].startswith(("not measured", "(not measured)"))
        if p_text.startswith("not measured") and repeated:
            p_text = "(not measured)"
        target, met = ("", None)
        if figure.target is not None and p is not None:
            target, met = figure.target(p, y, medians)
        verdict = "" if met is None else ("yes" if met else "NO")
        if met is not None and y and figure.ratio:
            verdict += f" ({p / y:.2f}x)"
        lines.append((figure.row, figure.label, p_text, y_text, target, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def header(results: dict, load_before: float, started: str, rows: list[str]) -> str:
    lines = [f"chatapi bench: {CORES} cores, {started}, load average {load_before:.1f} before the run"]
    if load_before > 1:
        lines[0] += " (WARNING: above 1: the machine is busy, figures are lower and noisier than on a quiet one)"
    for target in ("project", "yardstick"):
        runs = results.get(target, [])
        if not runs:
            continue
        info = runs[-1].get("_server", {})
        where = f" in {servers.APP_DIR}" if target == "project" else ""
        lines.append(
            f"{target}: {info.get('command', '?')}{where} -> {info.get('workers', '?')} worker processes "
            f"(process tree), worker type {info.get('worker_type', '?')}"
        )
        replaced = [
            f"run {n} after {row}" for n, got in enumerate(runs, 1) for row, _ in got["_server"].get("replaced", [])
        ]
        if replaced:
            lines.append(f"  busy {SETTLE_SECONDS} s after a row, so replaced by a fresh server: {', '.join(replaced)}")
    extra = os.environ.get("BENCH_SERVER_ENV", "").strip()
    env = "DATABASE_URL (PostgreSQL), CACHE_URL (Redis db 14), SECRET_KEY, ENV_FILE=/nonexistent, DEBUG=False, "
    env += "LOG_LEVEL=WARNING, LLM_* (the stub), RATE_LIMITING_ENABLED=False, MAX_MESSAGES_PER_SESSION=1000000000"
    if results.get("project"):
        lines.append(f"project environment: {env}" + (f"; BENCH_SERVER_ENV: {extra}" if extra else ""))
    repeats = max(len(results.get("project", [])), len(results.get("yardstick", [])))
    lines.append(
        f"{repeats} run(s) alternating project and yardstick, each on a fresh server, stub and database; "
        f"A, C, D {SECONDS} s after {WARMUP} s; B {B_SECONDS} s after {B_SKIP} s; wrk {WRK_THREADS} threads, "
        f"--timeout {TIMEOUT} s; bench/loadgen.py (asyncio) for D, F, G; rows {' '.join(rows)}"
    )
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------


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


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print(__doc__, file=sys.stderr)
        return 2
    targets, rows = parsed
    watch = DbWatch()
    load_before = os.getloadavg()[0]
    if load_before > 1:
        log(f"the machine is busy (load average {load_before:.1f}): figures will be lower and noisier")
    RUNS.mkdir(exist_ok=True)
    run_dir = RUNS / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir()
    ctx = {"watch": watch, "run_dir": run_dir, "max_conn": watch.max_connections()}
    started, clock = time.strftime("%Y-%m-%d %H:%M"), time.monotonic()
    log(f"rows {' '.join(rows)}, {REPEATS} run(s) of {' and '.join(targets)}; logs in {run_dir}")
    results: dict = {target: [] for target in targets}
    for number in range(1, REPEATS + 1):
        for target in targets:
            results[target].append(target_run(target, number, rows, ctx))
            (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = header(results, load_before, started, rows) + "\n\n" + table(results, rows, ctx["max_conn"])
    minutes = (time.monotonic() - clock) / 60
    text += f"\n\nTook {minutes:.1f} min. Logs and raw figures: {run_dir}"
    print("\n" + text)
    (run_dir / "table.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
