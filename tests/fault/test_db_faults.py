"""Database faults: an error in the middle of a message's transaction, the server refusing connections, a
SQLite file locked by someone else, and a message that fails every time (quarantined, officer told once).

Faults are injected into the real database: a trigger that fails an INSERT half-way through a message,
ALTER DATABASE … ALLOW_CONNECTIONS false, a second connection holding the SQLite write lock.
"""

from __future__ import annotations

import email
import sqlite3
from email import policy
import threading
import time

import psycopg
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from maildesk.app import build_desk
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.worker import Worker
from maildesk.settings import load_settings
from maildesk.store.models import Event, IngestFailure, MailboxState, Message, Outbox, Ticket, TicketCounter
from tests.fault.harness import run_cli, write_settings
from tests.helpers import SUNDAY_MORNING, FixedClock, drop_into_maildir, make_mail
from tests.servers import _conninfo

TABLES = (Ticket, Message, Event, Outbox, TicketCounter)


def desk_on(tmp_path, database_url: str):
    config = write_settings(tmp_path / "cfg", mailbox_url=f"maildir://{tmp_path / 'mailbox'}",
                            smtp_url=f"file://{tmp_path / 'sent'}", database_url=database_url)
    desk = build_desk(load_settings(config, env={}), clock=FixedClock(SUNDAY_MORNING))
    desk.config = config
    return desk


def counts(desk) -> dict[str, int]:
    with desk.sessions() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}


def mail_in(tmp_path, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        drop_into_maildir(tmp_path / "mailbox", make_mail(sender=f"c{i}@example.com", message_id=f"<db{i}@example.com>",
                                                          subject=f"Printer {i}"), f"{i + 1}.m")


def unread(tmp_path) -> int:
    return len(list((tmp_path / "mailbox" / "new").iterdir()))


def test_an_error_half_way_through_a_message_leaves_nothing_half_written(tmp_path, postgres_url, caplog):
    desk = desk_on(tmp_path, postgres_url)
    admin = create_engine(postgres_url)
    try:
        with admin.begin() as c:  # the ticket, message and events are written; the outbox INSERT fails
            c.execute(text("CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN RAISE EXCEPTION 'could not extend file (test)' USING ERRCODE = '53100'; END $$"))
            c.execute(text("CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox()"))
        mail_in(tmp_path, 2)
        worker = Worker(desk)
        worker.ingest("khaliajuri")  # fails cleanly: logged, not raised
        assert "ingest cycle failed" in caplog.text and "could not extend file" in caplog.text
        assert counts(desk) == {"tickets": 0, "messages": 0, "events": 0, "outbox": 0, "ticket_counters": 0}
        with desk.sessions() as s:
            assert s.scalar(select(func.count()).select_from(IngestFailure)) == 0  # not the message's fault
        assert unread(tmp_path) == 2  # still in the mailbox, unflagged

        with admin.begin() as c:
            c.execute(text("DROP TRIGGER fail_outbox ON outbox"))
        worker.ingest("khaliajuri")
        after = counts(desk)
        assert after["tickets"] == 2 and after["messages"] == 2 and after["outbox"] == 4
        with desk.sessions() as s:
            assert sorted(s.scalars(select(Ticket.ref))) == ["ICT-2026-00001", "ICT-2026-00002"]
        assert unread(tmp_path) == 0
    finally:
        admin.dispose()
        desk.close()


def test_a_database_that_refuses_connections_fails_the_cycle_and_recovers(tmp_path, postgres_url, servers_env, caplog):
    desk = desk_on(tmp_path, postgres_url)
    name = make_url(postgres_url).database
    admin = _conninfo(servers_env["MAILDESK_TEST_PG_URL"])
    try:
        mail_in(tmp_path, 1)
        worker = Worker(desk)
        worker.ingest("khaliajuri")
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        mail_in(tmp_path, 2, start=1)
        for _ in range(3):  # every job fails, logs and leaves the worker alive
            worker.ingest("khaliajuri")
            worker.send()
            worker.escalate()
        assert "ingest cycle failed" in caplog.text and "outbox run failed" in caplog.text
        assert unread(tmp_path) == 2
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        worker.ingest("khaliajuri")
        assert counts(desk)["messages"] == 3 and counts(desk)["tickets"] == 3 and unread(tmp_path) == 0
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        desk.close()


def test_a_sqlite_file_locked_for_a_moment_is_waited_for(tmp_path):
    db = tmp_path / "desk.db"
    desk = desk_on(tmp_path, f"sqlite:///{db}")
    try:
        mail_in(tmp_path, 2)
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        holder.execute("INSERT INTO desk_kv (key, value) VALUES ('lock-test', 'x')")
        release = threading.Timer(1.5, lambda: holder.execute("COMMIT"))
        release.start()
        started = time.monotonic()
        [report] = ingest_all(desk)
        release.join()
        holder.close()
        assert report.error is None and report.stored == 2 and time.monotonic() - started >= 1.4
        assert counts(desk)["tickets"] == 2
    finally:
        desk.close()


def test_a_message_that_always_fails_is_quarantined_once_and_the_loop_goes_on(tmp_path):
    db = tmp_path / "desk.db"
    desk = desk_on(tmp_path, f"sqlite:///{db}")
    try:
        # A fault that follows one message wherever it goes: its row can never be written.
        with desk.engine.begin() as c:
            c.execute(text("CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject LIKE '%POISON%' "
                           "BEGIN SELECT RAISE(ABORT, 'poisoned row (test)'); END"))
        drop_into_maildir(tmp_path / "mailbox", make_mail(subject="first", message_id="<p1@example.com>"), "1.a")
        drop_into_maildir(tmp_path / "mailbox", make_mail(subject="POISON pill", sender="p@example.com",
                                                          message_id="<p2@example.com>"), "2.b")
        drop_into_maildir(tmp_path / "mailbox", make_mail(subject="third", sender="t@example.com",
                                                          message_id="<p3@example.com>"), "3.c")
        reports = [ingest_all(desk)[0] for _ in range(desk.settings.max_attempts)]
        assert [r.quarantined for r in reports] == [0] * (desk.settings.max_attempts - 1) + [1]
        assert reports[-1].stored == 1  # the third message went through in the same cycle
        for _ in range(3):
            ingest_all(desk)  # nothing more happens: no second notice, no second attempt count
        with desk.sessions() as s:
            [f] = s.scalars(select(IngestFailure)).all()
            assert f.quarantined and f.attempts == desk.settings.max_attempts and b"POISON pill" in f.raw
            assert "poisoned row" in f.reason or "conflicting" in f.reason
            [notice] = s.scalars(select(Outbox.raw).where(Outbox.kind == "quarantine")).all()
            told = email.message_from_bytes(notice, policy=policy.default).get_body(("plain",)).get_content()
            assert "p@example.com" in told and "POISON pill" in told and f"quarantine show {f.id}" in told
            assert s.scalar(select(func.count()).select_from(Message)) == 2
            assert s.scalar(select(MailboxState.consecutive_failures)) == 0

        listing = run_cli(desk.config, "quarantine", "list")
        assert str(f.id) in listing and "POISON pill" in listing
        shown = run_cli(desk.config, "quarantine", "show", str(f.id))
        assert "<p2@example.com>" in shown and "p@example.com" in shown
        assert b"POISON pill" in run_cli_bytes(desk.config, "quarantine", "show", str(f.id), "--raw")

        still = run_cli(desk.config, "quarantine", "release", str(f.id), check=1)  # the fault is still there
        assert still == ""
        with desk.engine.begin() as c:
            c.execute(text("DROP TRIGGER poison"))
        assert "released: new_ticket" in run_cli(desk.config, "quarantine", "release", str(f.id))
        with desk.sessions() as s:
            t = s.scalar(select(Ticket).where(Ticket.citizen_email == "p@example.com"))
            assert t is not None and s.scalar(select(func.count()).select_from(Message)) == 3
        assert "nothing is quarantined" in run_cli(desk.config, "quarantine", "list")
        ingest_all(desk)  # a re-read after release is a duplicate, not a second ticket
        assert counts(desk)["tickets"] == 3
    finally:
        desk.close()


def run_cli_bytes(config, *args) -> bytes:
    import os
    import subprocess
    import sys

    from tests.fault.harness import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILDESK_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "maildesk", "--config", str(config), *args], capture_output=True,
                          env=env, check=True, timeout=120).stdout


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level("INFO")
