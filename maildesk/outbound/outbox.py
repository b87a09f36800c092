"""Queueing outgoing email in the same transaction as the change that caused it.

A row's dedupe key makes "send level 2 for ticket 42" or "this week's digest to X" impossible to queue
twice; a per-recipient cap stops the desk from flooding one address with automatic mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maildesk.store.models import Event, Outbox


@dataclass(frozen=True)
class Caps:
    per_hour: int = 5
    per_day: int = 20


def exists(session: Session, office: str, dedupe_key: str) -> bool:
    return session.scalar(
        select(Outbox.id).where(Outbox.office == office, Outbox.dedupe_key == dedupe_key)
    ) is not None


def over_cap(session: Session, office: str, recipient: str, now: datetime, caps: Caps) -> str | None:
    """Why no more automatic mail may go to this address now, or None."""
    recipient = recipient.lower()
    for window, limit in ((timedelta(hours=1), caps.per_hour), (timedelta(days=1), caps.per_day)):
        count = session.scalar(
            select(func.count(Outbox.id)).where(
                Outbox.office == office,
                Outbox.recipient == recipient,
                Outbox.automatic.is_(True),
                Outbox.created_at > now - window,
            )
        )
        if count >= limit:
            return f"{count} automatic emails to {recipient} in the last {window}"
    return None


def enqueue(
    session: Session,
    *,
    office: str,
    kind: str,
    dedupe_key: str,
    message_id: str,
    sender: str,
    recipients: list[str],
    raw: bytes,
    now: datetime,
    ticket_id: int | None = None,
    automatic: bool = True,
    caps: Caps | None = None,
) -> Outbox | None:
    """Add an outbox row unless it is a duplicate or over the recipient's cap (then None, audited)."""
    if exists(session, office, dedupe_key):
        return None
    if automatic and caps is not None:
        reason = over_cap(session, office, recipients[0], now, caps)
        if reason:
            session.add(Event(office=office, ticket_id=ticket_id, at=now, kind="rate_limited",
                              data={"kind": kind, "to": recipients[0], "reason": reason}))
            return None
    row = Outbox(
        office=office,
        ticket_id=ticket_id,
        kind=kind,
        dedupe_key=dedupe_key,
        message_id=message_id,
        sender=sender,
        recipients=[r.lower() for r in recipients],
        recipient=recipients[0].lower(),
        raw=raw,
        automatic=automatic,
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    return row
