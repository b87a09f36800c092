"""Core commands: demo, run, poll, send, tickets, show, check-config, db."""

from __future__ import annotations

import json
import sys
from datetime import datetime

from sqlalchemy import select

from maildesk.app import Desk, build_desk
from maildesk.cli import register_secrets
from maildesk.errors import ConfigError
from maildesk.settings import Settings, load_settings
from maildesk.store.models import Event, Message, Outbox, Ticket


def load(args) -> Settings:
    settings = load_settings(args.config)
    register_secrets(settings.hmac_secret, settings.smtp.password,
                     *(o.mailbox.password for o in settings.offices))
    return settings


def open_desk(args, clock=None) -> Desk:
    return build_desk(load(args), clock=clock)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") if dt else None


def ticket_dict(t: Ticket, calendar=None) -> dict:
    local = calendar.local if calendar else (lambda d: d)
    return {
        "ref": t.ref,
        "office": t.office,
        "service": t.service,
        "status": t.status,
        "officer": t.officer,
        "citizen": t.citizen_email,
        "citizen_name": t.citizen_name,
        "subject": t.subject,
        "opened_at": iso(local(t.opened_at)),
        "received_at": iso(local(t.received_at)),
        "due_at": iso(local(t.due_at)) if t.due_at else None,
        "resolved_at": iso(local(t.resolved_at)) if t.resolved_at else None,
        "escalation_level": t.escalation_level,
    }


def print_table(rows: list[dict], columns: list[tuple[str, str]], out=sys.stdout) -> None:
    """A plain aligned table (wide Bengali glyphs may misalign slightly in some terminals)."""
    widths = [max(len(title), *(len(str(r.get(key) or "")) for r in rows)) if rows else len(title)
              for key, title in columns]
    print("  ".join(title.ljust(w) for (_, title), w in zip(columns, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(str(r.get(key) or "").ljust(w) for (key, _), w in zip(columns, widths)), file=out)


# ---- commands -------------------------------------------------------------------------------------


def cmd_check_config(args) -> int:
    from maildesk.app import load_office

    settings = load(args)
    now_year = datetime.now().year
    problems = 0
    for office in settings.offices:
        od = load_office(office, settings, range(now_year, now_year + 2))
        print(f"office {od.key}: charter {od.charter.path} — {len(od.charter.services)} services, "
              f"{len(od.charter.officers)} officers, {len(od.charter.ladder)} escalation levels")
        print(f"  mailbox  {office.mailbox.safe}")
        for warning in od.calendar.holidays.warnings:
            print(f"  warning: {warning}")
        for warning in getattr(od.classifier, "warnings", ()):
            print(f"  warning: {warning}")
    print(f"smtp     {settings.smtp.safe}")
    from maildesk.settings import redacted

    print(f"database {redacted(settings.database_url)}")
    print("hmac key " + ("set" if settings.hmac_secret else "not set: generated and kept in the database"))
    print("config OK")
    return 1 if problems else 0


def cmd_db_upgrade(args) -> int:
    from maildesk.store import db

    settings = load(args)
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    engine.dispose()
    print("database schema is up to date")
    return 0


def cmd_poll(args) -> int:
    from maildesk.jobs.ingest import ingest_all, terminal_progress
    from maildesk.jobs.send import send_pending

    desk = open_desk(args)
    try:
        reports = ingest_all(desk, progress=terminal_progress)
        failed = False
        for r in reports:
            if r.error:
                failed = True
                print(f"{r.office}: mailbox error: {r.error}", file=sys.stderr)
            else:
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.kinds.items())) or "nothing new"
                print(f"{r.office}: {r.seen} read, {r.stored} stored ({kinds}), {r.duplicates} already stored, "
                      f"{r.quarantined} quarantined, {r.failed} to retry")
        if not args.no_send:
            s = send_pending(desk)
            print(f"outbox: {s.sent} sent, {s.retried} to retry, {s.dead} dead")
        return 1 if failed else 0
    finally:
        desk.close()


def cmd_send(args) -> int:
    from maildesk.jobs.send import send_pending

    desk = open_desk(args)
    try:
        s = send_pending(desk)
        print(f"outbox: {s.sent} sent, {s.retried} to retry, {s.dead} dead")
        return 0 if not s.errors else 1
    finally:
        desk.close()


def cmd_run(args) -> int:
    from maildesk.jobs.worker import run_worker

    desk = open_desk(args)
    try:
        return run_worker(desk)
    finally:
        desk.close()


def cmd_tickets(args) -> int:
    desk = open_desk(args)
    try:
        with desk.sessions() as s:
            q = select(Ticket).order_by(Ticket.id)
            if args.status:
                q = q.where(Ticket.status.in_(args.status.split(",")))
            if args.office:
                q = q.where(Ticket.office == args.office)
            rows = []
            for t in s.scalars(q):
                od = desk.offices.get(t.office)
                rows.append(ticket_dict(t, od.calendar if od else None))
        if args.json:
            for r in rows:
                print(json.dumps(r, ensure_ascii=False))
        else:
            print_table(rows, [("ref", "ticket"), ("service", "service"), ("status", "status"),
                               ("due_at", "due"), ("citizen", "citizen"), ("subject", "subject")])
        return 0
    finally:
        desk.close()


def cmd_show(args) -> int:
    desk = open_desk(args)
    try:
        with desk.sessions() as s:
            t = s.scalar(select(Ticket).where(Ticket.ref == args.ref.upper()))
            if t is None:
                print(f"no ticket {args.ref}", file=sys.stderr)
                return 1
            od = desk.offices.get(t.office)
            data = ticket_dict(t, od.calendar if od else None)
            data["classification"] = t.classification
            data["messages"] = [
                {"at": iso(m.received_at), "kind": m.kind, "from": m.sender, "subject": m.subject,
                 "message_id": m.message_id, "note": m.note, "text": (m.reply_text or m.text)[:2000]}
                for m in s.scalars(select(Message).where(Message.ticket_id == t.id).order_by(Message.id))
            ]
            data["events"] = [
                {"at": iso(e.at), "kind": e.kind, "actor": e.actor, "data": e.data}
                for e in s.scalars(select(Event).where(Event.ticket_id == t.id).order_by(Event.id))
            ]
            data["outbox"] = [
                {"kind": o.kind, "to": o.recipients, "status": o.status, "attempts": o.attempts,
                 "message_id": o.message_id, "sent_at": iso(o.sent_at), "error": o.last_error}
                for o in s.scalars(select(Outbox).where(Outbox.ticket_id == t.id).order_by(Outbox.id))
            ]
        if args.json:
            print(json.dumps(data, ensure_ascii=False, default=str))
            return 0
        for key in ("ref", "service", "status", "officer", "citizen", "subject", "received_at", "due_at",
                    "resolved_at", "escalation_level"):
            print(f"{key:17} {data[key] if data[key] is not None else '-'}")
        matched = (data["classification"] or {}).get("matched") or []
        if matched:
            print(f"{'matched':17} " + ", ".join(
                f"{x.get('term')}→{x.get('matched_text')} ({x.get('where')})" if isinstance(x, dict) else str(x)
                for x in matched[:12]))
        print("\nmessages:")
        for m in data["messages"]:
            print(f"  {m['at']}  {m['kind']:12} {m['from']}  {m['subject']}")
        print("\nevents:")
        for e in data["events"]:
            print(f"  {e['at']}  {e['kind']:16} {e['actor']}  {json.dumps(e['data'], ensure_ascii=False)}")
        print("\noutgoing mail:")
        for o in data["outbox"]:
            print(f"  {o['kind']:14} {o['status']:8} {', '.join(o['to'])}  {o['error'] or ''}")
        return 0
    finally:
        desk.close()


def cmd_demo(args) -> int:
    from maildesk.demo import run_demo

    return run_demo(args.dir)


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a local demo mailbox (no mail account needed)")
    p.add_argument("--dir", default="maildesk-demo", help="where the demo keeps its mailbox, database and sent mail")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="the worker: ingest, send, escalate and digest on a schedule")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("poll", help="read new mail once (and send the outbox)")
    p.add_argument("--once", action="store_true", help="accepted for clarity; poll always runs once")
    p.add_argument("--no-send", action="store_true", help="only ingest; leave the outbox for `maildesk send`")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("send", help="send what is waiting in the outbox")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("tickets", help="list tickets")
    p.add_argument("--status", help="comma-separated statuses, e.g. open,triage")
    p.add_argument("--office", help="only this office")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_tickets)

    p = sub.add_parser("show", help="one ticket with its messages, events and outgoing mail")
    p.add_argument("ref")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("check-config", help="validate settings, charter, keywords and holiday files")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("db", help="database schema")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    u = dbsub.add_parser("upgrade", help="create or upgrade the schema (Alembic)")
    u.set_defaults(func=cmd_db_upgrade)
