"""What the benchmark measures: CPU and memory from /proc, PostgreSQL connections, wrk's figures."""

import bisect
import contextlib
import json
import math
import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
PG = "postgresql://postgres@127.0.0.1:5432"
TICK = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/stat counts CPU time in these ticks
WRK_THREADS = 2


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


def children(pid: int) -> list[int]:
    try:
        return sorted(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


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


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of these processes together, in MB: shared pages are split between their users."""
    total = 0.0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("Pss:"))
    return total


def connections_open(port: int) -> int:
    """TCP connections on this local port that are not closed yet, LISTEN left out: /proc/net/tcp{,6}.

    A server's requests left behind by a client that went away show here (a connection queued for
    accept, or CLOSE_WAIT until the server answers and closes it)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state not in ("0A", "06", "07"):  # LISTEN, TIME_WAIT, CLOSE
                count += 1
    return count


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * pct / 100) - 1))]


class DbWatch:
    """One connection opened before any server starts, so a server that takes every slot
    PostgreSQL has cannot blind the count."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(f"{PG}/postgres", autocommit=True)
        self.lock = threading.Lock()

    def max_connections(self) -> int:
        return int(self.conn.execute("SHOW max_connections").fetchone()[0])

    def database_recreate(self, name: str) -> None:
        with self.lock:
            self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.conn.execute(f'CREATE DATABASE "{name}"')

    def connections(self, dbname: str) -> int:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        with self.lock:
            return self.conn.execute(query, (dbname,)).fetchone()[0]


class Sampler(threading.Thread):
    """Every 100 ms: the server's CPU seconds so far (its process tree, looked up again every second),
    the whole machine's, and the backends connected to the server's database (peak kept)."""

    def __init__(self, root_pid: int, watch: DbWatch, dbname: str):
        super().__init__(daemon=True)
        self.root_pid, self.watch, self.dbname = root_pid, watch, dbname
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.machine: list[tuple[float, float]] = []
        self.peak_db = 0
        self._done = threading.Event()
        self._pids = descendants(root_pid)
        self._seen: dict[int, float] = {}  # CPU of every process seen, so one that exits keeps its share

    def run(self) -> None:
        refreshed = 0.0
        while not self._done.is_set():
            now = time.time()
            if now - refreshed > 1:
                self._pids, refreshed = descendants(self.root_pid), now
            for pid in self._pids:
                used = cpu_seconds([pid])
                if used:
                    self._seen[pid] = used
            self.times.append(now)
            self.cpu.append(sum(self._seen.values()))
            self.machine.append(machine_cpu_seconds())
            with contextlib.suppress(psycopg.Error):
                self.peak_db = max(self.peak_db, self.watch.connections(self.dbname))
            self._done.wait(0.1)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def _at(self, series: list, when: float):
        i = bisect.bisect_left(self.times, when)
        return series[min(max(i, 0), len(series) - 1)]

    def cpu_between(self, start: float, end: float) -> float:
        return self._at(self.cpu, end) - self._at(self.cpu, start)

    def machine_busy_between(self, start: float, end: float) -> float:
        """Share of all cores busy (anything: the server, the stub, the load generator, others)."""
        (busy0, all0), (busy1, all1) = self._at(self.machine, start), self._at(self.machine, end)
        return (busy1 - busy0) / max(1e-9, all1 - all0)


def wrk(
    base: str, conns: int, seconds: int, tokens: Path, method: str, path: str, timeout: int, message: str = ""
) -> dict:
    """One wrk run with bench/load.lua: WRK_THREADS threads, round-robin over the tokens."""
    argv = ["wrk", "-t", str(WRK_THREADS), "-c", str(conns), "-d", f"{seconds}s", "--timeout", f"{timeout}s"]
    argv += ["-s", str(BENCH / "load.lua"), base, "--", str(tokens), str(WRK_THREADS), method, path, str(timeout)]
    argv += [message] if message else []
    launched = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - our own argv
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures = json.loads(line.removeprefix("BENCH_JSON "))
            figures["launched"] = launched
            figures["answered"] = {int(k): v for k, v in figures["answered"].items()}
            return figures
    raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")


def steady(figures: dict, skip: int, duration: int) -> tuple[float, float, int]:
    """(start, end, answers) of the steady window: the whole seconds from `skip` s after wrk started to
    the end of its `duration` (wrk starts a little after it is launched, so it runs past that end).
    Requests in flight when wrk stops are never counted by it, so the window's rate is the rate the
    server kept up, diluted neither by the start nor by the cut at the end."""
    start = math.ceil(figures["launched"]) + skip
    end = math.floor(figures["launched"] + duration)
    answers = sum(n for second, n in figures["answered"].items() if start <= second < end)
    return float(start), float(end), answers


def in_window(when: float, result: dict) -> bool:
    return result["window"][0] <= when < result["window"][1]


def probe_figures(probes: list[dict]) -> tuple[float, int]:
    """(slowest answer in seconds, failures): a probe that failed counts at the time it took to fail."""
    failed = sum(not (isinstance(p["status"], int) and 200 <= p["status"] < 300) for p in probes)
    return max((p["seconds"] for p in probes), default=math.nan), failed
