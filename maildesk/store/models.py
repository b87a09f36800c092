"""SQLAlchemy 2.0 tables. Every row carries its office key so one database can serve many offices.

The unique keys are the exactly-once guarantee: a message is stored once per (office, mailbox,
UIDVALIDITY, UID) and once per (office, Message-ID or content hash); an outgoing email once per
(office, dedupe key), so a level of the ladder or a weekly digest cannot be queued twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

ID = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        from datetime import timezone

        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        from datetime import timezone

        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("office", "ref", name="uq_ticket_ref"),
        # The escalation sweep reads only open tickets whose next level is due.
        Index("ix_ticket_escalation", "office", "next_escalation_at"),
        Index("ix_ticket_status", "office", "status"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(32))
    service: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    officer: Mapped[str] = mapped_column(String(64))
    citizen_email: Mapped[str] = mapped_column(String(320))
    citizen_name: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    immediate: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=-1)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    classification: Mapped[dict | None] = mapped_column(JSON)
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Message-ID of the citizen's first message, so every reply threads under their conversation.
    thread_root: Mapped[str | None] = mapped_column(String(998))

    messages: Mapped[list["Message"]] = relationship(back_populates="ticket", order_by="Message.id")
    events: Mapped[list["Event"]] = relationship(back_populates="ticket", order_by="Event.id")


class Message(Base):
    """Every message that reached the mailbox, whatever became of it."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("office", "mailbox", "uidvalidity", "uid", name="uq_message_uid"),
        UniqueConstraint("office", "message_key", name="uq_message_key"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    mailbox: Mapped[str] = mapped_column(String(512))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    message_key: Mapped[str] = mapped_column(String(998))
    sender: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text, default="")
    reply_text: Mapped[str | None] = mapped_column(Text)
    # What the desk made of it: citizen, followup, officer, officer_cc, automatic, bounce, own, rejected
    kind: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)

    ticket: Mapped[Ticket | None] = relationship(back_populates="messages")


class Event(Base):
    """The audit trail: everything that happened to a ticket, who did it and when."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(320), default="desk")
    data: Mapped[dict | None] = mapped_column(JSON)

    ticket: Mapped[Ticket | None] = relationship(back_populates="events")


class Outbox(Base):
    """Outgoing email, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("office", "dedupe_key", name="uq_outbox_dedupe"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # The per-recipient cap on automatic mail counts recent rows to one address.
        Index("ix_outbox_recipient", "office", "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(512))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    sender: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list] = mapped_column(JSON)
    recipient: Mapped[str] = mapped_column(String(320))  # the first recipient, lower-cased
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class MailboxState(Base):
    """Where ingest stopped in a mailbox (UIDVALIDITY + last UID), and who may read it now."""

    __tablename__ = "mailbox_state"
    __table_args__ = (UniqueConstraint("office", "mailbox", name="uq_mailbox_state"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str] = mapped_column(String(512))
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_holder: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IngestFailure(Base):
    """A message that could not be processed: counted, and after N attempts quarantined with its bytes."""

    __tablename__ = "ingest_failures"
    __table_args__ = (UniqueConstraint("office", "mailbox", "uidvalidity", "uid", name="uq_failure_uid"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str] = mapped_column(String(512))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketCounter(Base):
    """The last ticket number handed out per office and year (refs like ICT-2026-00042)."""

    __tablename__ = "ticket_counters"
    __table_args__ = (UniqueConstraint("office", "year", name="uq_counter"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    last: Mapped[int] = mapped_column(Integer, default=0)


class KeyValue(Base):
    """Small durable facts the desk keeps for itself (e.g. the generated HMAC key)."""

    __tablename__ = "desk_kv"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Address(Base):
    """What the desk knows of an email address: whether it bounces, automatic mail sent to it."""

    __tablename__ = "addresses"
    __table_args__ = (UniqueConstraint("office", "email", name="uq_address"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    bouncing: Mapped[bool] = mapped_column(Boolean, default=False)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRun(Base):
    """A scheduled job that must run once per period (a weekly digest per recipient, …)."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("office", "job", "period", name="uq_job_run"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    office: Mapped[str] = mapped_column(String(64))
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Worker(Base):
    """A running `maildesk run` process: its heartbeat tells the others how many share the mailboxes."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
