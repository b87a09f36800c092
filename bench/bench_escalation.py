"""How the escalation sweep and the weekly digest scale with the number of tickets stored.

Builds a database with N tickets (most resolved long ago, some open, K due for a level now), then times:
the sweep's due-ticket query (it should not grow with N), one whole sweep of the K due tickets (render +
queue + audit, one transaction each), a second sweep (nothing due: the cost of the hourly job on a quiet
day), and building the weekly digest. Prints the database's query plan for the sweep.

    python bench/bench_escalation.py [N] [K] [DATABASE_URL]     (default 100000 200, a temp SQLite file)
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from maildesk.app import build_desk  # noqa: E402
from maildesk.jobs import digest as digest_job  # noqa: E402
from maildesk.jobs.escalate import due_query, due_ticket_ids, escalate_office  # noqa: E402
from maildesk.settings import default_config_dir, load_settings  # noqa: E402
from maildesk.store.models import Message, Ticket  # noqa: E402

NOW = datetime(2026, 12, 20, 4, 0, tzinfo=timezone.utc)  # Sunday 10:00 in Dhaka


def fill(desk, n: int, due: int) -> None:
    rows, messages = [], []
    for i in range(n):
        received = NOW - timedelta(days=400) + timedelta(minutes=5 * i % (390 * 24 * 60))
        resolved = i % 10 != 0  # nine in ten resolved
        is_due = i < due
        rows.append(dict(
            id=i + 1, office="khaliajuri", ref=f"ICT-2026-{i + 1:06d}", service="2.2.5",
            status="resolved" if resolved and not is_due else "open", officer="ap",
            citizen_email=f"c{i}@example.com", citizen_name="", subject=f"request {i}",
            opened_at=received, received_at=received,
            due_at=NOW - timedelta(days=5) if is_due else received + timedelta(days=5),
            immediate=False, resolved_at=None if (is_due or not resolved) else received + timedelta(days=2),
            last_activity_at=received, escalation_level=-1,
            next_escalation_at=(NOW - timedelta(hours=1) if is_due
                                else None if resolved else NOW + timedelta(days=1 + i % 30))))
        if is_due:
            messages.append(dict(office="khaliajuri", ticket_id=i + 1, mailbox="bench", uidvalidity=1, uid=str(i),
                                 message_id=f"<b{i}@example.com>", message_key=f"<b{i}@example.com>",
                                 sender=f"c{i}@example.com", sender_name="", subject=f"request {i}",
                                 received_at=received, text="আমাদের ইন্টারনেট লাইন কাজ করছে না। " * 5,
                                 kind="citizen", raw=b"x"))
    with desk.engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(Ticket), rows[start:start + 5000])
        if messages:
            conn.execute(insert(Message), messages)


def timed(fn, repeat: int = 1):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    return result, best


def main(n: int = 100_000, due: int = 200, url: str | None = None) -> None:
    tmp = tempfile.mkdtemp(prefix="maildesk-bench-")
    env = {"MAILDESK_MAILBOX_URL": f"maildir://{tmp}/mailbox", "MAILDESK_SMTP_URL": f"file://{tmp}/sent",
           "MAILDESK_DATABASE_URL": url or f"sqlite:///{tmp}/bench.db", "MAILDESK_HMAC_SECRET": "bench"}
    desk = build_desk(load_settings(default_config_dir() / "maildesk.toml", env=env), clock=lambda: NOW)
    od = desk.offices["khaliajuri"]
    _, t_fill = timed(lambda: fill(desk, n, due))
    with desk.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"database  {desk.engine.dialect.name}, {n:,} tickets ({due} due now), filled in {t_fill:.1f} s")

    compiled = due_query(od.key, NOW).compile(desk.engine)
    with desk.engine.connect() as conn:
        if desk.engine.dialect.name == "sqlite":
            params = tuple(v.isoformat() if isinstance(v, datetime) else v
                           for v in (compiled.params[k] for k in compiled.positiontup))
            plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)]
        else:
            plan = list(conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars())
    print("plan      " + "\n          ".join(plan))

    with desk.sessions() as s:
        ids, t_query = timed(lambda: due_ticket_ids(s, od.key, NOW), repeat=20)
    print(f"query     {len(ids)} due tickets found in {t_query * 1000:.2f} ms (best of 20)")
    report, t_sweep = timed(lambda: escalate_office(desk, od, NOW))
    print(f"sweep     {report.escalated} escalated ({report.sent}) in {t_sweep:.2f} s: "
          f"{t_sweep / max(report.escalated, 1) * 1000:.1f} ms a ticket")
    again, t_quiet = timed(lambda: escalate_office(desk, od, NOW), repeat=5)
    print(f"quiet     a sweep with nothing due: {t_quiet * 1000:.2f} ms (best of 5), {again.escalated} escalated")
    due_w = digest_job.due_now(NOW, od.calendar.tz, desk.settings.digest)
    with desk.sessions() as s:
        d, t_digest = timed(lambda: digest_job.build(s, desk, od, due_w.period, due_w.start, due_w.end, NOW))
    rendered, t_render = timed(lambda: digest_job.render_digest(od, d, od.charter.officers["ap"]))
    listed = sum(len(g.tickets) for o in d.overdue for g in o.services)
    print(f"digest    built in {t_digest:.2f} s ({d.overdue_count:,} overdue counted, {listed} listed, {d.open_count:,} open), "
          f"rendered in {t_render:.2f} s ({len(rendered.html) / 1024:.0f} KiB HTML)")
    desk.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 100_000, int(args[1]) if len(args) > 1 else 200, args[2] if len(args) > 2 else None)
