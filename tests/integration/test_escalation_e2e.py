"""End to end on the real servers: a citizen's mail in Dovecot, the desk over IMAP, the escalation and the
weekly digest through a real SMTP server relayed into the officers' Dovecot mailboxes, read back over IMAP
the way the officers' mail clients would. The database is SQLite, or PostgreSQL with
MAILDESK_TEST_DATABASE=postgres (where the sweep's query plan is checked too)."""

from __future__ import annotations

import email
from datetime import datetime, time, timedelta, timezone
from email import policy
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import text

from maildesk.app import build_desk
from maildesk.jobs.digest import period_of, send_due_digests
from maildesk.jobs.escalate import due_query, escalate_all
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import send_pending
from maildesk.ladder import level_due
from maildesk.settings import default_config_dir, load_settings
from maildesk.store.models import Ticket
from tests.helpers import FixedClock, make_mail

DHAKA = ZoneInfo("Asia/Dhaka")
CITIZEN_SUBJECT = 'Lab PCs dead <script>alert("pwned")</script> & more'
CITIZEN_BODY = "আমাদের ল্যাবের ৩টি কম্পিউটার চালু হচ্ছে না। <b>Please</b> help & reply."


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def sunday_morning_weeks_ago() -> datetime:
    """A Sunday 10:00 in Dhaka well in the past: Dovecot clamps a future INTERNALDATE to its own clock, so the
    scenario is laid before the machine's today, whatever that is."""
    day = datetime.now(DHAKA).date() - timedelta(days=60)
    day -= timedelta(days=(day.weekday() - 6) % 7)
    return datetime.combine(day, time(10, 0), tzinfo=DHAKA)


def html_of(msg) -> Page:
    page = Page()
    page.feed(msg.get_body(("html",)).get_content())
    page.close()
    return page


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


@pytest.fixture
def office(tmp_path, make_imap_account, smtp_relay, database_url):
    """A desk whose office mailbox, officers and citizen are all real Dovecot accounts."""
    desk_box = make_imap_account("desk")
    officers = {key: make_imap_account(key) for key in ("ap", "grs", "appeal", "uno")}
    citizen = make_imap_account("citizen@example.com")
    config = default_config_dir()
    charter = yaml.safe_load((config / "charter.yaml").read_text(encoding="utf-8"))
    charter["office"]["desk_address"] = desk_box.address
    charter["office"]["desk_aliases"] = []
    for key, account in officers.items():
        charter["officers"][key]["email"] = account.address
    (tmp_path / "charter.yaml").write_text(yaml.safe_dump(charter, allow_unicode=True), encoding="utf-8")
    toml = f'holidays_dir = "{config / "holidays"}"\n' + (config / "maildesk.toml").read_text(encoding="utf-8")
    (tmp_path / "maildesk.toml").write_text(toml, encoding="utf-8")
    settings = load_settings(tmp_path / "maildesk.toml", env={
        "MAILDESK_MAILBOX_URL": desk_box.url(), "MAILDESK_SMTP_URL": smtp_relay.url,
        "MAILDESK_DATABASE_URL": database_url, "MAILDESK_HMAC_SECRET": "e2e-secret"})
    clock = FixedClock((sunday_morning_weeks_ago() + timedelta(minutes=5)).astimezone(timezone.utc))
    desk = build_desk(settings, clock=clock)
    yield desk, clock, desk_box, officers, citizen, smtp_relay
    desk.close()


def test_an_escalation_and_the_weekly_digest_reach_the_officers_mailboxes(office):
    desk, clock, desk_box, officers, citizen, relay = office
    od = desk.offices["khaliajuri"]
    raw = make_mail(subject=CITIZEN_SUBJECT, body=CITIZEN_BODY, sender=citizen.address, to=desk_box.address,
                    message_id="<e2e-1@example.com>")
    arrived = sunday_morning_weeks_ago()
    desk_box.append(raw, msg_time=arrived)
    [report] = ingest_all(desk)
    assert report.error is None and report.stored == 1
    send_pending(desk)
    with desk.sessions() as s:
        t = s.query(Ticket).one()
    assert t.received_at == arrived  # the IMAP INTERNALDATE starts the clock

    # Nobody acted: the worker's sweep runs after the GRS level (3 working days past due) fired.
    clock.value = level_due(od.charter.ladder[2], t.due_at, od.calendar) + timedelta(minutes=3)
    [esc] = escalate_all(desk)
    assert esc.sent == {"grs": 1} and esc.skipped == 2 and esc.citizens_told == 1
    assert send_pending(desk).sent == 3
    assert escalate_all(desk)[0].escalated == 0  # the next sweep sends nothing more

    [(_, _, grs_raw)] = officers["grs"].wait_for(1)
    grs_msg = parsed(grs_raw)
    assert t.ref in grs_msg["Subject"] and "Overdue" in grs_msg["Subject"]
    assert grs_msg["Message-ID"].strip().startswith(f"<{t.ref}.notice.grs.")  # the token that makes a reply trusted
    page = html_of(grs_msg)
    assert "script" not in page.tags and "b" in page.tags  # our own <b>, never the citizen's
    shown = "\n".join(page.text)
    assert "<script>" in shown and "<b>Please</b> help & reply." in shown  # the citizen's words, as text
    plain = grs_msg.get_body(("plain",)).get_content()
    assert "৩ কার্যদিবস অতিক্রান্ত / overdue by 3 working days" in plain and "#resolve" in plain
    ap_kinds = sorted(parsed(r)["Subject"].split("]")[1].strip()[:10] for _, _, r in officers["ap"].wait_for(2))
    assert len(ap_kinds) == 2  # the notice, then the one escalation (reminder and overdue folded in)
    citizen_mail = [parsed(r) for _, _, r in citizen.wait_for(2)]
    told = next(m for m in citizen_mail if "escalated" in m["Subject"])
    assert told["In-Reply-To"] == "<e2e-1@example.com>"
    assert told.get_body(("plain",)).get_content().lstrip().startswith("সম্মানিত")

    # The weekly digest: the worker was down on Sunday morning and comes back at 11:30.
    now = clock.value.astimezone(DHAKA)
    sunday = now.date() + timedelta(days=(6 - now.weekday()) % 7 or 7)
    clock.value = datetime.combine(sunday, time(11, 30), tzinfo=DHAKA).astimezone(timezone.utc)
    assert send_due_digests(desk) == {"khaliajuri": 4}
    assert send_due_digests(desk) == {"khaliajuri": None}
    assert send_pending(desk).sent == 4
    for key, account in officers.items():
        digests = [parsed(r) for _, _, r in account.fetch_all() if "Weekly digest" in parsed(r)["Subject"]]
        assert len(digests) == 1, key
        msg = digests[0]
        assert msg.get_content_type() == "multipart/alternative" and msg["X-Maildesk-Digest"] == period_of(
            datetime.combine(sunday, time(9, 0), tzinfo=DHAKA))
        page = html_of(msg)
        assert "script" not in page.tags and "img" not in page.tags
        shown = " ".join(page.text)
        assert t.ref in shown and "<script>alert" in shown  # the ticket is listed; its subject is text
        assert page.text[0].startswith("সাপ্তাহিক প্রতিবেদন")
        assert od.charter.officers[key].name_bn in shown
    assert relay.relay_errors == []


def test_the_sweep_uses_the_escalation_index_on_postgresql(office, database_kind):
    if database_kind != "postgres":
        pytest.skip("the SQLite plan is checked in tests/unit/test_escalation.py; "
                    "run with MAILDESK_TEST_DATABASE=postgres for PostgreSQL")
    desk = office[0]
    with desk.engine.begin() as conn:
        # 20,000 tickets, of which 5 are due now; the rest are done (NULL) or due later.
        conn.execute(text("""
            INSERT INTO tickets (office, ref, service, status, officer, citizen_email, citizen_name, subject,
                                 opened_at, received_at, due_at, immediate, last_activity_at, escalation_level,
                                 next_escalation_at)
            SELECT 'khaliajuri', 'ICT-2026-' || lpad(g::text, 5, '0'), '2.2.5',
                   CASE WHEN g % 3 = 0 THEN 'open' ELSE 'resolved' END, 'ap', 'c' || g || '@example.com', '', '',
                   now(), now(), now(), false, now(), -1,
                   CASE WHEN g <= 5 THEN now() - interval '1 hour'
                        WHEN g % 3 = 0 THEN now() + (g || ' minutes')::interval END
            FROM generate_series(1, 20000) AS g"""))
        conn.execute(text("ANALYZE tickets"))
        compiled = due_query("khaliajuri", datetime.now(timezone.utc)).compile(desk.engine)
        plan = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars().all()
    joined = "\n".join(plan)
    assert "ix_ticket_escalation" in joined and "Seq Scan" not in joined, joined
