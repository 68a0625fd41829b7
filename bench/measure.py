"""What the benchmark measures: CPU and memory from /proc, PostgreSQL connections, wrk's figures."""

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
PG = "postgresql://postgres@127.0.0.1:5432"
TICK = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/stat counts CPU time in these ticks


def descendants(pid: int) -> list[int]:
    """The process and all its children, grandchildren, ..."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes (all their threads), so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
    return total / TICK


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, every core summed: /proc/stat's cpu line."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / TICK, sum(fields) / TICK


def pss_mb(pids: list[int]) -> list[float]:
    """Proportional set size of each process, in MB: shared pages are split between their users."""
    sizes = []
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        sizes += [int(line.split()[1]) / 1024 for line in lines if line.startswith("Pss:")]
    return sizes


class DbWatch:
    """One connection opened before any server starts, so a server that takes every slot
    PostgreSQL has cannot blind the count."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(f"{PG}/postgres", autocommit=True)

    def max_connections(self) -> int:
        return int(self.conn.execute("SHOW max_connections").fetchone()[0])

    def database_recreate(self, name: str) -> None:
        self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.conn.execute(f'CREATE DATABASE "{name}"')

    def replies_between(self, dbname: str, table: str, start: float, end: float) -> int:
        """Model replies stored (not fallbacks) with created_at in [start, end), Unix seconds."""
        query = (
            f"SELECT count(*) FROM {table} WHERE kind = 'assistant' AND NOT fallback "  # noqa: S608 - our table
            "AND created_at >= to_timestamp(%s) AND created_at < to_timestamp(%s)"
        )
        with psycopg.connect(f"{PG}/{dbname}", autocommit=True) as conn:
            return conn.execute(query, (start, end)).fetchone()[0]

    def connections(self, dbname: str) -> int:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        return self.conn.execute(query, (dbname,)).fetchone()[0]


class PeakConnections(threading.Thread):
    """Polls the backends connected to one database every 100 ms and keeps the highest count."""

    def __init__(self, watch: DbWatch, dbname: str):
        super().__init__(daemon=True)
        self.watch, self.dbname, self.peak, self._done = watch, dbname, 0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.watch.connections(self.dbname))
            self._done.wait(0.1)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def wrk(base: str, conns: int, seconds: int, tokens: Path, mode: str, path: str) -> dict:
    """One wrk run with bench/load.lua: one thread per connection, each with its own session."""
    argv = ["wrk", "-t", str(conns), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "30s"]
    argv += ["-s", str(BENCH / "load.lua"), base, "--", str(tokens), mode, path]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603 - our own argv
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures = json.loads(line.removeprefix("BENCH_JSON "))
            answered = figures["requests"] - figures["non200"] - figures["fallbacks"]
            figures["rps"] = answered / (figures["duration_us"] / 1e6)  # 200 with a real model reply
            socket_errors = sum(figures[k] for k in ("connect", "read", "write", "timeout"))
            figures["errors"] = socket_errors + figures["non200"] + figures["fallbacks"]
            return figures
    raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")


@dataclass
class Measured:
    load: dict
    cpu_ms: float  # server CPU per request
    peak_db: int

    def as_dict(self) -> dict:
        return self.load | {"cpu_ms": self.cpu_ms, "peak_db": self.peak_db}


def measured_load(
    pids: list[int], watch: DbWatch, dbname: str, warmup: int, replies_table: str = "", **load
) -> Measured:
    """wrk for a warm-up (not counted), then the measured run, with CPU and DB connections watched.

    The connection peak spans the warm-up too: that is when threads first open connections.
    """
    peak = PeakConnections(watch, dbname)
    peak.start()
    if warmup:
        wrk(**{**load, "seconds": warmup})
    cpu_before, started = cpu_seconds(pids), time.time()
    figures = wrk(**load)
    cpu = cpu_seconds(pids) - cpu_before
    if replies_table and load["seconds"] >= 20:
        # Steady state: replies stored in the middle of the run, away from both edges, where
        # requests still in flight when wrk stops go uncounted.
        start, end = started + 5, started + load["seconds"] - 5
        figures["steady_rps"] = watch.replies_between(dbname, replies_table, start, end) / (end - start)
    return Measured(figures, 1000 * cpu / max(1, figures["requests"]), peak.stop())
