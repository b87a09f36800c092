"""Issue 2 end to end on real servers: Dovecot IMAP in, aiosmtpd SMTP out, a SQLite (or PostgreSQL) store."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.header import Header

import pytest
from sqlalchemy import func, select

from maildesk.app import build_desk
from maildesk.ingest.sources import ImapSource
from maildesk.jobs.ingest import ingest_all, ingest_office
from maildesk.jobs.send import send_pending
from maildesk.settings import Endpoint
from maildesk.store.models import Message, Ticket
from tests.helpers import ROOT, FixedClock, make_mail, settings_for

# Dovecot replaces an INTERNALDATE in the future with the present, so the test clock lives in the past.
PAST_SUNDAY = datetime(2026, 11, 22, 4, 0, tzinfo=timezone.utc)  # Sunday 10:00 in Dhaka
BN_SUBJECT = "শেখ রাসেল ডিজিটাল ল্যাবের ল্যাপটপ নষ্ট"


def bengali_mail(message_id="<bn1@school.example.edu.bd>", **kw) -> bytes:
    raw = make_mail(subject=BN_SUBJECT, message_id=message_id, sender="head@school.example.edu.bd",
                    body="আমাদের বিদ্যালয়ের শেখ রাসেল ডিজিটাল ল্যাবের ৫টি ল্যাপটপ চালু হচ্ছে না। কারিগরি সহায়তা প্রয়োজন।", **kw)
    assert b"=?utf-8?" in raw.lower()  # the subject really travels RFC 2047-encoded
    return raw


@pytest.fixture
def desk_on_servers(tmp_path, imap_account, smtp_server, database_url, servers_env):
    clock = FixedClock(PAST_SUNDAY + timedelta(hours=1))
    settings = settings_for(tmp_path, mailbox_url=imap_account.url("imap"), smtp_url=smtp_server.url,
                            database_url=database_url, MAILDESK_CA_FILE=servers_env["MAILDESK_TEST_CA"])
    desk = build_desk(settings, clock=clock)
    yield desk, imap_account, smtp_server
    desk.close()


def test_bengali_message_over_imap_gets_exactly_one_acknowledgement(desk_on_servers):
    desk, box, smtp = desk_on_servers
    box.append(bengali_mail(), msg_time=PAST_SUNDAY)  # INTERNALDATE (arrival) starts the deadline clock
    [r] = ingest_all(desk)
    assert r.error is None and r.stored == 1
    send_pending(desk)
    mails = smtp.wait_for(2)
    acks = [m for m in mails if m.message()["Auto-Submitted"] == "auto-replied"]
    assert len(acks) == 1 and acks[0].rcpt_tos == ("head@school.example.edu.bd",)
    ack = acks[0].message()
    with desk.sessions() as s:
        ref = s.scalars(select(Ticket.ref)).one()
    assert f"[{ref}]" in str(ack["Subject"]) and BN_SUBJECT in str(ack["Subject"])
    text = ack.get_body(("plain",)).get_content()
    # Arrived Sunday 22 November 2026 10:00 Dhaka; 2.2.7 is due in 3 working days: Wednesday 25 November, 17:00.
    assert "বুধবার, ২৫ নভেম্বর ২০২৬, বিকাল ৫:০০" in text, text
    assert "২.২.৭" in text

    # A second poll creates nothing new and sends nothing more.
    [again] = ingest_all(desk)
    assert again.stored == 0 and again.seen == 0
    assert send_pending(desk).sent == 0
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1


def test_citizen_reply_over_imap_threads_into_the_ticket(desk_on_servers):
    desk, box, smtp = desk_on_servers
    box.append(bengali_mail())
    ingest_all(desk)
    send_pending(desk)
    ack = [m.message() for m in smtp.wait_for(2) if m.message()["Auto-Submitted"] == "auto-replied"][0]
    reply = make_mail(subject=f"Re: {ack['Subject']}", sender="head@school.example.edu.bd",
                      body="চার্জারও কাজ করছে না।\n\n> পুরোনো বার্তা", message_id="<bn2@school.example.edu.bd>",
                      In_Reply_To=ack["Message-ID"], References=ack["Message-ID"])
    box.append(reply)
    [r] = ingest_all(desk)
    assert r.kinds == {"followup": 1}
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        assert [m.kind for m in s.scalars(select(Message).order_by(Message.id))] == ["citizen", "followup"]


def test_message_is_flagged_only_after_the_commit(desk_on_servers, monkeypatch):
    desk, box, _ = desk_on_servers
    box.append(bengali_mail())
    import maildesk.jobs.ingest as ingest_mod

    seen_flags_during_commit = []
    real_process = ingest_mod.process_message

    def spy(session, *a, **kw):
        result = real_process(session, *a, **kw)
        seen_flags_during_commit.append(box.flags(box.fetch_all()[0][0]))
        return result

    monkeypatch.setattr(ingest_mod, "process_message", spy)
    ingest_all(desk)
    assert seen_flags_during_commit and "$MaildeskDone" not in seen_flags_during_commit[0]
    assert "\\Seen" not in seen_flags_during_commit[0]
    uid = box.fetch_all()[0][0]
    assert "$MaildeskDone" in box.flags(uid) and "\\Seen" in box.flags(uid)


def test_a_failed_commit_leaves_the_message_unflagged_and_it_is_processed_next_time(desk_on_servers, monkeypatch):
    desk, box, _ = desk_on_servers
    box.append(bengali_mail())
    import maildesk.jobs.ingest as ingest_mod
    from sqlalchemy.exc import OperationalError

    def broken(*a, **kw):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(ingest_mod, "process_message", broken)
    with pytest.raises(OperationalError):
        ingest_all(desk)
    uid = box.fetch_all()[0][0]
    assert "$MaildeskDone" not in box.flags(uid)
    monkeypatch.undo()
    [r] = ingest_all(desk)
    assert r.stored == 1


@pytest.mark.parametrize("kind", ["imaps", "imap+starttls"])
def test_tls_connections_verify_the_test_ca(imap_account, servers_env, kind):
    url = imap_account.url(kind)
    endpoint = Endpoint.parse(url, ("imap", "imaps", "imap+starttls"), "-", "-")
    source = ImapSource(endpoint, ca_file=servers_env["MAILDESK_TEST_CA"])
    try:
        assert source.uidvalidity() > 0
        imap_account.append(make_mail(message_id="<tls@example.com>"))
        assert len(source.pending(0)) == 1
    finally:
        source.close()
    # Without the CA the certificate is not trusted: no silent downgrade.
    from maildesk.ingest.sources import SourceError

    with pytest.raises(SourceError):
        ImapSource(endpoint, ca_file=None)


def test_worker_picks_up_new_mail_within_seconds_with_idle(tmp_path, imap_account, smtp_server, servers_env,
                                                            database_url):
    """`maildesk run` as a real subprocess: IDLE wakes ingest, the ack goes out, SIGTERM stops it cleanly."""
    config = tmp_path / "maildesk.toml"
    charter = ROOT / "config" / "charter.yaml"
    config.write_text(
        f'holidays_dir = "{ROOT / "config" / "holidays"}"\n'
        f'[office]\ncharter = "{charter}"\nmailbox_url = "{imap_account.url("imap")}"\n'
        f'[smtp]\nurl = "{smtp_server.url}"\n[database]\nurl = "{database_url}"\n'
        f'[security]\nhmac_secret = "x"\n[worker]\npoll_seconds = 300\nsend_seconds = 300\n', encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(config), "run"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while not any("worker started" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # let the first (empty) ingest run and IDLE begin
        imap_account.append(bengali_mail(message_id="<idle@school.example.edu.bd>"))
        # Polling is every 300 s: only IDLE can deliver the acknowledgement this fast.
        smtp_server.wait_for(2, timeout=20)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    out = "".join(lines)
    assert "worker stopped" in out
    assert "new_ticket" in out  # one log line per message handled
