"""Officers work their tickets from their own mail client, end to end on the real servers.

A citizen's mail is APPENDed into the desk's Dovecot INBOX; the worker's ingest job reads it over IMAP and
sends through a real SMTP server that delivers into the officers' and the citizen's Dovecot mailboxes
(LMTP). The officer's reply is built from the notice in their mailbox as a mail client builds it (threading
headers, quoted notice, signature, commands, an attachment) and submitted over SMTP to the desk's address.
Every assertion reads what a person would see: their mailbox over IMAP, or the ticket in the database.
"""

from __future__ import annotations

import email
import smtplib
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.jobs.worker import Worker
from maildesk.settings import default_config_dir, load_settings
from maildesk.store.models import Event, Message, Outbox, Ticket
from tests.helpers import FixedClock
from tests.mailclient import new_mail, reply

DHAKA = ZoneInfo("Asia/Dhaka")
OFFICE = "khaliajuri"
PDF = b"%PDF-1.4\n% router invoice\n" + bytes(range(256)) * 4
SIGNATURE = "Md. Munjurul Alam\nAssistant Programmer, ICT Khaliajuri\nMobile: 01711-000000"


def sunday_morning_weeks_ago() -> datetime:
    """A Sunday 10:00 in Dhaka well in the past: Dovecot clamps a future INTERNALDATE to its own clock."""
    day = datetime.now(DHAKA).date() - timedelta(days=70)
    day -= timedelta(days=(day.weekday() - 6) % 7)
    return datetime.combine(day, time(10, 0), tzinfo=DHAKA)


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def plain(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def addresses(msg: EmailMessage, *names: str) -> list[str]:
    return [a.lower() for _, a in getaddresses([str(v) for n in names for v in msg.get_all(n, [])])]


@dataclass
class Office:
    desk: object
    clock: FixedClock
    desk_box: object
    officers: dict
    citizen: object
    relay: object

    def run(self) -> None:
        """One run of the worker's ingest job (it sends the outbox when something was stored)."""
        Worker(self.desk).ingest(OFFICE)

    def citizen_writes(self, msg: EmailMessage, at: datetime | None = None) -> None:
        self.desk_box.append(msg, msg_time=at)
        self.run()

    def submit(self, msg: EmailMessage) -> None:
        """Send as the person's mail client does: SMTP submission to every To/Cc recipient."""
        with smtplib.SMTP(self.relay.host, self.relay.port, timeout=10) as smtp:
            smtp.send_message(msg)
        self.run()

    def mail(self, account) -> list[EmailMessage]:
        return [parsed(raw) for _, _, raw in account.fetch_all()]

    def last(self, account, subject_part: str) -> EmailMessage:
        found = [m for m in self.mail(account) if subject_part in str(m["Subject"])]
        assert found, f"no {subject_part!r} for {account.user}: {[str(m['Subject']) for m in self.mail(account)]}"
        return found[-1]

    def ticket(self, ref: str | None = None) -> Ticket:
        with self.desk.sessions() as s:
            q = select(Ticket).order_by(Ticket.id)
            rows = s.scalars(q.where(Ticket.ref == ref) if ref else q).all()
            s.expunge_all()
        return rows[-1]

    def events(self, ref: str) -> list[str]:
        with self.desk.sessions() as s:
            t = s.scalar(select(Ticket).where(Ticket.ref == ref))
            return [e.kind for e in s.scalars(select(Event).where(Event.ticket_id == t.id).order_by(Event.id))]

    def officer_email(self, key: str) -> str:
        return self.officers[key].address

    def first_request(self, subject="ইন্টারনেট সংযোগ নেই / No internet",
                      body="আমাদের ইউনিয়ন পরিষদের ইন্টারনেট সংযোগ তিন দিন ধরে বন্ধ। দয়া করে ব্যবস্থা নিন।",
                      message_id="<req-1@example.com>") -> tuple[Ticket, EmailMessage]:
        """A citizen writes; returns the ticket and the notice the responsible officer received."""
        self.citizen_writes(new_mail(sender=self.citizen.address, to=self.desk_box.address, subject=subject,
                                     text=body, message_id=message_id), at=self.clock.value)
        t = self.ticket()
        return t, self.last(self.officers[t.officer], t.ref)


@pytest.fixture
def make_office(tmp_path, make_imap_account, smtp_relay, database_url):
    made = []

    def make(**office_settings) -> Office:
        desk_box = make_imap_account("desk")
        officers = {key: make_imap_account(key) for key in ("ap", "grs")}
        citizen = make_imap_account("citizen@example.com")
        config = default_config_dir()
        charter = yaml.safe_load((config / "charter.yaml").read_text(encoding="utf-8"))
        charter["office"].update(desk_address=desk_box.address, desk_aliases=[], **office_settings)
        for key, account in officers.items():
            charter["officers"][key]["email"] = account.address
        (tmp_path / "charter.yaml").write_text(yaml.safe_dump(charter, allow_unicode=True), encoding="utf-8")
        toml = f'holidays_dir = "{config / "holidays"}"\n' + (config / "maildesk.toml").read_text(encoding="utf-8")
        (tmp_path / "maildesk.toml").write_text(toml, encoding="utf-8")
        settings = load_settings(tmp_path / "maildesk.toml", env={
            "MAILDESK_MAILBOX_URL": desk_box.url(), "MAILDESK_SMTP_URL": smtp_relay.url,
            "MAILDESK_DATABASE_URL": database_url, "MAILDESK_HMAC_SECRET": "officer-e2e-secret"})
        clock = FixedClock(sunday_morning_weeks_ago().astimezone(timezone.utc) + timedelta(minutes=5))
        desk = build_desk(settings, clock=clock)
        made.append(desk)
        return Office(desk, clock, desk_box, officers, citizen, smtp_relay)

    yield make
    for desk in made:
        desk.close()
    assert smtp_relay.relay_errors == []


@pytest.fixture
def office(make_office) -> Office:
    return make_office()


# ---- the main path ---------------------------------------------------------------------------------


def test_officer_answers_from_the_mail_client_and_the_citizen_gets_it_in_their_thread(office):
    t, notice = office.first_request()
    assert t.service == "2.2.10" and t.officer == "ap" and t.status == "open"

    # The notice: the citizen's words, the service, the due date, and the commands.
    text = plain(notice)
    assert "ইন্টারনেট সংযোগ তিন দিন ধরে বন্ধ" in text
    assert "2.2.10" in text and "সময়সীমা / Due" in text and "#resolve" in text and "#সমাধান" in text
    assert str(notice["Message-ID"]).strip().startswith(f"<{t.ref}.notice.ap.")
    assert addresses(notice, "Reply-To") == [office.desk_box.address]

    answer = ("ইউনিয়ন পরিষদের রাউটার বদলে দেওয়া হয়েছে, সংযোগ এখন চালু।\n"
              "The router at the Union Parishad was replaced; the line works again.")
    office.submit(reply(notice, sender=office.officer_email("ap"), text=answer + "\n\n#resolve",
                        signature=SIGNATURE, attachments=(("invoice.pdf", "application/pdf", PDF),)))

    # The citizen's mailbox: the acknowledgement, then the officer's answer, in their own thread.
    ack, relayed = office.mail(office.citizen)
    assert "Request received" in ack["Subject"]
    assert addresses(relayed, "From") == [office.desk_box.address]
    assert addresses(relayed, "Reply-To") == [office.desk_box.address]
    assert f"[{t.ref}]" in relayed["Subject"]
    assert relayed["In-Reply-To"] == "<req-1@example.com>"
    assert "<req-1@example.com>" in relayed["References"].split()
    assert relayed["Auto-Submitted"] is None  # a person's answer, which the citizen may answer in turn
    body = plain(relayed)
    assert body.startswith(answer.splitlines()[0]) and answer.splitlines()[1] in body
    for leaked in ("#resolve", "01711-000000", "wrote:", "> ", "ইন্টারনেট সংযোগ তিন দিন", "#সমাধান",
                   office.officer_email("ap")):
        assert leaked not in body, leaked
    assert office.officer_email("ap") not in relayed.as_string()
    days = office.desk.offices[OFFICE].charter.office.reopen_days
    assert f"reply to this email within {days} days" in body  # resolved: how to reopen
    html = relayed.get_body(("html",)).get_content()
    assert "রাউটার বদলে" in html and "01711-000000" not in html and "blockquote" not in html
    [pdf] = list(relayed.iter_attachments())
    assert pdf.get_filename() == "invoice.pdf" and pdf.get_content() == PDF

    # The ticket moved, and the officer got exactly one confirmation saying what happened.
    t = office.ticket(t.ref)
    assert t.status == "resolved" and t.resolved_at == office.clock.value and t.next_escalation_at is None
    assert {"resolved", "relayed"} <= set(office.events(t.ref))
    ap_mail = office.mail(office.officers["ap"])
    assert len(ap_mail) == 2
    confirm = ap_mail[1]
    assert "Done" in confirm["Subject"] and t.ref in confirm["Subject"]
    confirm_text = plain(confirm)
    assert "#resolve" in confirm_text and "Sent to the citizen" in confirm_text and "রাউটার বদলে" in confirm_text
    assert str(confirm["Message-ID"]).strip().startswith(f"<{t.ref}.notice.ap.")  # answering it works too

    # Reading the same mailbox again changes nothing: no second relay, no second confirmation.
    office.run()
    assert len(office.mail(office.citizen)) == 2 and len(office.mail(office.officers["ap"])) == 2


def test_a_reply_with_only_commands_relays_nothing_and_bengali_commands_work(office):
    t, notice = office.first_request()
    office.submit(reply(notice, sender=office.officer_email("ap"), html=False,
                        text="#অবস্থা নির্ধারিত\n#মেয়াদ ৫\n#নোট বৃহস্পতিবার সরেজমিনে যাওয়া হবে", signature=SIGNATURE))
    assert len(office.mail(office.citizen)) == 1  # only the acknowledgement
    t2 = office.ticket(t.ref)
    cal = office.desk.offices[OFFICE].calendar
    assert t2.status == "scheduled"
    assert t2.due_at == cal.due_at(office.clock.value, 5).due_at != t.due_at
    confirm = office.last(office.officers["ap"], "Done")
    text = plain(confirm)
    assert "Nothing was sent to the citizen" in text
    assert "#মেয়াদ ৫" in text and "#অবস্থা নির্ধারিত" in text
    with office.desk.sessions() as s:
        note = s.scalar(select(Event.data).where(Event.kind == "note"))
    assert note == {"text": "বৃহস্পতিবার সরেজমিনে যাওয়া হবে"}


# ---- spoofing ----------------------------------------------------------------------------------------


def test_forged_officer_mail_runs_nothing_and_warns_the_real_officer(office):
    t, notice = office.first_request()
    other, other_notice = office.first_request(subject="ল্যাবের কম্পিউটার নষ্ট",
                                               body="শেখ রাসেল ডিজিটাল ল্যাবের কম্পিউটার চালু হচ্ছে না।",
                                               message_id="<req-2@example.com>")
    ap = office.officer_email("ap")
    # 1. The officer's From, no token: a fresh message naming the ticket in the subject.
    office.submit(new_mail(sender=ap, to=office.desk_box.address, subject=f"Re: [{t.ref}] done",
                           text="Closing this.\n#close"))
    # 2. The token of another ticket: a reply to the other notice with this ticket's ref in the subject.
    forged = reply(other_notice, sender=ap, text="#resolve")
    forged.replace_header("Subject", f"Re: [{t.ref}] resolve")
    office.submit(forged)
    # 3. The right token from the wrong sender: the grs officer answers ap's notice.
    office.submit(reply(notice, sender=office.officer_email("grs"), text="Resolved by me.\n#resolve"))

    after = office.ticket(t.ref)
    assert after.status == "open" and after.resolved_at is None and after.due_at == t.due_at
    events = office.events(t.ref)
    assert not {"resolved", "closed", "relayed"} & set(events)
    assert events.count("forged_officer") == 3
    assert office.ticket(other.ref).status == "open"
    citizen_subjects = [str(m["Subject"]) for m in office.mail(office.citizen)]
    assert not any("Reply" in s for s in citizen_subjects)  # nothing was relayed as an officer's answer
    warnings = [m for m in office.mail(office.officers["ap"]) if "Warning" in str(m["Subject"])]
    grs_warnings = [m for m in office.mail(office.officers["grs"]) if "Warning" in str(m["Subject"])]
    assert len(warnings) == 2 and len(grs_warnings) == 1
    assert "no valid desk token" in plain(warnings[0]) and not any(
        "Done" in str(m["Subject"]) for m in office.mail(office.officers["ap"]))
    with office.desk.sessions() as s:
        kinds = s.scalars(select(Message.kind).where(Message.sender.in_([ap, office.officer_email("grs")]))).all()
    assert sorted(kinds) == ["followup"] * 3  # kept as ordinary messages on the ticket, nothing lost


def test_plus_addressed_reply_is_trusted_without_threading_headers(make_office):
    office = make_office(plus_addressing=True)
    t, notice = office.first_request()
    [reply_to] = addresses(notice, "Reply-To")
    local, domain = office.desk_box.address.split("@")
    assert reply_to.startswith(f"{local}+{t.ref.lower()}.") and reply_to.endswith("@" + domain)
    # A client that drops In-Reply-To/References: only the plus-address proves the notice was answered.
    office.submit(reply(notice, sender=office.officer_email("ap"), text="Fixed.\n#resolve", threading=False))
    assert office.ticket(t.ref).status == "resolved"
    assert "Fixed." in plain(office.last(office.citizen, "Reply"))
    # The same plus-address used by the other officer proves nothing.
    office.submit(reply(notice, sender=office.officer_email("grs"), text="#reopen", threading=False))
    assert office.ticket(t.ref).status == "resolved"
    assert "Warning" in str(office.mail(office.officers["grs"])[-1]["Subject"])


# ---- the citizen's side ------------------------------------------------------------------------------


def test_citizen_follow_up_is_forwarded_and_a_status_question_is_answered_automatically(office):
    t, notice = office.first_request()
    ack = office.mail(office.citizen)[0]
    office.citizen_writes(reply(ack, sender=office.citizen.address, text="Our union office number is 017xx.",
                                attachments=(("photo.jpg", "image/jpeg", b"\xff\xd8\xff-photo"),)))
    forwarded = office.last(office.officers["ap"], "follow-up")
    assert "017xx" in plain(forwarded) and "ইউনিয়ন পরিষদের ইন্টারনেট" not in plain(forwarded)  # quote cut
    assert [a.get_filename() for a in forwarded.iter_attachments()] == ["photo.jpg"]
    assert str(forwarded["Message-ID"]).strip().startswith(f"<{t.ref}.notice.ap.")  # the officer can answer it directly

    # The officer answers the forwarded follow-up; the answer threads under the citizen's latest message.
    ack_id = str(ack["Message-ID"])
    office.submit(reply(forwarded, sender=office.officer_email("ap"), text="Thank you, noted."))
    relayed = office.last(office.citizen, "Reply")
    with office.desk.sessions() as s:
        latest = s.scalars(select(Message.message_id).where(Message.kind == "followup")).one()
    assert relayed["In-Reply-To"] == latest and "<req-1@example.com>" in relayed["References"]
    assert ack_id in relayed["References"]

    # "অবস্থা" as the first line: an automatic status reply; the officer is not bothered.
    before = len(office.mail(office.officers["ap"]))
    office.citizen_writes(reply(relayed, sender=office.citizen.address, text="অবস্থা", html=False))
    status = office.last(office.citizen, "Status of your request")
    text = plain(status)
    assert text.index("অবস্থা") < text.index("Status") and "চলমান" in text and "২.২.১০" in text and "2.2.10" in text
    assert "কর্মকর্তা উত্তর দিয়েছেন" in text and "the officer answered" in text  # the last action
    assert len(office.mail(office.officers["ap"])) == before


def test_reply_to_a_resolved_ticket_reopens_it_and_after_the_window_opens_a_linked_ticket(office):
    t, notice = office.first_request()
    office.submit(reply(notice, sender=office.officer_email("ap"), text="Fixed.\n#resolve"))
    relayed = office.last(office.citizen, "Reply")
    office.clock.advance(days=3)
    office.citizen_writes(reply(relayed, sender=office.citizen.address, text="It broke again this morning."))
    t2 = office.ticket(t.ref)
    assert t2.status == "open" and t2.resolved_at is None and t2.next_escalation_at is not None
    assert "reopened" in office.events(t.ref)
    assert "পুনরায় খোলা হয়েছে / reopened" in plain(office.last(office.officers["ap"], "follow-up"))

    notice_again = office.last(office.officers["ap"], "follow-up")
    office.submit(reply(notice_again, sender=office.officer_email("ap"), text="Replaced the adapter.\n#close"))
    assert office.ticket(t.ref).status == "closed"
    closed_answer = office.last(office.citizen, "Reply")
    office.clock.advance(days=office.desk.offices[OFFICE].charter.office.reopen_days + 1)
    office.citizen_writes(reply(closed_answer, sender=office.citizen.address,
                                text="এখন আবার ইন্টারনেট সংযোগ নেই, অন্য রাউটারে সমস্যা।"))
    old, new = office.ticket(t.ref), office.ticket()
    assert old.status == "closed" and new.ref != t.ref
    assert new.linked_ticket_id == old.id and new.service == "2.2.10" and new.status == "open"
    assert f"[{new.ref}]" in office.mail(office.citizen)[-1]["Subject"]  # acknowledged under the new ref
    assert f"[{new.ref}]" in office.last(office.officers["ap"], new.ref)["Subject"]


# ---- officers working together -------------------------------------------------------------------


def test_an_officer_answering_the_citizen_directly_with_the_desk_in_cc_is_recorded_not_relayed(office):
    t, notice = office.first_request()
    request = office.mail(office.desk_box)[0]
    # Reply-all to the citizen's own mail (forwarded to the officer by a colleague): To citizen, Cc desk.
    office.submit(reply(request, sender=office.officer_email("ap"), to=office.citizen.address,
                        cc=(office.desk_box.address,), text="I will come on Tuesday.", signature=SIGNATURE))
    citizen_mail = office.mail(office.citizen)
    assert len(citizen_mail) == 2 and addresses(citizen_mail[1], "From") == [office.officer_email("ap")]
    with office.desk.sessions() as s:
        row = s.scalars(select(Message).where(Message.kind == "officer_cc")).one()
        assert row.reply_text == "I will come on Tuesday." and row.ticket_id == t.id
    assert "officer_cc" in office.events(t.ref) and office.ticket(t.ref).status == "open"

    # The same with the notice's token (reply-all on the notice, citizen added in Cc): commands run, the
    # citizen is not sent the words a second time, and the confirmation says why.
    office.submit(reply(notice, sender=office.officer_email("ap"), cc=(office.citizen.address,),
                        text="Done, see you.\n#resolve"))
    citizen_mail = office.mail(office.citizen)
    assert len(citizen_mail) == 3 and addresses(citizen_mail[2], "From") == [office.officer_email("ap")]
    assert office.ticket(t.ref).status == "resolved"
    assert "You wrote to the citizen directly" in plain(office.last(office.officers["ap"], "Done"))


def test_assign_hands_the_ticket_over_with_a_notice_carrying_the_new_officers_token(office):
    t, notice = office.first_request()
    grs = office.officer_email("grs")
    office.submit(reply(notice, sender=office.officer_email("ap"), text=f"#assign {grs.upper()}\n#note district job"))
    t2 = office.ticket(t.ref)
    assert t2.officer == "grs" and t2.status == "open"
    [handed] = office.mail(office.officers["grs"])
    assert "Assigned to you" in handed["Subject"] and t.ref in handed["Subject"]
    assert str(handed["Message-ID"]).strip().startswith(f"<{t.ref}.notice.grs.")
    text = plain(handed)
    assert "ইন্টারনেট সংযোগ তিন দিন ধরে বন্ধ" in text and "Md. Munjurul Alam" in text
    assert "Nothing was sent to the citizen" in plain(office.last(office.officers["ap"], "Done"))

    # The new officer answers their own notice: trusted on their token alone; a follow-up now goes to them.
    office.submit(reply(handed, sender=grs, text="District team will visit.\n#status waiting"))
    assert office.ticket(t.ref).status == "waiting"
    relayed = office.last(office.citizen, "Reply")
    assert "District team will visit." in plain(relayed) and "অভিযোগ নিষ্পত্তি কর্মকর্তা" in plain(relayed)
    office.citizen_writes(reply(relayed, sender=office.citizen.address, text="OK, we will be there."))
    assert "OK, we will be there." in plain(office.last(office.officers["grs"], "follow-up"))
    assert not any("follow-up" in str(m["Subject"]) for m in office.mail(office.officers["ap"]))


def test_service_change_recomputes_the_due_date_and_waiting_pauses_the_clock(office):
    t, notice = office.first_request(subject="Hello", body="Please call me back about our office.",
                                     message_id="<req-9@example.com>")
    assert t.status == "triage" and t.service is None
    od = office.desk.offices[OFFICE]
    cal = od.calendar
    office.submit(reply(notice, sender=office.officer_email("ap"), text="#service ২.২.৪"))
    t2 = office.ticket(t.ref)
    days = od.charter.services["2.2.4"].deadline.working_days
    assert t2.service == "2.2.4" and t2.status == "open"
    assert t2.due_at == cal.due_at(t.received_at, days).due_at and t2.due_at > t.due_at
    assert "2.2.4" in plain(office.last(office.officers["ap"], "Done"))

    # Waiting on the citizen stops the clock: no escalation is scheduled while it waits ...
    office.clock.advance(hours=1)
    office.submit(reply(notice, sender=office.officer_email("ap"),
                        text="Please send the office memo.\n#status waiting"))
    held = office.ticket(t.ref)
    assert held.status == "waiting" and held.hold_since == office.clock.value and held.next_escalation_at is None
    # ... and the citizen's answer two days later resumes it, with the due date moved by the time on hold.
    office.clock.advance(days=2)
    office.citizen_writes(reply(office.last(office.citizen, "Reply"), sender=office.citizen.address,
                                text="Memo attached.", attachments=(("memo.pdf", "application/pdf", PDF),)))
    resumed = office.ticket(t.ref)
    assert resumed.status == "open" and resumed.hold_since is None
    assert resumed.due_at == cal.extend_for_hold(t2.due_at, held.hold_since, office.clock.value) > t2.due_at
    assert resumed.next_escalation_at is not None


def test_an_invalid_command_changes_nothing_and_the_officer_is_told_why(office):
    t, notice = office.first_request()
    office.submit(reply(notice, sender=office.officer_email("ap"),
                        text="The router is fixed.\n#resolve\n#service 9.9.9\n#assign nobody@example.com\n#frobnicate"))
    after = office.ticket(t.ref)
    assert (after.status, after.service, after.officer, after.due_at) == (t.status, t.service, t.officer, t.due_at)
    assert len(office.mail(office.citizen)) == 1  # nothing relayed
    error = office.last(office.officers["ap"], "nothing changed")
    text = plain(error)
    for line in ("#service 9.9.9", "#assign nobody@example.com", "#frobnicate"):
        assert line in text
    assert "is not a configured officer" in text and "unknown command" in text
    assert "command_error" in office.events(t.ref) and "resolved" not in office.events(t.ref)
    with office.desk.sessions() as s:
        assert s.scalar(select(Outbox.kind).where(Outbox.kind == "confirm")) is None
    # The corrected reply is then relayed once.
    office.submit(reply(notice, sender=office.officer_email("ap"), text="The router is fixed.\n#resolve"))
    assert office.ticket(t.ref).status == "resolved" and len(office.mail(office.citizen)) == 2
