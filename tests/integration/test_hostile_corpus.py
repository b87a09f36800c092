"""Hostile and odd mail through the real pipeline (Maildir, SQLite file, file transport, the CLI).

Every message of CPython's own email test data and of the project corpus becomes a ticket, a follow-up or a
recorded rejection/quarantine, with no unhandled exception. Injected CR/LF/NUL never makes a header in
outgoing mail; citizen text is escaped in every HTML the desk writes; attachment names cannot leave the
export folder; passwords and the HMAC key never reach logs, errors or `check-config`.
"""

from __future__ import annotations

import email
import logging
import sysconfig
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from maildesk.app import build_desk
from maildesk.ingest.parse import parse_message
from maildesk.jobs.digest import recipients, render_digest
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import send_pending
from maildesk.reports import build_digest
from maildesk.settings import load_settings
from maildesk.store.models import IngestFailure, Message, Ticket
from tests.fault.harness import run_cli, write_settings
from tests.helpers import SUNDAY_MORNING, FixedClock, drop_into_maildir, make_mail

ROOT = Path(__file__).resolve().parents[2]
CPYTHON_EMAIL_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def desk(tmp_path, database_url):
    config = write_settings(tmp_path / "cfg", mailbox_url=f"maildir://{tmp_path / 'mailbox'}",
                            smtp_url=f"file://{tmp_path / 'sent'}", database_url=database_url)
    d = build_desk(load_settings(config, env={}), clock=FixedClock(SUNDAY_MORNING))
    d.tmp, d.config = tmp_path, config
    yield d
    d.close()


def ingest_every_file(desk, files: list[Path], caplog) -> None:
    """Drop every file into the mailbox and ingest until each is a stored message or a quarantine record."""
    for i, f in enumerate(files):
        drop_into_maildir(desk.tmp / "mailbox", f.read_bytes(), f"{i + 1:05d}.corpus")
    with caplog.at_level(logging.INFO):
        for _ in range(desk.settings.max_attempts + 1):
            [report] = ingest_all(desk)
            assert report.error is None
    crashes = [r for r in caplog.records if r.exc_info and r.name.startswith("maildesk")]
    assert crashes == [], [r.getMessage() for r in crashes]
    with desk.sessions() as s:
        stored = {m.uid: m for m in s.scalars(select(Message))}
        parked = {f.uid for f in s.scalars(select(IngestFailure).where(IngestFailure.quarantined.is_(True)))}
        by_id = {(m.message_id, parse_message(m.raw).fingerprint) for m in stored.values()}
    # Every file is a stored message or a quarantine record, or a re-delivery of a stored message: same
    # Message-ID and the same content (only headers such as Received or Cc differ).
    for i, f in enumerate(files):
        uid = f"{i + 1:05d}.corpus"
        if uid not in stored and uid not in parked:
            m = parse_message(f.read_bytes())
            assert m.has_message_id and (m.message_id, m.fingerprint) in by_id, f.name
    assert not (desk.tmp / "mailbox" / "new").exists() or not any((desk.tmp / "mailbox" / "new").iterdir())


@pytest.mark.skipif(not CPYTHON_EMAIL_DATA.is_dir(), reason=f"CPython email test data not installed ({CPYTHON_EMAIL_DATA})")
def test_cpython_email_test_data_all_ingests(desk, caplog):
    files = sorted(p for p in CPYTHON_EMAIL_DATA.iterdir() if p.is_file())
    assert len(files) > 40
    ingest_every_file(desk, files, caplog)


def test_project_corpus_all_ingests(desk, caplog):
    found = {p.read_bytes(): p for p in sorted((ROOT / "tests" / "data").rglob("*.eml"))}
    if SHARED_CORPUS.is_dir():
        found.update({p.read_bytes(): p for p in sorted(SHARED_CORPUS.rglob("*.eml"))})
    files = list(found.values())
    assert len(files) > 100
    ingest_every_file(desk, files, caplog)
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) > 50


def test_a_reused_message_id_with_other_content_is_still_stored(desk):
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject="first", body="Printer broken.",
                                                      message_id="<same@example.com>"), "1.a")
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject="second", body="Router broken.", sender="b@example.com",
                                                      message_id="<same@example.com>"), "2.b")
    redelivered = make_mail(subject="first", body="Printer broken.", message_id="<same@example.com>")
    drop_into_maildir(desk.tmp / "mailbox", b"Received: from relay.example.com\n" + redelivered, "3.c")
    [report] = ingest_all(desk)
    assert (report.stored, report.duplicates) == (2, 1)
    with desk.sessions() as s:
        assert sorted(s.scalars(select(Message.subject))) == ["first", "second"]


# ---- header injection and escaping --------------------------------------------------------------------


def hostile_mail() -> bytes:
    """CR/LF and NUL smuggled in through RFC 2047 encoded words, which decode after the header is split."""
    return (b"From: =?utf-8?q?Evil=0D=0ABcc:_victim@example.com=0D=0AX-Injected:_1?= <evil@example.com>\r\n"
            b"To: ict.khaliajuri@upazila.example.gov.bd\r\n"
            b"Subject: =?utf-8?q?Printer_broken=0D=0ABcc:_victim2@example.com=00=0AX-Injected:_2_" +
            "<script>alert('x')</script>".encode().replace(b" ", b"_") + b"?=\r\n"
            b"Message-ID: <inject@example.com>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0600\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b"<p>Our office printer is broken <script>alert('x')</script><img src=x onerror=alert(1)></p>\r\n")


def test_cr_lf_nul_in_subject_and_name_never_make_a_header_and_html_is_escaped(desk):
    drop_into_maildir(desk.tmp / "mailbox", hostile_mail(), "1.evil")
    plain = make_mail(subject="Router", sender='"<b>Bold</b> Rahim" <rahim@example.com>', message_id="<p@example.com>",
                      body=f"The router is down {SCRIPT} <img src=x onerror=alert(1)>")
    drop_into_maildir(desk.tmp / "mailbox", plain, "2.plain")
    [report] = ingest_all(desk)
    assert report.stored == 2
    assert send_pending(desk).sent == 4
    outgoing = sorted((desk.tmp / "sent").glob("*.eml"))
    assert len(outgoing) == 4
    recipients_seen = []
    for path in outgoing:
        raw = path.read_bytes()
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert b"\x00" not in raw
        for line in head.split(b"\r\n"):
            assert not line.lower().startswith((b"bcc:", b"x-injected:")), line
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert msg["Bcc"] is None and msg["X-Injected"] is None and msg["Cc"] is None
        recipients_seen += [a.addr_spec for a in msg["To"].addresses]
        html = msg.get_body(("html",)).get_content()
        assert "<script" not in html and "<img" not in html and "<b>Bold" not in html
    # The attacker's address gets its acknowledgement; the "victims" named in the header get nothing.
    assert sorted(recipients_seen) == sorted(["evil@example.com", "rahim@example.com",
                                              "ap.khaliajuri@upazila.example.gov.bd"] + ["ap.khaliajuri@upazila.example.gov.bd"])
    notices = [p for p in outgoing if ".notice." in p.name]
    shown = "".join(email.message_from_bytes(p.read_bytes(), policy=policy.default).get_body(("html",)).get_content()
                    for p in notices)
    assert "&lt;script&gt;" in shown  # the officer sees the citizen's text as text, nothing runs


def test_citizen_text_is_escaped_in_the_digest(desk):
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject=f"Help {SCRIPT}", sender="x@example.com",
                                                      message_id="<d1@example.com>", body=f"Body {SCRIPT}"), "1.a")
    ingest_all(desk)
    desk.clock.advance(days=30)  # overdue, so the digest lists it with its subject
    od = desk.offices["khaliajuri"]
    now = desk.now()
    with desk.sessions() as s:
        digest = build_digest(s, od, "2027-W01", now - timedelta(days=7), now, now)
        person = recipients(od, s)[0]
    rendered = render_digest(od, digest, person)
    assert "Help" in rendered.html and "<script" not in rendered.html and "&lt;script&gt;" in rendered.html


# ---- attachments ---------------------------------------------------------------------------------------


HOSTILE_NAMES = ["../../etc/passwd", "/etc/cron.d/evil", "..\\..\\windows\\system32\\x.dll", "a\x00b.txt", "..",
                 ".bashrc", "CON", "report\u202egpj.exe", "", "   ", "ok.pdf", "ok.pdf", "আবেদনপত্র.pdf"]


def attachment_mail() -> bytes:
    m = EmailMessage()
    m["From"], m["To"] = "files@example.com", "ict.khaliajuri@upazila.example.gov.bd"
    m["Subject"], m["Message-ID"] = "Documents attached", "<files@example.com>"
    m.set_content("Please see the attached documents.")
    for i, name in enumerate(HOSTILE_NAMES):
        m.add_attachment(f"file {i}".encode(), maintype="application", subtype="octet-stream", filename=name)
    m.add_attachment(b"", maintype="application", subtype="octet-stream", filename="empty.txt")
    return bytes(m)


def test_attachment_export_keeps_every_file_inside_the_folder(desk, tmp_path):
    drop_into_maildir(desk.tmp / "mailbox", attachment_mail(), "1.files")
    [report] = ingest_all(desk)
    assert report.stored == 1
    with desk.sessions() as s:
        ref = s.scalar(select(Ticket.ref))
    target = tmp_path / "export" / "inner"
    (tmp_path / "export" / "etc").mkdir(parents=True)
    printed = run_cli(desk.config, "attachments", ref, "--to", str(target))
    written = sorted(target.iterdir())
    assert len(written) == len(HOSTILE_NAMES) + 1
    assert sorted(printed.splitlines()) == sorted(str(p) for p in written)
    for path in written:
        assert path.parent == target and path.is_file() and not path.is_symlink()
        assert "\x00" not in path.name and "/" not in path.name and "\u202e" not in path.name
        assert not path.name.startswith(".")
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["etc", "inner"]
    assert list((tmp_path / "export" / "etc").iterdir()) == []
    names = {p.name for p in written}
    assert {"passwd", "evil", "x.dll", "ok.pdf", "ok (2).pdf", "আবেদনপত্র.pdf", "empty.txt", "_CON"} <= names
    assert (target / "empty.txt").read_bytes() == b""
    # A second export never overwrites what is there.
    run_cli(desk.config, "attachments", ref, "--to", str(target))
    assert len(list(target.iterdir())) == 2 * len(written)


# ---- secrets -------------------------------------------------------------------------------------------


def test_passwords_and_the_hmac_key_never_reach_logs_errors_or_check_config(tmp_path):
    imap_pw, smtp_pw, key = "imap-S3cret#pw", "smtp-S3cret#pw", "hmac-S3cret-key-0123456789"
    config = write_settings(tmp_path / "cfg", mailbox_url=f"imap://desk%40office.test:{imap_pw.replace('#', '%23')}"
                                                          f"@127.0.0.1:9/INBOX",
                            smtp_url=f"smtp://mailer:{smtp_pw.replace('#', '%23')}@127.0.0.1:9",
                            database_url=f"sqlite:///{tmp_path / 'desk.db'}", secret=key)
    outputs = []
    for args, code in ((("check-config",), 0), (("poll",), None), (("send",), None), (("-v", "poll"), None)):
        import subprocess
        import sys

        from tests.fault.harness import ROOT as HROOT

        done = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(config), *args], capture_output=True,
                              env={"PYTHONPATH": str(HROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
        if code is not None:
            assert done.returncode == code, done.stderr
        outputs.append(done.stdout.decode() + done.stderr.decode())
    everything = "\n".join(outputs)
    assert "127.0.0.1:9" in everything and "***" in everything  # the connections are named, redacted
    for secret in (imap_pw, smtp_pw, key, imap_pw.replace("#", "%23"), smtp_pw.replace("#", "%23")):
        assert secret not in everything
    settings = load_settings(config, env={})
    assert imap_pw not in repr(settings) and key not in repr(settings) and smtp_pw not in repr(settings)
