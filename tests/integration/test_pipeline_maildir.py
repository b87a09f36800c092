"""The whole pipeline on a real Maildir, a real SQLite file and the file transport (no servers needed)."""

from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import func, select

from maildesk.app import build_desk
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import send_pending
from maildesk.store.models import IngestFailure, Message, Outbox, Ticket
from tests.helpers import CORPUS_DEV, SUNDAY_MORNING, FixedClock, drop_into_maildir, make_mail, settings_for


@pytest.fixture
def desk(tmp_path):
    clock = FixedClock(SUNDAY_MORNING)
    d = build_desk(settings_for(tmp_path), clock=clock)
    d.tmp = tmp_path
    yield d
    d.close()


def count(desk, model, *where):
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_every_dev_corpus_message_ingests_exactly_once(desk):
    files = sorted(CORPUS_DEV.glob("*.eml"))
    assert len(files) >= 100
    for f in files:
        drop_into_maildir(desk.tmp / "mailbox", f.read_bytes(), f"{f.stem}.test")
    [report] = ingest_all(desk)
    assert report.error is None and report.failed == 0 and report.quarantined == 0
    assert report.stored == len(files)
    assert count(desk, Message) == len(files)
    # A second pass and a re-delivery of the same bytes under new keys change nothing.
    for f in files[:10]:
        drop_into_maildir(desk.tmp / "mailbox", f.read_bytes(), f"{f.stem}.again")
    [again] = ingest_all(desk)
    assert again.stored == 0 and again.duplicates == 10
    assert count(desk, Message) == len(files)
    tickets = count(desk, Ticket)
    acks = count(desk, Outbox, Outbox.kind == "ack")
    assert acks == tickets  # robots in the corpus open no ticket, so every ticket is acknowledged
    assert count(desk, Outbox, Outbox.kind == "notice") == tickets


def test_acknowledgement_is_bengali_first_threaded_and_marked_automatic(desk):
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject="ল্যাবের কম্পিউটার নষ্ট", message_id="<c1@example.com>",
                                                      body="শেখ রাসেল ডিজিটাল ল্যাবের কম্পিউটার চালু হচ্ছে না।"), "1.a")
    ingest_all(desk)
    sent = send_pending(desk)
    assert sent.sent == 2
    acks = [p for p in (desk.tmp / "sent").glob("*.eml") if ".ack." in p.name]
    assert len(acks) == 1
    msg = email.message_from_bytes(acks[0].read_bytes(), policy=policy.default)
    with desk.sessions() as s:
        t = s.scalars(select(Ticket)).one()
    assert f"[{t.ref}]" in msg["Subject"]
    assert msg["In-Reply-To"] == "<c1@example.com>" and "<c1@example.com>" in msg["References"]
    assert msg["Auto-Submitted"] == "auto-replied" and msg["X-Auto-Response-Suppress"] == "All"
    text = msg.get_body(("plain",)).get_content()
    assert text.index("টিকিট নম্বর") < text.index("Ticket")  # Bengali first
    html = msg.get_body(("html",)).get_content()
    assert t.ref in html


def test_citizen_reply_threads_into_the_same_ticket(desk):
    drop_into_maildir(desk.tmp / "mailbox", make_mail(message_id="<first@example.com>"), "1.a")
    ingest_all(desk)
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject="Re: Need help", body="More details.\n> Our office",
                                                      message_id="<second@example.com>",
                                                      In_Reply_To="<first@example.com>"), "2.b")
    ingest_all(desk)
    with desk.sessions() as s:
        t = s.scalars(select(Ticket)).one()
        kinds = [m.kind for m in s.scalars(select(Message).where(Message.ticket_id == t.id).order_by(Message.id))]
        ref = t.ref
    assert kinds == ["citizen", "followup"]
    # And by the reference in the subject alone (a new mail, no headers), as citizens often write.
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject=f"About [{ref}]", body="Any news?",
                                                      message_id="<third@example.com>"), "3.c")
    ingest_all(desk)
    assert count(desk, Ticket) == 1 and count(desk, Message) == 3


def test_unparseable_and_oversized_messages_are_quarantined_with_their_bytes(tmp_path):
    clock = FixedClock(SUNDAY_MORNING)
    settings = settings_for(tmp_path)
    settings = settings.with_overrides(max_message_bytes=5000)
    desk = build_desk(settings, clock=clock)
    try:
        drop_into_maildir(tmp_path / "mailbox", b"   \r\n", "1.empty")
        drop_into_maildir(tmp_path / "mailbox", make_mail(body="x" * 6000), "2.big")
        drop_into_maildir(tmp_path / "mailbox", make_mail(message_id="<ok@example.com>"), "3.ok")
        [r] = ingest_all(desk)
        assert r.quarantined == 2 and r.stored == 1
        with desk.sessions() as s:
            rows = s.scalars(select(IngestFailure).order_by(IngestFailure.uid)).all()
            assert [x.quarantined for x in rows] == [True, True]
            assert rows[1].raw and b"x" * 60 in rows[1].raw
            assert "max_message_bytes" in rows[1].reason
        # The officer is told once per quarantined message, and a re-read is not a second quarantine.
        assert count(desk, Outbox, Outbox.kind == "quarantine") == 2
    finally:
        desk.close()
