"""The officer's side of the pipeline on a Maildir, a SQLite file and the outbox (no servers needed):
every client format of the reply fixtures through the whole path, DKIM/SPF verdicts, forged tokens,
Bengali commands, re-delivery. The same paths over real Dovecot and SMTP are in
tests/integration/test_officer_e2e.py."""

from __future__ import annotations

import email
import json
import os
from datetime import date
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.ingest.parse import parse_message
from maildesk.jobs.ingest import ingest_all
from maildesk.officer import authentication_failed
from maildesk.rules.tokens import notice_message_id
from maildesk.settings import default_config_dir, load_settings
from maildesk.store.models import Event, Message, Outbox, Ticket
from tests.helpers import SUNDAY_MORNING, FixedClock, database_url_for, drop_into_maildir
from tests.mailclient import new_mail, reply

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = ROOT / "tests" / "data" / "replies" / "replies-html-dev"
EXPECTED = {json.loads(line)["id"]: json.loads(line) for line in (HTML_DIR / "expected.jsonl").read_text().splitlines()
            if line.strip()}
AP = "ap.khaliajuri@upazila.example.gov.bd"
GRS = "grs.netrokona@district.example.gov.bd"
CITIZEN = "citizen@example.com"
AUTHSERV = "mx.upazila.example.gov.bd"


def collapse(text: str) -> str:
    return " ".join(text.split())


class Flow:
    def __init__(self, tmp_path: Path, officers: dict | None = None, **office):
        config = default_config_dir()
        charter = yaml.safe_load((config / "charter.yaml").read_text(encoding="utf-8"))
        charter["office"].update(office)
        charter["officers"].update(officers or {})
        (tmp_path / "charter.yaml").write_text(yaml.safe_dump(charter, allow_unicode=True), encoding="utf-8")
        toml = f'holidays_dir = "{config / "holidays"}"\n' + (config / "maildesk.toml").read_text(encoding="utf-8")
        (tmp_path / "maildesk.toml").write_text(toml, encoding="utf-8")
        settings = load_settings(tmp_path / "maildesk.toml", env={
            "MAILDESK_MAILBOX_URL": f"maildir://{tmp_path / 'mailbox'}",
            "MAILDESK_SMTP_URL": f"file://{tmp_path / 'sent'}",
            "MAILDESK_DATABASE_URL": database_url_for(tmp_path),
            "MAILDESK_HMAC_SECRET": "flow-secret"})
        self.clock = FixedClock(SUNDAY_MORNING)
        self.desk = build_desk(settings, clock=self.clock)
        self.mailbox = tmp_path / "mailbox"
        self.desk_address = charter["office"]["desk_address"]
        self.n = 0

    def deliver(self, msg: EmailMessage | bytes) -> None:
        self.n += 1
        key = f"{self.n:04d}.flow"
        drop_into_maildir(self.mailbox, msg if isinstance(msg, bytes) else msg.as_bytes(), key)
        stamp = self.clock.value.timestamp()  # arrival time = the test clock, as a delivering server would set it
        os.utime(self.mailbox / "new" / key, (stamp, stamp))
        [report] = ingest_all(self.desk)
        assert report.error is None and report.failed == 0 and report.quarantined == 0

    def outbox(self, kind: str, to: str | None = None) -> list[EmailMessage]:
        with self.desk.sessions() as s:
            q = select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)
            rows = [r for r in s.scalars(q) if to is None or r.recipient == to]
            return [email.message_from_bytes(r.raw, policy=policy.default) for r in rows]

    def ticket(self, ref: str | None = None) -> Ticket:
        with self.desk.sessions() as s:
            q = select(Ticket).order_by(Ticket.id.desc())
            t = s.scalars(q.where(Ticket.ref == ref) if ref else q).first()
            s.expunge_all()
            return t

    def events(self, ref: str) -> list[Event]:
        with self.desk.sessions() as s:
            t = s.scalar(select(Ticket).where(Ticket.ref == ref))
            rows = s.scalars(select(Event).where(Event.ticket_id == t.id).order_by(Event.id)).all()
            s.expunge_all()
            return rows

    def request(self, subject="ইন্টারনেট সংযোগ নেই", text="ইউনিয়ন পরিষদের ইন্টারনেট সংযোগ দুই দিন ধরে বন্ধ।",
                message_id="<req@example.com>") -> tuple[Ticket, EmailMessage]:
        self.deliver(new_mail(sender=CITIZEN, to=self.desk_address, subject=subject, text=text, message_id=message_id))
        t = self.ticket()
        return t, self.outbox("notice")[-1]


# r2-05 hands the ticket to a field technician: one more officer in this office's charter.
TECH = {"tech": {"name_bn": "মাঠ টেকনিশিয়ান", "name_en": "Field technician",
                 "email": "tech.khaliajuri@upazila.example.gov.bd"}}


@pytest.fixture
def flow(tmp_path):
    f = Flow(tmp_path, officers=TECH)
    yield f
    f.desk.close()


def plain(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def answer_of(relay: EmailMessage) -> str:
    """The officer's words in a relayed answer (the desk's own footer cut off)."""
    return plain(relay).split("\n-- \n")[0].strip()


# ---- every client format, through the whole path ------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_client_format_is_relayed_without_quote_or_signature(flow, name):
    """The corpus replies (Gmail, Outlook, Apple Mail, Thunderbird, Yahoo …) answer our own notice."""
    t, notice = flow.request()
    msg = email.message_from_bytes((HTML_DIR / f"{name}.eml").read_bytes())  # compat32 keeps the bodies as sent
    subject = str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    notice_id = str(notice["Message-ID"]).strip()
    for header, value in (("Subject", subject.replace(subject[subject.index("["):subject.index("]") + 1],
                                                        f"[{t.ref}]")),
                          ("In-Reply-To", notice_id), ("References", notice_id), ("To", flow.desk_address)):
        del msg[header]
        msg[header] = value
    flow.deliver(msg.as_bytes())
    expected = EXPECTED[name]
    [relay] = flow.outbox("relay")
    assert collapse(answer_of(relay)) == collapse(expected["expected_reply"])
    [confirm] = flow.outbox("confirm", AP)
    for line in expected["expected_commands"]:
        assert line in plain(confirm)
    kinds = [e.kind for e in flow.events(t.ref)]
    assert "relayed" in kinds and "command_error" not in kinds


# ---- identity: DKIM/SPF from our own receiving server ---------------------------------------------


def _with_results(results: str | None) -> bytes:
    m = EmailMessage()
    if results is not None:
        m["Authentication-Results"] = results
    m["From"] = AP
    m["To"] = "desk@upazila.example.gov.bd"
    m["Subject"] = "x"
    m.set_content("x")
    return bytes(m)


@pytest.mark.parametrize("results,failed", [
    (None, False),  # no verdict from our server: nothing to judge
    (f"{AUTHSERV}; dkim=pass header.d=upazila.example.gov.bd header.s=sel", False),
    (f"{AUTHSERV}; dkim=pass (2048-bit key) header.i=@upazila.example.gov.bd", False),
    (f"{AUTHSERV}; dkim=pass header.d=example.gov.bd", False),  # the parent domain signed
    (f"{AUTHSERV}; spf=pass smtp.mailfrom={AP}; dkim=none", False),
    (f"{AUTHSERV} 1; dmarc=pass header.from=upazila.example.gov.bd", False),
    (f"{AUTHSERV}; dkim=fail header.d=upazila.example.gov.bd; spf=fail smtp.mailfrom={AP}", True),
    (f"{AUTHSERV}; dkim=pass header.d=attacker.example.com; spf=softfail smtp.mailfrom=x@attacker.example.com", True),
    (f"{AUTHSERV}; dkim=pass header.d=evil-upazila.example.gov.bd", True),  # a look-alike, not a parent
    (f"{AUTHSERV}; dkim=pass", True),  # a pass that names no domain proves nothing
    (f"{AUTHSERV}; none", True),
    ("other.example.net; dkim=fail header.d=upazila.example.gov.bd", False),  # not our server's verdict
])
def test_authentication_results_must_pass_for_the_officers_own_domain(results, failed):
    assert authentication_failed(parse_message(_with_results(results)), AUTHSERV) is failed
    assert authentication_failed(parse_message(_with_results(results)), None) is False  # not configured


def test_an_officer_reply_that_failed_dkim_and_spf_runs_nothing(tmp_path):
    flow = Flow(tmp_path, authserv_id=AUTHSERV)
    try:
        t, notice = flow.request()
        bad = reply(notice, sender=AP, text="Fixed.\n#resolve", headers={
            "Authentication-Results": f"{AUTHSERV}; dkim=fail header.d=upazila.example.gov.bd; spf=fail"})
        flow.deliver(bad)
        assert flow.ticket(t.ref).status == "open"
        assert flow.outbox("relay") == [] and flow.outbox("confirm") == []
        [warning] = flow.outbox("forged_warning", AP)
        assert "DKIM/SPF" in plain(warning)
        good = reply(notice, sender=AP, text="Fixed.\n#resolve", headers={
            "Authentication-Results": f"{AUTHSERV}; dkim=pass header.d=upazila.example.gov.bd"})
        flow.deliver(good)
        assert flow.ticket(t.ref).status == "resolved" and len(flow.outbox("relay")) == 1
    finally:
        flow.desk.close()


# ---- identity: tokens -----------------------------------------------------------------------------


def _reply_with_token(flow, t, notice, secret="flow-secret", ref=None, officer="ap", sender=AP, text="#resolve"):
    forged_id = notice_message_id(secret, "khaliajuri", ref or t.ref, officer, "upazila.example.gov.bd", "f1")
    msg = reply(notice, sender=sender, text=text)
    for header in ("In-Reply-To", "References"):
        msg.replace_header(header, forged_id)
    return msg


@pytest.mark.parametrize("case", ["wrong_secret", "other_ticket", "other_officer_token", "wrong_from"])
def test_a_forged_token_runs_no_command(flow, case):
    t, notice = flow.request()
    other, _ = flow.request(subject="ল্যাবের কম্পিউটার নষ্ট", text="শেখ রাসেল ডিজিটাল ল্যাবের কম্পিউটার চালু হচ্ছে না।",
                            message_id="<req-2@example.com>")
    kw = {"wrong_secret": {"secret": "guessed"}, "other_ticket": {"ref": other.ref},
          "other_officer_token": {"officer": "grs"}, "wrong_from": {"sender": GRS}}[case]
    flow.deliver(_reply_with_token(flow, t, notice, text="Done.\n#close\n#assign " + GRS, **kw))
    after = flow.ticket(t.ref)
    assert (after.status, after.officer, after.closed_at) == ("open", "ap", None)
    assert flow.outbox("relay") == [] and flow.outbox("confirm") == []
    warned = GRS if case == "wrong_from" else AP
    assert len(flow.outbox("forged_warning", warned)) == 1
    assert [e.data["officer"] for e in flow.events(t.ref) if e.kind == "forged_officer"] == [
        "grs" if case == "wrong_from" else "ap"]


def test_a_forged_reply_does_not_reopen_or_resume_a_ticket(flow):
    t, notice = flow.request()
    flow.deliver(reply(notice, sender=AP, text="Please send the memo.\n#status waiting"))
    assert flow.ticket(t.ref).status == "waiting"
    flow.deliver(new_mail(sender=AP, to=flow.desk_address, subject=f"[{t.ref}] update", text="Memo received."))
    assert flow.ticket(t.ref).status == "waiting"  # the clock stays stopped: only the citizen's own reply resumes it
    flow.deliver(reply(notice, sender=AP, text="#resolve"))
    flow.deliver(new_mail(sender=AP, to=flow.desk_address, subject=f"[{t.ref}] again", text="Reopen please"))
    assert flow.ticket(t.ref).status == "resolved"


def test_commands_in_a_direct_answer_without_token_are_not_run_and_the_officer_is_told(flow):
    t, _ = flow.request()
    flow.deliver(new_mail(sender=AP, to=CITIZEN, cc=(flow.desk_address,), subject=f"Re: [{t.ref}] internet",
                          text="We fixed it today.\n#resolve"))
    assert flow.ticket(t.ref).status == "open"
    [warning] = flow.outbox("forged_warning", AP)
    assert "commands run only in a reply" in plain(warning)
    assert flow.outbox("relay") == []


# ---- commands ---------------------------------------------------------------------------------------


def test_bengali_commands_with_bengali_digits(flow):
    t, notice = flow.request()
    cal = flow.desk.offices["khaliajuri"].calendar
    flow.deliver(reply(notice, sender=AP, text="#সেবা ২.২.৭\n#সময়সীমা ২০২৬-১২-২০\n#নোট ল্যাব পরিদর্শন"))
    t2 = flow.ticket(t.ref)
    assert t2.service == "2.2.7" and t2.due_at == cal.office_close(date(2026, 12, 20))
    flow.deliver(reply(notice, sender=AP, text="কাজ শেষ।\n#সমাধান"))
    t3 = flow.ticket(t.ref)
    assert t3.status == "resolved" and t3.resolved_at == flow.clock.value
    flow.clock.advance(hours=2)
    flow.deliver(reply(notice, sender=AP, text="#পুনরায়-খুলুন"))
    t4 = flow.ticket(t.ref)
    assert t4.status == "open" and t4.resolved_at is None and t4.next_escalation_at is not None
    flow.deliver(reply(notice, sender=AP, text=f"#দায়িত্ব {GRS}\n#বন্ধ"))
    t5 = flow.ticket(t.ref)
    assert (t5.officer, t5.status) == ("grs", "closed")
    assert [answer_of(r) for r in flow.outbox("relay")] == ["কাজ শেষ।"]
    assert len(flow.outbox("confirm", AP)) == 4 and len(flow.outbox("notice", GRS)) == 1


@pytest.mark.parametrize("line,error", [
    ("#due 2026-01-01", "in the past"),
    ("#due 0", "#due needs"),
    ("#status sleeping", "#status needs"),
    ("#service 2.2.99", "no charter service"),
    ("#assign citizen@example.com", "not a configured officer"),
    ("#note", "#note needs"),
    ("#escalate now", "unknown command"),
])
def test_an_invalid_command_changes_nothing(flow, line, error):
    t, notice = flow.request()
    flow.deliver(reply(notice, sender=AP, text=f"Answer for the citizen.\n#resolve\n{line}"))
    after = flow.ticket(t.ref)
    assert (after.status, after.service, after.officer, after.due_at) == (t.status, t.service, t.officer, t.due_at)
    assert flow.outbox("relay") == [] and flow.outbox("confirm") == []
    [explained] = flow.outbox("command_error", AP)
    assert line in plain(explained) and error in plain(explained)


def test_a_redelivered_reply_is_relayed_and_confirmed_once(flow):
    t, notice = flow.request()
    raw = reply(notice, sender=AP, text="Fixed.\n#resolve").as_bytes()
    flow.deliver(raw)
    flow.deliver(raw)  # the same message again under another mailbox key (a second copy, a re-sync)
    assert len(flow.outbox("relay")) == 1 and len(flow.outbox("confirm")) == 1
    with flow.desk.sessions() as s:
        assert s.scalars(select(Message.kind).where(Message.sender == AP)).all() == ["officer"]


def test_answering_the_confirmation_or_a_follow_up_is_trusted_too(flow):
    t, notice = flow.request()
    flow.deliver(reply(notice, sender=AP, text="#status scheduled"))
    [confirm] = flow.outbox("confirm", AP)
    flow.deliver(reply(confirm, sender=AP, text="Visit done.\n#resolve"))
    assert flow.ticket(t.ref).status == "resolved"
    assert [answer_of(r) for r in flow.outbox("relay")] == ["Visit done."]


def test_waiting_set_and_lifted_by_the_officer_moves_the_due_date_by_the_time_on_hold(flow):
    t, notice = flow.request()
    cal = flow.desk.offices["khaliajuri"].calendar
    flow.deliver(reply(notice, sender=AP, text="Waiting for the union's memo.\n#status অপেক্ষা"))
    held = flow.ticket(t.ref)
    assert held.status == "waiting" and held.next_escalation_at is None and held.due_at == t.due_at
    flow.clock.advance(days=1, hours=3)
    flow.deliver(reply(notice, sender=AP, text="#status খোলা"))
    resumed = flow.ticket(t.ref)
    on_hold = cal.working_time_between(held.hold_since, flow.clock.value)
    assert on_hold.total_seconds() > 0
    assert resumed.status == "open" and resumed.hold_since is None
    assert resumed.due_at == cal.add_working_time(t.due_at, on_hold) > t.due_at
    assert resumed.next_escalation_at is not None


def test_an_officers_out_of_office_reply_to_a_notice_is_never_relayed(flow):
    t, notice = flow.request()
    flow.deliver(reply(notice, sender=AP, text="I am on leave until Thursday. For urgent matters call the UNO office.",
                       headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"}))
    assert flow.outbox("relay") == [] and flow.outbox("confirm") == [] and flow.outbox("command_error") == []
    assert flow.ticket(t.ref).status == "open"
    with flow.desk.sessions() as s:
        assert s.scalars(select(Message.kind).where(Message.sender == AP)).all() == ["automatic"]
