"""Several workers on PostgreSQL: ingest throughput with 1, 2 and 4 `maildesk run` processes, 8 mailboxes.

Eight office mailboxes on the real Dovecot are filled (MULTIAPPEND) with distinct generated mail; then W
workers start together against one fresh PostgreSQL database and share the mailboxes through their leases
(jobs/lease.py). The clock runs from the first message stored until every message is stored with its
acknowledgement in the outbox (worker start-up -- imports, schema, first lease round -- is shown apart).
Outgoing mail goes to a folder, so sending costs little.

    python bench/bench_workers.py [--n 4000] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.mailgen import copies, generate  # noqa: E402
from tests import servers  # noqa: E402
from tests.helpers import write_offices  # noqa: E402

MAILBOXES = 8


def run(count: int, per_office: dict[str, list[bytes]], env: dict) -> dict:
    from sqlalchemy import create_engine, func, select

    from maildesk.store.models import Message

    folder = common.workdir(f"workers-{count}")
    boxes = {key: servers.new_imap_account(env, f"desk-{key}") for key in per_office}
    try:
        for key, box in boxes.items():
            box.append_many(per_office[key], batch=100)
        total = sum(len(v) for v in per_office.values())
        with common.database("postgres", folder, env) as url:
            config = write_offices(folder / "config", {k: b.url("imap") for k, b in boxes.items()},
                                   smtp_url=f"file://{folder / 'sent'}", database_url=url,
                                   ca_file=env["MAILDESK_TEST_CA"], idle=True, poll_seconds=2, send_seconds=5,
                                   lease_seconds=6)
            engine = create_engine(url)
            procs, logs = [], []
            t0 = time.perf_counter()
            for i in range(count):
                logs.append(open(folder / f"worker-{i}.log", "wb"))
                procs.append(subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(config), "run"],
                                              stdout=logs[-1], stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              cwd=str(common.ROOT)))
            first = None
            try:
                while True:
                    try:
                        with engine.connect() as conn:
                            stored = conn.scalar(select(func.count()).select_from(Message)) or 0
                    except Exception:  # the schema is still being created
                        stored = 0
                    now = time.perf_counter()
                    if stored and first is None:
                        first = now
                    if stored >= total:
                        break
                    if now - t0 > 1800:
                        raise SystemExit(f"{count} workers: only {stored} of {total} stored after 30 minutes")
                    time.sleep(0.1)
                done = time.perf_counter()
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(60)
                for fh in logs:
                    fh.close()
                engine.dispose()
    finally:
        for box in boxes.values():
            servers.remove_account(box)
    return {"workers": count, "n": total, "startup": first - t0, "seconds": done - first,
            "rate": total / (done - first), "rate_with_startup": total / (done - t0)}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="messages in all eight mailboxes together")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    env = common.servers_env()
    per = args.n // MAILBOXES
    base = list(generate(per, seed=args.seed))
    results = []
    for count in [int(w) for w in args.workers.split(",")]:
        # Each mailbox its own distinct mail (copies with their own Message-IDs and citizens).
        mail = {f"office{i + 1}": [raw for _, raw in copies(base, 1, start=i + 1)] for i in range(MAILBOXES)}
        r = run(count, mail, env)
        results.append(r)
        print(f"{count} worker(s), {MAILBOXES} mailboxes, PostgreSQL: {r['rate']:,.0f} msg/s "
              f"({r['n']:,} messages in {r['seconds']:.1f} s after a {r['startup']:.1f} s start-up; "
              f"{r['rate_with_startup']:,.0f} msg/s counting it)")
    return results


if __name__ == "__main__":
    main()
