"""Carry out a Decision inside the caller's transaction: rows, events, rendered emails in the outbox.

The caller owns the session and commits; nothing here commits, so a crash at any point leaves either
everything or nothing of a message's effects.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from maildesk import desk as core
from maildesk.app import OfficeDesk
from maildesk.ingest.parse import ParsedMessage, parse_message
from maildesk.ladder import next_escalation_at
from maildesk.outbound import outbox
from maildesk.outbound.compose import compose
from maildesk.outbound.render import render
from maildesk.rules import tokens
from maildesk.store.models import Address, Event, Message, Ticket, TicketCounter

STATUS_BN = {
    "open": "চলমান",
    "triage": "সেবা যাচাই চলছে",
    "waiting": "আপনার তথ্যের অপেক্ষায়",
    "scheduled": "কার্যক্রম নির্ধারিত",
    "resolved": "সমাধান হয়েছে",
    "closed": "বন্ধ",
}

EVENT_TEXT = {
    "opened": ("আবেদন গৃহীত হয়েছে", "request received"),
    "followup": ("আপনার নতুন বার্তা গৃহীত হয়েছে", "your new message was received"),
    "relayed": ("কর্মকর্তা উত্তর দিয়েছেন", "the officer answered"),
    "status": ("অবস্থা পরিবর্তিত হয়েছে", "status changed"),
    "resolved": ("সমাধান করা হয়েছে", "resolved"),
    "closed": ("বন্ধ করা হয়েছে", "closed"),
    "reopened": ("পুনরায় খোলা হয়েছে", "reopened"),
    "service": ("সেবা নির্ধারণ করা হয়েছে", "service set"),
    "due": ("সময়সীমা পরিবর্তিত হয়েছে", "due date changed"),
    "assigned": ("নতুন কর্মকর্তাকে দায়িত্ব দেওয়া হয়েছে", "assigned to another officer"),
    "escalated": ("উর্ধ্বতন কর্মকর্তাকে জানানো হয়েছে", "escalated"),
}


@dataclass(frozen=True)
class Arrival:
    """Where and when a message arrived: the unique key of its row."""

    mailbox: str
    uidvalidity: int
    uid: str
    received_at: datetime
    raw: bytes


@dataclass
class Applier:
    office: OfficeDesk
    session: Session
    secret: str
    now: datetime
    caps: outbox.Caps | None = None
    arrived_at: datetime | None = None  # when the message being handled reached the mailbox
    # Set by a backlog's ingest (jobs/prepare.RenderQueue): rendering and composing the emails is handed to
    # the parse pool and the rows' bytes are filled in before the commit, so the main process moves on.
    render_later: Any = None

    # -- tickets ------------------------------------------------------------------------------------

    def next_ref(self, year: int) -> str:
        """ICT-2026-00042: a per-office, per-year counter, safe under concurrent writers."""
        s, key = self.session, self.office.key
        bumped = s.execute(
            update(TicketCounter).where(TicketCounter.office == key, TicketCounter.year == year)
            .values(last=TicketCounter.last + 1).returning(TicketCounter.last)
        ).scalar()
        if bumped is None:
            # First ticket of the year; a concurrent first insert fails on the unique key and the whole
            # transaction is retried by the caller.
            s.add(TicketCounter(office=key, year=year, last=1))
            s.flush()
            bumped = 1
        return f"{self.office.charter.office.ticket_prefix}-{year}-{bumped:05d}"

    def due_for(self, service: str | None, received_at: datetime) -> tuple[datetime, bool]:
        charter = self.office.charter
        if service is None:
            days = charter.office.triage_working_days
            immediate = False
        else:
            d = charter.services[service].deadline
            days, immediate = d.working_days, d.immediate
        return self.office.calendar.due_at(received_at, days).due_at, immediate

    def reschedule(self, ticket: Ticket) -> None:
        if ticket.status in core.DONE_STATUSES or ticket.status == "waiting":
            ticket.next_escalation_at = None
        else:
            ticket.next_escalation_at = next_escalation_at(
                ticket.due_at, ticket.escalation_level, self.office.charter.ladder, self.office.calendar)

    def open_ticket(self, a: core.OpenTicket, received_at: datetime, thread_root: str) -> Ticket:
        local_year = self.office.calendar.local(received_at).year
        due_at, immediate = self.due_for(a.service, received_at)
        linked = None
        if a.linked_ref:
            linked = self.session.scalar(select(Ticket.id).where(Ticket.office == self.office.key,
                                                                 Ticket.ref == a.linked_ref))
        t = Ticket(
            office=self.office.key,
            ref=self.next_ref(local_year),
            service=a.service,
            status=a.status,
            officer=a.officer,
            citizen_email=a.citizen_email,
            citizen_name=a.citizen_name,
            subject=a.subject,
            opened_at=self.now,
            received_at=received_at,
            due_at=due_at,
            immediate=immediate,
            last_activity_at=self.now,
            escalation_level=-1,
            classification=a.classification,
            linked_ticket_id=linked,
            thread_root=thread_root,
        )
        self.reschedule(t)
        self.session.add(t)
        self.session.flush()
        return t

    def change(self, ticket: Ticket, changes: dict[str, Any]) -> None:
        """Apply field changes, keeping the hold clock and the escalation schedule right."""
        new_status = changes.get("status", ticket.status)
        if ticket.status == "waiting" and new_status != "waiting" and ticket.hold_since is not None:
            if ticket.due_at is not None:
                ticket.due_at = self.office.calendar.extend_for_hold(ticket.due_at, ticket.hold_since, self.now)
            ticket.hold_since = None
        if new_status == "waiting" and ticket.status != "waiting":
            ticket.hold_since = self.now
        if new_status == "resolved" and ticket.status != "resolved":
            ticket.resolved_at = self.now
        if new_status == "closed" and ticket.status != "closed":
            ticket.closed_at = self.now
            ticket.resolved_at = ticket.resolved_at or self.now
        if ticket.status in core.DONE_STATUSES and new_status not in core.DONE_STATUSES and "due_at" not in changes:
            # Reopened: the charter's promise starts again from now, and the ladder from its first rung.
            ticket.due_at, ticket.immediate = self.due_for(ticket.service, self.now)
            ticket.escalation_level = -1
            ticket.resolved_at = ticket.closed_at = None
        cal = self.office.calendar
        if "due_days" in changes:
            changes["due_at"] = cal.due_at(self.now, int(changes.pop("due_days"))).due_at
        if "due_date" in changes:
            changes["due_at"] = cal.office_close(changes.pop("due_date"))
        if "service" in changes and "due_at" not in changes:
            ticket.due_at, ticket.immediate = self.due_for(changes["service"], ticket.received_at)
            ticket.escalation_level = -1
        for key, value in changes.items():
            setattr(ticket, key, value)
        if "due_at" in changes:
            ticket.escalation_level = -1
        ticket.last_activity_at = self.now
        self.reschedule(ticket)

    def audit(self, ticket: Ticket | None, kind: str, data: dict | None = None, actor: str = "desk") -> None:
        self.session.add(Event(office=self.office.key, ticket_id=ticket.id if ticket else None, at=self.now,
                               kind=kind, actor=actor, data=data or {}))

    # -- messages -----------------------------------------------------------------------------------

    def store_message(self, m: ParsedMessage, arrival: Arrival, ticket: Ticket | None, a: core.StoreMessage) -> Message:
        row = Message(
            office=self.office.key,
            ticket_id=ticket.id if ticket else None,
            mailbox=arrival.mailbox,
            uidvalidity=arrival.uidvalidity,
            uid=arrival.uid,
            message_id=m.message_id,
            message_key=m.message_key,
            sender=m.sender,
            sender_name=m.sender_name,
            subject=m.subject,
            sent_at=m.date,
            received_at=arrival.received_at,
            text=m.text,
            reply_text=a.reply_text,
            kind=a.kind,
            note=a.note,
            in_reply_to=" ".join(m.in_reply_to) or None,
            references=" ".join(m.references) or None,
            raw=arrival.raw,
        )
        self.session.add(row)
        return row

    def mark_bouncing(self, email: str) -> None:
        row = self.session.scalar(select(Address).where(Address.office == self.office.key, Address.email == email))
        if row is None:
            row = Address(office=self.office.key, email=email)
            self.session.add(row)
        row.bouncing = True
        row.bounced_at = self.now

    # -- outgoing mail ------------------------------------------------------------------------------

    def context(self, ticket: Ticket, m: ParsedMessage | None = None, reply_text: str | None = None,
                extra: dict | None = None) -> dict[str, Any]:
        charter, cal = self.office.charter, self.office.calendar
        service = charter.services.get(ticket.service) if ticket.service else None
        last = self.session.scalar(
            select(Event.kind).where(Event.ticket_id == ticket.id, Event.kind.in_(EVENT_TEXT))
            .order_by(Event.id.desc()).limit(1)) if ticket.id else None
        last_bn, last_en = EVENT_TEXT.get(last or "opened", EVENT_TEXT["opened"])
        classification = ticket.classification or {}
        matched = ", ".join(sorted({str(x.get("matched_text") or x.get("term") or x) if isinstance(x, dict) else str(x)
                                    for x in classification.get("matched", [])}))[:300]
        ctx = {
            "office": charter.office,
            "service": service,
            "officer": charter.officers[ticket.officer],
            "ticket": {
                "ref": ticket.ref,
                "subject": ticket.subject,
                "status": ticket.status,
                "status_bn": STATUS_BN.get(ticket.status, ticket.status),
                "citizen_email": ticket.citizen_email,
                "citizen_name": ticket.citizen_name,
                "opened_at": cal.local(ticket.opened_at),
                "due_at": cal.local(ticket.due_at) if ticket.due_at else None,
                "immediate": ticket.immediate,
                "last_action_bn": last_bn,
                "last_action_en": last_en,
            },
            "matched": matched,
            "message": None,
            "reopened": False,
        }
        if m is not None:
            ctx["message"] = {
                "sender": m.sender,
                "sender_name": m.sender_name or m.sender,
                "subject": m.subject,
                "text": m.text,
                "reply_text": reply_text if reply_text is not None else m.text,
                "received_at": cal.local(self.arrived_at or self.now),
                "attachments": [att.filename for att in m.attachments],
            }
        ctx.update(extra or {})
        return ctx

    def request_message(self, ticket: Ticket) -> ParsedMessage | None:
        """The message that opened the ticket, parsed again from its stored bytes."""
        raw = self.session.scalar(select(Message.raw).where(Message.ticket_id == ticket.id, Message.kind == "citizen")
                                  .order_by(Message.id).limit(1)) if ticket.id else None
        return parse_message(raw) if raw else None

    def citizen_thread(self, ticket: Ticket) -> tuple[str | None, tuple[str, ...]]:
        """The citizen's latest message in this ticket and its References: mail the desk sends on
        someone else's behalf (an officer's answer, an escalation) threads under the citizen's own
        conversation, never under the officer's message, which the citizen never saw."""
        officers = [o.email.lower() for o in self.office.charter.officers.values()]
        row = self.session.execute(
            select(Message.message_id, Message.references)
            .where(Message.ticket_id == ticket.id, Message.kind.in_(("citizen", "followup", "status_query")),
                   Message.sender.not_in(officers))
            .order_by(Message.id.desc()).limit(1)).first() if ticket.id else None
        if row is None:
            return ticket.thread_root, ()
        return row.message_id, tuple((row.references or "").split())

    def send(self, ticket: Ticket, a: core.Send, m: ParsedMessage | None, reply_text: str | None = None,
             reply_to_citizen: str | None = None) -> None:
        charter = self.office.charter
        office = charter.office
        domain = office.desk_address.partition("@")[2]
        unique = secrets.token_hex(5)
        shown = m
        if a.extra.get("assigned_by"):  # a handed-over ticket: the new officer sees the citizen's request
            shown, reply_text = self.request_message(ticket) or m, None
        ctx = self.context(ticket, shown, reply_text, a.extra)
        rendered = render(a.template, **ctx) if self.render_later is None else None
        attachments = []
        if a.relay_attachments and shown is not None:
            # Inline images (logos in an officer's signature) belong to the HTML we do not relay.
            attachments = [(att.filename, att.content_type, att.payload) for att in shown.attachments
                           if not (att.inline and a.to == "citizen")]
        if a.to == "citizen":
            to_name, to_email = ticket.citizen_name, ticket.citizen_email
            message_id = f"<{ticket.ref}.{a.template}.{unique}@{domain}>"
            # Thread under the citizen's conversation: the message being answered, then the first one.
            from_citizen = m is not None and m.sender == ticket.citizen_email
            answering, earlier = (m.message_id, m.references) if from_citizen else self.citizen_thread(ticket)
            answering = reply_to_citizen or answering
            in_reply_to = answering
            refs = [ticket.thread_root, *earlier[-20:], answering]
            reply_to = office.desk_address
            automatic = a.template not in ("relay",)
        else:
            officer = charter.officers[ticket.officer if a.to == "officer" else a.to]
            to_name, to_email = officer.name_en, officer.email
            message_id = tokens.notice_message_id(self.secret, self.office.key, ticket.ref, officer.key, domain, unique)
            in_reply_to = None
            refs = []
            reply_to = office.desk_address
            if charter.office.plus_addressing:
                reply_to = tokens.plus_address(office.desk_address, self.secret, self.office.key, ticket.ref,
                                               officer.key)
            automatic = True
        composing = dict(
            sender_name=office.desk_name,
            sender=office.desk_address,
            to=[(to_name, to_email)],
            message_id=message_id,
            date=self.now,
            in_reply_to=in_reply_to,
            references=[r for r in refs if r],
            reply_to=reply_to,
            automatic=automatic,
            auto_kind="auto-replied" if a.to == "citizen" else "auto-generated",
            extra_headers={"X-Maildesk-Ticket": ticket.ref},
            attachments=attachments,
        )
        raw = compose(rendered, **composing) if self.render_later is None else b""
        trigger = m.message_id if m is not None else unique
        row = outbox.enqueue(
            self.session,
            office=self.office.key,
            kind=a.template,
            dedupe_key=a.extra.get("dedupe_key") or f"{a.template}:{a.to}:{ticket.ref}:{trigger}",
            message_id=message_id,
            sender=office.desk_address,
            recipients=[to_email],
            raw=raw,
            now=self.now,
            ticket_id=ticket.id,
            automatic=automatic,
            caps=self.caps if a.to == "citizen" else None,
        )
        if row is not None and self.render_later is not None:
            self.render_later.add(row, a.template, ctx, composing)

    # -- the whole decision -------------------------------------------------------------------------

    def apply(self, decision: core.Decision, m: ParsedMessage, arrival: Arrival, ticket: Ticket | None) -> Ticket | None:
        reply_text = None
        self.arrived_at = arrival.received_at
        for action in decision.actions:
            if isinstance(action, core.OpenTicket):
                ticket = self.open_ticket(action, arrival.received_at, m.message_id)
            elif isinstance(action, core.StoreMessage):
                reply_text = action.reply_text
                self.store_message(m, arrival, ticket, action)
            elif isinstance(action, core.Update):
                self.change(ticket, dict(action.changes))
            elif isinstance(action, core.Audit):
                if action.kind == "citizen_bouncing":
                    self.mark_bouncing(action.data["email"])
                self.audit(ticket, action.kind, action.data, actor=m.sender or "desk")
            elif isinstance(action, core.Send):
                if ticket is not None:
                    self.send(ticket, action, m, reply_text)
        if ticket is not None:
            ticket.last_activity_at = self.now
        return ticket
