"""The escalation sweep: find tickets whose next ladder level is due and send that level exactly once.

Cost follows the tickets that are due, not all tickets ever stored: one query on the index
(office, next_escalation_at), which Applier.reschedule keeps NULL for resolved, closed and waiting tickets.
Each ticket is handled in its own transaction: the outbox rows (dedupe keys per level, due date and
recipient), the audit event and the advanced escalation_level commit together, so a sweep that runs
twice, or crashes halfway, never sends a level twice and never loses one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maildesk import desk as core
from maildesk.app import Desk, OfficeDesk
from maildesk.apply import Applier
from maildesk.jobs.ingest import desk_caps
from maildesk.ladder import Step, level_by_index, level_title, plan
from maildesk.store.models import Address, Event, Message, Ticket

log = logging.getLogger(__name__)

REQUEST_CHARS = 3000  # how much of the citizen's request an escalation email quotes


@dataclass
class EscalationReport:
    office: str
    checked: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # level name -> tickets
    skipped: int = 0  # lower levels folded into a higher one
    citizens_told: int = 0

    @property
    def escalated(self) -> int:
        return sum(self.sent.values())


def due_query(office: str, now: datetime, limit: int = 500):
    """Tickets whose next level is due: a range scan on ix_ticket_escalation (office, next_escalation_at),
    already in index order, so its cost follows the number of due tickets."""
    return (select(Ticket.id).where(Ticket.office == office, Ticket.next_escalation_at <= now)
            .order_by(Ticket.next_escalation_at).limit(limit))


def due_ticket_ids(session: Session, office: str, now: datetime, limit: int = 500) -> list[int]:
    return list(session.scalars(due_query(office, now, limit)))


def _lock(session: Session, ticket_id: int) -> Ticket | None:
    q = select(Ticket).where(Ticket.id == ticket_id)
    if session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)  # another worker has it: it will do this ticket
    return session.scalars(q).first()


def citizen_request(session: Session, ticket: Ticket) -> str:
    """The citizen's first message, as the officer saw it in the notice."""
    text = session.scalar(select(Message.text).where(Message.ticket_id == ticket.id, Message.kind == "citizen")
                          .order_by(Message.id).limit(1))
    text = (text or "").strip()
    return text if len(text) <= REQUEST_CHARS else text[:REQUEST_CHARS].rstrip() + " …"


def _history(session: Session, ticket: Ticket) -> list[dict]:
    return [{"at": e.at, **(e.data or {})} for e in session.scalars(
        select(Event).where(Event.ticket_id == ticket.id, Event.kind == "escalated").order_by(Event.id))]


def _bouncing(session: Session, office: str, email: str) -> bool:
    return bool(session.scalar(select(Address.bouncing).where(Address.office == office, Address.email == email)))


@dataclass(frozen=True)
class Escalated:
    ref: str
    step: Step
    citizen_told: bool


def escalate_ticket(session: Session, desk: Desk, od: OfficeDesk, ticket: Ticket, now: datetime) -> Escalated | None:
    """Carry out this ticket's due step inside the caller's transaction; returns what was done."""
    charter, cal = od.charter, od.calendar
    applier = Applier(od, session, desk.secret, now, caps=desk_caps(od))
    if ticket.status in core.DONE_STATUSES or ticket.status == "waiting":
        applier.reschedule(ticket)  # a late write re-armed a stopped ladder: stop it again
        return None
    step = plan(ticket.due_at, ticket.escalation_level, charter.ladder, cal, now, ticket.officer, ticket.opened_at)
    if step is None:
        applier.reschedule(ticket)
        return None
    due_key = cal.local(ticket.due_at).isoformat(timespec="minutes")
    overdue = cal.working_days_between(ticket.due_at, now)
    skipped = [lv.name for lv in step.skipped]
    told = False
    if step.send is None:
        applier.audit(ticket, "escalation_skipped", {"levels": skipped, "reason": "reminder due before the ticket"})
    else:
        level = step.send
        title_bn, title_en = level_title(charter, level)
        told = step.tell_citizen and not _bouncing(session, od.key, ticket.citizen_email)
        data = {"level": level.name, "index": level.index, "skipped": skipped, "overdue_working_days": overdue,
                "notified": list(step.notify), "citizen_told": told, "due_at": due_key}
        extra = {
            "level": {"name": level.name, "index": level.index, "title_bn": title_bn, "title_en": title_en,
                      "after_working_days": level.after_working_days},
            "skipped_titles": [level_title(charter, lv) for lv in step.skipped],
            "overdue_days": overdue,
            "reminder": level.after_working_days < 0,
            "notified": [charter.officers[k] for k in step.notify],
            "request": citizen_request(session, ticket),
            "history": [dict(h, title=level_title(charter, level_by_index(charter.ladder, h.get("index", -1))),
                             at_local=cal.local(h["at"])) for h in _history(session, ticket)],
        }
        for key in step.notify:
            applier.send(ticket, core.Send("escalation", key, dict(
                extra, recipient=charter.officers[key],
                dedupe_key=f"escalation:{ticket.ref}:{level.name}:{due_key}:{key}")), None)
        if told:
            applier.send(ticket, core.Send("escalated_citizen", "citizen", dict(
                extra, dedupe_key=f"escalation:{ticket.ref}:{level.name}:{due_key}:citizen")), None)
        applier.audit(ticket, "escalated", data)
    ticket.escalation_level = step.done_index
    applier.reschedule(ticket)
    return Escalated(ticket.ref, step, told)


def escalate_office(desk: Desk, od: OfficeDesk, now: datetime | None = None, batch: int = 500) -> EscalationReport:
    """One sweep over one office. Each ticket commits on its own; a failing ticket is logged and left for
    the next sweep (its next_escalation_at is unchanged), and the others go on."""
    now = now or desk.now()
    report = EscalationReport(od.key)
    seen: set[int] = set()  # handled, failed, or locked by another worker: not again in this sweep
    while True:
        with desk.sessions() as s:
            ids = [i for i in due_ticket_ids(s, od.key, now, batch + len(seen)) if i not in seen]
        if not ids:
            return report
        for ticket_id in ids:
            seen.add(ticket_id)
            try:
                with desk.sessions.begin() as s:
                    ticket = _lock(s, ticket_id)
                    if ticket is None or ticket.next_escalation_at is None or ticket.next_escalation_at > now:
                        continue
                    report.checked += 1
                    done = escalate_ticket(s, desk, od, ticket, now)
            except Exception:
                log.exception("%s: escalating ticket id %s failed; the next sweep tries again", od.key, ticket_id)
                continue
            if done is None:
                continue
            report.skipped += len(done.step.skipped)
            if done.step.send is not None:
                name = done.step.send.name
                report.sent[name] = report.sent.get(name, 0) + 1
                report.citizens_told += int(done.citizen_told)
                log.info("%s %s: escalation level %s sent to %s", od.key, done.ref, name, ", ".join(done.step.notify))


def escalate_all(desk: Desk, now: datetime | None = None, offices=None) -> list[EscalationReport]:
    """One sweep over every office (the worker runs this hourly; `maildesk escalate` runs it once).
    `offices`: only these office keys (a worker sweeps the offices whose mailbox lease it holds)."""
    now = now or desk.now()
    return [escalate_office(desk, od, now) for od in desk.offices.values() if offices is None or od.key in offices]
