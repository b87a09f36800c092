"""Several `maildesk run` workers on one database: mailbox leases, take-over, and exactly-once end to end.

The lease tests drive two LeaseKeepers by hand with injected clocks (no sleeping) on the test database
(SQLite or PostgreSQL). The sweep/digest test runs two Worker objects against one database. The kill test
is the real thing: three worker processes, four office mailboxes on Dovecot, 2,400 messages, one worker
SIGKILLed mid-run while mail keeps arriving. It needs PostgreSQL (several workers share the outbox through
SELECT ... FOR UPDATE SKIP LOCKED, which SQLite has not), so it runs in the PostgreSQL pass
(scripts/test --postgres, the second pass of .ci/run).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from maildesk.app import build_desk
from maildesk.jobs.lease import LeaseKeeper
from maildesk.jobs.worker import Worker
from maildesk.settings import load_settings
from maildesk.store.models import Event, JobRun, MailboxState, Message, Outbox, Ticket
from maildesk.store.models import Worker as WorkerRow
from tests.fault.harness import WorkerProcess, citizen_mail, corpus_messages, followup_mail, wait_until
from tests.helpers import FixedClock, drop_into_maildir, make_mail, write_offices

OFFICES = ("north", "south", "east", "west")


class Clocks:
    """The database clock and the monotonic clock a LeaseKeeper reads, moved by the test."""

    def __init__(self):
        self.db = datetime(2026, 12, 6, 4, 0, tzinfo=timezone.utc)
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.db += timedelta(seconds=seconds)
        self.mono += seconds


def keeper(desk, name: str, clocks: Clocks, seconds: int = 30) -> LeaseKeeper:
    return LeaseKeeper(desk, name=name, seconds=seconds, clock=lambda _s: clocks.db, monotonic=lambda: clocks.mono)


def holders(desk) -> dict[str, str | None]:
    with desk.sessions() as s:
        return dict(s.execute(select(MailboxState.office, MailboxState.lease_holder)).all())


@pytest.fixture
def maildir_desk(tmp_path, database_url):
    path = write_offices(tmp_path / "config", {k: f"maildir://{tmp_path / k}" for k in OFFICES},
                         smtp_url=f"file://{tmp_path / 'sent'}", database_url=database_url)
    desk = build_desk(load_settings(path, env={}))
    yield desk
    desk.close()


# ---- leases -----------------------------------------------------------------------------------------------


def test_leases_spread_over_live_workers_and_pass_on_when_a_worker_dies(maildir_desk):
    desk, clocks = maildir_desk, Clocks()
    one, two = keeper(desk, "one", clocks), keeper(desk, "two", clocks)

    assert sorted(one.tick()) == sorted(OFFICES)  # alone: every mailbox
    assert two.tick() == []  # a second worker announces itself, but every lease is held
    clocks.advance(10)
    one.tick()  # two live workers: one keeps its share and hands the rest back
    assert len(one.mine()) == 2
    assert len(two.tick()) == 2
    assert sorted(one.mine() + two.mine()) == sorted(OFFICES) and not set(one.mine()) & set(two.mine())
    assert holders(desk) == {**{k: "one" for k in one.mine()}, **{k: "two" for k in two.mine()}}

    # "two" dies: it stops renewing. It stops reading by itself before its lease can pass to anyone else...
    lost = two.mine()
    clocks.advance(27)
    assert two.mine() == []
    one.tick()
    assert sorted(one.mine()) == sorted(set(OFFICES) - set(lost))  # ...and nobody takes a lease still valid
    # Once the lease has run out, the survivor takes the dead worker's mailboxes over.
    clocks.advance(4)
    assert sorted(one.tick()) == sorted(lost)
    assert sorted(one.mine()) == sorted(OFFICES)
    assert set(holders(desk).values()) == {"one"}

    # A clean stop hands everything back at once and leaves the worker list.
    one.stop()
    assert set(holders(desk).values()) == {None}
    with desk.sessions() as s:
        assert "one" not in s.scalars(select(WorkerRow.name)).all()


def test_four_mailboxes_over_three_workers_split_two_one_one(maildir_desk):
    desk, clocks = maildir_desk, Clocks()
    workers = [keeper(desk, name, clocks) for name in ("a", "b", "c")]
    for _ in range(3):  # a round to meet, a round to hand back, a round to take
        for k in workers:
            k.tick()
        clocks.advance(1)
    assert [len(k.mine()) for k in workers] == [2, 1, 1]  # "a" sorts first, so it takes the odd one
    assert sorted(o for k in workers for o in k.mine()) == sorted(OFFICES)


def test_a_surplus_lease_is_handed_back_only_after_the_read_in_progress(maildir_desk):
    desk, clocks = maildir_desk, Clocks()
    one, two = keeper(desk, "one", clocks), keeper(desk, "two", clocks)
    one.tick()
    two.tick()
    with contextlib.ExitStack() as reads:  # "one" is reading all four mailboxes
        assert all(reads.enter_context(one.reading(k)) for k in OFFICES)
        clocks.advance(10)
        one.tick()  # two live workers: two leases are surplus, but they are being read
        surplus = sorted(set(OFFICES) - set(one.mine()))
        assert len(surplus) == 2
        assert all(holders(desk)[k] == "one" for k in surplus)  # kept until the reads end
        assert two.tick() == []
    assert all(holders(desk)[k] is None for k in surplus)
    assert sorted(two.tick()) == surplus


def test_a_run_once_read_takes_a_free_lease_and_hands_it_back(maildir_desk):
    desk, clocks = maildir_desk, Clocks()
    once = keeper(desk, "cli", clocks)
    with once.reading("south") as mine:
        assert mine and holders(desk)["south"] == "cli"
    assert holders(desk)["south"] is None
    running = keeper(desk, "worker", clocks)
    running.tick()
    with keeper(desk, "cli-2", clocks).reading("south") as mine:
        assert not mine  # a live worker reads it
    assert holders(desk)["south"] == "worker"


# ---- the sweep and the digest, once per office -----------------------------------------------------------


def test_two_workers_sweep_and_send_the_digest_once_per_office(tmp_path, database_url, caplog):
    path = write_offices(tmp_path / "config", {k: f"maildir://{tmp_path / k}" for k in OFFICES},
                         smtp_url=f"file://{tmp_path / 'sent'}", database_url=database_url)
    clock = FixedClock(datetime(2026, 12, 6, 4, 0, tzinfo=timezone.utc))  # Sunday 10:00 in Dhaka
    desks = [build_desk(load_settings(path, env={}), clock=clock) for _ in range(2)]
    try:
        for i, key in enumerate(OFFICES):
            for n in range(3):
                drop_into_maildir(tmp_path / key, make_mail(subject="Printer not working", sender=f"c{i}{n}@example.com",
                                                            message_id=f"<{key}-{n}@example.com>"), f"{n}.{key}")
        workers = [Worker(d) for d in desks]
        for w in workers + workers:  # the second round settles the shares
            w.keep_leases()
        assert sorted(workers[0].leases.mine() + workers[1].leases.mine()) == sorted(OFFICES)
        for w in workers:
            for key in OFFICES:
                w.ingest(key)  # only the holder reads
        with desks[0].sessions() as s:
            assert s.scalar(select(func.count()).select_from(Ticket)) == 12

        clock.value = datetime(2026, 12, 27, 5, 30, tzinfo=timezone.utc)  # three weeks on, Sunday 11:30 Dhaka
        for w in workers:
            w.keep_leases()
        caplog.set_level(logging.INFO, logger="maildesk")
        # Both workers run both jobs at the same time (APScheduler runs one instance of each job per worker).
        runs = [threading.Thread(target=job) for w in workers for job in (w.escalate, w.digest)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        with desks[0].sessions() as s:
            escalated = collections.Counter(s.scalars(select(Event.office).where(Event.kind == "escalated")))
            digests = collections.Counter(s.execute(select(Outbox.office, Outbox.recipient)
                                                    .where(Outbox.kind == "digest")).all())
            periods = collections.Counter(s.scalars(select(JobRun.office).where(JobRun.job == "digest")))
        assert escalated == {k: 3 for k in OFFICES}  # every office swept, each overdue ticket escalated once
        assert periods == {k: 1 for k in OFFICES}
        assert set(digests.values()) == {1} and {o for o, _ in digests} == set(OFFICES)
        # Only the lease holder tried: no worker ever raced another for an office's digest.
        assert not [r for r in caplog.records if "claimed by another worker" in r.getMessage()]
    finally:
        for d in desks:
            d.close()


# ---- three processes, four Dovecot mailboxes, one SIGKILL --------------------------------------------------


@pytest.fixture
def postgres_url(database_url, database_kind):
    if database_kind != "postgres":
        pytest.skip("several workers need PostgreSQL: this test runs in the PostgreSQL pass "
                    "(scripts/test --postgres, or .ci/run)")
    return database_url


def plan_office_mail(office: str, count: int, rng: random.Random, corpus) -> list[tuple[str, bytes]]:
    """New requests (a corpus message re-sent by its own citizen) and about 20 % follow-ups to earlier ones."""
    out: list[tuple[str, bytes]] = []
    citizens: list[tuple[str, str]] = []
    for n in range(count):
        if citizens and rng.random() < 0.2:
            parent, sender = rng.choice(citizens)
            out.append(followup_mail(n, parent, sender))
        else:
            mid, raw = citizen_mail(n, rng, corpus)
            raw = raw.replace(f"citizen-{n}@".encode(), f"citizen-{office}-{n}@".encode())
            out.append((mid, raw))
            citizens.append((mid, f"citizen-{office}-{n}@example.com"))
    return out


def test_three_workers_one_killed_every_message_stored_once_and_acknowledged_once(
        tmp_path, make_imap_account, smtp_server, postgres_url):
    rng = random.Random(20261206)
    corpus = corpus_messages()
    boxes = {key: make_imap_account(f"desk-{key}") for key in OFFICES}
    mail = {key: plan_office_mail(key, 600, rng, corpus) for key in OFFICES}
    expected = {mid for key in OFFICES for mid, _ in mail[key]}
    for key, box in boxes.items():  # half is waiting before the workers start (a backlog) ...
        box.append_many([raw for _, raw in mail[key][:300]])
    config = write_offices(tmp_path / "config", {k: b.url() for k, b in boxes.items()}, smtp_url=smtp_server.url,
                           database_url=postgres_url, ca_file=None, poll_seconds=2, send_seconds=1, idle=True,
                           batch_size=50, lease_seconds=3)
    workers = [WorkerProcess(config, tmp_path / f"worker-{i}.log").start() for i in range(3)]
    engine = create_engine(postgres_url)

    def stored() -> int:
        try:
            with Session(engine) as s:
                return s.scalar(select(func.count(Message.id))) or 0
        except Exception:  # the first worker is still creating the schema
            return 0

    try:
        wait_until(lambda: stored() >= 400, timeout=120, interval=0.1, what="the workers to start storing")
        # Kill a worker that holds a lease, in the middle of its work.
        with Session(engine) as s:
            held = [h for h in s.scalars(select(MailboxState.lease_holder)) if h]
        pids = {int(h.split(":")[1]) for h in held}
        victim = next(w for w in workers if w.proc.pid in pids)
        victim_offices = {o for o, h in _holders(engine).items() if h and int(h.split(":")[1]) == victim.proc.pid}
        victim.kill()
        for key, box in boxes.items():  # ... and the other half arrives while a worker lies dead
            box.append_many([raw for _, raw in mail[key][300:]])

        def settled():
            with Session(engine) as s:
                n = s.scalar(select(func.count(Message.id)))
                pending = s.scalar(select(func.count(Outbox.id)).where(Outbox.status == "pending"))
            return n >= len(expected) and pending == 0

        wait_until(settled, timeout=240, interval=0.25, what="every message stored and every email sent")
    finally:
        for w in workers:
            w.stop()
    logs = {i: w.log_text() for i, w in enumerate(workers)}

    with Session(engine) as s:
        rows = s.execute(select(Message.office, Message.message_id)).all()
        acks = s.execute(select(Outbox.ticket_id, Outbox.message_id, Outbox.status).where(Outbox.kind == "ack")).all()
        new_tickets = s.scalar(select(func.count(Ticket.id)))
        left = s.execute(select(MailboxState.office, MailboxState.lease_holder)).all()
    engine.dispose()

    # Every message stored once, in its own office.
    assert len(rows) == len(expected) and {mid for _, mid in rows} == expected
    per_office = collections.Counter(o for o, _ in rows)
    assert per_office == {k: len(mail[k]) for k in OFFICES}
    # Every ticket acknowledged once in the outbox, every acknowledgement sent.
    assert len(acks) == new_tickets and len({t for t, _, _ in acks}) == new_tickets
    assert {st for _, _, st in acks} == {"sent"}
    # Delivered: each acknowledgement reached the SMTP server; a duplicate only where the kill fell between
    # the server's 250 and the commit marking the row sent (one per sending thread of the killed worker).
    received = collections.Counter(m.message().get("Message-ID", "").strip() for m in smtp_server.messages)
    ack_ids = [mid for _, mid, _ in acks]
    assert all(received[mid] >= 1 for mid in ack_ids)
    duplicates = sum(received[mid] - 1 for mid in ack_ids)
    assert duplicates <= 2, f"{duplicates} acknowledgements sent twice"
    # The dead worker's mailboxes were taken over by the others; the survivors shut down cleanly.
    survivors = "\n".join(text for i, text in logs.items() if workers[i] is not victim)
    for office in victim_offices:
        assert re.search(rf"took the lease on {office}\b", survivors), office
    assert {h for _, h in left} == {None}
    assert "Traceback" not in survivors, survivors[-3000:]


def _holders(engine) -> dict[str, str | None]:
    with Session(engine) as s:
        return dict(s.execute(select(MailboxState.office, MailboxState.lease_holder)).all())


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_sigkilled_worker_leaves_no_parse_process_behind(tmp_path, database_url):
    """The parse/render pool of `maildesk run` must not outlive its worker: an orphan would keep the
    database connection and the CPU it inherited."""
    config = write_offices(tmp_path / "config", {"north": f"maildir://{tmp_path / 'north'}"},
                           smtp_url=f"file://{tmp_path / 'sent'}", database_url=database_url, poll_seconds=1)
    for n in range(120):
        drop_into_maildir(tmp_path / "north", make_mail(subject=f"Printer {n}", sender=f"p{n}@example.com",
                                                        message_id=f"<p{n}@example.com>"), f"{n:04d}.p")
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        pool = wait_until(lambda: _children(worker.proc.pid), timeout=60, what="the worker's parse process")
    finally:
        worker.kill()
    wait_until(lambda: not any(_alive(p) for p in pool), timeout=30, interval=0.2,
               what=f"the parse process(es) {pool} to exit after their worker was killed")
