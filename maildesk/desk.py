"""decide(): the pure core. A parsed message plus what the store knows -> a list of plain actions.

No I/O here: the shell (maildesk.jobs.ingest) gathers the Situation, calls decide(), and applies the
actions in one database transaction. Every branch can be unit-tested without a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from maildesk.charter import Charter, Officer
from maildesk.ingest.parse import ParsedMessage
from maildesk.ingest.replies import strip_reply
from maildesk.rules.screen import Screen

_REPLY_PREFIX = re.compile(r"^((re|fwd?|aw|sv|উত্তর)\s*:\s*)+", re.IGNORECASE)
_REF = re.compile(r"\[?[A-Za-z]{2,10}-\d{4}-\d{5,}\]?")
_PUNCT = " \t.!?।:-"
STATUS_WORDS = ("status", "অবস্থা", "obostha", "abostha")
OPEN_STATUSES = ("open", "waiting", "scheduled", "triage")
DONE_STATUSES = ("resolved", "closed")


@dataclass(frozen=True)
class TicketView:
    """What decide() may know of an existing ticket."""

    id: int
    ref: str
    status: str
    service: str | None
    officer: str
    citizen_email: str
    due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    last_action: str = ""


@dataclass(frozen=True)
class Situation:
    message: ParsedMessage
    now: datetime
    charter: Charter
    ticket: TicketView | None = None  # the ticket this message threads into, if any
    officer: Officer | None = None  # the sender is this configured officer
    verified_ref: str | None = None  # the ref the officer's HMAC token proves
    auth_failed: bool = False  # Authentication-Results says DKIM and SPF failed for the sender
    screen: Screen | None = None
    sender_bouncing: bool = False


# ---- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTicket:
    service: str | None
    officer: str
    status: str
    citizen_email: str
    citizen_name: str
    subject: str
    classification: dict[str, Any] | None
    linked_ref: str | None = None


@dataclass(frozen=True)
class StoreMessage:
    kind: str  # citizen, followup, status_query, officer, officer_rejected, officer_cc, automatic, bounce, own
    note: str | None = None
    reply_text: str | None = None


@dataclass(frozen=True)
class Send:
    """Queue an email rendered from a template. `to` is "citizen", "officer" or an officer key."""

    template: str
    to: str
    extra: dict[str, Any] = field(default_factory=dict)
    relay_attachments: bool = False


@dataclass(frozen=True)
class Update:
    changes: dict[str, Any]


@dataclass(frozen=True)
class Audit:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    kind: str
    actions: tuple
    note: str = ""


# ---- the rules ------------------------------------------------------------------------------------


def decide(s: Situation, classification: dict[str, Any] | None = None, officer_reply=None) -> Decision:
    """What the desk does with one message.

    `classification` is the classifier's verdict (service code or None, score, matched words) for a
    message that would open a ticket; `officer_reply` the parsed officer reply (text and commands) for
    a message from a verified officer. Both are computed by pure functions before decide() is called.
    """
    m = s.message
    if s.screen is not None:
        return _screened(s)

    if s.officer is not None and s.ticket is not None:
        if s.verified_ref == s.ticket.ref and not s.auth_failed:
            if officer_reply is not None:
                from maildesk.officer import decide_officer_reply

                return decide_officer_reply(s, officer_reply)
        elif _officer_cc(s) and not s.auth_failed:
            return _officer_cc_recorded(s)

    forged = s.officer is not None and s.ticket is not None and (
        s.verified_ref != s.ticket.ref or s.auth_failed)

    if s.ticket is not None and not forged:
        return _citizen_followup(s, classification)
    if forged:
        return _forged(s, classification)
    return _new_ticket(s, classification)


def _screened(s: Situation) -> Decision:
    sc = s.screen
    actions: list = [StoreMessage(sc.kind, sc.reason), Audit(f"screened_{sc.kind}", {"reason": sc.reason})]
    if sc.kind == "bounce" and s.ticket is not None and _citizen_failed(s):
        actions.append(Audit("citizen_bouncing", {"email": s.ticket.citizen_email}))
    return Decision(sc.kind, tuple(actions), sc.reason)


def _citizen_failed(s: Situation) -> bool:
    """A bounce proves the citizen's address dead only if its delivery report says so (not "delayed", not
    another recipient), or, without a machine-readable report, if a mail server itself sent it."""
    failed = s.message.failed_recipients
    if failed is not None:
        return s.ticket.citizen_email.lower() in failed
    return s.message.sender.partition("@")[0] in ("mailer-daemon", "postmaster")


def _officer_cc(s: Situation) -> bool:
    """An officer wrote to the citizen directly and put the desk in Cc: record, never relay again."""
    return s.ticket is not None and s.ticket.citizen_email in (*s.message.to, *s.message.cc)


def _officer_cc_recorded(s: Situation) -> Decision:
    """The officer's direct answer goes on the record. It carries no token, so any command in it is not
    run, and the officer is told so rather than left to believe it was."""
    from maildesk.rules.commands import parse_commands

    m = s.message
    text = strip_reply(m.text, m.html, flowed=m.flowed)
    actions = (StoreMessage("officer_cc", "officer answered the citizen directly", text),
               Audit("officer_cc", {"officer": s.officer.key}))
    if any(c.verb != "unknown" for c in parse_commands(text)[0]):
        reason = "commands run only in a reply to the desk's own email (no desk token in this message)"
        actions += (Audit("forged_officer", {"officer": s.officer.key, "reason": reason}),
                    Send("forged_warning", s.officer.key, {"reason": reason}))
    return Decision("officer_cc", actions)


def _is_status_query(m: ParsedMessage) -> bool:
    """A citizen who writes just "status" / "অবস্থা" (subject or first line) wants an automatic status reply."""
    subject = _REPLY_PREFIX.sub("", m.subject.strip())
    subject = _REF.sub(" ", subject).strip(_PUNCT).lower()
    first = next((line for line in m.text.splitlines() if line.strip()), "").strip(_PUNCT).lower()
    return subject in STATUS_WORDS or first in STATUS_WORDS


def _citizen_followup(s: Situation, classification: dict[str, Any] | None = None,
                      moves_status: bool = True) -> Decision:
    """`moves_status=False` (an unverified officer address): kept and forwarded, but it neither reopens
    nor resumes the ticket, so a spoofed From changes nothing."""
    t = s.ticket
    reply_text = strip_reply(s.message.text, s.message.html, flowed=s.message.flowed) or s.message.text
    if _is_status_query(s.message):
        return Decision("status_query", (
            StoreMessage("status_query", "citizen asked for the status"),
            Send("status", "citizen"),
            Audit("status_query", {}),
        ))
    actions: list = [StoreMessage("followup", reply_text=reply_text)]
    reopened = False
    if not moves_status:
        pass
    elif t.status in DONE_STATUSES:
        done_at = t.resolved_at or t.closed_at or s.now
        window = timedelta(days=s.charter.office.reopen_days)
        if s.now - done_at > window:
            # Too late to reopen: a new ticket, linked to the old one.
            return _new_ticket(s, classification, linked_ref=t.ref)
        actions += [Update({"status": "open", "resolved_at": None, "closed_at": None}),
                    Audit("reopened", {"by": "citizen"})]
        reopened = True
    elif t.status == "waiting":
        actions += [Update({"status": "open"}), Audit("status", {"from": "waiting", "to": "open", "by": "citizen"})]
    actions += [Audit("followup", {}), Send("followup", "officer", {"reopened": reopened}, relay_attachments=True)]
    return Decision("followup", tuple(actions))


def _forged(s: Situation, classification) -> Decision:
    """An officer's From without a valid token: an ordinary message, and the real officer is warned."""
    reason = "no valid desk token for this ticket" if not s.auth_failed else "DKIM/SPF failed for the sender"
    if s.ticket is not None:
        d = _citizen_followup(s, classification, moves_status=False)
    else:
        d = _new_ticket(s, classification)
    extra = (Audit("forged_officer", {"officer": s.officer.key, "reason": reason}),
             Send("forged_warning", s.officer.key, {"reason": reason}))
    return Decision(d.kind, d.actions + extra, reason)


def _new_ticket(s: Situation, classification: dict[str, Any] | None, linked_ref: str | None = None) -> Decision:
    m = s.message
    service = (classification or {}).get("service")
    officer = s.charter.responsible_officer(service)
    status = "open" if service else "triage"
    actions: list = [
        OpenTicket(
            service=service,
            officer=officer.key,
            status=status,
            citizen_email=m.reply_to or m.sender,
            citizen_name=m.sender_name,
            subject=m.subject,
            classification=classification,
            linked_ref=linked_ref,
        ),
        StoreMessage("citizen"),
        Audit("opened", {"service": service, "officer": officer.key, "linked": linked_ref}),
    ]
    if not s.sender_bouncing:
        actions.append(Send("ack", "citizen"))
    actions.append(Send("notice", "officer", relay_attachments=True))
    return Decision("new_ticket", tuple(actions))
