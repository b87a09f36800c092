"""The weekly digest: when it is due (pure), that it goes once per person per week however the worker
runs, and what it says — on a real SQLite file, with tickets made by the real pipeline and an injected clock."""

from __future__ import annotations

import email
import os
from datetime import datetime, timedelta, timezone
from email import policy
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from maildesk.app import build_desk
from maildesk.apply import Applier
from maildesk.jobs import digest as job
from maildesk.jobs.escalate import escalate_all
from maildesk.jobs.ingest import ingest_all
from maildesk.outbound import outbox
from maildesk.settings import DigestSettings, default_config_dir
from maildesk.store.models import IngestFailure, JobRun, Outbox, Ticket
from tests.helpers import FixedClock, database_url_for, drop_into_maildir, make_mail, settings_for

DHAKA = ZoneInfo("Asia/Dhaka")
SUNDAY_9 = DigestSettings()
NASTY = '<script>alert("x")</script> & <img src=http://tracker.example.com/p.gif>'


def dhaka(*args) -> datetime:
    return datetime(*args, tzinfo=DHAKA)


# ---- when it is due (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("now, expected", [
    (dhaka(2026, 12, 20, 8, 59), None),  # Sunday before nine: last week's window closed long ago
    (dhaka(2026, 12, 20, 9, 0), "2026-W51"),
    (dhaka(2026, 12, 21, 15, 0), "2026-W51"),  # the worker came back on Monday afternoon
    (dhaka(2026, 12, 22, 9, 0), "2026-W51"),  # exactly 48 hours late: still sent
    (dhaka(2026, 12, 22, 9, 1), None),  # later than the misfire window: skipped, next Sunday's will come
    (dhaka(2026, 12, 27, 9, 30), "2026-W52"),
])
def test_the_digest_is_due_from_its_time_until_the_misfire_window_closes(now, expected):
    due = job.due_now(now, DHAKA, SUNDAY_9)
    assert (due.period if due else None) == expected


def test_the_digest_covers_the_seven_whole_days_before_the_scheduled_day():
    due = job.due_now(dhaka(2026, 12, 20, 10, 0), DHAKA, SUNDAY_9)
    assert (due.start, due.end) == (dhaka(2026, 12, 13), dhaka(2026, 12, 20))
    assert due.scheduled == dhaka(2026, 12, 20, 9, 0)


def test_another_day_and_time_from_the_config():
    monday = DigestSettings(weekday=0, time="08:30", misfire_hours=6)
    assert job.due_now(dhaka(2026, 12, 21, 8, 29), DHAKA, monday) is None
    assert job.due_now(dhaka(2026, 12, 21, 8, 30), DHAKA, monday).period == "2026-W52"
    assert job.due_now(dhaka(2026, 12, 21, 14, 31), DHAKA, monday) is None
    # The same instant seen from UTC: the schedule is in the office's time zone.
    assert job.due_now(datetime(2026, 12, 21, 2, 30, tzinfo=timezone.utc), DHAKA, monday).period == "2026-W52"


def test_digest_settings_come_from_the_toml_and_errors_name_the_key(tmp_path):
    from maildesk.errors import ConfigError
    from maildesk.settings import load_settings

    base = (settings_for(tmp_path).path).read_text(encoding="utf-8")
    path = tmp_path / "maildesk.toml"
    path.write_text(base.replace('day = "sunday"', 'day = "monday"').replace('time = "09:00"', 'time = "7:15"'),
                    encoding="utf-8")
    (tmp_path / "charter.yaml").write_text("x: 1", encoding="utf-8")
    s = load_settings(path, env={"MAILDESK_MAILBOX_URL": "maildir:///tmp/x", "MAILDESK_SMTP_URL": "file:///tmp/x",
                                 "MAILDESK_DATABASE_URL": "sqlite://"})
    assert (s.digest.weekday, s.digest.time) == (0, "07:15")
    path.write_text(base.replace('day = "sunday"', 'day = "sonntag"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="digest.day"):
        load_settings(path, env={"MAILDESK_MAILBOX_URL": "maildir:///tmp/x", "MAILDESK_SMTP_URL": "file:///tmp/x",
                                 "MAILDESK_DATABASE_URL": "sqlite://"})


# ---- a real office's fortnight ----------------------------------------------------------------------------


@pytest.fixture
def desk(tmp_path):
    clock = FixedClock(dhaka(2026, 12, 1, 10, 0).astimezone(timezone.utc))
    d = build_desk(settings_for(tmp_path), clock=clock)
    d.tmp, d.clockobj = tmp_path, clock
    yield d
    d.close()


def set_now(desk, when):
    desk.clockobj.value = when.astimezone(timezone.utc)


def arrive(desk, key, when, service, **mail) -> int:
    """A citizen's mail arrives and is ingested at `when`; the officer then sets the service."""
    set_now(desk, when)
    drop_into_maildir(desk.tmp / "mailbox", make_mail(message_id=f"<{key}@example.com>", **mail), key)
    os.utime(desk.tmp / "mailbox" / "new" / key, (when.timestamp(), when.timestamp()))
    [report] = ingest_all(desk)
    assert report.stored == 1
    with desk.sessions.begin() as s:
        t = s.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
        if t.service != service:
            change(desk, s, t, when, service=service, status="open")
        return t.id


def change(desk, s, t, when, **changes):
    Applier(desk.offices["khaliajuri"], s, desk.secret, when).change(t, changes)


def act(desk, ticket_id, when, **changes):
    set_now(desk, when)
    with desk.sessions.begin() as s:
        change(desk, s, s.get(Ticket, ticket_id), when, **changes)


@pytest.fixture
def fortnight(desk):
    """Tickets in every state the digest reports, as of Sunday 20 December 2026, 09:00."""
    ids = {}
    ids["old"] = arrive(desk, "t1", dhaka(2026, 12, 1, 10, 0), "2.2.5", subject=NASTY, sender="old@example.com",
                        body="The lab is <b>down</b>")  # due Sun 6 Dec: overdue ever since
    ids["late"] = arrive(desk, "t4", dhaka(2026, 12, 8, 11, 0), "2.2.5", subject="Printer", sender="late@example.com")
    ids["fresh"] = arrive(desk, "t2", dhaka(2026, 12, 10, 12, 0), "2.2.1", subject="Training please",
                          sender="fresh@example.com")
    for when in (dhaka(2026, 12, 7, 10, 0), dhaka(2026, 12, 10, 10, 0)):
        set_now(desk, when)
        escalate_all(desk)  # "old": overdue, then grs (last week)
    ids["ontime"] = arrive(desk, "t3", dhaka(2026, 12, 13, 10, 0), "2.2.5", subject="Laptop",
                           sender="ontime@example.com")
    set_now(desk, dhaka(2026, 12, 14, 10, 0))
    escalate_all(desk)  # "late": due 13 Dec 17:00, overdue level this week
    act(desk, ids["late"], dhaka(2026, 12, 15, 12, 0), status="resolved")  # two days late
    act(desk, ids["ontime"], dhaka(2026, 12, 15, 12, 0), status="resolved")  # due 17 Dec: on time
    ids["hold"] = arrive(desk, "t5", dhaka(2026, 12, 15, 13, 0), "2.2.5", subject="Need documents",
                         sender="hold@example.com")
    act(desk, ids["hold"], dhaka(2026, 12, 16, 10, 0), status="waiting")
    set_now(desk, dhaka(2026, 12, 18, 10, 0))
    with desk.sessions.begin() as s:  # an email the SMTP server kept refusing, and a poisonous message
        row = outbox.enqueue(s, office="khaliajuri", kind="ack", dedupe_key="ack:x", message_id="<x@office.test>",
                             sender="desk@office.test", recipients=["gone@example.com"], raw=b"x",
                             now=dhaka(2026, 12, 18, 10, 0))
        row.status, row.last_error = "dead", "rejected: 550 mailbox <gone@example.com> unavailable"
        s.add(IngestFailure(office="khaliajuri", mailbox="INBOX", uidvalidity=1, uid="77", attempts=3,
                            reason="ValueError: <boom>", quarantined=True, first_seen_at=dhaka(2026, 12, 17, 9, 0),
                            updated_at=dhaka(2026, 12, 17, 9, 5)))
    set_now(desk, dhaka(2026, 12, 20, 9, 0))
    return ids


def ref(desk, ticket_id):
    with desk.sessions() as s:
        return s.get(Ticket, ticket_id).ref


def digest_rows(desk):
    with desk.sessions() as s:
        return list(s.scalars(select(Outbox).where(Outbox.kind == "digest").order_by(Outbox.id)))


def test_what_the_digest_says(desk, fortnight):
    due = job.due_now(desk.now(), DHAKA, desk.settings.digest)
    with desk.sessions() as s:
        d = job.build(s, desk, desk.offices["khaliajuri"], due.period, due.start, due.end, desk.now())
    # Overdue, grouped by officer then service, with working days overdue and the level reached.
    [group] = d.overdue
    assert group.officer.key == "ap" and [sg.code for sg in group.services] == ["2.2.5"]
    [line] = group.services[0].tickets
    assert line.ref == ref(desk, fortnight["old"])
    assert line.overdue_days == 8  # 7-10, 13-15, 17 Dec: 16 Dec is Victory Day
    assert line.level_en == "grievance redress officer (GRO)"
    # Escalated this week: only what happened from Sunday 13 to Saturday 19 December.
    assert [(e.ticket.ref, e.level_en) for e in d.escalated] == [(ref(desk, fortnight["late"]), "overdue")]
    # Per service: received, resolved, resolved by the due date, still open at the end of the week.
    row = next(r for r in d.services if r.code == "2.2.5")
    assert (row.carried, row.received, row.resolved, row.on_time, row.pending) == (2, 2, 2, 1, 2)
    assert (row.on_time_pct, d.total.received, d.total.resolved) == (50, 2, 2)
    assert [r.code for r in d.active_services] == ["2.2.1", "2.2.5"]
    assert (d.open_count, d.waiting_count) == (3, 1)
    assert [x.ref for x in d.oldest] == [ref(desk, fortnight[k]) for k in ("old", "fresh", "hold")]
    assert [x["to"] for x in d.dead_letters] == ["gone@example.com"] and d.quarantined_total == 1


class Page(HTMLParser):
    """Collects what a mail client would see: tags, the text, and every bar-chart cell."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self.bars, self.attrs = [], [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs |= set(a)
        if tag == "td" and a.get("bgcolor") and a.get("width"):
            self.bars.append((int(a["width"]), a["bgcolor"]))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def test_each_person_on_the_ladder_gets_one_multipart_digest_bengali_first_and_escaped(desk, fortnight):
    assert job.send_due_digests(desk) == {"khaliajuri": 4}
    rows = digest_rows(desk)
    officers = desk.offices["khaliajuri"].charter.officers
    assert sorted(r.recipient for r in rows) == sorted(officers[k].email for k in ("ap", "grs", "appeal", "uno"))
    msg = email.message_from_bytes(rows[0].raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Maildesk-Digest"] == "2026-W51"
    assert msg["Reply-To"] == officers["ap"].email  # the admin (default officer), not a new ticket
    html = msg.get_body(("html",)).get_content()
    page = Page()
    page.feed(html)
    assert "script" not in page.tags and "img" not in page.tags  # the citizen's subject stayed text
    assert NASTY[:30] in " ".join(page.text)  # … and is shown as they wrote it
    assert not {"src", "href", "background"} & page.attrs and "link" not in page.tags  # no external images
    assert page.text[0].startswith("সাপ্তাহিক প্রতিবেদন")  # Bengali first
    for key in ("old", "late"):
        assert ref(desk, fortnight[key]) in html
    assert (160, "#c0392b") in page.bars  # the busiest officer's bar is full width
    assert any(color == "#1e8449" for _, color in page.bars) and any(color == "#e67e22" for _, color in page.bars)
    assert "৮" in html and "ValueError: &lt;boom&gt;" in html and "gone@example.com" in html
    text = msg.get_body(("plain",)).get_content()
    assert text.splitlines()[0].strip() == officers["ap"].name_bn + ","
    assert text.index("সময়সীমা অতিক্রান্ত") < text.index("Weekly digest")
    assert NASTY in text


def test_a_week_of_the_worker_sends_each_digest_once_even_across_downtime_and_restarts(desk, fortnight, tmp_path):
    settings = desk.settings
    now = dhaka(2026, 12, 19, 0, 0)
    worker = desk
    while now < dhaka(2027, 1, 4):
        down = dhaka(2026, 12, 20, 6, 0) <= now < dhaka(2026, 12, 21, 13, 0)  # down over Sunday 09:00
        if not down:
            job.send_due_digests(worker, now)
        if now == dhaka(2026, 12, 27, 9, 30):  # the worker is restarted right after a digest went out
            worker = build_desk(settings, clock=lambda: now)
        now += timedelta(minutes=15)
    with desk.sessions() as s:
        runs = [(r.period, r.at.astimezone(DHAKA)) for r in s.scalars(select(JobRun).order_by(JobRun.id))]
        per_person = s.execute(select(Outbox.recipient, func.count()).where(Outbox.kind == "digest")
                               .group_by(Outbox.recipient)).all()
    assert runs == [("2026-W51", dhaka(2026, 12, 21, 13, 0)),  # sent when the worker came back
                    ("2026-W52", dhaka(2026, 12, 27, 9, 0)),
                    ("2026-W53", dhaka(2027, 1, 3, 9, 0))]  # ISO weeks: 2026 has 53
    assert sorted(n for _, n in per_person) == [3, 3, 3, 3]
    worker.close()


def test_a_second_worker_that_finds_the_week_claimed_sends_nothing(desk, fortnight):
    other = build_desk(desk.settings, clock=desk.clock)
    try:
        due = job.due_now(desk.now(), DHAKA, desk.settings.digest)
        od = desk.offices["khaliajuri"]
        assert job.send_digest(desk, od, due.period, due.start, due.end, desk.now()) == 4
        assert job.send_digest(other, other.offices["khaliajuri"], due.period, due.start, due.end, desk.now()) is None
    finally:
        other.close()
    assert len(digest_rows(desk)) == 4


def test_preview_writes_the_files_and_records_nothing(desk, fortnight, tmp_path, capsys):
    from maildesk.cli import main

    env = {"MAILDESK_MAILBOX_URL": f"maildir://{desk.tmp / 'mailbox'}",
           "MAILDESK_SMTP_URL": f"file://{tmp_path / 'out'}",
           "MAILDESK_DATABASE_URL": desk.settings.database_url, "MAILDESK_HMAC_SECRET": "test-secret"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["digest", "--preview", "--now", "2026-12-20T09:30", "--to", "grs",
                     "--out", str(tmp_path / "preview")]) == 0
        assert main(["digest", "--preview", "--now", "2026-12-20T09:30"]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    out = capsys.readouterr().out
    assert "Subject: সাপ্তাহিক প্রতিবেদন" in out and ref(desk, fortnight["old"]) in out
    html = (tmp_path / "preview.html").read_text(encoding="utf-8")
    assert "অভিযোগ নিষ্পত্তি কর্মকর্তা (অনিক)," in html  # addressed to the grs officer
    assert (tmp_path / "preview.txt").is_file() and (tmp_path / "preview.eml").is_file()
    assert digest_rows(desk) == []
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(JobRun)) == 0


def test_a_long_overdue_list_is_cut_to_the_most_overdue_and_the_rest_counted():
    from maildesk.charter import load_charter
    from maildesk.reports import TicketLine, group_overdue
    from maildesk.settings import default_config_dir

    charter = load_charter(default_config_dir() / "charter.yaml")

    def line(ref, officer, service, days):
        return TicketLine(ref=ref, subject="s", citizen="c@example.com", service=service, service_bn="", officer=
                          charter.officers[officer], status="open", status_bn="", received_at=dhaka(2026, 12, 1),
                          due_at=dhaka(2026, 12, 2), overdue_days=days, age_days=days + 1, level_bn="", level_en="")

    lines = [line("A-1", "ap", "2.2.5", 3), line("A-2", "ap", "2.2.5", 9), line("G-1", "grs", None, 1)]
    counts = {("ap", "2.2.5"): 40, ("ap", "2.1.1"): 2, ("grs", None): 1}
    groups = group_overdue(lines, counts, charter)
    assert [(g.officer.key, g.count) for g in groups] == [("ap", 42), ("grs", 1)]
    ap = groups[0]
    assert [sg.code for sg in ap.services] == ["2.1.1", "2.2.5"]  # charter order
    assert [x.ref for x in ap.services[1].tickets] == ["A-2", "A-1"]  # most overdue first
    assert (ap.services[1].unlisted, ap.services[0].unlisted) == (38, 2)


def test_an_officer_holding_an_open_ticket_gets_the_digest_even_if_the_ladder_does_not_name_them(tmp_path):
    import yaml

    from maildesk.settings import load_settings

    config = default_config_dir()
    charter = yaml.safe_load((config / "charter.yaml").read_text(encoding="utf-8"))
    charter["officers"]["clerk"] = dict(charter["officers"]["ap"], email="clerk@upazila.example.gov.bd")
    (tmp_path / "charter.yaml").write_text(yaml.safe_dump(charter, allow_unicode=True), encoding="utf-8")
    toml = f'holidays_dir = "{config / "holidays"}"\n' + (config / "maildesk.toml").read_text(encoding="utf-8")
    (tmp_path / "maildesk.toml").write_text(toml, encoding="utf-8")
    settings = load_settings(tmp_path / "maildesk.toml", env={
        "MAILDESK_MAILBOX_URL": f"maildir://{tmp_path / 'mailbox'}", "MAILDESK_SMTP_URL": f"file://{tmp_path / 's'}",
        "MAILDESK_DATABASE_URL": database_url_for(tmp_path), "MAILDESK_HMAC_SECRET": "x"})
    d = build_desk(settings, clock=FixedClock(dhaka(2026, 12, 13, 10, 0).astimezone(timezone.utc)))
    d.tmp, d.clockobj = tmp_path, d.clock
    try:
        od = d.offices["khaliajuri"]
        with d.sessions() as s:
            assert "clerk" not in [p.key for p in job.recipients(od, s)]
        tid = arrive(d, "k1", dhaka(2026, 12, 13, 10, 0), "2.2.5", subject="Printer")
        act(d, tid, dhaka(2026, 12, 13, 11, 0), officer="clerk")
        with d.sessions() as s:
            assert [p.key for p in job.recipients(od, s)][-1] == "clerk"
    finally:
        d.close()
