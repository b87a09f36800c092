"""What the benchmarks share: the machine they ran on, the test servers, databases, desks, /proc readings.

The benchmarks use the same private servers as the tests (scripts/test-servers: Dovecot and PostgreSQL on
127.0.0.1) and the same helpers (tests/servers.py), so a figure is always measured against real servers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> dict[str, str]:
    """The machine a figure was measured on (CPU, cores, memory, software versions, load)."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": str(cores()),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "os": f"{platform.system()} {platform.release()}"}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    env = servers.load_env()
    if env and servers.postgres_problem(env) is None:
        import psycopg

        with psycopg.connect(servers._conninfo(env["MAILDESK_TEST_PG_URL"])) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["dovecot"] = subprocess.run(["dovecot", "--version"], capture_output=True, text=True,
                                         timeout=5).stdout.split()[0]
    info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def servers_env(start: bool = True) -> dict[str, str]:
    """The test servers' settings; starts them with scripts/test-servers up when they are not running."""
    env = servers.load_env()
    if (env is None or servers.dovecot_problem(env) or servers.postgres_problem(env)) and start:
        subprocess.run([str(ROOT / "scripts" / "test-servers"), "up"], check=True, stdout=subprocess.DEVNULL)
        env = servers.load_env()
    if env is None or servers.dovecot_problem(env) or servers.postgres_problem(env):
        raise SystemExit("the test servers are not running: scripts/test-servers up")
    return env


@contextlib.contextmanager
def database(kind: str, folder: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A fresh database: a SQLite file in `folder`, or a new database on the PostgreSQL test server."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    env = env or servers_env()
    with servers.temporary_database(env["MAILDESK_TEST_PG_URL"], prefix="maildesk_bench") as url:
        yield url


def settings_env(mailbox_url: str, database_url: str, folder: Path, smtp_url: str | None = None,
                 ca_file: str | None = None) -> dict[str, str]:
    env = {"MAILDESK_MAILBOX_URL": mailbox_url, "MAILDESK_SMTP_URL": smtp_url or f"file://{folder / 'sent'}",
           "MAILDESK_DATABASE_URL": database_url, "MAILDESK_HMAC_SECRET": "bench-secret"}
    if ca_file:
        env["MAILDESK_CA_FILE"] = ca_file
    return env


def quiet() -> None:
    """Benchmarks print figures, not the desk's INFO lines."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("maildesk").setLevel(logging.WARNING)


def workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"maildesk-bench-{name}-"))


# ---- /proc: CPU time and memory of a process and its descendants ------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def descendants(pid: int) -> list[int]:
    """pid and every process below it (the forkserver and its parse workers included)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: pages shared between processes (a forkserver and the workers it forked)
    count once in the sum over processes, not once per process as RSS does."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return rss_kib(pid)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
