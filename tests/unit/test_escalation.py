"""The grievance ladder: pure schedule arithmetic over a simulated month, then the sweep on a real SQLite
file through the real pipeline (Maildir in, file transport out) with an injected clock."""

from __future__ import annotations

import email
import os
import random
from datetime import datetime, timedelta, timezone
from email import policy

import pytest
from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.apply import Applier
from maildesk.charter import load_charter
from maildesk.jobs import escalate as escalate_job
from maildesk.jobs.escalate import due_ticket_ids, escalate_all
from maildesk.jobs.ingest import ingest_all
from maildesk.ladder import ladder_people, level_due, level_title, next_escalation_at, plan
from maildesk.rules.tokens import verified_ref
from maildesk.settings import default_config_dir
from maildesk.store.models import Event, Outbox, Ticket
from maildesk.workdays import WorkCalendar, load_holiday_calendar
from tests.helpers import FixedClock, drop_into_maildir, make_mail, settings_for

CONFIG = default_config_dir()
CHARTER = load_charter(CONFIG / "charter.yaml")
LADDER = CHARTER.ladder
CAL = WorkCalendar(load_holiday_calendar(CONFIG / "holidays", range(2026, 2028)), tz="Asia/Dhaka")
DHAKA = CAL.tz
NAMES = [lv.name for lv in LADDER]


def dhaka(*args) -> datetime:
    return datetime(*args, tzinfo=DHAKA)


# ---- pure: the schedule ----------------------------------------------------------------------------------


def test_ladder_dates_step_over_weekends_and_victory_day():
    # Received Sunday 13 Dec 2026 for a 3-working-day service: 16 Dec (Victory Day) and the weekends
    # are skipped at every rung. Worked by hand from the calendar.
    due = CAL.due_at(dhaka(2026, 12, 13, 10, 0), 3).due_at
    assert due == dhaka(2026, 12, 17, 17, 0)
    fires = {lv.name: level_due(lv, due, CAL) for lv in LADDER}
    assert fires == {
        "reminder": dhaka(2026, 12, 15, 9, 0),  # the working day before the 17th is the 15th, not the 16th
        "overdue": dhaka(2026, 12, 17, 17, 0),
        "grs": dhaka(2026, 12, 22, 17, 0),  # 20, 21, 22 Dec
        "appeal": dhaka(2026, 12, 31, 17, 0),  # 20-24, 27-31 Dec (25 Dec is a Friday anyway)
        "supervisor": dhaka(2027, 1, 14, 17, 0),  # 3-7 and 10-14 Jan 2027
    }
    assert next_escalation_at(due, -1, LADDER, CAL) == fires["reminder"]
    assert next_escalation_at(due, 1, LADDER, CAL) == fires["grs"]
    assert next_escalation_at(due, len(LADDER) - 1, LADDER, CAL) is None
    assert next_escalation_at(None, -1, LADDER, CAL) is None


def simulate(tickets, start, end, down=(), step=timedelta(hours=1)):
    """Run the pure planner like the hourly worker: returns [(ticket, level name, at, step)]. `down` is a
    list of (from, to) when the worker was not running."""
    sent = []
    state = {t["id"]: -1 for t in tickets}
    # Like the index on next_escalation_at: only tickets whose next level is due are looked at.
    next_at = {t["id"]: next_escalation_at(t["due_at"], -1, LADDER, CAL) for t in tickets}
    now = start
    while now <= end:
        if not any(a <= now < b for a, b in down):
            for t in tickets:
                if next_at[t["id"]] is None or next_at[t["id"]] > now:
                    continue
                if t.get("resolved_at") and t["resolved_at"] <= now:
                    next_at[t["id"]] = None
                    continue
                st = plan(t["due_at"], state[t["id"]], LADDER, CAL, now, "ap", t["opened_at"])
                assert st is not None  # next_escalation_at and plan() agree on what is due
                state[t["id"]] = st.done_index
                next_at[t["id"]] = next_escalation_at(t["due_at"], st.done_index, LADDER, CAL)
                if st.send is not None:
                    sent.append((t["id"], st.send.name, now, st))
        now += step
    return sent


def month_of_tickets(seed=7, n=60):
    """Tickets received at random moments of December 2026 (nights, weekends and Victory Day included)."""
    rnd = random.Random(seed)
    tickets = []
    for i in range(n):
        received = dhaka(2026, 12, 1) + timedelta(minutes=rnd.randrange(0, 31 * 24 * 60))
        days = rnd.choice([1, 3, 3, 7, 15])
        t = {"id": i, "opened_at": received, "due_at": CAL.due_at(received, days).due_at}
        if i % 3 == 0:  # a third are resolved a few days after they arrive
            t["resolved_at"] = received + timedelta(days=rnd.randrange(1, 12), hours=rnd.randrange(0, 24))
        tickets.append(t)
    return tickets


def test_a_month_of_office_life_sends_every_level_once_on_time():
    tickets = month_of_tickets()
    end = dhaka(2027, 2, 28)
    sent = simulate(tickets, dhaka(2026, 12, 1), end)
    keys = [(tid, name) for tid, name, _, _ in sent]
    assert len(keys) == len(set(keys)), "a level was sent twice"
    by_ticket = {t["id"]: t for t in tickets}
    for t in tickets:
        stop = t.get("resolved_at") or end
        expected = [lv.name for lv in LADDER
                    if level_due(lv, t["due_at"], CAL) <= stop
                    and not (lv.after_working_days < 0 and level_due(lv, t["due_at"], CAL) <= t["opened_at"])]
        got = [name for tid, name, _, _ in sent if tid == t["id"]]
        assert got == expected, t
    for tid, name, at, st in sent:
        lv = LADDER[NAMES.index(name)]
        fire = level_due(lv, by_ticket[tid]["due_at"], CAL)
        assert fire <= at < fire + timedelta(hours=1)  # the first hourly sweep after the level fires
        assert CAL.is_working_day(at.date())  # levels fire on working days only
        assert not (resolved := by_ticket[tid].get("resolved_at")) or at < resolved
    # Something of every kind happened, so the checks above were not vacuous.
    assert {name for _, name, _, _ in sent} == set(NAMES)
    assert any(t.get("resolved_at") and t["resolved_at"] < level_due(LADDER[1], t["due_at"], CAL) for t in tickets)


def test_a_worker_that_was_down_sends_only_the_highest_level_reached():
    t = {"id": 1, "opened_at": dhaka(2026, 12, 13, 10, 0), "due_at": dhaka(2026, 12, 17, 17, 0)}
    # Down from before the overdue moment until after the grs level fired.
    sent = simulate([t], dhaka(2026, 12, 13, 10, 0), dhaka(2026, 12, 24, 12, 0),
                    down=[(dhaka(2026, 12, 16, 0, 0), dhaka(2026, 12, 23, 10, 0))])
    assert [(name, at) for _, name, at, _ in sent] == [("reminder", dhaka(2026, 12, 15, 9, 0)),
                                                       ("grs", dhaka(2026, 12, 23, 10, 0))]
    step = sent[1][3]
    assert [lv.name for lv in step.skipped] == ["overdue"]
    assert step.notify == ("ap", "grs") and step.tell_citizen is True


def test_a_reminder_that_would_fire_before_the_ticket_was_opened_is_skipped_quietly():
    opened = dhaka(2026, 12, 13, 11, 0)  # one working day: due Monday 17:00, reminder Sunday 09:00
    due = CAL.due_at(opened, 1).due_at
    st = plan(due, -1, LADDER, CAL, opened + timedelta(minutes=5), "ap", opened)
    assert st.send is None and [lv.name for lv in st.skipped] == ["reminder"] and st.done_index == 0
    assert plan(due, 0, LADDER, CAL, opened + timedelta(minutes=5), "ap", opened) is None
    assert plan(due, 0, LADDER, CAL, due, "ap", opened).send.name == "overdue"


def test_responsible_is_the_tickets_officer_and_the_digest_goes_to_everyone_on_the_ladder():
    st = plan(dhaka(2026, 12, 1, 17, 0), 1, LADDER, CAL, dhaka(2027, 3, 1, 17, 0), "appeal")
    assert st.send.name == "supervisor"
    assert st.notify == ("appeal", "grs", "uno")  # "responsible" is appeal here: listed once
    assert set(ladder_people(CHARTER)) == {"ap", "grs", "appeal", "uno"}


def test_a_level_can_carry_its_own_title_in_the_charter():
    import dataclasses

    raw = dict(CHARTER.raw, escalation=[dict(e) for e in CHARTER.raw["escalation"]])
    raw["escalation"][2]["title_bn"] = "জেলা অনিক"
    custom = dataclasses.replace(CHARTER, raw=raw)
    assert level_title(custom, LADDER[2]) == ("জেলা অনিক", "grievance redress officer (GRO)")
    assert level_title(CHARTER, LADDER[3]) == ("আপিল কর্মকর্তা", "appeal officer")


# ---- the sweep on a real database ------------------------------------------------------------------------


@pytest.fixture
def desk(tmp_path):
    clock = FixedClock(dhaka(2026, 12, 13, 10, 0).astimezone(timezone.utc))
    d = build_desk(settings_for(tmp_path), clock=clock)
    d.tmp, d.clockobj = tmp_path, clock
    yield d
    d.close()


def arrive(desk, key: str, at: datetime, **mail) -> None:
    """A citizen's mail lands in the Maildir at `at` and the ingest cycle runs then."""
    desk.clockobj.value = at.astimezone(timezone.utc)
    drop_into_maildir(desk.tmp / "mailbox", make_mail(message_id=f"<{key}@example.com>", **mail), key)
    path = desk.tmp / "mailbox" / "new" / key
    os.utime(path, (at.timestamp(), at.timestamp()))
    [report] = ingest_all(desk)
    assert report.error is None and report.failed == 0


def ticket(desk, ref=None) -> Ticket:
    with desk.sessions() as s:
        q = select(Ticket).order_by(Ticket.id)
        return s.scalars(q.where(Ticket.ref == ref) if ref else q).first()


def outbox_rows(desk, kind):
    with desk.sessions() as s:
        return list(s.scalars(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)))


def at(desk, when: datetime):
    desk.clockobj.value = when.astimezone(timezone.utc)
    return escalate_all(desk)


def test_sweep_sends_each_level_once_however_often_it_runs(desk):
    arrive(desk, "a1", dhaka(2026, 12, 13, 10, 0), subject="Internet line down at the Union Parishad",
           body="Our <b>internet</b> line has been down since Thursday & nobody came.")
    t = ticket(desk)
    assert t.escalation_level == -1 and t.next_escalation_at is not None
    overdue_at = level_due(LADDER[1], t.due_at, CAL)
    for _ in range(3):
        at(desk, overdue_at + timedelta(minutes=5))
    rows = outbox_rows(desk, "escalation")
    assert [r.recipient for r in rows] == [CHARTER.officers["ap"].email]  # one row: the overdue level
    with desk.sessions() as s:
        events = list(s.scalars(select(Event).where(Event.kind == "escalated")))
    assert [e.data["level"] for e in events] == ["overdue"]
    assert events[0].data["skipped"] == ["reminder"]  # the worker first ran after both had fired
    assert ticket(desk).escalation_level == 1
    msg = email.message_from_bytes(rows[0].raw, policy=policy.default)
    body = msg.get_body(("plain",)).get_content()
    assert t.ref in msg["Subject"] and "Overdue" in msg["Subject"]
    assert "Our <b>internet</b> line has been down" in body  # the citizen's request, quoted
    assert "#resolve" in body
    html = msg.get_body(("html",)).get_content()
    assert "&lt;b&gt;internet&lt;/b&gt;" in html and "<b>internet</b>" not in html


def test_the_officer_can_act_on_an_escalation_by_replying_with_a_command(desk):
    arrive(desk, "a1", dhaka(2026, 12, 13, 10, 0), subject="ল্যাবের কম্পিউটার নষ্ট", body="কম্পিউটার চালু হয় না")
    t = ticket(desk)
    at(desk, level_due(LADDER[2], t.due_at, CAL) + timedelta(minutes=1))  # the grs level: ap and grs
    rows = {r.recipient: r for r in outbox_rows(desk, "escalation")}
    grs = CHARTER.officers["grs"]
    assert set(rows) == {CHARTER.officers["ap"].email, grs.email}
    grs_msg = email.message_from_bytes(rows[grs.email].raw, policy=policy.default)
    assert verified_ref(desk.secret, "khaliajuri", "grs", [grs_msg["Message-ID"]], []) == t.ref
    assert verified_ref(desk.secret, "khaliajuri", "ap", [grs_msg["Message-ID"]], []) is None
    # The grievance officer answers from their own mail client.
    arrive(desk, "r1", dhaka(2026, 12, 23, 11, 0), sender=grs.email, subject="Re: " + grs_msg["Subject"],
           body="#resolve\nসমস্যাটি সমাধান করা হয়েছে।", In_Reply_To=grs_msg["Message-ID"],
           References=grs_msg["Message-ID"])
    done = ticket(desk)
    assert done.status == "resolved" and done.next_escalation_at is None
    at(desk, dhaka(2027, 3, 1, 10, 0))  # resolving stopped the ladder: nothing more, ever
    assert len(outbox_rows(desk, "escalation")) == 2


def test_the_citizen_is_told_in_bengali_first_when_the_ladder_says_so(desk):
    arrive(desk, "a1", dhaka(2026, 12, 13, 10, 0), subject="UDC laptop broken", body="help")
    t = ticket(desk)
    at(desk, level_due(LADDER[1], t.due_at, CAL) + timedelta(minutes=1))
    assert outbox_rows(desk, "escalated_citizen") == []  # overdue: tell_citizen is false
    at(desk, level_due(LADDER[2], t.due_at, CAL) + timedelta(minutes=1))
    [row] = outbox_rows(desk, "escalated_citizen")
    msg = email.message_from_bytes(row.raw, policy=policy.default)
    assert row.recipient == "citizen@example.com"
    assert msg["In-Reply-To"] == "<a1@example.com>"  # threads under the citizen's own message
    body = msg.get_body(("plain",)).get_content()
    first = next(line for line in body.splitlines() if line.strip())
    assert any("\u0980" <= ch <= "\u09ff" for ch in first)
    assert body.index("অভিযোগ নিষ্পত্তি কর্মকর্তা") < body.index("Grievance Redress Officer")
    assert "১৭ ডিসেম্বর ২০২৬" in body  # the due date in Bengali numerals and month name
    assert CHARTER.officers["grs"].email not in body  # names and titles, never officers' addresses


def test_a_crash_inside_the_ticket_transaction_loses_nothing_and_duplicates_nothing(desk, monkeypatch):
    arrive(desk, "a1", dhaka(2026, 12, 13, 10, 0), subject="Internet line down", body="down")
    t = ticket(desk)
    real_audit = Applier.audit
    calls = {"n": 0}

    def crash_once(self, ticket, kind, data=None, actor="desk"):
        if kind == "escalated" and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("power cut after the emails were queued")
        return real_audit(self, ticket, kind, data, actor)

    monkeypatch.setattr(Applier, "audit", crash_once)
    when = level_due(LADDER[2], t.due_at, CAL) + timedelta(minutes=1)
    [report] = at(desk, when)
    assert report.escalated == 0 and outbox_rows(desk, "escalation") == []
    assert ticket(desk).escalation_level == -1  # rolled back with the emails
    at(desk, when)
    at(desk, when + timedelta(hours=1))
    assert len(outbox_rows(desk, "escalation")) == 2 and len(outbox_rows(desk, "escalated_citizen")) == 1


def test_time_on_hold_pauses_the_ladder_and_moves_the_due_date(desk):
    arrive(desk, "a1", dhaka(2026, 12, 13, 10, 0), subject="Internet line down", body="down")
    t = ticket(desk)
    due = t.due_at
    hold_from, hold_to = dhaka(2026, 12, 14, 15, 0), dhaka(2026, 12, 20, 11, 0)  # Mon 15:00 to Sun 11:00

    def change(when, status):
        with desk.sessions.begin() as s:
            row = s.get(Ticket, t.id)
            Applier(desk.offices["khaliajuri"], s, desk.secret, when).change(row, {"status": status})

    change(hold_from, "waiting")
    assert ticket(desk).next_escalation_at is None
    at(desk, dhaka(2026, 12, 18, 12, 0))  # past the original due date, but on hold
    assert outbox_rows(desk, "escalation") == []
    change(hold_to, "open")
    moved = ticket(desk)
    # Mon 15-17, Tue 9-17, (Wed 16 Dec holiday), Thu 9-17, (Fri, Sat), Sun 9-11: 2 + 8 + 8 + 2 = 20 hours
    assert CAL.working_time_between(hold_from, hold_to) == timedelta(hours=20)
    assert moved.due_at == CAL.add_working_time(due, timedelta(hours=20))
    assert moved.next_escalation_at == level_due(LADDER[0], moved.due_at, CAL)


def test_the_sweep_query_uses_the_escalation_index(desk):
    if desk.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan; test_escalation_e2e checks PostgreSQL's")
    compiled = escalate_job.due_query("khaliajuri", datetime.now(timezone.utc)).compile(desk.engine)
    with desk.engine.connect() as conn:
        params = tuple(v.isoformat() if isinstance(v, datetime) else v
                       for v in (compiled.params[k] for k in compiled.positiontup))
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all()
    detail = " | ".join(str(r[-1]) for r in rows)
    assert "SEARCH tickets USING" in detail
    assert "INDEX ix_ticket_escalation (office=? AND next_escalation_at<?)" in detail
    assert "TEMP B-TREE" not in detail  # no sort: the index gives the order


def test_a_month_through_the_real_pipeline_fires_each_level_once(desk):
    """Mail arrives over December; the worker sweeps hourly; a third of the tickets get resolved."""
    rnd = random.Random(11)
    arrivals = sorted(dhaka(2026, 12, 1) + timedelta(minutes=rnd.randrange(0, 30 * 24 * 60)) for _ in range(24))
    subjects = ["Internet line down", "ল্যাবের কম্পিউটার নষ্ট", "ই-নথি প্রশিক্ষণ", "UDC laptop broken",
                "ডিজিটাল স্বাক্ষর", "virus on office PCs"]
    resolve_at: dict[str, datetime] = {}
    resolved: dict[str, datetime] = {}
    now, end, i = dhaka(2026, 12, 1), dhaka(2027, 1, 14, 18, 0), 0
    od = desk.offices["khaliajuri"]
    while now <= end:
        while i < len(arrivals) and arrivals[i] <= now:
            arrive(desk, f"m{i}", arrivals[i], subject=subjects[i % len(subjects)], body=f"request {i}",
                   sender=f"c{i}@example.com")
            if i % 3 == 0:
                resolve_at[f"c{i}@example.com"] = arrivals[i] + timedelta(days=rnd.randrange(2, 15))
            i += 1
        for citizen, when in list(resolve_at.items()):
            if when <= now:
                with desk.sessions.begin() as s:
                    row = s.scalar(select(Ticket).where(Ticket.citizen_email == citizen))
                    Applier(od, s, desk.secret, when).change(row, {"status": "resolved"})
                resolve_at.pop(citizen)
                resolved[citizen] = when
        at(desk, now)
        now += timedelta(hours=1)
    with desk.sessions() as s:
        tickets = list(s.scalars(select(Ticket)))
        events = list(s.scalars(select(Event).where(Event.kind == "escalated").order_by(Event.id)))
        rows = list(s.scalars(select(Outbox).where(Outbox.kind.in_(["escalation", "escalated_citizen"]))))
    assert len(tickets) == 24
    assert resolved and not resolve_at
    sent_levels = {}
    for e in events:
        sent_levels.setdefault(e.ticket_id, []).append(e.data["level"])
    for t in tickets:
        stop = min(resolved.get(t.citizen_email, end), end)
        expected = [lv.name for lv in LADDER if level_due(lv, t.due_at, CAL) <= stop
                    and not (lv.after_working_days < 0 and level_due(lv, t.due_at, CAL) <= t.opened_at)]
        assert sent_levels.get(t.id, []) == expected, t.ref
    keys = [r.dedupe_key for r in rows]
    assert len(keys) == len(set(keys))
    # Each level went to the people it names, and the citizen heard from the levels that say so.
    for e in events:
        lv = LADDER[e.data["index"]]
        assert sorted(e.data["notified"]) == sorted({"ap" if w == "responsible" else w for w in lv.notify})
        assert e.data["citizen_told"] == lv.tell_citizen
    assert len(rows) == sum(len(e.data["notified"]) + e.data["citizen_told"] for e in events)
    assert {e.data["level"] for e in events} == set(NAMES)


def test_due_ticket_ids_reads_only_due_tickets(desk):
    arrive(desk, "a1", dhaka(2026, 12, 13, 10, 0), subject="Internet line down", body="down")
    arrive(desk, "a2", dhaka(2026, 12, 13, 11, 0), subject="virus", body="virus", sender="b@example.com")
    first = ticket(desk)
    with desk.sessions() as s:
        assert due_ticket_ids(s, "khaliajuri", first.next_escalation_at - timedelta(seconds=1)) == []
        assert first.id in due_ticket_ids(s, "khaliajuri", first.next_escalation_at)
        assert due_ticket_ids(s, "another-office", dhaka(2030, 1, 1)) == []
