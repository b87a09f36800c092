"""The quarterly GRS progress report and the counting behind it, plus `maildesk due` (the hand check)."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from maildesk.app import build_desk
from maildesk.apply import Applier
from maildesk.charter import load_charter
from maildesk.cli import main
from maildesk.jobs.ingest import ingest_all
from maildesk.reports import Quarter, TicketFacts, bar, pct, quarter_report, report_csv, report_html, tally
from maildesk.settings import default_config_dir
from maildesk.store.models import Ticket
from tests.helpers import FixedClock, drop_into_maildir, make_mail, settings_for

DHAKA = ZoneInfo("Asia/Dhaka")
CHARTER = load_charter(default_config_dir() / "charter.yaml")


def dhaka(*args) -> datetime:
    return datetime(*args, tzinfo=DHAKA)


# ---- pure counting -----------------------------------------------------------------------------------------


def facts(service, received, resolved=None, due=None):
    return TicketFacts(service, received, resolved, due or received + timedelta(days=5))


def test_tally_counts_carried_received_resolved_on_time_and_pending():
    start, end = dhaka(2026, 10, 1), dhaka(2027, 1, 1)
    rows, total = tally([
        facts("2.2.5", dhaka(2026, 9, 20), dhaka(2026, 10, 3)),  # carried over, resolved late
        facts("2.2.5", dhaka(2026, 9, 25)),  # carried over, still pending
        facts("2.2.5", dhaka(2026, 9, 1), dhaka(2026, 9, 5)),  # done before the quarter: not counted
        facts("2.2.5", dhaka(2026, 11, 2), dhaka(2026, 11, 4)),  # received and resolved on time
        facts("2.2.1", dhaka(2026, 12, 30), dhaka(2027, 1, 2)),  # resolved after the quarter: pending
        facts("2.2.1", dhaka(2027, 1, 2)),  # after the quarter: not counted
        facts(None, dhaka(2026, 12, 1)),  # still in triage
    ], start, end, CHARTER)
    by = {r.code: r for r in rows}
    assert [r.code for r in rows][:3] == ["2.1.1", "2.1.2", "2.1.3"] and rows[-1].code is None  # charter order
    r = by["2.2.5"]
    assert (r.carried, r.received, r.total, r.resolved, r.on_time, r.late, r.pending) == (2, 1, 3, 2, 1, 1, 1)
    assert (r.resolved_pct, r.on_time_pct) == (67, 50)
    assert (by["2.2.1"].received, by["2.2.1"].pending, by["2.2.1"].resolved_pct) == (1, 1, 0)
    assert by[None].pending == 1 and by["2.1.1"].on_time_pct is None
    assert total.carried + total.received == total.resolved + total.pending == 5


def test_percentages_and_bars():
    assert pct(1, 3) == 33 and pct(0, 0) is None
    assert bar(0, 10) == 0 and bar(10, 10) == 160 and bar(1, 1000) == 2  # a non-zero value is always visible
    assert bar(5, 10, width=100) == 50


@pytest.mark.parametrize("text, label, fiscal", [
    ("2026Q4", "2026Q4", ("2026-27", 2)),
    ("2027-q1", "2027Q1", ("2026-27", 3)),
    (" 2026 Q3 ", "2026Q3", ("2026-27", 1)),
    ("2026Q2", "2026Q2", ("2025-26", 4)),
])
def test_quarters_and_the_bangladesh_fiscal_year(text, label, fiscal):
    q = Quarter.parse(text)
    assert q.label == label and q.fiscal == fiscal


def test_a_bad_quarter_is_refused():
    for bad in ("2026Q5", "Q4", "2026-4", ""):
        with pytest.raises(ValueError, match="2026Q4"):
            Quarter.parse(bad)
    q4 = Quarter(2026, 4)
    assert (q4.first_day.isoformat(), q4.end_day.isoformat()) == ("2026-10-01", "2027-01-01")


# ---- the report from a real database -----------------------------------------------------------------------


@pytest.fixture
def desk(tmp_path):
    clock = FixedClock(dhaka(2026, 9, 1, 10, 0).astimezone(timezone.utc))
    d = build_desk(settings_for(tmp_path), clock=clock)
    d.tmp, d.clockobj = tmp_path, clock
    yield d
    d.close()


def arrive(desk, key, when, service, resolved=None, subject="Help"):
    desk.clockobj.value = when.astimezone(timezone.utc)
    drop_into_maildir(desk.tmp / "mailbox", make_mail(subject=subject, message_id=f"<{key}@example.com>",
                                                      sender=f"{key}@example.com"), key)
    os.utime(desk.tmp / "mailbox" / "new" / key, (when.timestamp(), when.timestamp()))
    ingest_all(desk)
    od = desk.offices["khaliajuri"]
    with desk.sessions.begin() as s:
        from sqlalchemy import select

        t = s.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
        Applier(od, s, desk.secret, when).change(t, {"service": service, "status": "open"})
        if resolved:
            Applier(od, s, desk.secret, resolved).change(t, {"status": "resolved"})


def test_the_quarterly_report_from_the_pipeline(desk, tmp_path, capsys):
    arrive(desk, "a", dhaka(2026, 9, 28, 10), "2.2.5", resolved=dhaka(2026, 10, 8, 12))  # carried, late
    arrive(desk, "b", dhaka(2026, 10, 4, 10), "2.2.5", resolved=dhaka(2026, 10, 5, 12))  # on time
    arrive(desk, "c", dhaka(2026, 11, 10, 10), "2.2.1", subject='<b>Training</b> & "more"')  # pending
    arrive(desk, "d", dhaka(2026, 12, 31, 18), "2.2.9")  # after office hours on the last day: still Q4
    with desk.sessions() as s:
        report = quarter_report(s, desk.offices["khaliajuri"], Quarter(2026, 4), dhaka(2027, 1, 3, 10))
    t = report.total
    assert (t.carried, t.received, t.resolved, t.on_time, t.pending) == (1, 3, 2, 1, 2)
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    by = {r["service_code"]: r for r in rows}
    assert by["2.2.5"]["resolved_within_deadline"] == "1" and by["2.2.5"]["within_deadline_pct"] == "50"
    assert by[""]["service_en"] == "Total" and by["2.2.9"]["pending"] == "1"
    html = report_html(report)
    assert "দ্বিতীয় ত্রৈমাসিক, অর্থবছর ২০২৬-২৭" in html  # 2026Q4 is the second quarter of FY 2026-27
    assert "১ অক্টোবর ২০২৬" in html and "৩১ ডিসেম্বর ২০২৬" in html and "৫০%" in html

    env = {"MAILDESK_MAILBOX_URL": f"maildir://{desk.tmp / 'mailbox'}", "MAILDESK_SMTP_URL": f"file://{tmp_path}/s",
           "MAILDESK_DATABASE_URL": desk.settings.database_url, "MAILDESK_HMAC_SECRET": "test-secret"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["report", "--quarter", "2026Q4", "--out", str(tmp_path / "q4"), "--now", "2027-01-03T10:00"]) == 0
        assert main(["report", "--quarter", "2026Q9"]) == 2
    raw = (tmp_path / "q4.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheet programs then read the Bengali right
    assert (tmp_path / "q4.html").read_text(encoding="utf-8").count("<tr") == len(CHARTER.services) + 2
    out = capsys.readouterr()
    assert "received 3, resolved 2 (1 within deadline), pending 2" in out.out
    assert "--quarter: write the quarter like 2026Q4" in out.err


# ---- maildesk due ------------------------------------------------------------------------------------------


def test_due_prints_the_date_and_every_skipped_day_with_its_reason(capsys):
    assert main(["due", "--service", "2.2.5", "--received", "2026-12-14T18:30+06:00", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # After office hours on Monday: D is Tuesday 15th; the 16th is Victory Day; Fri/Sat are the weekend.
    assert data["start_day"] == "2026-12-15" and "after the end of office hours" in data["start_reason"]
    assert data["counted_days"] == ["2026-12-17", "2026-12-20", "2026-12-21"]
    assert data["due_at"] == "2026-12-21T17:00:00+06:00"
    assert [(s["date"], s["reason"]) for s in data["skipped"]] == [
        ("2026-12-16", "Victory Day"), ("2026-12-18", "weekend (Friday)"), ("2026-12-19", "weekend (Saturday)")]
    assert data["immediate"] is True and data["working_days"] == 3


def test_due_reads_a_time_without_offset_in_the_office_zone_and_explains_itself(capsys):
    assert main(["due", "--days", "1", "--received", "2026-12-18T10:00"]) == 0
    out = capsys.readouterr().out
    assert "received     2026-12-18T10:00:00+06:00 (Friday)" in out
    assert "received on a day off (weekend (Friday))" in out
    assert "due_at       2026-12-21T17:00:00+06:00 (Monday)" in out  # D = Sunday 20th, +1 working day
    assert main(["due", "--service", "9.9.9", "--received", "2026-12-18T10:00"]) == 2
    assert "9.9.9" in capsys.readouterr().err
