"""The weekly escalation digest: decide whether this week's is due, and send it once to each person on
the ladder.

The worker calls send_due_digests() every 15 minutes. The digest is due from the configured weekday and
time (office time zone) until `misfire_hours` later, so a worker that was down at 09:00 still sends it
when it comes back. A job_runs row (office, "digest", ISO week) is written in the same transaction as the
outbox rows, whose dedupe keys are per recipient per week: a restarted worker, a second worker or a
crash between the two can never send a week's digest twice, and a crash before the commit sends it on
the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maildesk.app import Desk, OfficeDesk
from maildesk.jobs.alerts import admin_address
from maildesk.ladder import ladder_people
from maildesk.outbound import outbox
from maildesk.outbound.compose import compose, new_message_id
from maildesk.outbound.render import Rendered, render
from maildesk.reports import Digest, bar, build_digest, text_bar
from maildesk.settings import DigestSettings
from maildesk.desk import OPEN_STATUSES
from maildesk.store.models import JobRun, Ticket

log = logging.getLogger(__name__)

JOB = "digest"


# ---- when ------------------------------------------------------------------------------------------


def scheduled_at(now: datetime, tz, settings: DigestSettings) -> datetime:
    """The latest scheduled digest moment at or before `now`, in the office time zone."""
    local = now.astimezone(tz)
    at = time.fromisoformat(settings.time)
    day = local.date() - timedelta(days=(local.weekday() - settings.weekday) % 7)
    moment = datetime.combine(day, at, tzinfo=tz)
    if moment > local:
        moment = datetime.combine(day - timedelta(days=7), at, tzinfo=tz)
    return moment


def period_of(moment: datetime) -> str:
    """The ISO week a scheduled moment falls in: the digest's name and unique key, e.g. 2026-W49."""
    year, week, _ = moment.date().isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Due:
    period: str
    scheduled: datetime
    start: datetime  # the week the digest covers: [start, end)
    end: datetime


def _midnight(d, tz) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz)


def due_now(now: datetime, tz, settings: DigestSettings) -> Due | None:
    """This week's digest if `now` is within its misfire window, else None (pure). It covers the seven
    whole days before the scheduled day (Sunday to Saturday for a Sunday digest)."""
    moment = scheduled_at(now, tz, settings)
    if now - moment > timedelta(hours=settings.misfire_hours):
        return None
    day = moment.date()
    return Due(period_of(moment), moment, _midnight(day - timedelta(days=7), tz), _midnight(day, tz))


def window_until(now: datetime, tz) -> tuple[datetime, datetime]:
    """For a digest made on demand: the last seven days, today included."""
    return _midnight(now.astimezone(tz).date() - timedelta(days=6), tz), now


def window(desk: Desk, od: OfficeDesk, now: datetime) -> tuple[datetime, datetime]:
    """What a preview or a manual send covers: the scheduled week while this week's digest is due (so the
    preview is what goes out), else the last seven days."""
    due = due_now(now, od.calendar.tz, desk.settings.digest)
    return (due.start, due.end) if due else window_until(now, od.calendar.tz)


# ---- what ------------------------------------------------------------------------------------------


def recipients(od: OfficeDesk, session: Session | None = None):
    """Everyone on the ladder, and (given a session) any officer now holding an open ticket, say after
    an #assign: "responsible" means each ticket's own officer."""
    keys = list(ladder_people(od.charter))
    if session is not None:
        holders = session.scalars(select(Ticket.officer).distinct().where(
            Ticket.office == od.key, Ticket.status.in_(OPEN_STATUSES)))
        keys += sorted(k for k in holders if k in od.charter.officers and k not in keys)
    return [od.charter.officers[k] for k in keys]


def render_digest(od: OfficeDesk, digest: Digest, recipient) -> Rendered:
    return render("digest", office=od.charter.office, d=digest, recipient=recipient, bar=bar, text_bar=text_bar)


def compose_digest(od: OfficeDesk, digest: Digest, recipient, now: datetime) -> tuple[str, bytes]:
    """The digest email for one person: multipart text + HTML, replies go to the desk's admin."""
    office = od.charter.office
    domain = office.desk_address.partition("@")[2]
    message_id = new_message_id(domain, f"digest.{digest.period}.{recipient.key}")
    admin_email, _ = admin_address(od)
    raw = compose(render_digest(od, digest, recipient), sender_name=office.desk_name, sender=office.desk_address,
                  to=[(recipient.name_en, recipient.email)], message_id=message_id, date=now,
                  reply_to=admin_email, automatic=True, auto_kind="auto-generated",
                  extra_headers={"X-Maildesk-Digest": digest.period})
    return message_id, raw


def build(session: Session, desk: Desk, od: OfficeDesk, period: str, start: datetime, end: datetime,
          now: datetime) -> Digest:
    return build_digest(session, od, period, start, end, now, oldest=desk.settings.digest.oldest)


def enqueue_digest(session: Session, desk: Desk, od: OfficeDesk, digest: Digest, now: datetime) -> int:
    """Queue one digest per person; returns how many rows were new."""
    queued = 0
    for person in recipients(od, session):
        message_id, raw = compose_digest(od, digest, person, now)
        row = outbox.enqueue(session, office=od.key, kind="digest", dedupe_key=f"digest:{digest.period}:{person.key}",
                             message_id=message_id, sender=od.charter.office.desk_address,
                             recipients=[person.email], raw=raw, now=now)
        queued += row is not None
    return queued


def already_sent(session: Session, office: str, period: str) -> JobRun | None:
    return session.scalar(select(JobRun).where(JobRun.office == office, JobRun.job == JOB, JobRun.period == period))


def send_digest(desk: Desk, od: OfficeDesk, period: str, start: datetime, end: datetime,
                now: datetime) -> int | None:
    """Claim the period and queue the digests in one transaction. None if the period was already done."""
    try:
        with desk.sessions.begin() as s:
            if already_sent(s, od.key, period):
                return None
            s.add(JobRun(office=od.key, job=JOB, period=period, at=now))
            s.flush()  # a concurrent worker that claimed the period first makes this fail
            queued = enqueue_digest(s, desk, od, build(s, desk, od, period, start, end, now), now)
    except IntegrityError:
        log.info("%s: digest %s was claimed by another worker", od.key, period)
        return None
    log.info("%s: weekly digest %s queued for %d people", od.key, period, queued)
    return queued


def send_due_digests(desk: Desk, now: datetime | None = None, offices=None) -> dict[str, int | None]:
    """The scheduled job: for each office, send this week's digest if it is due and not yet sent.
    `offices`: only these office keys (a worker serves the offices whose mailbox lease it holds)."""
    now = now or desk.now()
    out: dict[str, int | None] = {}
    for od in desk.offices.values():
        if offices is not None and od.key not in offices:
            continue
        due = due_now(now, od.calendar.tz, desk.settings.digest)
        if due is None:
            continue
        out[od.key] = send_digest(desk, od, due.period, due.start, due.end, now)
    return out


def current_period(desk: Desk, od: OfficeDesk, now: datetime) -> str:
    return period_of(scheduled_at(now, od.calendar.tz, desk.settings.digest))
