"""Loops and bounces: the desk against a real autoresponder, bounces of its own mail, the per-recipient cap.

The autoresponder is an SMTP server on 127.0.0.1 that answers every message it is given, as the recipient,
straight into the desk's Dovecot mailbox over LMTP — the way a vacation robot behind a real MTA would. The
desk then reads those answers over IMAP like any other mail.
"""

from __future__ import annotations

import email
import uuid
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from maildesk.app import build_desk, utc_now
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import send_pending
from maildesk.settings import load_settings
from maildesk.store.models import Address, Event, Message, Outbox, Ticket
from tests.fault.harness import write_settings
from tests.helpers import SUNDAY_MORNING, FixedClock, drop_into_maildir, make_mail
from tests.servers import SmtpCapture, lmtp_deliver

DESK = "ict.khaliajuri@upazila.example.gov.bd"
OFFICERS = {"ap.khaliajuri@upazila.example.gov.bd", "grs.netrokona@district.example.gov.bd",
            "appeal.netrokona@district.example.gov.bd", "uno.khaliajuri@upazila.example.gov.bd"}


class Autoresponder(SmtpCapture):
    """Accepts every message and answers it at once, from each recipient, into the desk's mailbox.

    style "naive": no robot markers at all, "Re:" subject and In-Reply-To like a hand-made rule;
    style "rfc3834": Auto-Submitted: auto-replied and an empty envelope sender, like Gmail or vacation(1).
    """

    def __init__(self, env: dict, desk_user: str, style: str, answer: set[str] | None = None):
        super().__init__()
        self.env, self.desk_user, self.style, self.answer = env, desk_user, style, answer
        self.answers = 0

    def _receive(self, envelope) -> str:
        status = super()._receive(envelope)
        original = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        for rcpt in envelope.rcpt_tos:
            if self.answer is not None and rcpt.lower() not in self.answer:
                continue
            reply = EmailMessage()
            reply["From"] = rcpt
            reply["To"] = original["From"]
            reply["Subject"] = ("Re: " if self.style == "naive" else "Automatic reply: ") + str(original["Subject"])
            reply["Message-ID"] = f"<auto-{uuid.uuid4().hex}@example.com>"
            reply["In-Reply-To"] = str(original["Message-ID"]).strip()
            reply["References"] = str(original["Message-ID"]).strip()
            if self.style == "rfc3834":
                reply["Auto-Submitted"] = "auto-replied"
            reply.set_content("I am away from my desk until 10 December and will answer then. "
                              "আমি ১০ ডিসেম্বর পর্যন্ত অফিসের বাইরে আছি।")
            lmtp_deliver(self.env, self.desk_user, reply, mail_from="" if self.style == "rfc3834" else rcpt)
            self.answers += 1
        return status


def run_until_quiet(desk, responder, rounds: int = 12) -> int:
    """Ingest and send until a round changes nothing; returns how many rounds had traffic."""
    for n in range(rounds):
        [report] = ingest_all(desk)
        assert report.error is None
        sent = send_pending(desk)
        if report.stored == 0 and sent.sent == 0:
            return n
    raise AssertionError(f"still exchanging mail after {rounds} rounds: a loop")


def desk_with(tmp_path, mailbox_url: str, smtp_url: str, database_url: str, clock=None):
    config = write_settings(tmp_path / "cfg", mailbox_url=mailbox_url, smtp_url=smtp_url, database_url=database_url)
    return build_desk(load_settings(config, env={}), clock=clock or utc_now)


@pytest.mark.parametrize("who", ["citizen", "citizen and officer"])
@pytest.mark.parametrize("style", ["naive", "rfc3834"])
def test_ping_pong_with_an_autoresponder_ends_after_at_most_one_acknowledgement(tmp_path, imap_account, servers_env,
                                                                                  database_url, style, who):
    citizen = "away-citizen@example.com"
    answer = {citizen} | (OFFICERS if who != "citizen" else set())
    responder = Autoresponder(servers_env, imap_account.user, style, answer).start()
    desk = desk_with(tmp_path, imap_account.url(), responder.url, database_url)
    try:
        imap_account.append(make_mail(sender=citizen, subject="Lab computer broken",
                                      body="শেখ রাসেল ডিজিটাল ল্যাবের কম্পিউটার চালু হচ্ছে না।",
                                      message_id="<start@example.com>"))
        rounds = run_until_quiet(desk, responder)
        to_citizen = [m for m in responder.messages if citizen in m.rcpt_tos]
        acks = [m for m in to_citizen if ".ack." in m.message()["Message-ID"]]
        assert len(acks) == 1
        with desk.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Ticket)) == 1
            kinds = [k for (k,) in s.execute(select(Message.kind).order_by(Message.id))]
        # The answers are recorded on the ticket (nothing is dropped), and the exchange stopped by itself.
        assert responder.answers >= 1 and len(kinds) == 1 + responder.answers
        assert rounds <= 6 and len(to_citizen) <= 2, [m.message()["Subject"] for m in to_citizen]
    finally:
        responder.stop()
        desk.close()


# ---- bounces -----------------------------------------------------------------------------------------


def dsn_for(original: bytes, action: str = "failed", recipient: str | None = None) -> bytes:
    orig = email.message_from_bytes(original, policy=policy.default)
    rcpt = recipient or str(orig["To"]).split("<")[-1].strip(">")
    headers = "".join(f"{k}: {v}\n" for k, v in orig.items() if k.lower() in ("from", "to", "subject", "message-id"))
    return (f"Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.com>\nTo: {DESK}\n"
            f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-{uuid.uuid4().hex}@mx.example.com>\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
            f"--B\nContent-Type: text/plain\n\nThis is the mail system at mx.example.com.\n\n"
            f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
            f"Final-Recipient: rfc822; {rcpt}\nAction: {action}\nStatus: 5.1.1\n\n"
            f"--B\nContent-Type: text/rfc822-headers\n\n{headers}\n--B--\n").encode()


@pytest.fixture
def maildesk(tmp_path, database_url):
    clock = FixedClock(SUNDAY_MORNING)
    desk = desk_with(tmp_path, f"maildir://{tmp_path / 'mailbox'}", f"file://{tmp_path / 'sent'}", database_url, clock)
    desk.tmp = tmp_path
    yield desk
    desk.close()


def deliver(desk, raw: bytes, key: str):
    drop_into_maildir(desk.tmp / "mailbox", raw, key)
    [report] = ingest_all(desk)
    assert report.error is None and report.quarantined == 0
    return report


def sent_mail(desk, kind: str) -> list[bytes]:
    with desk.sessions() as s:
        return [o.raw for o in s.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id))]


def bouncing(desk, address: str) -> bool:
    with desk.sessions() as s:
        return bool(s.scalar(select(Address.bouncing).where(Address.email == address)))


def test_a_bounced_acknowledgement_joins_its_ticket_and_silences_further_acks(maildesk):
    deliver(maildesk, make_mail(sender="gone@example.com", message_id="<g1@example.com>"), "1.a")
    [ack] = sent_mail(maildesk, "ack")
    deliver(maildesk, dsn_for(ack), "2.dsn")
    with maildesk.sessions() as s:
        t = s.scalars(select(Ticket)).one()
        bounce = s.scalar(select(Message).where(Message.kind == "bounce"))
        assert bounce is not None and bounce.ticket_id == t.id
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "citizen_bouncing")) == 1
    assert bouncing(maildesk, "gone@example.com")
    assert len(sent_mail(maildesk, "ack")) == 1  # no answer to the bounce

    # Robots writing on that ticket's behalf get nothing more while the address bounces.
    deliver(maildesk, make_mail(sender="postmaster@example.com", subject="Re: x", message_id="<g1b@example.com>",
                                In_Reply_To=email.message_from_bytes(ack)["Message-ID"]), "2b.p")
    assert len(sent_mail(maildesk, "ack")) == 1

    # The citizen writes again from that very address: the mailbox works, so the mark is lifted (audited)
    # and the new request is acknowledged like any other.
    deliver(maildesk, make_mail(sender="gone@example.com", subject="Another", message_id="<g2@example.com>"), "3.b")
    with maildesk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 2
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "address_recovered")) == 1
    assert not bouncing(maildesk, "gone@example.com")
    assert len(sent_mail(maildesk, "ack")) == 2 and len(sent_mail(maildesk, "notice")) == 2


def test_a_bounce_of_the_officer_notice_or_a_delay_report_does_not_mark_the_citizen(maildesk):
    deliver(maildesk, make_mail(sender="fine@example.com", message_id="<f1@example.com>"), "1.a")
    [notice] = sent_mail(maildesk, "notice")
    [ack] = sent_mail(maildesk, "ack")
    deliver(maildesk, dsn_for(notice), "2.dsn")
    deliver(maildesk, dsn_for(ack, action="delayed"), "3.dsn")
    with maildesk.sessions() as s:
        t = s.scalars(select(Ticket)).one()
        bounces = s.scalars(select(Message).where(Message.kind == "bounce")).all()
        assert [b.ticket_id for b in bounces] == [t.id, t.id]
    assert not bouncing(maildesk, "fine@example.com")


def test_the_per_recipient_cap_stops_a_flood_of_automatic_mail(maildesk):
    """A robot that opens a new ticket with every message (new subject, no threading, no markers) gets
    per_hour acknowledgements, then silence; every message is still a ticket the officer sees."""
    for i in range(8):
        deliver(maildesk, make_mail(sender="flood@example.com", subject=f"Order {i}", message_id=f"<fl{i}@example.com>"),
                f"{i + 1}.f")
    assert len(sent_mail(maildesk, "ack")) == 5 and len(sent_mail(maildesk, "notice")) == 8
    with maildesk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "rate_limited")) == 3
    maildesk.clock.advance(hours=1, minutes=1)
    deliver(maildesk, make_mail(sender="flood@example.com", subject="Order 9", message_id="<fl9@example.com>"), "9.f")
    assert len(sent_mail(maildesk, "ack")) == 6  # a new hour, a new allowance (the day cap is 20)


def test_every_automatic_email_is_marked_so_other_robots_leave_it_alone(maildesk):
    deliver(maildesk, make_mail(sender="mark@example.com", message_id="<m1@example.com>"), "1.a")
    for kind in ("ack", "notice"):
        for raw in sent_mail(maildesk, kind):
            msg = email.message_from_bytes(raw, policy=policy.default)
            assert msg["Auto-Submitted"] in ("auto-replied", "auto-generated")
            assert msg["X-Auto-Response-Suppress"] == "All"
