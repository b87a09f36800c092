"""Crash at any point: the real worker (`maildesk run`) against a real Dovecot mailbox, killed with SIGKILL.

Mail keeps arriving while the worker is killed and restarted again and again (during start-up and schema
creation, mid-ingest, mid-send). The SMTP server lives in the test process, so it outlives every kill.
Afterwards the end state must equal that of an uninterrupted run over the same mail: every message stored
once, every ticket once, every citizen acknowledged. Duplicate emails are possible only where SMTP accepted a
message and the kill came before the commit that marks its row sent: at most one per kill, counted and
reported.

Default: 30 kills over 300 messages (about a minute). Soak: `scripts/test tests/fault --kills 1000`
(or MAILDESK_KILLS=1000); MAILDESK_KILL_SEED repeats a run; MAILDESK_FAULT_REPORT=FILE keeps the figures.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import time

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from maildesk.app import build_desk
from maildesk.jobs.ingest import ingest_all
from maildesk.store.models import IngestFailure, Message, Outbox, Ticket
from tests.fault.harness import WorkerProcess, citizen_mail, corpus_messages, followup_mail, wait_until, write_settings
from tests.helpers import drop_into_maildir, settings_for


def plan_mail(count: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """New citizen mail, follow-ups to earlier mail, and exact re-deliveries (the same bytes twice)."""
    corpus = corpus_messages()
    plan: list[tuple[str, bytes]] = []
    citizens: list[tuple[str, str]] = []
    for n in range(count):
        r = rng.random()
        if citizens and r < 0.10:
            parent, sender = rng.choice(citizens)
            plan.append(followup_mail(n, parent, sender))
        elif plan and r < 0.17:
            plan.append(rng.choice(plan))
        else:
            mid, raw = citizen_mail(n, rng, corpus)
            plan.append((mid, raw))
            citizens.append((mid, f"citizen-{n}@example.com"))
    return plan


def reference_kinds(tmp_path, plan) -> dict[str, tuple[str, str | None]]:
    """What an uninterrupted run makes of the same mail, in the same order: Message-ID -> (kind, service)."""
    folder = tmp_path / "reference"
    for i, (_mid, raw) in enumerate(plan):
        drop_into_maildir(folder / "mailbox", raw, f"{i + 1:06d}.ref")
    desk = build_desk(settings_for(folder))
    try:
        [report] = ingest_all(desk)
        assert report.error is None and report.quarantined == 0
        with desk.sessions() as s:
            return end_state(s)
    finally:
        desk.close()


def end_state(s: Session) -> dict[str, tuple[str, str | None]]:
    rows = s.execute(select(Message.message_id, Message.kind, Ticket.service)
                     .join(Ticket, Message.ticket_id == Ticket.id, isouter=True)).all()
    return {mid: (kind, service) for mid, kind, service in rows}


def test_sigkill_at_random_points_loses_nothing_and_duplicates_only_in_the_send_window(
        tmp_path, imap_account, smtp_server, database_url, kills, kill_messages):
    seed = int(os.environ.get("MAILDESK_KILL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    plan = plan_mail(kill_messages, rng)
    unique = {mid for mid, _ in plan}
    config = write_settings(tmp_path / "worker", mailbox_url=imap_account.url(), smtp_url=smtp_server.url,
                            database_url=database_url)  # a SQLite file; PostgreSQL in the CI's second pass
    worker = WorkerProcess(config, tmp_path / "worker.log")
    engine = create_engine(database_url)

    # Two slices of mail per life: one before the start, one while it runs (IDLE picks it up).
    slices = [[plan[j] for j in range(len(plan)) if j % (2 * kills) == i] for i in range(2 * kills)]
    order = sorted(range(len(plan)), key=lambda j: (j % (2 * kills), j))
    arrival = [plan[j] for j in order]  # the order Dovecot sees; the reference run uses the same
    started = time.monotonic()
    early = 0
    for k in range(kills):
        if slices[2 * k]:
            imap_account.append_many([raw for _, raw in slices[2 * k]])
        worker.start()
        # One kill in five lands in start-up (imports, schema creation, first connection), the rest mid-work.
        life = rng.uniform(0.0, 0.9) if rng.random() < 0.2 else rng.uniform(0.9, 2.2)
        early += life < 0.9
        time.sleep(life * rng.random())
        if slices[2 * k + 1]:
            imap_account.append_many([raw for _, raw in slices[2 * k + 1]])
        time.sleep(max(0.0, life - (time.monotonic() - worker.started_at)))
        worker.kill()
    killed_for = time.monotonic() - started

    # The last life is not cut short: it must finish whatever the kills left behind.
    worker.start()

    def settled():
        with Session(engine) as s, contextlib.suppress(OperationalError):  # no schema yet after an early kill
            stored = s.scalar(select(func.count(Message.id)))
            parked = s.scalar(select(func.count(IngestFailure.id)).where(IngestFailure.quarantined.is_(True)))
            pending = s.scalar(select(func.count(Outbox.id)).where(Outbox.status == "pending"))
            return stored + parked >= len(unique) and pending == 0
        return False

    try:
        wait_until(settled, timeout=180, interval=0.25, what="the worker to store and send everything")
    finally:
        worker.stop()
    log = worker.log_text()

    with Session(engine) as s:
        state = end_state(s)
        per_mid = s.execute(select(Message.message_id, func.count()).group_by(Message.message_id)).all()
        tickets = s.scalars(select(Ticket)).all()
        outbox = s.scalars(select(Outbox)).all()
        quarantined = s.scalar(select(func.count(IngestFailure.id)).where(IngestFailure.quarantined.is_(True)))
    engine.dispose()

    # Nothing lost, nothing stored twice, and the same verdicts as a run that was never interrupted.
    assert quarantined == 0, log[-3000:]
    assert {mid for mid, n in per_mid} == unique
    assert all(n == 1 for _, n in per_mid)
    assert state == reference_kinds(tmp_path, arrival)

    # Every ticket once, opened by exactly one citizen message, acknowledged exactly once in the outbox.
    assert len(tickets) == sum(1 for kind, _ in state.values() if kind == "citizen")
    assert len({t.thread_root for t in tickets}) == len(tickets)
    acks = [o for o in outbox if o.kind == "ack"]
    assert sorted(o.ticket_id for o in acks) == sorted(t.id for t in tickets)
    assert all(o.status == "sent" for o in outbox), [(o.kind, o.status, o.last_error) for o in outbox
                                                      if o.status != "sent"]

    # Every row reached the SMTP server; a copy beyond the first is the send window, at most one per kill.
    received = collections.Counter(m.message()["Message-ID"].strip() for m in smtp_server.messages)
    queued = {o.message_id for o in outbox}
    assert set(received) == queued
    duplicates = sum(n - 1 for n in received.values())
    ack_ids = {o.message_id for o in acks}
    duplicate_acks = sum(n - 1 for mid, n in received.items() if mid in ack_ids)
    citizens_acked = {o.recipient for o in acks}
    assert citizens_acked == {t.citizen_email.lower() for t in tickets}
    assert duplicates <= kills

    figures = {
        "database": engine.url.get_backend_name(), "seed": seed, "kills": kills, "kills_in_startup": early,
        "worker_starts": worker.starts,
        "messages_delivered": len(plan), "unique_messages": len(unique), "messages_stored": len(state),
        "messages_lost": len(unique - set(state)), "duplicate_messages": sum(n - 1 for _, n in per_mid),
        "tickets": len(tickets), "duplicate_tickets": len(tickets) - len({t.thread_root for t in tickets}),
        "acks": len(acks), "citizens_without_ack": len({t.citizen_email for t in tickets} - citizens_acked),
        "emails_queued": len(queued), "emails_received": sum(received.values()),
        "duplicate_emails": duplicates, "duplicate_acks": duplicate_acks,
        "seconds_killing": round(killed_for, 1),
    }
    print("crash harness:", json.dumps(figures))
    if os.environ.get("MAILDESK_FAULT_REPORT"):
        with open(os.environ["MAILDESK_FAULT_REPORT"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures) + "\n")

