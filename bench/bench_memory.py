"""Peak memory while a 50,000-message backlog is ingested (`maildesk poll --once` on a Maildir, SQLite;
the database schema created beforehand with `maildesk db upgrade`, as on a machine already set up).

The backlog is read in bounded batches (worker.batch_size fetched at a time, up to 100 per transaction),
so memory should not grow with the mailbox. This runs the real command in a subprocess and samples the
resident memory of it and of its parse workers (the forkserver pool) from /proc every 50 ms: the peak RSS
of each, and the peak of their sum counted as PSS (pages the workers share with the forkserver once).

    python bench/bench_memory.py [--n 50000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.mailgen import copies, generate, write_maildir  # noqa: E402
from tests.helpers import write_offices  # noqa: E402


class TreeMemory(threading.Thread):
    """Samples the RSS of a process and its descendants until it exits."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.main_peak = self.tree_peak = self.workers_peak = 0  # KiB
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = common.descendants(self.pid)
            sizes = {p: common.rss_kib(p) for p in pids}
            self.main_peak = max(self.main_peak, common.rss_kib(self.pid, "VmHWM"))
            self.tree_peak = max(self.tree_peak, sum(common.pss_kib(p) for p in pids))
            others = [v for p, v in sizes.items() if p != self.pid]
            self.workers_peak = max(self.workers_peak, max(others, default=0))
            time.sleep(self.every)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    folder = common.workdir("memory")
    base = list(generate(min(args.n, 5000), seed=args.seed))
    rounds = -(-args.n // len(base))
    messages = list(copies(base, rounds))[:args.n]
    write_maildir(folder / "mailbox", messages)
    size_mb = sum(len(raw) for _, raw in messages) / 1e6
    del messages, base
    config = write_offices(folder / "config", {"khaliajuri": f"maildir://{folder / 'mailbox'}"},
                           smtp_url=f"file://{folder / 'sent'}", database_url=f"sqlite:///{folder / 'desk.db'}")
    # As on a real machine the schema exists before the backlog is read (`maildesk db upgrade` once).
    subprocess.run([sys.executable, "-m", "maildesk", "--config", str(config), "db", "upgrade"], check=True,
                   stdout=subprocess.DEVNULL, cwd=str(common.ROOT))
    log = open(folder / "poll.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(config), "poll", "--once", "--no-send"],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=str(common.ROOT))
    sampler = TreeMemory(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    log.close()
    if proc.returncode != 0:
        raise SystemExit(f"maildesk poll failed ({proc.returncode}); see {folder / 'poll.log'}")
    summary = out.decode().strip().splitlines()[0] if out else ""
    result = {"n": args.n, "mailbox_mb": size_mb, "seconds": seconds, "rate": args.n / seconds,
              "main_peak_mb": sampler.main_peak / 1024, "tree_peak_mb": sampler.tree_peak / 1024,
              "worker_peak_mb": sampler.workers_peak / 1024, "summary": summary}
    print(f"{args.n:,} messages ({size_mb:,.0f} MB) in {seconds:.0f} s ({result['rate']:.0f} msg/s): peak RSS "
          f"{result['main_peak_mb']:.0f} MB (maildesk), {result['worker_peak_mb']:.0f} MB (largest parse "
          f"worker), {result['tree_peak_mb']:.0f} MB (all processes together, PSS); {summary}")
    return result


if __name__ == "__main__":
    main()
