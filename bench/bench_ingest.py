"""Ingest throughput: mailbox -> stored ticket with its acknowledgement rendered into the outbox.

For each mailbox kind (a Maildir, the real Dovecot over IMAP) and each store (SQLite, PostgreSQL), N
generated messages (bench/mailgen.py: Bengali/English/Banglish, multipart with HTML, attachments,
RFC 2047 subjects, ~20 % replies) are loaded into a fresh mailbox and read by one ingest cycle
(`maildesk poll` does the same). Measured in the same run on the same cores: mail-parser alone parsing the
same messages, on every core and on one. `--profile` shows where the main process spends its time.

    python bench/bench_ingest.py [--n 5000] [--sources maildir,imap] [--stores sqlite,postgres] [--profile]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import multiprocessing
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.mailgen import generate, write_maildir  # noqa: E402


def _mailparser_chunk(raws: list[bytes]) -> int:
    import mailparser

    for raw in raws:
        mailparser.parse_from_bytes(raw)
    return len(raws)


def mailparser_alone(raws: list[bytes], processes: int) -> float:
    """Seconds mail-parser needs to parse every message with `processes` processes (workers warmed up)."""
    if processes <= 1:
        t0 = time.perf_counter()
        _mailparser_chunk(raws)
        return time.perf_counter() - t0
    ctx = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        list(pool.map(_mailparser_chunk, [raws[:8]] * processes))  # start and import in every worker
        chunk = 50
        t0 = time.perf_counter()
        total = sum(pool.map(_mailparser_chunk, [raws[i:i + chunk] for i in range(0, len(raws), chunk)]))
        seconds = time.perf_counter() - t0
    assert total == len(raws)
    return seconds


def _children_cpu() -> float:
    me = os.getpid()
    return sum(common.cpu_seconds(p) for p in common.descendants(me) if p != me)


def pipeline(raws: list[bytes], source: str, store: str, env: dict | None, profile: bool = False) -> dict:
    """One ingest cycle over a fresh mailbox and database; returns the figures."""
    from sqlalchemy import func, select

    from maildesk.app import build_desk
    from maildesk.jobs import prepare
    from maildesk.jobs.ingest import ingest_office
    from maildesk.settings import default_config_dir, load_settings
    from maildesk.store.models import Event, Message, Outbox, Ticket

    folder = common.workdir(f"ingest-{source}-{store}")
    account = None
    with common.database(store, folder, env) as url:
        if source == "maildir":
            write_maildir(folder / "mailbox", ((None, r) for r in raws))
            mailbox_url, ca = f"maildir://{folder / 'mailbox'}", None
        else:
            from tests import servers

            account = servers.new_imap_account(env, "bench")
            account.append_many(raws, batch=100)
            mailbox_url, ca = account.url("imap"), env["MAILDESK_TEST_CA"]
        try:
            settings = load_settings(default_config_dir() / "maildesk.toml",
                                     env=common.settings_env(mailbox_url, url, folder, ca_file=ca))
            desk = build_desk(settings)
            od = next(iter(desk.offices.values()))
            prepare.prepare(od, raws[:prepare.MIN_PARALLEL]).take(0, prepare.MIN_PARALLEL)  # a running worker's pool is warm
            profiler = cProfile.Profile() if profile else None
            cpu0, kids0 = time.process_time(), _children_cpu()
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            report = ingest_office(desk, od)
            if profiler:
                profiler.disable()
            wall = time.perf_counter() - t0
            cpu, kids = time.process_time() - cpu0, _children_cpu() - kids0
            with desk.sessions() as s:
                stored = s.scalar(select(func.count()).select_from(Message))
                tickets = s.scalar(select(func.count()).select_from(Ticket))
                acks = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == "ack"))
                capped = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "rate_limited"))
            desk.close()
        finally:
            if account is not None:
                from tests import servers

                servers.remove_account(account)
    assert stored == len(raws), f"{stored} of {len(raws)} stored"
    return {"source": source, "store": store, "n": len(raws), "seconds": wall, "rate": len(raws) / wall,
            "main_cpu_ms": cpu / len(raws) * 1000, "pool_cpu_ms": kids / len(raws) * 1000,
            "tickets": tickets, "acks": acks, "rate_limited": capped, "kinds": dict(report.kinds),
            "profile": profiler}


STAGES = [  # (label, functions whose cumulative time is the stage), in pipeline order
    ("read the mailbox (fetch, flag)", ["_fetch", "mark_done", "pending"]),
    ("wait for the pool (parse, render)", ["take", "finish"]),
    ("parse (in this process)", ["parse_message"]),
    ("classify (in this process)", ["classify"]),
    ("find the thread, duplicates, quarantine", ["find_thread", "already_stored", "distinct_key", "is_quarantined",
                                                 "repeated"]),
    ("decide (pure core)", ["decide"]),
    ("open ticket, counter, due date", ["open_ticket"]),
    ("render templates (Jinja2; in the pool for a backlog)", ["render"]),
    ("compose MIME bytes (in the pool for a backlog)", ["compose"]),
    ("outbox: dedupe and caps", ["exists", "over_cap"]),
    ("email context (last event, thread)", ["context", "citizen_thread"]),
    ("ORM flushes (inserts, updates)", ["_flush"]),
    ("commits", ["commit"]),
]


def stage_table(profiler: cProfile.Profile) -> list[tuple[str, float]]:
    """Cumulative seconds per stage from a profile of the main process (stages may nest: a query's
    autoflush counts in both)."""
    stats = pstats.Stats(profiler).stats
    total = max(v[3] for v in stats.values())
    rows = []
    for label, names in STAGES:
        seconds = 0.0
        for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items():
            if name not in names:
                continue
            if name in ("_flush", "commit"):
                if not path.endswith("orm/session.py"):
                    continue
            elif "maildesk" not in path:
                continue
            seconds += ct
        rows.append((label, seconds))
    rows.append(("total (main process, under cProfile)", total))
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--sources", default="maildir,imap")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--profile", action="store_true", help="also profile Maildir + SQLite and show the stages")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    common.quiet()
    raws = [raw for _mid, raw in generate(args.n, seed=args.seed)]
    env = common.servers_env() if ("imap" in args.sources or "postgres" in args.stores) else None
    results = []
    n_cores = common.cores()
    floor_all = mailparser_alone(raws, n_cores)
    floor_one = mailparser_alone(raws, 1)
    print(f"mail-parser alone: {len(raws) / floor_all:,.0f} msg/s on {n_cores} cores ({floor_all:.2f} s), "
          f"{len(raws) / floor_one:,.0f} msg/s on one core ({floor_one:.2f} s)")
    for source in args.sources.split(","):
        for store in args.stores.split(","):
            r = pipeline(raws, source, store, env)
            r["vs_mailparser"] = r["seconds"] / floor_all
            r.pop("profile")
            results.append(r)
            print(f"{source:8} {store:9} {r['rate']:7,.0f} msg/s  {r['seconds']:6.2f} s  "
                  f"{r['vs_mailparser']:4.1f}x mail-parser  main {r['main_cpu_ms']:.2f} ms/msg, "
                  f"pool {r['pool_cpu_ms']:.2f} ms/msg  ({r['tickets']} tickets, {r['acks']} acks, "
                  f"{r['rate_limited']} rate-limited)")
    floor = {"mailparser_all_cores_rate": len(raws) / floor_all, "mailparser_one_core_rate": len(raws) / floor_one,
             "mailparser_all_cores_seconds": floor_all, "cores": n_cores}
    results.append({"floor": floor})
    if args.profile:
        r = pipeline(raws, "maildir", "sqlite", env, profile=True)
        rows = stage_table(r["profile"])
        total = rows[-1][1]
        print("where the main process spends its time (Maildir + SQLite, cProfile):")
        for label, seconds in rows:
            print(f"  {label:42} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
        results.append({"stages": rows})
    return results


if __name__ == "__main__":
    main()
