"""bench/run's table: each row's figures, judged on the median (or worst) of the runs against its target."""

import math
import os
import statistics
from dataclasses import dataclass

import servers
from measure import WRK_THREADS
from params import B_SECONDS, B_SKIP, CORES, F_STREAMS, G_STREAMS, SECONDS, SETTLE_SECONDS, TIMEOUT, WARMUP


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
