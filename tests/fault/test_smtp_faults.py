"""SMTP down, refusing (4xx) or rejecting (5xx), against a real SMTP server on 127.0.0.1.

4xx and connection errors are retried with backoff until limits.outbox_max_age_hours; 5xx fails the row
at once; dead letters are listed by `maildesk outbox --dead`, reported by the digest and can be retried.
Nothing queued while the server is away is lost: it all goes out, once, when it comes back.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import backoff, send_pending
from maildesk.reports import build_digest
from maildesk.settings import load_settings
from maildesk.store.models import Event, Outbox
from tests.fault.harness import run_cli, write_settings
from tests.helpers import SUNDAY_MORNING, FixedClock, drop_into_maildir, make_mail
from tests.servers import SmtpCapture, free_port


@pytest.fixture
def clock():
    return FixedClock(SUNDAY_MORNING)


def make_desk(tmp_path, smtp_url: str, clock, database_url: str, **limits):
    config = write_settings(tmp_path / "cfg", mailbox_url=f"maildir://{tmp_path / 'mailbox'}", smtp_url=smtp_url,
                            database_url=database_url)
    settings = load_settings(config, env={})
    if limits:
        settings = settings.with_overrides(**limits)
    desk = build_desk(settings, clock=clock)
    desk.config = config
    return desk


def new_tickets(desk, tmp_path, n: int) -> None:
    for i in range(n):
        drop_into_maildir(tmp_path / "mailbox", make_mail(sender=f"c{i}@example.com", message_id=f"<s{i}@example.com>",
                                                          subject=f"Printer {i}"), f"{i + 1}.m")
    [report] = ingest_all(desk)
    assert report.stored == n


def rows(desk) -> list[Outbox]:
    with desk.sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def received_ids(server: SmtpCapture) -> list[str]:
    return [m.message()["Message-ID"].strip() for m in server.messages]


def test_4xx_is_retried_with_backoff_and_then_delivered_once(tmp_path, smtp_server, clock, database_url):
    desk = make_desk(tmp_path, smtp_server.url, clock, database_url)
    try:
        new_tickets(desk, tmp_path, 2)  # 2 acknowledgements + 2 officer notices
        smtp_server.fail_next("451 4.3.0 greylisted, try again later")
        first = send_pending(desk)
        assert (first.sent, first.retried, first.dead) == (0, 1, 0)  # the server is unwell: stop this run
        head = rows(desk)[0]
        assert head.status == "pending" and head.attempts == 1 and "451" in head.last_error
        assert head.next_attempt_at == SUNDAY_MORNING + backoff(1)
        assert send_pending(desk).sent == 3  # the others are due; the refused one waits for its time
        clock.advance(minutes=1)
        smtp_server.fail_next("421 4.7.0 too busy, closing")
        again = send_pending(desk)
        assert again.retried == 1 and rows(desk)[0].next_attempt_at == clock() + timedelta(minutes=2)
        clock.advance(minutes=2)
        assert send_pending(desk).sent == 1
        assert all(r.status == "sent" for r in rows(desk))
        assert sorted(received_ids(smtp_server)) == sorted(r.message_id for r in rows(desk))
        assert len(smtp_server.rejected) == 2
    finally:
        desk.close()


def test_a_5xx_kills_the_row_at_once_and_the_rest_still_goes(tmp_path, smtp_server, clock, database_url):
    desk = make_desk(tmp_path, smtp_server.url, clock, database_url)
    try:
        new_tickets(desk, tmp_path, 2)
        smtp_server.fail_next("550 5.1.1 <c0@example.com>: no such user")
        report = send_pending(desk)
        assert (report.sent, report.dead) == (3, 1)
        dead = [r for r in rows(desk) if r.status == "dead"]
        assert len(dead) == 1 and dead[0].attempts == 1 and "550" in dead[0].last_error
        with desk.sessions() as s:
            events = s.scalars(select(Event).where(Event.kind == "dead_letter")).all()
            assert [e.data["outbox_id"] for e in events] == [dead[0].id]

        # The office sees it: `maildesk outbox --dead`, and the weekly digest.
        out = run_cli(desk.config, "outbox", "--dead")
        assert str(dead[0].id) in out and "550" in out and dead[0].recipient in out
        od = desk.offices["khaliajuri"]
        with desk.sessions() as s:
            digest = build_digest(s, od, "2026-W50", clock() - timedelta(days=7), clock(), clock())
        assert digest.dead_total == 1 and [d["to"] for d in digest.dead_letters] == [dead[0].recipient]

        # Retried by hand, it goes out with the next run.
        assert "1 row(s) queued again" in run_cli(desk.config, "outbox", "--retry", str(dead[0].id))
        assert send_pending(desk).sent == 1
        assert all(r.status == "sent" for r in rows(desk))
        assert received_ids(smtp_server).count(dead[0].message_id) == 1
    finally:
        desk.close()


def test_server_down_nothing_is_lost_and_everything_goes_when_it_returns(tmp_path, clock, database_url):
    port = free_port()
    desk = make_desk(tmp_path, f"smtp://127.0.0.1:{port}", clock, database_url)
    try:
        new_tickets(desk, tmp_path, 3)
        for minutes in (0, 1, 2, 4, 8):  # nobody listens: connection refused each time, backing off
            clock.advance(minutes=minutes)
            report = send_pending(desk)
            assert report.sent == 0 and report.retried == 1 and report.dead == 0
            assert "Connection refused" in report.errors[0] or "ConnectionRefused" in report.errors[0]
        assert all(r.status == "pending" for r in rows(desk))
        # One connection attempt per run while it is down (the first refusal stops the run), not one per row.
        assert sum(r.attempts for r in rows(desk)) == 5

        with SmtpCapture(port=port) as server:
            clock.advance(hours=1)
            assert send_pending(desk).sent == 6
            assert sorted(received_ids(server)) == sorted(r.message_id for r in rows(desk))
    finally:
        desk.close()


def test_down_past_the_age_limit_becomes_dead_letters_not_silence(tmp_path, clock, database_url):
    port = free_port()
    desk = make_desk(tmp_path, f"smtp://127.0.0.1:{port}", clock, database_url, outbox_max_age_hours=6)
    try:
        new_tickets(desk, tmp_path, 1)
        for _ in range(40):
            clock.advance(minutes=30)
            send_pending(desk)
        assert [r.status for r in rows(desk)] == ["dead", "dead"]
        assert all("gave up after" in r.last_error for r in rows(desk))
        assert run_cli(desk.config, "outbox", "--dead").count("gave up after") == 2
    finally:
        desk.close()
