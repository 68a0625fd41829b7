"""Benchmark driver behind `bench/run`: issue 12's rows, the project against the yardstick, out of the box.

Usage: bench/run [project | yardstick] [A] [B] [B256] [B1024] [C] [D] [E] [F] [G]
  No row: all of them. B is B256 and B1024 (any B<n> works). `project` or `yardstick` runs that side only.
Environment: BENCH_REPEATS (3), BENCH_SECONDS (15: A, C, D), BENCH_WARMUP (3), BENCH_B_SECONDS (20),
  BENCH_TIMEOUT (10: wrk's --timeout, s), BENCH_F_SECONDS (20), BENCH_G_SECONDS (15), BENCH_D_STREAMS (64),
  BENCH_SERVER_ENV ("K=V,K=V" added to the project's environment), BENCH_YARDSTICK_WORKERS (cores),
  BENCH_APP_DIR (another checkout to serve) and BENCH_SERVER_PYTHON (its interpreter, when it has no .venv).
"""

import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import servers
from measure import (
    DbWatch,
    Sampler,
    connections_open,
    cpu_seconds,
    in_window,
    percentile,
    probe_figures,
    pss_mb,
    steady,
    wrk,
)
from params import (
    B_CHAT,
    B_SECONDS,
    B_SKIP,
    CHAT,
    CHUNK_DELAY,
    CHUNKS,
    CONNS,
    CORES,
    D_STREAMS,
    F_MESSAGE,
    F_SECONDS,
    F_SLOW,
    F_STREAMS,
    G_SECONDS,
    G_STREAMS,
    NOT_BUILT,
    REPEATS,
    RUNS,
    SECONDS,
    SETTLE_SECONDS,
    STREAM_MESSAGE,
    TIMEOUT,
    WARMUP,
    parse,
)  # fmt: skip
from report import header, table
from servers import Process


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


# --- main --------------------------------------------------------------------------------------------


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
