"""Drain the outbox: at-least-once delivery with backoff, dead letters after a configured age.

Each row is claimed, sent and marked in its own short transaction (on PostgreSQL with FOR UPDATE
SKIP LOCKED, so several workers never send the same row). SQLite has no row locks, so there one drain
at a time holds an advisory lock on a file beside the database: the worker's send job, the send that
follows an ingest and a `maildesk send` from the shell never pick the same row (the kernel drops the
lock when a process dies, even by SIGKILL). The only window for a duplicate is between the SMTP server
accepting the message and the commit that marks it sent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from maildesk.outbound.transport import PermanentFailure, TemporaryFailure, make_transport
from maildesk.store.models import Event, Outbox

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, at most an hour between tries."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def _claim(session, now, office: str | None):
    q = select(Outbox).where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
    if office:
        q = q.where(Outbox.office == office)
    q = q.order_by(Outbox.next_attempt_at, Outbox.id).limit(1)
    if session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return session.scalars(q).first()


_MEMORY_LOCK = threading.Lock()


@contextlib.contextmanager
def drain_lock(engine):
    """True while this caller is the only one draining a SQLite outbox; always True on PostgreSQL."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        yield True
        return
    if not url.database or url.database == ":memory:":
        got = _MEMORY_LOCK.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                _MEMORY_LOCK.release()
        return
    with open(f"{url.database}.send-lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def send_pending(desk, transport=None, limit: int = 1000, office: str | None = None) -> SendReport:
    """Send what is due now; stop after `limit` rows or at the first connection failure. When another
    drain of the same SQLite outbox is running, do nothing: it picks up these rows too."""
    with drain_lock(desk.engine) as mine:
        if not mine:
            log.debug("outbox: another drain is running; leaving the rows to it")
            return SendReport()
        return _drain(desk, transport, limit, office)


def _drain(desk, transport, limit: int, office: str | None) -> SendReport:
    report = SendReport()
    own_transport = transport is None
    transport = transport or make_transport(desk.settings.smtp, desk.settings.ca_file)
    max_age = timedelta(hours=desk.settings.outbox_max_age_hours)
    try:
        for _ in range(limit):
            now = desk.now()
            with desk.sessions.begin() as s:
                row = _claim(s, now, office)
                if row is None:
                    break
                row.attempts += 1
                try:
                    transport.send(row.sender, list(row.recipients), row.raw)
                except PermanentFailure as exc:
                    _dead(s, row, now, f"rejected: {exc}")
                    report.dead += 1
                    continue
                except TemporaryFailure as exc:
                    row.last_error = str(exc)
                    if now - row.created_at >= max_age:
                        _dead(s, row, now, f"gave up after {row.attempts} attempts: {exc}")
                        report.dead += 1
                        continue
                    row.next_attempt_at = now + backoff(row.attempts)
                    report.retried += 1
                    report.errors.append(str(exc))
                    log.warning("outbox: %s to %s will be retried at %s: %s", row.kind, row.recipient,
                                row.next_attempt_at.isoformat(timespec="seconds"), exc)
                    break  # the server is unwell: leave the rest for the next run
                row.status = "sent"
                row.sent_at = now
                row.last_error = None
                report.sent += 1
                log.info("sent %s %s to %s", row.kind, row.message_id, ", ".join(row.recipients))
    finally:
        if own_transport:
            transport.close()
    return report


def _dead(session, row: Outbox, now, reason: str) -> None:
    row.status = "dead"
    row.last_error = reason
    session.add(Event(office=row.office, ticket_id=row.ticket_id, at=now, kind="dead_letter",
                      data={"outbox_id": row.id, "kind": row.kind, "to": row.recipients, "reason": reason}))
    log.error("outbox: %s to %s is a dead letter: %s", row.kind, ", ".join(row.recipients), reason)
