"""Every maildesk benchmark, one command, one table of figures with the machine it ran on.

    python bench/run.py                      # the full suite (about half an hour on 2 cores)
    python bench/run.py --quick              # smaller sizes, a few minutes: checks the benchmarks run
    python bench/run.py --write docs/benchmarks.md    # also write the table (Markdown) there

Needs the test servers (Dovecot, PostgreSQL on 127.0.0.1); starts them with scripts/test-servers up when
they are not running. Benchmarks are not tests: they print figures and never fail on a slow machine.
"""

from __future__ import annotations

import argparse
import datetime
import io
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_ingest, bench_latency, bench_memory, bench_workers, common  # noqa: E402

FULL = {"ingest": 5000, "latency": 100, "tickets": 1_000_000, "due": 10_000, "memory": 50_000, "workers": 4000}
QUICK = {"ingest": 600, "latency": 15, "tickets": 100_000, "due": 1000, "memory": 3000, "workers": 800}


def tee(fn, *args):
    """Run a benchmark, show its lines as they come and keep them."""
    buffer = io.StringIO()

    class Both(io.TextIOBase):
        def write(self, s):
            sys.__stdout__.write(s)
            sys.__stdout__.flush()
            buffer.write(s)
            return len(s)

    with redirect_stdout(Both()):
        result = fn(*args)
    return result, buffer.getvalue()


def escalation(tickets: int, due: int) -> tuple[dict, str]:
    """bench/bench_escalation.py (written with the sweep) in its own process, figures read from its output."""
    out = subprocess.run([sys.executable, str(common.ROOT / "bench" / "bench_escalation.py"), str(tickets), str(due)],
                         capture_output=True, text=True, check=True, cwd=str(common.ROOT)).stdout
    print(out, end="")
    fig = {}
    if m := re.search(r"query\s+(\d+) due tickets found in ([\d.]+) ms", out):
        fig["batch"], fig["batch_ms"] = int(m.group(1)), float(m.group(2))
    if m := re.search(r"sweep\s+(\d+) escalated .* in ([\d.]+) s: ([\d.]+) ms a ticket", out):
        fig["escalated"], fig["sweep_s"], fig["per_ticket_ms"] = int(m.group(1)), float(m.group(2)), float(m.group(3))
    if m := re.search(r"quiet\s+a sweep with nothing due: ([\d.]+) ms", out):
        fig["quiet_ms"] = float(m.group(1))
    return fig, out


def classify_rate() -> str:
    out = subprocess.run([sys.executable, str(common.ROOT / "bench" / "bench_classify.py"), "2000"],
                         capture_output=True, text=True, check=True, cwd=str(common.ROOT)).stdout
    print(out, end="")
    m = re.search(r"([\d,]+) msgs/s", out)
    return m.group(1) if m else "?"


def yes(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(machine: dict, sizes: dict, ingest: list[dict], latency: dict, esc: dict, memory: dict,
          workers: list[dict], classify: str, command: str) -> str:
    floor = next(r["floor"] for r in ingest if "floor" in r)
    stages = next((r["stages"] for r in ingest if "stages" in r), None)
    runs = [r for r in ingest if "source" in r]
    lines = [
        f"Measured {datetime.date.today().isoformat()} with `{command}`.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".",
        "",
        "| # | what | figure | target | |",
        "| --- | --- | --- | --- | --- |",
    ]
    sqlite_maildir = next(r for r in runs if r["source"] == "maildir" and r["store"] == "sqlite")
    for r in runs:
        lines.append(f"| 1 | ingest {r['n']:,} messages, {r['source']} → {r['store']} (ticket + acknowledgement in "
                     f"the outbox) | **{r['rate']:,.0f} msg/s** ({r['seconds']:.1f} s; {r['vs_mailparser']:.1f}× "
                     f"mail-parser's time; main process {r['main_cpu_ms']:.1f} ms CPU a message, parse worker "
                     f"{r['pool_cpu_ms']:.1f}) | ≥ 500 msg/s on SQLite; ≤ 1.3× mail-parser | "
                     f"{yes(r['rate'] >= 500) if r['store'] == 'sqlite' else ''} |")
    lines.append(f"| 1 | mail-parser alone, same messages | {floor['mailparser_all_cores_rate']:,.0f} msg/s on "
                 f"{floor['cores']} cores, {floor['mailparser_one_core_rate']:,.0f} on one | the floor | |")
    lines.append(f"| 1 | pipeline ÷ mail-parser (Maildir, SQLite) | {sqlite_maildir['vs_mailparser']:.1f}× | ≤ 1.3× | "
                 f"{yes(sqlite_maildir['vs_mailparser'] <= 1.3)} |")
    lines.append(f"| 2 | delivery (LMTP) → acknowledgement accepted by SMTP, IDLE, {latency['n']} messages | "
                 f"**median {latency['median']:.2f} s**, p95 {latency['p95']:.2f} s, max {latency['max']:.2f} s | "
                 f"median ≤ 2 s | {yes(latency['median'] <= 2)} |")
    if esc:
        batches = -(-sizes["due"] // esc.get("batch", 500))
        find_ms = batches * esc.get("batch_ms", 0)
        lines.append(f"| 3 | escalation sweep, {sizes['tickets']:,} tickets, {sizes['due']:,} due: finding them | "
                     f"**{find_ms:.0f} ms** ({batches} index range scans of {esc.get('batch', 500)}, "
                     f"{esc.get('batch_ms', 0):.2f} ms each) | ≤ 1 s | {yes(find_ms <= 1000)} |")
        lines.append(f"| 3 | … carrying them out (escalation emails rendered and queued, audit, one transaction "
                     f"a ticket) | {esc.get('sweep_s', 0):.1f} s ({esc.get('per_ticket_ms', 0):.1f} ms a ticket) | "
                     f"≤ 1 s | {yes(esc.get('sweep_s', 99) <= 1)} |")
        lines.append(f"| 3 | … the hourly sweep on a day with nothing due | {esc.get('quiet_ms', 0):.2f} ms | | |")
    lines.append(f"| 4 | peak memory ingesting a {memory['n']:,}-message backlog ({memory['mailbox_mb']:,.0f} MB "
                 f"Maildir, SQLite, `maildesk poll --once`) | **{memory['main_peak_mb']:.0f} MB** maildesk, "
                 f"{memory['worker_peak_mb']:.0f} MB its parse worker, {memory['tree_peak_mb']:.0f} MB all "
                 f"together (PSS); {memory['rate']:.0f} msg/s | ≤ 150 MB | {yes(memory['tree_peak_mb'] <= 150)} |")
    for w in workers:
        lines.append(f"| 5 | {w['workers']} worker(s), 8 Dovecot mailboxes, PostgreSQL, {w['n']:,} messages | "
                     f"**{w['rate']:,.0f} msg/s** (start-up {w['startup']:.1f} s) | scales with cores | |")
    lines.append(f"| – | keyword classifier alone (bench_classify.py) | {classify} msg/s | | |")
    if stages:
        total = stages[-1][1]
        lines += ["", "Where the main process spends its time (Maildir + SQLite, cProfile; stages can nest, "
                  "e.g. an autoflush inside a lookup counts in both):", "", "| stage | seconds | share |",
                  "| --- | --- | --- |"]
        lines += [f"| {label} | {s:.2f} | {100 * s / total:.0f} % |" for label, s in stages]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", help="also write the Markdown table to this file")
    ap.add_argument("--skip", default="", help="comma-separated: ingest,latency,escalation,memory,workers")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    skip = set(filter(None, args.skip.split(",")))
    command = "python bench/run.py" + (" --quick" if args.quick else "") + (f" --skip {args.skip}" if skip else "")
    common.servers_env()
    machine = common.machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    ingest, _ = tee(bench_ingest.main, ["--n", str(sizes["ingest"]), "--profile"]) if "ingest" not in skip else ([], "")
    latency, _ = tee(bench_latency.main, ["--n", str(sizes["latency"])]) if "latency" not in skip else ({}, "")
    esc, _ = escalation(sizes["tickets"], sizes["due"]) if "escalation" not in skip else ({}, "")
    memory, _ = tee(bench_memory.main, ["--n", str(sizes["memory"])]) if "memory" not in skip else ({}, "")
    workers, _ = tee(bench_workers.main, ["--n", str(sizes["workers"])]) if "workers" not in skip else ([], "")
    classify = classify_rate()
    machine["load after"] = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    text = table(machine, sizes, ingest, latency, esc, memory, workers, classify, command)
    print()
    print(text)
    if args.write:
        path = Path(args.write)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        block = f"{start}\n{text}{end}"
        if start in old and end in old:
            path.write_text(old[:old.index(start)] + block + old[old.index(end) + len(end):], encoding="utf-8")
        else:
            path.write_text(old + ("\n" if old else "") + block + "\n", encoding="utf-8")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
