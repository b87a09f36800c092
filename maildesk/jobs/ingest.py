"""The ingest cycle: mailbox -> parse -> screen -> thread -> decide -> apply, in transactions.

Exactly-once: each message is stored with its ticket changes, outbox rows and the mailbox cursor in one
commit; only then is it flagged in the mailbox. A backlog is parsed in parallel (jobs/prepare.py) and
committed up to COMMIT_EVERY messages per transaction; a group that fails is rolled back and replayed one
message per transaction, so attempts and quarantine still count per message. Re-reading a stored message is a no-op (unique keys on
mailbox + UIDVALIDITY + UID and on Message-ID). A message that keeps failing is quarantined with its
bytes and reason after `max_attempts`, and the loop goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from maildesk import desk as core
from maildesk.app import Desk, OfficeDesk
from maildesk.apply import Applier, Arrival
from maildesk.ingest.parse import ParsedMessage, ParseError, parse_message
from maildesk.ingest.sources import SourceError, connected
from maildesk.jobs.prepare import Prepared, Preparing, RenderQueue, prepare
from maildesk.officer import authentication_failed, parse_officer_reply
from maildesk.outbound import outbox
from maildesk.rules.refs import find_ticket_ref
from maildesk.rules.screen import repeated, screen
from maildesk.rules.tokens import verified_ref
from maildesk.store.models import Event, Address, IngestFailure, MailboxState, Message, Outbox, Ticket

log = logging.getLogger(__name__)
REPEAT_DAYS = 3  # how far back a word-for-word repeat marks an autoresponder
COMMIT_EVERY = 100  # messages stored per transaction while working through a backlog


@dataclass
class IngestReport:
    office: str
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    error: str | None = None


# ---- finding what a message belongs to ------------------------------------------------------------


def find_thread(session: Session, office: str, m: ParsedMessage) -> Ticket | None:
    """The ticket this message continues: by a ref in the subject, else by In-Reply-To/References."""
    ref = find_ticket_ref(m.subject)
    if ref:
        t = session.scalar(select(Ticket).where(Ticket.office == office, Ticket.ref == ref))
        if t is not None:
            return t
    ids = list(m.thread_ids)[:50]
    if not ids:
        return None
    tid = session.scalar(select(Message.ticket_id).where(Message.office == office, Message.message_id.in_(ids),
                                                         Message.ticket_id.is_not(None)).limit(1))
    if tid is None:
        tid = session.scalar(select(Outbox.ticket_id).where(Outbox.office == office, Outbox.message_id.in_(ids),
                                                            Outbox.ticket_id.is_not(None)).limit(1))
    return session.get(Ticket, tid) if tid is not None else None


def ticket_view(t: Ticket) -> core.TicketView:
    return core.TicketView(id=t.id, ref=t.ref, status=t.status, service=t.service, officer=t.officer,
                           citizen_email=t.citizen_email, due_at=t.due_at, resolved_at=t.resolved_at,
                           closed_at=t.closed_at)


def auth_failed(m: ParsedMessage, authserv_id: str | None) -> bool:
    """True when the receiving server (our authserv-id) says neither DKIM nor SPF passed for the From domain."""
    return authentication_failed(m, authserv_id)


# ---- one message -----------------------------------------------------------------------------------


def already_stored(session: Session, office: str, mailbox: str, uidvalidity: int, uid: str, raw: bytes | None,
                   m: ParsedMessage | None) -> bool:
    conds = [(Message.mailbox == mailbox) & (Message.uidvalidity == uidvalidity) & (Message.uid == uid)]
    if m is not None:
        conds.append(Message.message_key == m.message_key)
    return session.scalar(select(Message.id).where(Message.office == office, or_(*conds)).limit(1)) is not None


def distinct_key(session: Session, office: str, m: ParsedMessage) -> ParsedMessage:
    """Same Message-ID, different content: a different message (a phone that reuses ids, a forger), which
    gets a key of its own instead of being taken for a re-delivery and dropped."""
    if not m.has_message_id:
        return m
    raw = session.scalar(select(Message.raw).where(Message.office == office, Message.message_key == m.message_key))
    if raw is None:
        return m
    try:
        same = parse_message(raw).fingerprint == m.fingerprint
    except ParseError:
        same = False
    return m if same else dataclasses.replace(m, key_suffix=m.fingerprint[:16])


def _still_bouncing(session: Session, office: str, address: str, m: ParsedMessage, human: bool, now) -> bool:
    """Whether automatic mail to this address is held back. A person writing from the very address that
    bounced shows the mailbox works again, so the mark is lifted (and audited)."""
    row = session.scalar(select(Address).where(Address.office == office, Address.email == address))
    if row is None or not row.bouncing:
        return False
    if human and m.sender == address:
        row.bouncing = False
        session.add(Event(office=office, at=now, kind="address_recovered", actor=address,
                          data={"email": address, "bounced_at": row.bounced_at.isoformat() if row.bounced_at else None}))
        return False
    return True


def process_message(session: Session, desk: Desk, od: OfficeDesk, arrival: Arrival, now: datetime,
                    parsed: ParsedMessage | None = None, classified: dict | None = None,
                    render_later=None) -> str:
    """Store and act on one message inside the caller's transaction. Returns what it became.

    `parsed` and `classified`: the same work already done elsewhere (jobs/prepare.py's worker processes);
    `render_later`: render the emails there too (a RenderQueue the caller finishes before its commit)."""
    m = distinct_key(session, od.key, parsed if parsed is not None else parse_message(arrival.raw))
    if already_stored(session, od.key, arrival.mailbox, arrival.uidvalidity, arrival.uid, arrival.raw, m):
        return "duplicate"
    charter = od.charter
    ticket = find_thread(session, od.key, m)
    officer = charter.officer_by_email(m.sender)
    vref = verified_ref(desk.secret, od.key, officer.key, m.thread_ids, (*m.to, *m.cc)) if officer else None
    screened = screen(m, charter.desk_addresses()) or repeat_screen(session, ticket, m, now, officer is not None)
    bouncing = _still_bouncing(session, od.key, m.reply_to or m.sender, m, screened is None, now)
    situation = core.Situation(
        message=m,
        now=now,
        charter=charter,
        ticket=ticket_view(ticket) if ticket else None,
        officer=officer,
        verified_ref=vref,
        auth_failed=auth_failed(m, charter.office.authserv_id),
        screen=screened,
        sender_bouncing=bouncing,
    )
    classification = None
    if situation.screen is None and (ticket is None or (officer is not None and vref != ticket.ref)
                                     or ticket.status in core.DONE_STATUSES):  # may become a linked new ticket
        classification = classified or od.classifier.classify(m.subject, m.text, m.html).to_dict()
    reply = None
    if officer is not None and ticket is not None and vref == ticket.ref:
        reply = parse_officer_reply(m, charter)
    decision = core.decide(situation, classification, reply)
    applier = Applier(od, session, desk.secret, now, caps=desk_caps(od), render_later=render_later)
    applier.apply(decision, m, arrival, ticket)
    return decision.kind


def repeat_screen(session: Session, ticket: Ticket | None, m: ParsedMessage, now: datetime, officer: bool):
    """Screen a message that repeats, word for word, one its sender put on this ticket in the last days and
    that the desk acted on (an officer's relayed reply; a citizen's follow-up). An officer who sends again
    what was refused as unauthenticated is not repeating an accepted reply."""
    if ticket is None or not m.sender:
        return None
    kinds = ("officer",) if officer else ("citizen", "followup", "status_query")
    earlier = session.scalars(select(Message.text).where(
        Message.ticket_id == ticket.id, Message.sender == m.sender, Message.kind.in_(kinds),
        Message.received_at >= now - timedelta(days=REPEAT_DAYS)).order_by(Message.id.desc()).limit(20)).all()
    return repeated(m, earlier)


def desk_caps(od: OfficeDesk) -> outbox.Caps:
    office = od.charter.office
    return outbox.Caps(per_hour=office.auto_replies_per_hour, per_day=office.auto_replies_per_day)


def quarantine(desk: Desk, od: OfficeDesk, arrival: Arrival, reason: str, now: datetime, final: bool) -> bool:
    """Count a failure; on the last attempt keep the bytes and reason, and tell the officer once.

    Returns True when the message is now quarantined (the loop may move past it)."""
    with desk.sessions.begin() as s:
        row = s.scalar(select(IngestFailure).where(
            IngestFailure.office == od.key, IngestFailure.mailbox == arrival.mailbox,
            IngestFailure.uidvalidity == arrival.uidvalidity, IngestFailure.uid == arrival.uid))
        if row is None:
            row = IngestFailure(office=od.key, mailbox=arrival.mailbox, uidvalidity=arrival.uidvalidity,
                                uid=arrival.uid, attempts=0, first_seen_at=now)
            s.add(row)
        row.attempts += 1
        row.reason = reason[:4000]
        row.updated_at = now
        if row.quarantined:
            advance_cursor(s, od.key, arrival)
            return True
        if final or row.attempts >= desk.settings.max_attempts:
            advance_cursor(s, od.key, arrival)
            row.quarantined = True
            row.raw = arrival.raw
            s.flush()
            from maildesk.jobs.alerts import quarantine_notice

            quarantine_notice(s, desk, od, row, now)
            log.error("quarantined %s uid %s after %d attempt(s): %s", arrival.mailbox, arrival.uid, row.attempts, reason)
            return True
        return False


def advance_cursor(session: Session, office: str, arrival: Arrival) -> None:
    """Move the IMAP cursor past this message, in the same transaction as its effects."""
    if arrival.uid.isdigit() and arrival.uidvalidity:
        st = _state(session, office, arrival.mailbox)
        st.last_uid = max(st.last_uid, int(arrival.uid))


def is_quarantined(session: Session, office: str, arrival: Arrival) -> bool:
    return session.scalar(select(IngestFailure.quarantined).where(
        IngestFailure.office == office, IngestFailure.mailbox == arrival.mailbox,
        IngestFailure.uidvalidity == arrival.uidvalidity, IngestFailure.uid == arrival.uid)) or False


# ---- the cycle -------------------------------------------------------------------------------------


def _state(session: Session, office: str, mailbox: str) -> MailboxState:
    st = session.scalar(select(MailboxState).where(MailboxState.office == office, MailboxState.mailbox == mailbox))
    if st is None:
        st = MailboxState(office=office, mailbox=mailbox, uidvalidity=0, last_uid=0, consecutive_failures=0)
        session.add(st)
        session.flush()
    return st


def ingest_office(desk: Desk, od: OfficeDesk, source=None, progress=None, still_mine=None) -> IngestReport:
    """Read everything new in one office's mailbox. Never raises for a bad message; raises SourceError
    when the mailbox cannot be reached (the caller backs off). `still_mine()` is asked before each
    batch: a worker whose mailbox lease has passed to another worker stops (jobs/lease.py)."""
    report = IngestReport(od.key)
    if source is None:
        with connected(od.settings.mailbox, desk.settings.ca_file, od.settings.processed_folder) as src:
            return ingest_office(desk, od, src, progress, still_mine)
    try:
        return _ingest_from(desk, od, source, progress, still_mine, report)
    except SourceError as exc:
        exc.report = report  # what was committed before the mailbox went away still counts
        raise


def _ingest_from(desk: Desk, od: OfficeDesk, source, progress, still_mine, report: IngestReport) -> IngestReport:
    mailbox = source.identity
    uidvalidity = source.uidvalidity()
    with desk.sessions.begin() as s:
        st = _state(s, od.key, mailbox)
        if st.uidvalidity != uidvalidity:
            if st.uidvalidity:
                log.warning("%s: UIDVALIDITY changed %s -> %s: re-scanning (stored messages are recognised by "
                            "Message-ID)", mailbox, st.uidvalidity, uidvalidity)
            st.uidvalidity, st.last_uid = uidvalidity, 0
        last_uid = st.last_uid
    pending = source.pending(last_uid)
    total = len(pending)
    batch = desk.settings.batch_size
    if progress is not None and total:
        progress(0, total)
    for start in range(0, total, batch):
        if still_mine is not None and not still_mine():
            log.info("%s: the mailbox lease has passed to another worker; stopping after %d message(s)",
                     od.key, report.seen)
            break
        fetched = [(uid, Arrival(mailbox, uidvalidity, str(uid), received_at, raw))
                   for uid, raw, received_at in _fetch(source, pending[start:start + batch], desk.now())]
        parsing = prepare(od, [a.raw for _, a in fetched])  # in the pool, while earlier groups are stored
        done, stop = _store_chunk(desk, od, fetched, report, parsing)
        source.mark_done(done)
        if progress is not None:
            progress(min(start + batch, total), total)
        if stop:
            break
    with desk.sessions.begin() as s:
        st = _state(s, od.key, mailbox)
        st.last_success_at = desk.now()
        st.consecutive_failures = 0
        st.last_error = None
        st.alerted = False
    return report


def _fetch(source, uids, now):
    for item in source.fetch(uids):
        uid, raw = item[0], item[1]
        received = item[2] if len(item) > 2 and item[2] is not None else now
        yield uid, raw, min(received, now)


class _Replay(Exception):
    """Leave a group's transaction without committing; its messages are replayed one at a time."""


def _store_chunk(desk: Desk, od: OfficeDesk, fetched: list, report: IngestReport,
                 parsing: Preparing | None = None) -> tuple[list, bool]:
    """Store fetched (uid, Arrival) pairs, up to COMMIT_EVERY per transaction. Returns (UIDs stored, stop).

    A group commits together with the cursor past its last message, so a crash leaves all or none of it
    (and the mailbox unflagged). A group that fails for any reason is rolled back and replayed one message
    per transaction (`_one`): one bad message cannot hold back the others."""
    parsing = parsing or Preparing(None)
    size = max(1, min(desk.settings.batch_size, COMMIT_EVERY))
    done: list = []
    for start in range(0, len(fetched), size):
        part = fetched[start:start + size]
        group = [(uid, a, pre) for (uid, a), pre in zip(part, parsing.take(start, start + len(part)))]
        if len(group) > 1 and _commit_group(desk, od, group, report):
            done += [uid for uid, _, _ in group]
            continue
        for uid, arrival, pre in group:
            report.seen += 1
            if _one(desk, od, arrival, report, pre) == "retry":
                return done, True  # keep the cursor before this message; try it again next cycle
            done.append(uid)
    return done, False


def _given(pre: Prepared | None) -> dict:
    return {"parsed": pre.parsed, "classified": pre.classification} if pre is not None else {}


def _commit_group(desk: Desk, od: OfficeDesk, group: list, report: IngestReport) -> bool:
    """Every message of the group in one transaction, or none (False: the caller replays them singly)."""
    now = desk.now()
    kinds: list[str] = []
    emails = RenderQueue(parallel=len(group) >= 8)  # a few messages (an IDLE wake-up) render right here
    try:
        with desk.sessions.begin() as s:
            first = group[0][1]
            parked = set(s.scalars(select(IngestFailure.uid).where(  # one query for the group, not one each
                IngestFailure.office == od.key, IngestFailure.mailbox == first.mailbox,
                IngestFailure.uidvalidity == first.uidvalidity, IngestFailure.quarantined.is_(True),
                IngestFailure.uid.in_([a.uid for _, a, _ in group]))))
            for _uid, arrival, pre in group:
                if len(arrival.raw) > desk.settings.max_message_bytes or (pre is not None and pre.error):
                    raise _Replay  # quarantined one by one, with its reason
                if arrival.uid in parked:
                    kinds.append("duplicate")
                    continue
                kinds.append(process_message(s, desk, od, arrival, now, render_later=emails, **_given(pre)))
            emails.finish()  # every outbox row of the group gets its bytes before the commit
            # The cursor moves last, just before the commit: its row (mailbox_state, which also holds the
            # mailbox lease) is then locked for milliseconds, not for the whole group.
            for _uid, arrival, _pre in group:
                advance_cursor(s, od.key, arrival)
    except OperationalError:
        raise  # the database is unwell: the whole cycle fails cleanly and is retried
    except _Replay:
        return False
    except Exception as exc:
        log.info("%s: %d messages could not be stored together (%s: %s); one at a time instead", od.key,
                 len(group), type(exc).__name__, exc)
        return False
    report.seen += len(group)
    for (_uid, arrival, _pre), kind in zip(group, kinds):
        if kind == "duplicate":
            report.duplicates += 1
        else:
            report.stored += 1
            report.kinds[kind] = report.kinds.get(kind, 0) + 1
            log.info("%s uid %s: %s", od.key, arrival.uid, kind)
    return True


def _one(desk: Desk, od: OfficeDesk, arrival: Arrival, report: IngestReport, pre: Prepared | None = None) -> str:
    now = desk.now()
    if len(arrival.raw) > desk.settings.max_message_bytes:
        quarantine(desk, od, arrival, f"message of {len(arrival.raw)} bytes exceeds limits.max_message_bytes "
                                      f"({desk.settings.max_message_bytes})", now, final=True)
        report.quarantined += 1
        return "quarantined"
    for attempt in range(3):
        try:
            with desk.sessions.begin() as s:
                if is_quarantined(s, od.key, arrival):
                    report.duplicates += 1
                    return "duplicate"
                if pre is not None and pre.error is not None:
                    raise ParseError(pre.error)
                kind = process_message(s, desk, od, arrival, now, **_given(pre))
                advance_cursor(s, od.key, arrival)
            break
        except IntegrityError as exc:
            # A concurrent writer stored the same message (or took the same counter) first: look again.
            log.info("retrying uid %s after a conflicting write: %s", arrival.uid, exc.orig)
            continue
        except ParseError as exc:
            quarantine(desk, od, arrival, f"not an email: {exc}", now, final=True)
            report.quarantined += 1
            return "quarantined"
        except OperationalError:
            raise  # the database is unwell: the whole cycle fails cleanly and is retried
        except Exception as exc:  # a bug or a poisonous message: count it, quarantine after N tries
            log.exception("failed to process uid %s in %s", arrival.uid, arrival.mailbox)
            reason = f"{type(exc).__name__}: {exc}"
            if quarantine(desk, od, arrival, reason, now, final=False):
                report.quarantined += 1
                return "quarantined"
            report.failed += 1
            return "retry"
    else:
        # Conflicting every time is no longer a race: count it like any failure, so it cannot block the mailbox.
        if quarantine(desk, od, arrival, "conflicting database writes on every try", now, final=False):
            report.quarantined += 1
            return "quarantined"
        report.failed += 1
        return "retry"
    if kind == "duplicate":
        report.duplicates += 1
    else:
        report.stored += 1
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        log.info("%s uid %s: %s", od.key, arrival.uid, kind)
    return kind


def ingest_all(desk: Desk, progress=None) -> list[IngestReport]:
    """One pass over every office's mailbox; a failing mailbox does not stop the others."""
    reports = []
    for od in desk.offices.values():
        try:
            reports.append(ingest_office(desk, od, progress=progress))
        except SourceError as exc:
            report = getattr(exc, "report", None) or IngestReport(od.key)
            report.error = str(exc)
            reports.append(report)
            record_failure(desk, od, str(exc))
    return reports


def record_failure(desk: Desk, od: OfficeDesk, error: str) -> None:
    from maildesk.jobs.alerts import mailbox_alert

    log.error("%s: mailbox unavailable: %s", od.key, error)
    try:
        with desk.sessions.begin() as s:
            st = _state(s, od.key, od.settings.mailbox.identity)
            st.consecutive_failures += 1
            st.last_error = error[:2000]
            mailbox_alert(s, desk, od, st, desk.now())
    except OperationalError as exc:
        log.error("%s: could not record the mailbox failure: %s", od.key, exc)


class TerminalProgress:
    """Progress of a long backfill: a bar with rate and ETA on a terminal, else a log line every
    `every` seconds (and at the end), so a service log is not flooded. ingest_office calls it with
    done=0 when a mailbox starts; short runs (under `minimum` messages) stay quiet."""

    def __init__(self, stream=None, every: float = 10.0, minimum: int = 50, clock=time.monotonic):
        self.stream, self.every, self.minimum, self.clock = stream, every, minimum, clock
        self.started = self.last = 0.0

    def line(self, done: int, total: int) -> str:
        elapsed = max(self.clock() - self.started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate else float("inf")
        eta_text = f"{eta:.0f} s" if eta != float("inf") else "?"
        return f"{done}/{total} messages, {rate:.0f} msg/s, ETA {eta_text}"

    def __call__(self, done: int, total: int) -> None:
        stream = self.stream or sys.stderr
        now = self.clock()
        if done == 0:
            self.started, self.last = now, now
            return
        if total < self.minimum:
            return
        if stream.isatty():
            width = 30
            filled = int(width * done / total) if total else width
            stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.line(done, total)}   ")
            if done >= total:
                stream.write("\n")
            stream.flush()
        elif done >= total or now - self.last >= self.every:
            self.last = now
            log.info("ingest progress: %s", self.line(done, total))


terminal_progress = TerminalProgress()
