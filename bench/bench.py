"""Benchmark driver behind `bench/run`: servers up, load with wrk, figures from /proc and PostgreSQL, one table.

Usage: bench/run [A] [B] [C] [D] [E] [yardstick [A] [B] [C] [E]]   (no argument: all, then yardstick A C)
"""

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import servers
from measure import DbWatch, Measured, cpu_seconds, machine_cpu_seconds, measured_load, pss_mb
from servers import Process
from streams import percentile, streams_run, stub_streams_run

BENCH = Path(__file__).resolve().parent
RUNS = BENCH / ".runs"
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
# B's 2 s model calls: wrk does not count a request still in flight when it stops (about 1 s of each
# connection's time), so B is judged on the replies stored in the middle 20 s of a 30 s run.
B_SECONDS = int(os.environ.get("BENCH_B_SECONDS", "30"))
B_CONNS = [int(n) for n in os.environ.get("BENCH_B_CONNS", "64,256").split(",")]
B_LATENCY = 2.0
# A model streams its tokens over time: 10 ms between chunks is a 200-chunk reply in 2 s.
CHUNK_DELAY = float(os.environ.get("BENCH_CHUNK_DELAY", "0.01"))
D_STREAMS = 64


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Results:
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    def add(self, scenario: str, figure: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("yes" if met else "NO")
        self.rows.append((scenario, figure, value, target, verdict))

    def table(self) -> str:
        head = ("scenario", "figure", "value", "target", "met")
        rows = [head, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)


@dataclass
class Target:
    """The project or the yardstick, with what differs between them."""

    name: str
    label: str  # prefix of its rows
    dbname: str
    replies_table: str
    prepare: Callable[[], None]
    start: Callable[[Path, str, str], Process]
    prefill: Callable[[list[str], int], None]


PROJECT = Target(
    name="project",
    label="",
    dbname=servers.PROJECT_DB,
    replies_table="chat_app_chatmessage",
    prepare=servers.project_prepare,
    start=servers.project_start,
    prefill=servers.project_prefill,
)
YARDSTICK = Target(
    name="yardstick",
    label="Y-",
    dbname=servers.YARD_DB,
    replies_table="yard_message",
    prepare=servers.yardstick_prepare,
    start=servers.yardstick_start,
    prefill=servers.yardstick_prefill,
)


def load_rows(results: Results, name: str, m: Measured) -> None:
    f = m.load
    results.add(name, "requests/s answered", f"{f['rps']:.1f}")
    results.add(name, "latency p50 / p99", f"{f['p50_us'] / 1000:.0f} / {f['p99_us'] / 1000:.0f} ms")
    results.add(name, "server CPU per request", f"{m.cpu_ms:.1f} ms")
    results.add(name, "errors (socket, non-200, fallback)", f"{f['errors']} of {f['requests']}", "0", f["errors"] == 0)


def scenario_a(t: Target, server: Process, ctx: dict, results: Results) -> None:
    log(f"{t.name}: A, model latency 0, 32 connections, POST /chat")
    sessions = servers.sessions_create(server.base, 32, "a")
    tokens = servers.tokens_file(ctx["run_dir"], f"{t.name}-a", sessions)
    load = {"base": server.base, "conns": 32, "seconds": SECONDS, "mode": "chat", "path": "/api/v1/chat"}
    m = measured_load(server.pids(), ctx["watch"], t.dbname, WARMUP, tokens=tokens, **load)
    results.raw[f"{t.label}A"] = m.as_dict()
    load_rows(results, f"{t.label}A", m)
    results.add(f"{t.label}A", "peak DB connections", f"{m.peak_db} (max_connections {ctx['max_conn']})")


def scenario_c(t: Target, server: Process, ctx: dict, results: Results) -> None:
    log(f"{t.name}: C, GET /chat/history?limit=50 on sessions of 50 exchanges, 32 connections")
    sessions = servers.sessions_create(server.base, 32, "c")
    t.prefill([sid for sid, _ in sessions], 50)
    tokens = servers.tokens_file(ctx["run_dir"], f"{t.name}-c", sessions)
    load = {"base": server.base, "conns": 32, "seconds": SECONDS, "mode": "get"}
    load["path"] = "/api/v1/chat/history?limit=50"
    m = measured_load(server.pids(), ctx["watch"], t.dbname, WARMUP, tokens=tokens, **load)
    results.raw[f"{t.label}C"] = m.as_dict()
    load_rows(results, f"{t.label}C", m)


def scenario_d(server: Process, stub: Process, results: Results) -> None:
    log(f"project: D, {D_STREAMS} concurrent streams of 200 chunks, {CHUNK_DELAY * 1000:g} ms apart")
    tokens = [token for _, token in servers.sessions_create(server.base, D_STREAMS, "d")]
    own = [s.ttfb_ms for s in stub_streams_run(stub.base, D_STREAMS, 5) if s.ok]
    streams_run(server.base, tokens, WARMUP)
    pids = server.pids()
    cpu_before, stub_before, machine_before = cpu_seconds(pids), cpu_seconds(stub.pids()), machine_cpu_seconds()
    done = streams_run(server.base, tokens, SECONDS)
    cpu_ms = 1000 * (cpu_seconds(pids) - cpu_before) / max(1, len(done))
    stub_ms = 1000 * (cpu_seconds(stub.pids()) - stub_before) / max(1, len(done))
    machine_after = machine_cpu_seconds()
    busy = (machine_after[0] - machine_before[0]) / max(1e-9, machine_after[1] - machine_before[1])
    good = [s for s in done if s.ok]
    ttfb = [s.ttfb_ms for s in good]
    p50, p99, own50, own99 = percentile(ttfb, 50), percentile(ttfb, 99), percentile(own, 50), percentile(own, 99)
    events = statistics.median(s.events for s in good) if good else 0
    results.raw["D"] = {"streams": len(done), "failed": len(done) - len(good), "ttfb_p50_ms": p50,
                        "ttfb_p99_ms": p99, "stub_ttfb_p50_ms": own50, "stub_ttfb_p99_ms": own99,
                        "cpu_ms": cpu_ms, "total_p50_ms": percentile([s.total_ms for s in good], 50)}  # fmt: skip
    count = f"{len(done)} ({len(done) - len(good)}), {events:g} deltas each"
    results.add("D", f"streams in {SECONDS} s (failed)", count)
    results.add("D", "first delta p50 / p99", f"{p50:.1f} / {p99:.1f} ms")
    results.add("D", "stub's own first chunk p50 / p99", f"{own50:.1f} / {own99:.1f} ms")
    results.add("D", "first delta over the stub's, p99", f"{p99 - own99:.1f} ms", "< 30 ms", p99 - own99 < 30)
    results.add("D", "whole stream p50", f"{results.raw['D']['total_p50_ms']:.0f} ms")
    results.add("D", "server CPU per stream", f"{cpu_ms:.1f} ms", "< 50 ms", cpu_ms < 50)
    # The stub and the load generator share the two cores: when the machine is busy, the first delta
    # waits for a core whatever the server's own cost.
    results.add("D", "stub's CPU per stream; machine busy", f"{stub_ms:.1f} ms; {busy:.0%} of both cores")


def scenario_b(t: Target, server: Process, ctx: dict, results: Results) -> None:
    sessions = servers.sessions_create(server.base, max(B_CONNS), "b")
    tokens = servers.tokens_file(ctx["run_dir"], f"{t.name}-b", sessions)
    limit = ctx["max_conn"]
    for conns in B_CONNS:
        log(f"{t.name}: B, model latency {B_LATENCY:g} s, {conns} connections")
        ideal = conns / B_LATENCY
        load = {"base": server.base, "conns": conns, "seconds": B_SECONDS, "mode": "chat", "path": "/api/v1/chat"}
        m = measured_load(server.pids(), ctx["watch"], t.dbname, 4, t.replies_table, tokens=tokens, **load)
        name, f = f"{t.label}B{conns}", m.load
        results.raw[name] = m.as_dict()
        rps, a_rps = f["steady_rps"], results.raw.get(f"{t.label}A", {}).get("rps")
        results.add(name, "requests/s answered (wrk, whole run)", f"{f['rps']:.1f}")
        figure = "requests/s answered (steady, middle 20 s)"
        if ideal <= 32:
            value = f"{rps:.1f} ({100 * rps / ideal:.0f}% of ideal {ideal:g})"
            results.add(name, figure, value, ">= 95% of ideal", rps >= 0.95 * ideal)
        else:
            share = f", {100 * rps / a_rps:.0f}% of A" if a_rps else ""
            met = rps >= 0.9 * a_rps if a_rps else None
            results.add(name, figure, f"{rps:.1f} (ideal {ideal:g}{share})", ">= 90% of A", met)
        results.add(name, "latency p50 / p99", f"{f['p50_us'] / 1000:.0f} / {f['p99_us'] / 1000:.0f} ms")
        results.add(name, "server CPU per request", f"{m.cpu_ms:.1f} ms")
        errors = f"{f['errors']} of {f['requests']} (non-200 {f['non200']}, fallback {f['fallbacks']})"
        results.add(name, "errors", errors, "0", f["errors"] == 0)
        peak = f"{m.peak_db} (max_connections {limit})"
        results.add(name, "peak DB connections", peak, f"<= {limit // 2}", m.peak_db <= limit // 2)


def run_target(t: Target, wanted: list[str], ctx: dict, results: Results) -> None:
    ctx["watch"].database_recreate(t.dbname)
    t.prepare()
    memory = []
    if set(wanted) & set("ACDE"):
        stub = servers.stub_start(ctx["run_dir"], 0, CHUNK_DELAY)
        server = t.start(ctx["run_dir"], stub.base, "latency0")
        try:
            if "A" in wanted:
                scenario_a(t, server, ctx, results)
            if "C" in wanted:
                scenario_c(t, server, ctx, results)
            if "D" in wanted and t is PROJECT:
                scenario_d(server, stub, results)
            ran = "/".join(w for w in wanted if w in "ACD") or "start"
            memory.append((f"after {ran}", pss_mb(server.pids())))
        finally:
            server.stop()
            stub.stop()
    if "B" in wanted:
        stub = servers.stub_start(ctx["run_dir"], B_LATENCY)
        server = t.start(ctx["run_dir"], stub.base, "latency2")
        try:
            scenario_b(t, server, ctx, results)
            memory.append(("after B", pss_mb(server.pids())))
        finally:
            server.stop()
            stub.stop()
    if "E" in wanted or t is YARDSTICK:
        for when, sizes in memory:
            total, each = sum(sizes), " + ".join(f"{mb:.0f}" for mb in sizes)
            figure = f"PSS of {len(sizes)} server processes, {when}"
            results.add(f"{t.label}E", figure, f"{total:.0f} MB ({each})", "< 400 MB", total < 400)


def services_check(watch: DbWatch) -> None:
    watch.conn.execute("SELECT 1")
    argv = ["redis-cli", "-u", servers.REDIS_URL, "PING"]
    if subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip() != "PONG":  # noqa: S603
        raise RuntimeError("Redis does not answer on 127.0.0.1:6379")


def main(argv: list[str]) -> int:
    words = [a if a == "yardstick" else a.upper() for a in argv] or ["A", "B", "C", "D", "E", "yardstick"]
    at = words.index("yardstick") if "yardstick" in words else len(words)
    project_wanted, yard_wanted = words[:at], words[at + 1 :]
    if at < len(words) and not yard_wanted:
        yard_wanted = ["A", "C"]
    if not set(project_wanted) <= set("ABCDE") or not set(yard_wanted) <= set("ABCE"):
        print(__doc__, file=sys.stderr)
        return 2
    watch = DbWatch()
    services_check(watch)
    load_before = os.getloadavg()[0]
    if load_before > 1:
        log(f"the machine is busy (load average {load_before:.1f}): the figures will be lower than on an idle one")
    RUNS.mkdir(exist_ok=True)
    run_dir = RUNS / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir()
    ctx = {"watch": watch, "run_dir": run_dir, "max_conn": watch.max_connections()}
    results, started = Results(), time.monotonic()
    if project_wanted:
        run_target(PROJECT, project_wanted, ctx, results)
    if yard_wanted:
        run_target(YARDSTICK, yard_wanted, ctx, results)
    print(
        f"\nchatapi benchmark, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}: gunicorn gthread, "
        f"WEB_CONCURRENCY={servers.WORKERS} x THREADS={servers.THREADS}, DB_POOL_MAX_SIZE={servers.DB_POOL}; "
        f"yardstick: uvicorn, 2 workers, uvloop; {SECONDS} s runs ({B_SECONDS} s for B) after a warm-up; "
        f"wrk, one connection per session; load average before the run {load_before:.1f}\n"
    )
    print(results.table())
    (run_dir / "results.json").write_text(json.dumps(results.raw, indent=2))
    log(f"done in {time.monotonic() - started:.0f} s; logs and raw figures in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
