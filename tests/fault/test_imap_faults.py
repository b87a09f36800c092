"""IMAP faults against the real Dovecot: a connection cut mid-FETCH, the server gone and back, login refused,
UIDVALIDITY changed, the folder missing. The cycle fails cleanly with a clear error, backs off, the admin
is told once after N failures in a row, and nothing is lost or acknowledged twice.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from maildesk.app import build_desk, utc_now
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.worker import Worker
from maildesk.settings import load_settings
from maildesk.store.models import MailboxState, Message, Outbox
from tests.fault.harness import WorkerProcess, wait_until, write_settings
from tests.fault.proxy import FaultProxy
from tests.helpers import SUNDAY_MORNING, FixedClock, make_mail

DATABASE_URL = ""
ALERT_AFTER = 5  # office.alert_after_failures when the charter does not say


def url(account, port: int | None = None, folder: str = "INBOX", password: str | None = None) -> str:
    pw = account.password if password is None else password
    return f"imap://{quote(account.user, safe='')}:{quote(pw, safe='')}@{account.host}:{port or account.port}/{folder}"


@pytest.fixture(autouse=True)
def _database(database_url):
    global DATABASE_URL
    DATABASE_URL = database_url  # a SQLite file; PostgreSQL in the CI's second pass


def desk_for(tmp_path, mailbox_url: str, smtp_url: str = "file:///nonexistent", clock=None, **overrides):
    config = write_settings(tmp_path / "cfg", mailbox_url=mailbox_url, smtp_url=smtp_url, database_url=DATABASE_URL)
    settings = load_settings(config, env={})
    if overrides:
        settings = settings.with_overrides(**overrides)
    desk = build_desk(settings, clock=clock or FixedClock(SUNDAY_MORNING))
    desk.config = config
    return desk


def letters(n: int, start: int = 0, body_kb: int = 0) -> list[bytes]:
    filler = ("\n" + "Our office printer and the computer lab router do not work. " * 16 * body_kb) if body_kb else ""
    return [make_mail(sender=f"c{i}@example.com", message_id=f"<imapfault-{i}@example.com>", subject=f"Printer {i}",
                      body="Our office printer does not work." + filler) for i in range(start, start + n)]


def count(desk, model, *where) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def state(desk) -> MailboxState:
    with desk.sessions() as s:
        return s.scalars(select(MailboxState)).one()


def test_a_connection_cut_mid_fetch_loses_nothing_and_stores_nothing_twice(tmp_path, imap_account):
    imap_account.append_many(letters(60, body_kb=16))  # about 16 KB each: a batch of 20 is ~330 KB
    with FaultProxy(imap_account.host, imap_account.port) as proxy:
        desk = desk_for(tmp_path, url(imap_account, proxy.port), batch_size=20)
        try:
            proxy.cut_after(500_000)  # the second batch's FETCH dies half-way
            [cut] = ingest_all(desk)
            assert cut.error and "fetch failed" in cut.error
            kept = count(desk, Message)  # the first batch was committed before the cut
            assert 0 < kept < 60
            assert state(desk).consecutive_failures == 1 and state(desk).last_error

            proxy.cut_after(None)
            [healed] = ingest_all(desk)
            assert healed.error is None and healed.stored == 60 - kept
            assert count(desk, Message) == 60 and count(desk, Outbox, Outbox.kind == "ack") == 60
            assert state(desk).consecutive_failures == 0 and state(desk).last_error is None
            flagged = [f for _, f, _ in imap_account.fetch_all()]
            assert all("$MaildeskDone" in f for f in flagged)
        finally:
            desk.close()


def test_server_gone_and_back_backs_off_alerts_once_and_recovers(tmp_path, imap_account, caplog):
    clock = FixedClock(SUNDAY_MORNING)
    proxy = FaultProxy(imap_account.host, imap_account.port).start()
    desk = desk_for(tmp_path, url(imap_account, proxy.port), clock=clock)
    worker = Worker(desk)
    try:
        imap_account.append_many(letters(2))
        worker.ingest("khaliajuri")
        assert count(desk, Message) == 2

        proxy.stop()  # the server dies (or restarts): the port is closed
        imap_account.append_many(letters(3, start=2))
        delays = []
        with caplog.at_level(logging.INFO):
            for attempt in range(1, ALERT_AFTER + 3):
                tried = proxy.connections
                worker.ingest("khaliajuri")  # must not raise: the worker logs and backs off
                assert worker.failures["khaliajuri"] == attempt
                delays.append((worker.backoff_until["khaliajuri"] - clock()).total_seconds())
                worker.ingest("khaliajuri")  # within the backoff nothing is tried at all
                assert worker.failures["khaliajuri"] == attempt and proxy.connections == tried
                clock.advance(seconds=delays[-1])
        assert delays == [30, 60, 120, 240, 480, 900, 900]
        assert "mailbox unavailable" in caplog.text and imap_account.password not in caplog.text
        assert count(desk, Outbox, Outbox.kind == "mailbox_alert") == 1  # the admin is told once, not each cycle
        assert state(desk).consecutive_failures == ALERT_AFTER + 2 and state(desk).alerted

        proxy.start()  # back on the same port
        worker.ingest("khaliajuri")
        assert count(desk, Message) == 5 and "khaliajuri" not in worker.backoff_until
        assert state(desk).consecutive_failures == 0 and not state(desk).alerted
    finally:
        proxy.stop()
        desk.close()


def test_login_refused_says_so_without_the_password_and_other_jobs_keep_running(tmp_path, imap_account, smtp_server):
    """The real worker with a refused login: it keeps sending the outbox and logs one clear line per try."""
    good = desk_for(tmp_path, url(imap_account), smtp_url=smtp_server.url, clock=utc_now)
    imap_account.append_many(letters(2))
    [report] = ingest_all(good)  # queue 2 acknowledgements + 2 notices, unsent
    good.close()
    assert report.stored == 2
    secret = "Wr0ng#pass/word"
    config = write_settings(tmp_path / "bad", mailbox_url=url(imap_account, password=secret), smtp_url=smtp_server.url,
                            database_url=DATABASE_URL)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        smtp_server.wait_for(4, timeout=20)
        wait_until(lambda: "mailbox unavailable" in worker.log_text(), timeout=20, what="the login error in the log")
    finally:
        worker.stop()
    log = worker.log_text()
    assert "AUTHENTICATIONFAILED" in log or "LoginError" in log or "login" in log.lower()
    assert imap_account.user.split("@")[0] in log and secret not in log and quote(secret, safe="") not in log
    assert "Traceback" not in log
    # Backing off: a handful of logins in those seconds, not one per poll (poll_seconds = 1 here).
    assert log.count("AUTHENTICATIONFAILED") <= 8, log


def test_uidvalidity_change_rescans_without_a_second_acknowledgement(tmp_path, imap_account, caplog):
    imap_account.create_folder("Desk")
    imap_account.append_many(letters(4), folder="Desk")
    desk = desk_for(tmp_path, url(imap_account, folder="Desk"))
    try:
        ingest_all(desk)
        before = state(desk).uidvalidity
        with imap_account.session() as c:  # recreate the folder: same mail, new UIDVALIDITY, UIDs from 1
            c.delete_folder("Desk")
            time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock in seconds
            c.create_folder("Desk")
        imap_account.append_many(letters(5), folder="Desk")  # the 4 old ones and one new
        with caplog.at_level(logging.WARNING):
            [again] = ingest_all(desk)
        assert state(desk).uidvalidity != before and "UIDVALIDITY changed" in caplog.text
        assert (again.stored, again.duplicates) == (1, 4)
        assert count(desk, Message) == 5 and count(desk, Outbox, Outbox.kind == "ack") == 5
    finally:
        desk.close()


def test_a_missing_folder_is_a_clear_mailbox_error(tmp_path, imap_account):
    desk = desk_for(tmp_path, url(imap_account, folder="NoSuchFolder"))
    try:
        [report] = ingest_all(desk)
        assert report.error and "NoSuchFolder" in report.error and imap_account.password not in report.error
        assert count(desk, Message) == 0 and state(desk).consecutive_failures == 1
    finally:
        desk.close()


@pytest.mark.parametrize("kind", ["imaps", "imap+starttls"])
def test_a_certificate_we_do_not_trust_is_refused(tmp_path, imap_account, kind):
    """TLS against the test CA without that CA configured: refused, never silently downgraded."""
    desk = desk_for(tmp_path, imap_account.url(kind))
    try:
        [report] = ingest_all(desk)
        assert report.error and "CERTIFICATE_VERIFY_FAILED" in report.error
    finally:
        desk.close()
