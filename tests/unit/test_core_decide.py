"""decide(): every branch of the pure core, no servers."""

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from maildesk import desk as core
from maildesk.charter import load_charter
from maildesk.ingest.parse import parse_message
from maildesk.officer import parse_officer_reply
from maildesk.rules.screen import screen
from maildesk.rules.tokens import notice_message_id, plus_address, verified_ref

CHARTER = load_charter(Path(__file__).parents[2] / "config" / "charter.yaml")
NOW = datetime(2026, 12, 6, 5, 0, tzinfo=timezone.utc)
OFFICER = CHARTER.officers["ap"]


def mail(body="hello", subject="Need help", sender="citizen@example.com", **headers) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = CHARTER.office.desk_address
    m["Subject"] = subject
    m["Message-ID"] = headers.pop("message_id", "<m1@example.com>")
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return bytes(m)


def ticket(status="open", **kw) -> core.TicketView:
    base = dict(id=1, ref="ICT-2026-00001", status=status, service="2.2.5", officer="ap",
                citizen_email="citizen@example.com", due_at=NOW + timedelta(days=3), resolved_at=None, closed_at=None)
    base.update(kw)
    return core.TicketView(**base)


def situation(raw: bytes, **kw) -> core.Situation:
    m = parse_message(raw)
    kw.setdefault("screen", screen(m, CHARTER.desk_addresses()))
    return core.Situation(message=m, now=NOW, charter=CHARTER, **kw)


def kinds(decision):
    return [type(a).__name__ + (":" + a.template + ">" + a.to if isinstance(a, core.Send) else "") for a in decision.actions]


def test_new_message_opens_a_ticket_acknowledges_and_tells_the_officer():
    d = core.decide(situation(mail()), {"service": "2.2.5", "score": 9})
    assert d.kind == "new_ticket"
    opened = d.actions[0]
    assert isinstance(opened, core.OpenTicket) and opened.service == "2.2.5" and opened.status == "open"
    assert "Send:ack>citizen" in kinds(d) and "Send:notice>officer" in kinds(d)


def test_unclassified_message_goes_to_triage_with_the_default_officer():
    d = core.decide(situation(mail()), {"service": None, "score": 0})
    opened = d.actions[0]
    assert opened.status == "triage" and opened.service is None
    assert opened.officer == CHARTER.office.default_officer


def test_citizen_reply_threads_into_the_ticket_and_is_forwarded():
    d = core.decide(situation(mail("more details\n\n> old text"), ticket=ticket()))
    assert d.kind == "followup"
    assert "Send:followup>officer" in kinds(d)
    assert not any(isinstance(a, core.OpenTicket) for a in d.actions)


def test_reply_to_resolved_ticket_reopens_within_window_and_opens_linked_ticket_after():
    recent = ticket("resolved", resolved_at=NOW - timedelta(days=2))
    d = core.decide(situation(mail("still broken"), ticket=recent))
    assert core.Update({"status": "open", "resolved_at": None, "closed_at": None}) in d.actions
    old = ticket("resolved", resolved_at=NOW - timedelta(days=CHARTER.office.reopen_days + 1))
    d = core.decide(situation(mail("another problem"), ticket=old), {"service": None})
    opened = [a for a in d.actions if isinstance(a, core.OpenTicket)]
    assert opened and opened[0].linked_ref == "ICT-2026-00001"


@pytest.mark.parametrize("subject,body", [("Re: [ICT-2026-00001] status", "x"), ("Re: anything", "অবস্থা\n\n> quoted"),
                                          ("অবস্থা", "")])
def test_status_query_gets_an_automatic_status_reply_without_the_officer(subject, body):
    d = core.decide(situation(mail(body or "?", subject=subject), ticket=ticket()))
    assert d.kind == "status_query"
    assert kinds(d).count("Send:status>citizen") == 1
    assert not any(isinstance(a, core.Send) and a.to == "officer" for a in d.actions)


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"List_Id": "<news.example.com>"},
    {"X_Autoreply": "yes"}, {"X_Auto_Response_Suppress": "All"}])
def test_robots_are_recorded_but_never_answered(headers):
    d = core.decide(situation(mail(**headers)), {"service": "2.2.5"})
    assert d.kind == "automatic"
    assert not any(isinstance(a, (core.Send, core.OpenTicket)) for a in d.actions)
    assert isinstance(d.actions[0], core.StoreMessage)


def test_mailer_daemon_and_own_address_are_screened():
    d = core.decide(situation(mail(sender="MAILER-DAEMON@mx.example.com")))
    assert d.kind == "bounce"
    d = core.decide(situation(mail(sender=CHARTER.office.desk_address)))
    assert d.kind == "own"


def _officer_reply(body, secret="s3cret", ref="ICT-2026-00001", officer="ap", sender=None, **kw):
    notice = notice_message_id(secret, "khaliajuri", ref, officer, "upazila.example.gov.bd", "abc123")
    raw = mail(body, subject=f"Re: [ICT-2026-00001] নতুন অনুরোধ", sender=sender or OFFICER.email,
               In_Reply_To=notice, References=notice, message_id="<r1@example.gov.bd>")
    m = parse_message(raw)
    vref = verified_ref("s3cret", "khaliajuri", "ap", m.thread_ids, m.to)
    s = situation(raw, ticket=ticket(), officer=CHARTER.officer_by_email(m.sender), verified_ref=vref, **kw)
    return core.decide(s, None, parse_officer_reply(m, CHARTER) if vref else None)


def test_verified_officer_reply_is_relayed_and_commands_change_the_ticket():
    d = _officer_reply("The router was replaced.\n#resolve\n\nOn Sun, 6 Dec 2026 Maildesk wrote:\n> old notice")
    assert d.kind == "officer_reply"
    assert core.Update({"status": "resolved"}) in d.actions
    relay = [a for a in d.actions if isinstance(a, core.Send) and a.template == "relay"]
    assert relay and relay[0].extra["answer"] == "The router was replaced."
    assert "Send:confirm>ap" in kinds(d)


def test_invalid_command_changes_nothing_and_relays_nothing():
    d = _officer_reply("Answer text\n#service 9.9.9\n#resolve")
    assert d.kind == "officer_error"
    assert not any(isinstance(a, core.Update) for a in d.actions)
    assert not any(isinstance(a, core.Send) and a.to == "citizen" for a in d.actions)
    assert "Send:command_error>ap" in kinds(d)


@pytest.mark.parametrize("case", ["no_token", "wrong_secret", "other_ticket", "dkim_failed"])
def test_forged_officer_messages_run_no_command_and_warn_the_officer(case):
    kw = {}
    if case == "no_token":
        raw = mail("#resolve", subject="Re: [ICT-2026-00001]", sender=OFFICER.email)
        m = parse_message(raw)
        s = situation(raw, ticket=ticket(), officer=OFFICER, verified_ref=None)
        d = core.decide(s, None, None)
    else:
        secret = "wrong" if case == "wrong_secret" else "s3cret"
        ref = "ICT-2026-00099" if case == "other_ticket" else "ICT-2026-00001"
        if case == "dkim_failed":
            kw["auth_failed"] = True
        d = _officer_reply("#resolve\n#close", secret=secret, ref=ref, **kw)
    assert not any(isinstance(a, core.Update) for a in d.actions)
    assert not any(isinstance(a, core.Send) and a.template in ("relay", "confirm") for a in d.actions)
    assert any(isinstance(a, core.Send) and a.template == "forged_warning" and a.to == "ap" for a in d.actions)


def test_right_token_but_wrong_sender_is_not_an_officer():
    notice = notice_message_id("s3cret", "khaliajuri", "ICT-2026-00001", "ap", "upazila.example.gov.bd", "x1")
    assert verified_ref("s3cret", "khaliajuri", "grs", (notice,), ()) is None
    assert verified_ref("s3cret", "khaliajuri", "ap", (notice,), ()) == "ICT-2026-00001"
    plus = plus_address(CHARTER.office.desk_address, "s3cret", "khaliajuri", "ICT-2026-00001", "ap")
    assert verified_ref("s3cret", "khaliajuri", "ap", (), (plus,)) == "ICT-2026-00001"
    assert verified_ref("s3cret", "khaliajuri", "grs", (), (plus,)) is None


def test_officer_cc_on_direct_answer_is_recorded_not_relayed():
    raw = mail("Dear citizen, fixed.", sender=OFFICER.email, subject="Re: [ICT-2026-00001] line down")
    m = parse_message(raw)
    msg = EmailMessage()
    msg["From"] = OFFICER.email
    msg["To"] = "citizen@example.com"
    msg["Cc"] = CHARTER.office.desk_address
    msg["Subject"] = "Re: [ICT-2026-00001] line down"
    msg["Message-ID"] = "<cc1@example.gov.bd>"
    msg.set_content("Dear citizen, fixed.")
    s = situation(bytes(msg), ticket=ticket(), officer=OFFICER, verified_ref=None)
    d = core.decide(s)
    assert d.kind == "officer_cc"
    assert not any(isinstance(a, core.Send) for a in d.actions)
