"""Telling people once: a quarantined message to its office's default officer, a mailbox that keeps
failing to the admin. Each alert has a dedupe key, so a loop that fails every minute sends one email."""

from __future__ import annotations

import secrets
from datetime import datetime

from maildesk.outbound import outbox
from maildesk.outbound.compose import compose
from maildesk.outbound.render import render


def _send_plain(session, desk, od, *, kind: str, dedupe_key: str, to_email: str, to_name: str, template: str,
                now: datetime, **context) -> None:
    office = od.charter.office
    domain = office.desk_address.partition("@")[2]
    rendered = render(template, office=office, **context)
    message_id = f"<{kind}.{secrets.token_hex(6)}@{domain}>"
    raw = compose(rendered, sender_name=office.desk_name, sender=office.desk_address, to=[(to_name, to_email)],
                  message_id=message_id, date=now, automatic=True, auto_kind="auto-generated")
    outbox.enqueue(session, office=od.key, kind=kind, dedupe_key=dedupe_key, message_id=message_id,
                   sender=office.desk_address, recipients=[to_email], raw=raw, now=now)


def original_headers(raw: bytes | None) -> dict[str, str]:
    """From, To, Subject, Date, Message-ID of quarantined bytes, as far as they can be read at all."""
    from email import message_from_bytes, policy

    from maildesk.ingest.parse import one_line

    if not raw:
        return {}
    try:
        msg = message_from_bytes(raw, policy=policy.compat32)
        return {k: one_line(str(msg.get(k, "")))[:300] for k in ("From", "To", "Subject", "Date", "Message-ID")}
    except Exception as exc:  # the bytes are quarantined precisely because they may be anything
        return {"error": f"{type(exc).__name__}: {exc}"}


def quarantine_notice(session, desk, od, failure, now: datetime) -> None:
    officer = od.charter.officers[od.charter.office.default_officer]
    _send_plain(session, desk, od, kind="quarantine", dedupe_key=f"quarantine:{failure.id}",
                to_email=officer.email, to_name=officer.name_en, template="quarantine", now=now,
                failure=failure, original=original_headers(failure.raw), received_at=od.calendar.local(now))


def admin_address(od) -> tuple[str, str]:
    admin = od.charter.office.admin
    officer = od.charter.officers.get(admin) if admin else None
    officer = officer or od.charter.officers[od.charter.office.default_officer]
    return officer.email, officer.name_en


def mailbox_alert(session, desk, od, state, now: datetime) -> None:
    """After N consecutive failures, tell the admin once (until the mailbox recovers)."""
    threshold = od.charter.office.alert_after_failures
    if state.consecutive_failures < threshold or state.alerted:
        return
    email, name = admin_address(od)
    state.alerted = True
    _send_plain(session, desk, od, kind="mailbox_alert",
                dedupe_key=f"mailbox_alert:{state.mailbox}:{now.date().isoformat()}:{state.consecutive_failures}",
                to_email=email, to_name=name, template="mailbox_alert", now=now, state=state,
                since=od.calendar.local(now))
