"""Numbers for supervisors: the weekly digest's sections and the quarterly GRS progress report.

Queries take a session and return plain rows; the counting (`tally`), percentages and bar widths are
pure, so they are tested without a database. Times in and out are aware; every date shown is in the
office's time zone.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from maildesk.apply import STATUS_BN
from maildesk.charter import Charter, Officer
from maildesk.desk import OPEN_STATUSES
from maildesk.ladder import level_by_index, level_title
from maildesk.outbound.bengali import bn_digits
from maildesk.store.models import Event, IngestFailure, Outbox, Ticket

UNCLASSIFIED = ("সেবা নির্ধারিত হয়নি (ট্রায়াজ)", "Not yet classified (triage)")
RECENT_PROBLEMS = timedelta(days=30)  # dead letters and quarantined mail the digest keeps showing
ACTIVE = tuple(s for s in OPEN_STATUSES if s != "waiting")  # on hold: the clock is paused, not overdue
OVERDUE_LISTED = 60  # the digest lists this many of the most overdue tickets and counts the rest


def pct(part: int, whole: int) -> int | None:
    """A whole-number percentage, or None when there is nothing to divide by."""
    return round(100 * part / whole) if whole else None


def bar(value: int, largest: int, width: int = 160) -> int:
    """Pixels for a bar chart cell: proportional to `largest`, at least 2 px for any non-zero value."""
    if value <= 0 or largest <= 0:
        return 0
    return max(2, round(width * min(value, largest) / largest))


def text_bar(value: int, largest: int, width: int = 20) -> str:
    """The same bar for the plain-text part."""
    n = bar(value, largest, width)
    return "█" * n if n else ""


# ---- per-service counts (digest and quarterly report) -----------------------------------------------


@dataclass
class ServiceRow:
    code: str | None
    name_bn: str
    name_en: str
    carried: int = 0  # received before the period and still unresolved at its start
    received: int = 0
    resolved: int = 0
    on_time: int = 0  # resolved by the due date
    pending: int = 0  # unresolved at the end of the period

    @property
    def total(self) -> int:
        return self.carried + self.received

    @property
    def late(self) -> int:
        return self.resolved - self.on_time

    @property
    def resolved_pct(self) -> int | None:
        return pct(self.resolved, self.total)

    @property
    def on_time_pct(self) -> int | None:
        return pct(self.on_time, self.resolved)


@dataclass(frozen=True)
class TicketFacts:
    service: str | None
    received_at: datetime
    resolved_at: datetime | None
    due_at: datetime | None


def tally(tickets: Iterable[TicketFacts], start: datetime, end: datetime,
          charter: Charter) -> tuple[list[ServiceRow], ServiceRow]:
    """Count per service for [start, end): carried over, received, resolved (and within deadline), pending.
    Every charter service gets a row, in charter order; tickets without a service come last."""
    rows: dict[str | None, ServiceRow] = {
        code: ServiceRow(code, s.name_bn, s.name_en) for code, s in charter.services.items()}
    for t in tickets:
        code = t.service if t.service in rows else None
        if code is None and None not in rows:
            rows[None] = ServiceRow(None, *UNCLASSIFIED)
        row = rows[code]
        if t.received_at >= end:
            continue
        open_at_start = t.received_at < start and (t.resolved_at is None or t.resolved_at >= start)
        if open_at_start:
            row.carried += 1
        elif start <= t.received_at:
            row.received += 1
        else:
            continue  # received and resolved before the period
        if t.resolved_at is not None and start <= t.resolved_at < end:
            row.resolved += 1
            if t.due_at is not None and t.resolved_at <= t.due_at:
                row.on_time += 1
        elif t.resolved_at is None or t.resolved_at >= end:
            row.pending += 1
    out = list(rows.values())
    total = ServiceRow("", "মোট", "Total")
    for r in out:
        for name in ("carried", "received", "resolved", "on_time", "pending"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    return out, total


def ticket_facts(session: Session, office: str, start: datetime, end: datetime) -> list[TicketFacts]:
    """Tickets that matter for [start, end): received before its end and not resolved before its start."""
    q = select(Ticket.service, Ticket.received_at, Ticket.resolved_at, Ticket.due_at).where(
        Ticket.office == office, Ticket.received_at < end,
        or_(Ticket.resolved_at.is_(None), Ticket.resolved_at >= start))
    return [TicketFacts(*row) for row in session.execute(q)]


# ---- the weekly digest ------------------------------------------------------------------------------


@dataclass
class TicketLine:
    ref: str
    subject: str
    citizen: str
    service: str | None
    service_bn: str
    officer: Officer
    status: str
    status_bn: str
    received_at: datetime
    due_at: datetime | None
    overdue_days: int
    age_days: int  # working days since it was received
    level_bn: str
    level_en: str


@dataclass
class ServiceGroup:
    code: str | None
    name_bn: str
    name_en: str
    tickets: list[TicketLine]  # the most overdue, at most OVERDUE_LISTED across the digest
    count: int = 0  # all overdue tickets of this officer and service

    @property
    def unlisted(self) -> int:
        return self.count - len(self.tickets)


@dataclass
class OfficerGroup:
    officer: Officer
    services: list[ServiceGroup]

    @property
    def count(self) -> int:
        return sum(g.count for g in self.services)


@dataclass
class EscalatedLine:
    at: datetime
    ticket: TicketLine
    level_bn: str
    level_en: str
    overdue_days: int
    citizen_told: bool


@dataclass
class Digest:
    period: str
    start: datetime  # local, inclusive
    end: datetime  # local, exclusive
    now: datetime  # local
    overdue: list[OfficerGroup] = field(default_factory=list)
    escalated: list[EscalatedLine] = field(default_factory=list)
    services: list[ServiceRow] = field(default_factory=list)
    total: ServiceRow | None = None
    oldest: list[TicketLine] = field(default_factory=list)
    open_count: int = 0
    waiting_count: int = 0
    dead_letters: list[dict] = field(default_factory=list)
    dead_total: int = 0
    quarantined: list[dict] = field(default_factory=list)
    quarantined_total: int = 0

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def overdue_count(self) -> int:
        return sum(g.count for g in self.overdue)

    @property
    def busiest_officer(self) -> int:
        return max((g.count for g in self.overdue), default=0)

    @property
    def busiest_service(self) -> int:
        return max((max(r.received, r.resolved) for r in self.services), default=0)

    @property
    def active_services(self) -> list[ServiceRow]:
        """Services with anything to show this week (the table stays short in a quiet week)."""
        return [r for r in self.services if r.received or r.resolved or r.pending]


def ticket_line(t: Ticket, od, now: datetime) -> TicketLine:
    charter, cal = od.charter, od.calendar
    service = charter.services.get(t.service) if t.service else None
    title_bn, title_en = level_title(charter, level_by_index(charter.ladder, t.escalation_level))
    return TicketLine(
        ref=t.ref,
        subject=t.subject or "(বিষয় নেই / no subject)",
        citizen=t.citizen_email,
        service=t.service,
        service_bn=service.name_bn if service else UNCLASSIFIED[0],
        officer=charter.officers.get(t.officer) or charter.officers[charter.office.default_officer],
        status=t.status,
        status_bn=STATUS_BN.get(t.status, t.status),
        received_at=cal.local(t.received_at),
        due_at=cal.local(t.due_at) if t.due_at else None,
        overdue_days=cal.working_days_between(t.due_at, now) if t.due_at else 0,
        age_days=max(cal.working_days_between(t.received_at, now), 0),
        level_bn=title_bn,
        level_en=title_en,
    )


def group_overdue(lines: list[TicketLine], counts: dict[tuple[str, str | None], int],
                  charter: Charter) -> list[OfficerGroup]:
    """Overdue tickets by officer (most overdue tickets first), then by service in charter order. `counts`
    holds every overdue ticket per (officer, service); `lines` only those listed."""
    order = {code: i for i, code in enumerate(charter.services)}
    listed: dict[tuple[str, str | None], list[TicketLine]] = {}
    for line in sorted(lines, key=lambda x: (-x.overdue_days, x.ref)):
        listed.setdefault((line.officer.key, line.service), []).append(line)
    by_officer: dict[str, list[ServiceGroup]] = {}
    for (officer, code), n in counts.items():
        officer = officer if officer in charter.officers else charter.office.default_officer
        s = charter.services.get(code) if code else None
        name_bn, name_en = (s.name_bn, s.name_en) if s else UNCLASSIFIED
        groups = by_officer.setdefault(officer, [])
        same = next((g for g in groups if g.code == (code if s else None)), None)
        if same is None:
            same = ServiceGroup(code if s else None, name_bn, name_en, [], 0)
            groups.append(same)
        same.count += n
        same.tickets += listed.get((officer, code), [])
    out = []
    for key, groups in by_officer.items():
        groups.sort(key=lambda g: order.get(g.code, len(order)))
        for g in groups:
            g.tickets.sort(key=lambda x: (-x.overdue_days, x.ref))
        out.append(OfficerGroup(charter.officers[key], groups))
    out.sort(key=lambda g: (-g.count, g.officer.key))
    return out


def build_digest(session: Session, od, period: str, start: datetime, end: datetime, now: datetime,
                 oldest: int = 10) -> Digest:
    """Everything the weekly digest shows, read in one session (nothing is written)."""
    cal, key = od.calendar, od.key
    d = Digest(period=period, start=cal.local(start), end=cal.local(end), now=cal.local(now))
    late = (Ticket.office == key, Ticket.status.in_(ACTIVE), Ticket.due_at < now)
    counts = {(officer, service): n for officer, service, n in session.execute(
        select(Ticket.officer, Ticket.service, func.count()).where(*late).group_by(Ticket.officer, Ticket.service))}
    listed = session.scalars(select(Ticket).where(*late).order_by(Ticket.due_at, Ticket.id).limit(OVERDUE_LISTED))
    d.overdue = group_overdue([ticket_line(t, od, now) for t in listed], counts, od.charter)

    events = session.execute(
        select(Event, Ticket).join(Ticket, Event.ticket_id == Ticket.id)
        .where(Event.office == key, Event.kind == "escalated", Event.at >= start, Event.at < end)
        .order_by(Event.at, Event.id))
    for ev, t in events:
        data = ev.data or {}
        level = level_by_index(od.charter.ladder, int(data.get("index", -1)))
        title = level_title(od.charter, level) if level else (data.get("level", "?"),) * 2
        d.escalated.append(EscalatedLine(cal.local(ev.at), ticket_line(t, od, now), title[0], title[1],
                                         int(data.get("overdue_working_days", 0)), bool(data.get("citizen_told"))))

    d.services, d.total = tally(ticket_facts(session, key, start, end), start, end, od.charter)
    if oldest:
        d.oldest = [ticket_line(t, od, now) for t in session.scalars(
            select(Ticket).where(Ticket.office == key, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.received_at, Ticket.id).limit(oldest))]
    counts = dict(session.execute(select(Ticket.status, func.count()).where(
        Ticket.office == key, Ticket.status.in_(OPEN_STATUSES)).group_by(Ticket.status)).all())
    d.open_count = sum(counts.values())
    d.waiting_count = counts.get("waiting", 0)

    since = now - RECENT_PROBLEMS
    dead = select(Outbox).where(Outbox.office == key, Outbox.status == "dead")
    d.dead_total = session.scalar(select(func.count()).select_from(dead.subquery())) or 0
    d.dead_letters = [
        {"kind": o.kind, "to": o.recipient, "created_at": cal.local(o.created_at), "error": (o.last_error or "")[:300],
         "ticket": session.scalar(select(Ticket.ref).where(Ticket.id == o.ticket_id)) if o.ticket_id else None}
        for o in session.scalars(dead.where(Outbox.created_at >= since).order_by(Outbox.created_at.desc()).limit(20))]
    quarantined = select(IngestFailure).where(IngestFailure.office == key, IngestFailure.quarantined.is_(True))
    d.quarantined_total = session.scalar(select(func.count()).select_from(quarantined.subquery())) or 0
    d.quarantined = [
        {"id": f.id, "uid": f.uid, "mailbox": f.mailbox, "at": cal.local(f.updated_at), "reason": (f.reason or "")[:300]}
        for f in session.scalars(quarantined.where(IngestFailure.updated_at >= since)
                                 .order_by(IngestFailure.updated_at.desc()).limit(20))]
    return d


# ---- the quarterly GRS progress report --------------------------------------------------------------

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]\s*([1-4])\s*$")
QUARTER_BN = ("প্রথম", "দ্বিতীয়", "তৃতীয়", "চতুর্থ")


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> "Quarter":
        m = _QUARTER.match(text or "")
        if not m:
            raise ValueError(f"write the quarter like 2026Q4, not {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end_day(self) -> date:
        """The day after the quarter."""
        return date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)

    @property
    def fiscal(self) -> tuple[str, int]:
        """Bangladesh's fiscal year runs July to June: 2026Q4 is the second quarter of 2026-27."""
        if self.number >= 3:
            return f"{self.year}-{str(self.year + 1)[2:]}", self.number - 2
        return f"{self.year - 1}-{str(self.year)[2:]}", self.number + 2


@dataclass
class QuarterReport:
    office_bn: str
    office_en: str
    quarter: Quarter
    start: datetime
    end: datetime
    generated_at: datetime
    rows: list[ServiceRow]
    total: ServiceRow

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()


def quarter_report(session: Session, od, quarter: Quarter, now: datetime) -> QuarterReport:
    tz = od.calendar.tz
    start = datetime.combine(quarter.first_day, time(0), tzinfo=tz)
    end = datetime.combine(quarter.end_day, time(0), tzinfo=tz)
    rows, total = tally(ticket_facts(session, od.key, start, end), start, end, od.charter)
    office = od.charter.office
    return QuarterReport(office.name_bn, office.name_en, quarter, start, end, od.calendar.local(now), rows, total)


CSV_COLUMNS = ("service_code", "service_bn", "service_en", "carried_over", "received", "total", "resolved",
               "resolved_within_deadline", "pending", "resolved_pct", "within_deadline_pct")


def report_csv(report: QuarterReport) -> str:
    """UTF-8 CSV (the caller writes it with a BOM so spreadsheet programs show Bengali correctly)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in [*report.rows, report.total]:
        w.writerow([r.code if r.code is not None else "triage", r.name_bn, r.name_en, r.carried, r.received,
                    r.total, r.resolved, r.on_time, r.pending,
                    "" if r.resolved_pct is None else r.resolved_pct,
                    "" if r.on_time_pct is None else r.on_time_pct])
    return out.getvalue()


def report_html(report: QuarterReport) -> str:
    from maildesk.outbound.render import environment

    return environment().get_template("report_quarter.html").render(r=report, bn=bn_digits, QUARTER_BN=QUARTER_BN)
