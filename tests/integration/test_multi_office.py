"""Two offices in one deployment, end to end on the real servers: never mix them up.

Each office has its own Dovecot mailbox, charter file (officers, ticket prefix, time zone, ladder) and
officers' mailboxes; one database and one SMTP relay serve both, as in a district deployment
([[offices]] in maildesk.toml). A citizen writes to each office and to both at once (To one, Cc the other);
replies, officer notices, escalations, the weekly digest, the quarterly report and `maildesk status` must
each stay inside their own office. SQLite, or PostgreSQL with MAILDESK_TEST_DATABASE=postgres.
"""

from __future__ import annotations

import email
import re
from datetime import datetime, time, timedelta, timezone
from email import policy
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.cli.status import collect
from maildesk.jobs.digest import send_due_digests
from maildesk.jobs.escalate import escalate_all
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import send_pending
from maildesk.ladder import level_due
from maildesk.reports import Quarter, quarter_report
from maildesk.settings import default_config_dir, load_settings
from maildesk.store.models import Message, Ticket
from tests.helpers import FixedClock, make_mail

DHAKA = ZoneInfo("Asia/Dhaka")
A, B = "khaliajuri", "madan"
PREFIX = {A: "ICT", B: "MDN"}
TZ = {A: "Asia/Dhaka", B: "Asia/Kolkata"}  # a second zone, so a mix-up of calendars would show


def sunday_morning_weeks_ago() -> datetime:
    """Sunday 10:00 in Dhaka, weeks back: Dovecot clamps a future INTERNALDATE to its own clock."""
    day = datetime.now(DHAKA).date() - timedelta(days=60)
    day -= timedelta(days=(day.weekday() - 6) % 7)
    return datetime.combine(day, time(10, 0), tzinfo=DHAKA)


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def toml_str(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def district(tmp_path, make_imap_account, smtp_relay, database_url):
    """Two offices, each with a desk mailbox and four officers on Dovecot; one database, one relay."""
    config = default_config_dir()
    base = yaml.safe_load((config / "charter.yaml").read_text(encoding="utf-8"))
    boxes, officers, tables = {}, {}, []
    for key in (A, B):
        charter = yaml.safe_load(yaml.safe_dump(base, allow_unicode=True))
        boxes[key] = make_imap_account(f"desk-{key}")
        officers[key] = {k: make_imap_account(f"{k}-{key}") for k in ("ap", "grs", "appeal", "uno")}
        charter["office"].update(key=key, ticket_prefix=PREFIX[key], timezone=TZ[key],
                                 desk_address=boxes[key].address, desk_aliases=[],
                                 name_en=f"ICT Office {key.title()}")
        for k, account in officers[key].items():
            charter["officers"][k]["email"] = account.address
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump(charter, allow_unicode=True), encoding="utf-8")
        tables += ["[[offices]]", f"key = {toml_str(key)}", f"charter = {toml_str(path)}",
                   f"mailbox_url = {toml_str(boxes[key].url())}"]
    settings_file = tmp_path / "maildesk.toml"
    settings_file.write_text("\n".join([
        f"holidays_dir = {toml_str(config / 'holidays')}", *tables,
        "[smtp]", f"url = {toml_str(smtp_relay.url)}",
        "[database]", f"url = {toml_str(database_url)}",
        "[security]", 'hmac_secret = "district-secret"']) + "\n", encoding="utf-8")
    settings = load_settings(settings_file, env={})
    clock = FixedClock((sunday_morning_weeks_ago() + timedelta(minutes=5)).astimezone(timezone.utc))
    desk = build_desk(settings, clock=clock)
    citizen = make_imap_account("citizen@example.com")
    yield desk, clock, boxes, officers, citizen, smtp_relay
    desk.close()


def refs_in(account, kind_word: str = "") -> set[str]:
    """Ticket refs (X-Maildesk-Ticket) of the mail in an account, optionally only subjects with a word."""
    found = set()
    for _uid, _flags, raw in account.fetch_all():
        msg = parsed(raw)
        if kind_word in str(msg["Subject"]) and msg["X-Maildesk-Ticket"]:
            found.add(str(msg["X-Maildesk-Ticket"]))
    return found


def tickets(desk, office: str) -> list[Ticket]:
    with desk.sessions() as s:
        rows = list(s.scalars(select(Ticket).where(Ticket.office == office).order_by(Ticket.id)))
        s.expunge_all()
    return rows


def test_two_offices_share_a_deployment_without_mixing_tickets_mail_digests_or_reports(district):
    desk, clock, boxes, officers, citizen, relay = district
    arrived = sunday_morning_weeks_ago()
    to_a = make_mail(subject="ইন্টারনেট সংযোগ নেই", body="আমাদের অফিসের ইন্টারনেট তিন দিন বন্ধ।",
                     sender=citizen.address, to=boxes[A].address, message_id="<one@example.com>")
    to_b = make_mail(subject="Printer not working", body="Our office printer jams on every page.",
                     sender=citizen.address, to=boxes[B].address, message_id="<two@example.com>")
    both = make_mail(subject="ল্যাপটপ মেরামত / laptop repair", body="The laptop does not start.",
                     sender=citizen.address, to=boxes[A].address, Cc=boxes[B].address,
                     message_id="<both@example.com>")
    boxes[A].append_many([to_a, both])
    boxes[B].append_many([to_b, both])
    reports = {r.office: r for r in ingest_all(desk)}
    assert {k: (r.error, r.stored) for k, r in reports.items()} == {A: (None, 2), B: (None, 2)}
    assert send_pending(desk).sent == 8  # an acknowledgement and an officer notice per ticket

    # Each office numbers its own tickets from 1 with its own prefix, in its own time zone.
    for key in (A, B):
        rows = tickets(desk, key)
        year = desk.offices[key].calendar.local(rows[0].received_at).year
        assert [t.ref for t in rows] == [f"{PREFIX[key]}-{year}-00001", f"{PREFIX[key]}-{year}-00002"]
        cal = desk.offices[key].calendar
        assert {str(cal.local(t.due_at).tzinfo) for t in rows} == {TZ[key]}
    with desk.sessions() as s:
        both_rows = s.execute(select(Message.office, Message.ticket_id).where(
            Message.message_id == "<both@example.com>")).all()
    assert sorted(o for o, _ in both_rows) == [A, B] and len({t for _, t in both_rows}) == 2

    # Acknowledgements come from the office written to, naming that office's ticket.
    acks = [parsed(raw) for _, _, raw in citizen.wait_for(4)]
    by_desk = {A: set(), B: set()}
    for msg in acks:
        sender = msg["From"].addresses[0].addr_spec
        office = A if sender == boxes[A].address else B
        assert sender == boxes[office].address
        by_desk[office].add(str(msg["X-Maildesk-Ticket"]))
    assert by_desk == {k: {t.ref for t in tickets(desk, k)} for k in (A, B)}
    # Officer notices go to each office's own responsible officer only.
    for key in (A, B):
        assert refs_in(officers[key]["ap"]) == {t.ref for t in tickets(desk, key)}

    # A follow-up threads only within its office: a reply to B's acknowledgement (sent to B) follows up
    # B's ticket; a reply to A's acknowledgement sent by mistake to B opens a ticket in B, never touches A's.
    ack_b = next(m for m in acks if str(m["X-Maildesk-Ticket"]) == tickets(desk, B)[0].ref)
    ack_a = next(m for m in acks if str(m["X-Maildesk-Ticket"]) == tickets(desk, A)[0].ref)
    reply_b = make_mail(subject=f"Re: {ack_b['Subject']}", body="Still jamming, please come.",
                        sender=citizen.address, to=boxes[B].address, message_id="<reply-b@example.com>",
                        In_Reply_To=ack_b["Message-ID"], References=ack_b["Message-ID"])
    astray = make_mail(subject=f"Re: {ack_a['Subject']}", body="Any news about the internet?",
                       sender=citizen.address, to=boxes[B].address, message_id="<astray@example.com>",
                       In_Reply_To=ack_a["Message-ID"], References=f"<one@example.com> {ack_a['Message-ID']}")
    boxes[B].append_many([reply_b, astray])
    reports = {r.office: r for r in ingest_all(desk)}
    assert reports[A].stored == 0 and reports[B].kinds == {"followup": 1, "new_ticket": 1}
    with desk.sessions() as s:
        threaded = dict(s.execute(select(Message.message_id, Ticket.ref).join(Ticket, Message.ticket_id == Ticket.id)
                                  .where(Message.message_id.in_(("<reply-b@example.com>", "<astray@example.com>")))).all())
    assert threaded["<reply-b@example.com>"] == tickets(desk, B)[0].ref
    assert threaded["<astray@example.com>"].startswith(PREFIX[B] + "-")
    assert len(tickets(desk, A)) == 2 and len(tickets(desk, B)) == 3
    send_pending(desk)

    # Escalation: nobody acted; past the GRS level of every ticket, each office's sweep tells its own GRS.
    latest = max(level_due(desk.offices[t.office].charter.ladder[2], t.due_at, desk.offices[t.office].calendar)
                 for key in (A, B) for t in tickets(desk, key))
    clock.value = latest + timedelta(minutes=5)
    swept = {r.office: r for r in escalate_all(desk)}
    assert swept[A].sent == {"grs": 2} and swept[B].sent == {"grs": 3}
    send_pending(desk)
    for key in (A, B):
        assert refs_in(officers[key]["grs"], "Overdue") == {t.ref for t in tickets(desk, key)}

    # The weekly digest: each office's people get one, listing only that office's tickets.
    now = clock.value.astimezone(DHAKA)
    sunday = now.date() + timedelta(days=(6 - now.weekday()) % 7 or 7)
    clock.value = datetime.combine(sunday, time(11, 30), tzinfo=DHAKA).astimezone(timezone.utc)
    queued = send_due_digests(desk)
    assert queued == {A: 4, B: 4}
    assert send_due_digests(desk) == {A: None, B: None}
    send_pending(desk)
    for key in (A, B):
        for k, account in officers[key].items():
            digests = [parsed(raw) for _, _, raw in account.fetch_all() if "Weekly digest" in parsed(raw)["Subject"]]
            assert len(digests) == 1, (key, k)
            text = digests[0].get_body(("plain",)).get_content()
            listed = set(re.findall(r"^\s*((?:ICT|MDN)-\d{4}-\d{5})\s", text, flags=re.M))
            assert listed == {t.ref for t in tickets(desk, key)}, (key, k)  # the other office's never listed

    # The quarterly report counts each office's own tickets.
    with desk.sessions() as s:
        for key, count in ((A, 2), (B, 3)):
            od = desk.offices[key]
            local = od.calendar.local(tickets(desk, key)[0].received_at)
            quarter = Quarter(local.year, (local.month - 1) // 3 + 1)
            report = quarter_report(s, od, quarter, clock.value)
            assert report.total.received == count, key

    # `maildesk status`: per office, its own counts; nothing waits in either mailbox.
    status = {o.office: o for o in collect(desk).offices}
    assert {k: (o.backlog, o.open_tickets, o.overdue_tickets) for k, o in status.items()} == {
        A: (0, 2, 2), B: (0, 3, 3)}
    assert status[A].oldest_overdue["ref"].startswith("ICT-") and status[B].oldest_overdue["ref"].startswith("MDN-")
    assert relay.relay_errors == []


def test_status_and_a_backfill_from_the_command_line(tmp_path, database_url):
    """`maildesk status --json` before and after `maildesk poll --once` on two Maildir offices; the long
    backfill logs its progress (rate and ETA) when stderr is not a terminal, the short one stays quiet."""
    import json
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT, drop_into_maildir, write_offices

    config = write_offices(tmp_path / "config", {A: f"maildir://{tmp_path / A}", B: f"maildir://{tmp_path / B}"},
                           smtp_url=f"file://{tmp_path / 'sent'}", database_url=database_url)
    for n in range(60):
        drop_into_maildir(tmp_path / A, make_mail(subject=f"Printer {n} not working", sender=f"a{n}@example.com",
                                                  message_id=f"<a{n}@example.com>"), f"{n:03d}.a")
    for n in range(3):
        drop_into_maildir(tmp_path / B, make_mail(subject="ইন্টারনেট নেই", sender=f"b{n}@example.com",
                                                  message_id=f"<b{n}@example.com>"), f"{n:03d}.b")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILDESK_")}
    env["PYTHONPATH"] = str(ROOT)

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return done

    def status():
        data = json.loads(cli("status", "--json").stdout)
        return {o["office"]: o for o in data["offices"]}, data["workers"]

    before, workers = status()
    assert {k: (o["backlog"], o["last_success_at"], o["open_tickets"]) for k, o in before.items()} == {
        A: (60, None, 0), B: (3, None, 0)}
    assert workers == []

    polled = cli("poll", "--once", "--no-send")
    progress = [line for line in polled.stderr.splitlines() if "ingest progress" in line]
    assert progress and "60/60 messages" in progress[-1] and "msg/s" in progress[-1] and "ETA" in progress[-1]
    assert not any("/3 messages" in line for line in progress)  # three messages need no progress report

    after, _ = status()
    assert {k: (o["backlog"], o["open_tickets"], o["outbox_pending"], o["outbox_dead"], o["lease_holder"])
            for k, o in after.items()} == {A: (0, 60, 120, 0, None), B: (0, 3, 6, 0, None)}
    assert all(o["last_success_at"] for o in after.values())
    text = cli("status", "--no-mailbox").stdout
    assert f"office {A}" in text and f"office {B}" in text and "120 pending, 0 dead" in text
