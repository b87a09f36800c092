"""`maildesk status [--json]`: is every office's desk healthy, at a glance.

Per office: the last successful poll (and the last error), mail waiting in the mailbox (the backlog: asks
the mailbox itself, unless --no-mailbox), the outbox (pending and dead letters), quarantined messages,
open tickets and the oldest overdue one, and which worker holds the mailbox lease. Then the live workers.
Read-only: safe to run from cron or a monitoring check while workers run (--json for machines).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from maildesk.cli.core import iso, open_desk
from maildesk.desk import DONE_STATUSES
from maildesk.store.models import IngestFailure, MailboxState, Outbox, Ticket, Worker


@dataclass
class OfficeStatus:
    office: str
    mailbox: str
    last_success_at: str | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    backlog: int | None = None  # None: not asked (--no-mailbox) or unreachable
    backlog_error: str | None = None
    outbox_pending: int = 0
    outbox_dead: int = 0
    quarantined: int = 0
    open_tickets: int = 0
    overdue_tickets: int = 0
    oldest_overdue: dict | None = None  # ref, due_at, working_days_overdue
    lease_holder: str | None = None
    lease_until: str | None = None


@dataclass
class Status:
    now: str
    offices: list[OfficeStatus] = field(default_factory=list)
    workers: list[dict] = field(default_factory=list)


def backlog(desk, od, state: MailboxState | None) -> tuple[int | None, str | None]:
    """How many messages wait in the mailbox beyond the stored cursor (asks the server; 10 s timeout)."""
    from maildesk.ingest.sources import ImapSource, MaildirSource, SourceError

    endpoint = od.settings.mailbox
    try:
        if endpoint.scheme == "maildir":
            source = MaildirSource(endpoint)
        else:
            source = ImapSource(endpoint, desk.settings.ca_file, timeout=10)
        try:
            same = state is not None and state.uidvalidity == source.uidvalidity()
            return len(source.pending(state.last_uid if same else 0)), None
        finally:
            source.close()
    except SourceError as exc:
        return None, str(exc)


def office_status(desk, od, s, now: datetime, ask_mailbox: bool) -> OfficeStatus:
    key = od.key
    identity = od.settings.mailbox.identity
    st = s.scalar(select(MailboxState).where(MailboxState.office == key, MailboxState.mailbox == identity))
    out = OfficeStatus(office=key, mailbox=od.settings.mailbox.safe)
    if st is not None:
        out.last_success_at = iso(od.calendar.local(st.last_success_at)) if st.last_success_at else None
        out.consecutive_failures, out.last_error = st.consecutive_failures, st.last_error
        if st.lease_holder and st.lease_until and st.lease_until > now:
            out.lease_holder, out.lease_until = st.lease_holder, iso(od.calendar.local(st.lease_until))
    counts = dict(s.execute(select(Outbox.status, func.count()).where(Outbox.office == key)
                            .where(Outbox.status.in_(("pending", "dead"))).group_by(Outbox.status)).all())
    out.outbox_pending, out.outbox_dead = counts.get("pending", 0), counts.get("dead", 0)
    out.quarantined = s.scalar(select(func.count()).select_from(IngestFailure).where(
        IngestFailure.office == key, IngestFailure.quarantined.is_(True))) or 0
    open_q = select(Ticket).where(Ticket.office == key, Ticket.status.not_in(DONE_STATUSES))
    out.open_tickets = s.scalar(select(func.count()).select_from(open_q.subquery())) or 0
    overdue_q = open_q.where(Ticket.status != "waiting", Ticket.due_at < now)
    out.overdue_tickets = s.scalar(select(func.count()).select_from(overdue_q.subquery())) or 0
    oldest = s.scalars(overdue_q.order_by(Ticket.due_at, Ticket.id).limit(1)).first()
    if oldest is not None:
        out.oldest_overdue = {"ref": oldest.ref, "due_at": iso(od.calendar.local(oldest.due_at)),
                              "working_days_overdue": od.calendar.working_days_between(oldest.due_at, now),
                              "status": oldest.status, "officer": oldest.officer}
    if ask_mailbox:
        out.backlog, out.backlog_error = backlog(desk, od, st)
    return out


def collect(desk, ask_mailbox: bool = True) -> Status:
    now = desk.now()
    status = Status(now=iso(now))
    with desk.sessions() as s:
        for od in desk.offices.values():
            status.offices.append(office_status(desk, od, s, now, ask_mailbox))
        live_since = now - timedelta(seconds=desk.settings.lease_seconds)
        for w in s.scalars(select(Worker).order_by(Worker.started_at)):
            status.workers.append({"name": w.name, "host": w.host, "pid": w.pid, "started_at": iso(w.started_at),
                                   "seen_at": iso(w.seen_at), "alive": w.seen_at >= live_since})
    return status


def _ago(text: str | None, now: datetime) -> str:
    if not text:
        return "never"
    seconds = (now - datetime.fromisoformat(text)).total_seconds()
    if seconds < 120:
        return f"{text} ({seconds:.0f} s ago)"
    if seconds < 7200:
        return f"{text} ({seconds / 60:.0f} min ago)"
    return f"{text} ({seconds / 3600:.1f} h ago)"


def print_status(status: Status, out=sys.stdout) -> None:
    now = datetime.fromisoformat(status.now)
    for o in status.offices:
        print(f"office {o.office}  ({o.mailbox})", file=out)
        print(f"  last poll      {_ago(o.last_success_at, now)}", file=out)
        if o.consecutive_failures:
            print(f"  failing        {o.consecutive_failures} time(s) in a row: {o.last_error}", file=out)
        if o.backlog is not None:
            print(f"  backlog        {o.backlog} message(s) waiting in the mailbox", file=out)
        elif o.backlog_error:
            print(f"  backlog        unknown: {o.backlog_error}", file=out)
        print(f"  outbox         {o.outbox_pending} pending, {o.outbox_dead} dead", file=out)
        if o.quarantined:
            print(f"  quarantined    {o.quarantined} message(s) (maildesk quarantine list)", file=out)
        overdue = "none overdue"
        if o.oldest_overdue:
            x = o.oldest_overdue
            overdue = (f"{o.overdue_tickets} overdue; oldest {x['ref']} due {x['due_at']} "
                       f"({x['working_days_overdue']} working day(s) ago, {x['officer']})")
        print(f"  tickets        {o.open_tickets} open, {overdue}", file=out)
        lease = f"{o.lease_holder} until {o.lease_until}" if o.lease_holder else "no worker holds it"
        print(f"  read by        {lease}", file=out)
    alive = [w for w in status.workers if w["alive"]]
    print(f"workers: {len(alive)} running" + (":" if alive else " (start one with `maildesk run`)"), file=out)
    for w in alive:
        print(f"  {w['name']}  since {w['started_at']}, last seen {w['seen_at']}", file=out)


def cmd_status(args) -> int:
    desk = open_desk(args)
    try:
        status = collect(desk, ask_mailbox=not args.no_mailbox)
    finally:
        desk.close()
    if args.json:
        print(json.dumps(asdict(status), ensure_ascii=False, indent=2))
    else:
        print_status(status)
    return 0


def register(sub) -> None:
    p = sub.add_parser("status", help="per office: last poll, backlog, outbox, overdue tickets, lease holder")
    p.add_argument("--json", action="store_true", help="one JSON document, for monitoring")
    p.add_argument("--no-mailbox", action="store_true", help="do not connect to the mailboxes (no backlog)")
    p.set_defaults(func=cmd_status)
