"""The loop and bounce guard: which inbound mail is never answered, and what a bounce says about whom."""

from __future__ import annotations

import pytest

from maildesk.ingest.parse import parse_message
from maildesk.rules.screen import screen
from tests.helpers import make_mail

DESK = {"ict.khaliajuri@upazila.example.gov.bd", "desk@upazila.example.gov.bd"}
ACK_ID = "<ICT-2026-00001.ack.abc123@upazila.example.gov.bd>"


def verdict(raw: bytes):
    return screen(parse_message(raw), DESK)


def dsn(action: str = "failed", recipient: str = "citizen@example.com", original: str = "headers",
        sender: str = "MAILER-DAEMON@mx.example.com") -> bytes:
    """A delivery status notification (RFC 3464) the way Postfix sends one."""
    copy = (f"From: Desk <ict.khaliajuri@upazila.example.gov.bd>\nTo: {recipient}\nMessage-ID: {ACK_ID}\n"
            f"In-Reply-To: <citizen-first@example.com>\nSubject: [ICT-2026-00001] received\n")
    if original == "headers":
        part = f"Content-Type: text/rfc822-headers\n\n{copy}"
    elif original == "message":
        part = f"Content-Type: message/rfc822\n\n{copy}\nThe acknowledgement text.\n"
    else:
        part = "Content-Type: text/plain\n\nno copy kept\n"
    return (f"Return-Path: <>\nFrom: Mail Delivery System <{sender}>\nTo: ict.khaliajuri@upazila.example.gov.bd\n"
            f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-{action}@mx.example.com>\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
            f"--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
            f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
            f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: 5.1.1\n\n"
            f"--B\n{part}\n--B--\n").encode()


@pytest.mark.parametrize("headers, kind, words", [
    ({"Auto_Submitted": "auto-replied"}, "automatic", "Auto-Submitted"),
    ({"Auto_Submitted": "auto-generated; owner=x"}, "automatic", "Auto-Submitted"),
    ({"Auto_Submitted": "AUTO-NOTIFIED"}, "automatic", "Auto-Submitted"),
    ({"Precedence": "bulk"}, "automatic", "Precedence"),
    ({"Precedence": "Junk"}, "automatic", "Precedence"),
    ({"Precedence": "list"}, "automatic", "Precedence"),
    ({"Precedence": "auto_reply"}, "automatic", "Precedence"),
    ({"List_Id": "<news.example.com>"}, "automatic", "list-id"),
    ({"List_Unsubscribe": "<mailto:leave@example.com>"}, "automatic", "list-unsubscribe"),
    ({"X_Autoreply": "yes"}, "automatic", "x-autoreply"),
    ({"X_Autorespond": "on"}, "automatic", "x-autorespond"),
    ({"X_Auto_Response_Suppress": "All"}, "automatic", "x-auto-response-suppress"),
    ({"Return_Path": "<>"}, "bounce", "Return-Path"),
    ({"Auto_Submitted": "auto-replied", "Return_Path": "<>"}, "automatic", "Auto-Submitted"),
])
def test_robot_markers_silence_the_desk(headers, kind, words):
    found = verdict(make_mail(**headers))
    assert found is not None and found.kind == kind and words in found.reason


@pytest.mark.parametrize("sender, kind", [
    ("MAILER-DAEMON@mx.example.com", "bounce"),
    ("postmaster@example.bd", "bounce"),
    ("no-reply@portal.example.bd", "automatic"),
    ("noreply@example.com", "automatic"),
    ("ict.khaliajuri@upazila.example.gov.bd", "own"),
    ("ICT.Khaliajuri@Upazila.Example.Gov.BD", "own"),
    ("ict.khaliajuri+ICT-2026-00001.tok@upazila.example.gov.bd", "own"),
    ("desk@upazila.example.gov.bd", "own"),
])
def test_robot_and_own_senders(sender, kind):
    found = verdict(make_mail(sender=sender))
    assert found is not None and found.kind == kind


def test_a_missing_sender_is_never_answered():
    raw = make_mail().replace(b"From: citizen@example.com\n", b"")
    assert parse_message(raw).sender == ""
    assert verdict(raw).kind == "automatic"


@pytest.mark.parametrize("headers", [{}, {"Auto_Submitted": "no"}, {"Auto_Submitted": "No; reason=human"},
                                     {"Precedence": "first-class"}, {"Return_Path": "<citizen@example.com>"}])
def test_ordinary_citizen_mail_is_answered(headers):
    assert verdict(make_mail(**headers)) is None


def test_a_citizen_whose_name_mentions_postmaster_is_still_a_citizen():
    assert verdict(make_mail(sender='"Postmaster Rahim" <rahim@example.com>')) is None


@pytest.mark.parametrize("original", ["headers", "message"])
def test_a_delivery_report_names_the_bounced_message_and_the_failed_recipient(original):
    m = parse_message(dsn(original=original))
    assert verdict(dsn(original=original)).kind == "bounce"
    assert m.bounced_ids == (ACK_ID,)
    assert ACK_ID in m.thread_ids  # so the ingest cycle threads it onto the acknowledged ticket
    assert m.failed_recipients == ("citizen@example.com",)


def test_a_delayed_report_names_no_failed_recipient():
    m = parse_message(dsn(action="delayed"))
    assert m.failed_recipients == () and m.bounced_ids == (ACK_ID,)


def test_a_plain_text_bounce_still_points_at_the_quoted_original():
    raw = (f"Return-Path: <>\nFrom: MAILER-DAEMON@old.example.bd\nTo: desk@upazila.example.gov.bd\n"
           f"Subject: failure notice\nMessage-ID: <q1@old.example.bd>\n\nSorry, no mailbox here.\n\n"
           f"--- Below this line is a copy of the message.\n\nReturn-Path: <desk@upazila.example.gov.bd>\n"
           f"Message-ID: {ACK_ID}\nSubject: [ICT-2026-00001]\n\nhello\n").encode()
    m = parse_message(raw)
    assert verdict(raw).kind == "bounce"
    assert m.bounced_ids == (ACK_ID,) and m.failed_recipients is None


def test_a_forwarded_message_from_a_citizen_is_not_taken_for_a_bounce():
    """Only bounces borrow the Message-ID of an attached copy: a forward must not thread into its ticket."""
    from email.message import EmailMessage

    inner = EmailMessage()
    inner["From"], inner["Message-ID"], inner["Subject"] = "x@example.com", ACK_ID, "old"
    inner.set_content("old text")
    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "citizen@example.com", "desk@upazila.example.gov.bd", "Fwd"
    outer["Message-ID"] = "<fwd@example.com>"
    outer.set_content("see below")
    outer.add_attachment(inner)
    m = parse_message(bytes(outer))
    assert m.bounced_ids == () and m.thread_ids == () and verdict(bytes(outer)) is None


def test_a_word_for_word_repeat_is_taken_for_an_autoresponder():
    from maildesk.rules.screen import repeated

    away = "I am away from my desk until 10 December and will answer then."
    m = parse_message(make_mail(body=away + "\n"))
    assert repeated(m, []) is None
    assert repeated(m, ["Something else entirely, written by hand."]) is None
    found = repeated(m, ["something else", "I am  away from my desk until 10 December\nand will answer then."])
    assert found is not None and found.kind == "automatic" and "autoresponder" in found.reason


@pytest.mark.parametrize("short", ["#resolve", "status", "অবস্থা", "ধন্যবাদ"])
def test_a_short_command_or_word_may_be_repeated_by_a_person(short):
    from maildesk.rules.screen import repeated

    assert repeated(parse_message(make_mail(body=short)), [short, short]) is None
