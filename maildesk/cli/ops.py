"""Operations commands: the outbox and its dead letters, quarantined messages, attachment export.

`maildesk outbox [--dead] [--retry ID …]`, `maildesk quarantine [list|show ID|release ID]`,
`maildesk attachments REF [--to DIR]`. Each prints one plain table or a clear line; nothing here sends mail
by itself (a retried row goes out with the next `maildesk send` or worker run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sqlalchemy import select

from maildesk.cli.core import iso, open_desk, print_table
from maildesk.jobs.alerts import original_headers
from maildesk.store.models import Event, IngestFailure, Outbox, Ticket


def _outbox_row(o: Outbox) -> dict:
    return {"id": o.id, "kind": o.kind, "to": ", ".join(o.recipients), "status": o.status, "attempts": o.attempts,
            "created": iso(o.created_at), "next": iso(o.next_attempt_at) if o.status == "pending" else "",
            "error": (o.last_error or "")[:160]}


def cmd_outbox(args) -> int:
    desk = open_desk(args)
    try:
        if args.retry:
            return _retry(desk, args.retry)
        with desk.sessions() as s:
            q = select(Outbox).order_by(Outbox.id)
            if args.dead:
                q = q.where(Outbox.status == "dead")
            elif not args.all:
                q = q.where(Outbox.status.in_(("pending", "dead")))
            rows = [_outbox_row(o) for o in s.scalars(q)]
        if args.json:
            for r in rows:
                print(json.dumps(r, ensure_ascii=False))
            return 0
        if not rows:
            print("no dead letters" if args.dead else "the outbox is empty")
            return 0
        print_table(rows, [("id", "id"), ("kind", "kind"), ("to", "to"), ("status", "status"),
                           ("attempts", "tries"), ("next", "next try"), ("error", "last error")])
        return 0
    finally:
        desk.close()


def _retry(desk, ids: list[int]) -> int:
    """Put dead letters back in the queue, now; the age limit starts again from this moment."""
    now = desk.now()
    missing = []
    with desk.sessions.begin() as s:
        for row_id in ids:
            row = s.get(Outbox, row_id)
            if row is None or row.status == "sent":
                missing.append(row_id)
                continue
            row.status, row.next_attempt_at, row.created_at = "pending", now, now
            s.add(Event(office=row.office, ticket_id=row.ticket_id, at=now, kind="dead_letter_retried",
                        actor="cli", data={"outbox_id": row.id, "previous_error": row.last_error}))
    for row_id in missing:
        print(f"outbox row {row_id}: not found or already sent", file=sys.stderr)
    done = len(ids) - len(missing)
    print(f"{done} row(s) queued again; they go out with the next `maildesk send` or worker run")
    return 1 if missing else 0


# ---- quarantine ------------------------------------------------------------------------------------


def cmd_quarantine(args) -> int:
    desk = open_desk(args)
    try:
        if args.action == "list":
            with desk.sessions() as s:
                rows = [{"id": f.id, "office": f.office, "uid": f.uid, "attempts": f.attempts,
                         "since": iso(f.first_seen_at), "bytes": len(f.raw or b""), "reason": f.reason[:120],
                         "subject": original_headers(f.raw).get("Subject", "")[:60]}
                        for f in s.scalars(select(IngestFailure).where(IngestFailure.quarantined.is_(True))
                                           .order_by(IngestFailure.id))]
            if not rows:
                print("nothing is quarantined")
                return 0
            print_table(rows, [("id", "id"), ("office", "office"), ("uid", "uid"), ("attempts", "tries"),
                               ("since", "since"), ("bytes", "bytes"), ("subject", "subject"), ("reason", "reason")])
            return 0
        if args.id is None:
            print(f"maildesk quarantine {args.action}: give the id (see `maildesk quarantine list`)", file=sys.stderr)
            return 2
        if args.action == "show":
            return _show(desk, args)
        return _release(desk, args.id)
    finally:
        desk.close()


def _show(desk, args) -> int:
    with desk.sessions() as s:
        f = s.get(IngestFailure, args.id)
        if f is None:
            print(f"no quarantine record {args.id}", file=sys.stderr)
            return 1
        if args.raw:
            sys.stdout.buffer.write(f.raw or b"")
            return 0
        print(f"id          {f.id}\noffice      {f.office}\nmailbox     {f.mailbox}\nuid         {f.uid} "
              f"(UIDVALIDITY {f.uidvalidity})\nattempts    {f.attempts}\nquarantined {f.quarantined}\n"
              f"first seen  {iso(f.first_seen_at)}\nlast try    {iso(f.updated_at)}\nbytes       {len(f.raw or b'')}\n"
              f"reason      {f.reason}")
        for key, value in original_headers(f.raw).items():
            print(f"{key.lower():11} {value}")
        print(f"\nthe original bytes: maildesk quarantine show {f.id} --raw > message.eml")
    return 0


def _release(desk, failure_id: int) -> int:
    """Run a quarantined message through the pipeline again (after a fix, or to accept an oversized one)."""
    from maildesk.apply import Arrival
    from maildesk.jobs.ingest import process_message

    now = desk.now()
    with desk.sessions() as s:
        f = s.get(IngestFailure, failure_id)
        if f is None or not f.quarantined:
            print(f"no quarantined message {failure_id}", file=sys.stderr)
            return 1
        od = desk.offices.get(f.office)
        if od is None:
            print(f"quarantined message {failure_id} belongs to office {f.office!r}, which is not configured",
                  file=sys.stderr)
            return 1
        arrival = Arrival(f.mailbox, f.uidvalidity, f.uid, f.first_seen_at, f.raw or b"")
    try:
        with desk.sessions.begin() as s:
            kind = process_message(s, desk, od, arrival, now)
            f = s.get(IngestFailure, failure_id)
            f.quarantined = False
            f.reason = f"{f.reason} [released {now.isoformat(timespec='seconds')}: {kind}]"[:4000]
            f.updated_at = now
    except Exception as exc:
        print(f"quarantined message {failure_id} still fails: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"quarantined message {failure_id} released: {kind}")
    return 0


# ---- attachments -----------------------------------------------------------------------------------


def cmd_attachments(args) -> int:
    from maildesk.attachments import export_ticket

    desk = open_desk(args)
    try:
        with desk.sessions() as s:
            t = s.scalar(select(Ticket).where(Ticket.ref == args.ref.upper()))
            if t is None:
                print(f"no ticket {args.ref}", file=sys.stderr)
                return 1
            if args.to:
                folder = Path(args.to)
            elif desk.settings.attachments_dir:
                folder = desk.settings.attachments_dir / t.ref
            else:
                print("give --to DIR (or set limits.attachments_dir in the settings file)", file=sys.stderr)
                return 2
            paths = export_ticket(s, t, folder)
        for p in paths:
            print(p)
        print(f"{len(paths)} attachment(s) of {t.ref} in {folder}", file=sys.stderr)
        return 0
    finally:
        desk.close()


def register(sub) -> None:
    p = sub.add_parser("outbox", help="outgoing mail still waiting, and dead letters")
    p.add_argument("--dead", action="store_true", help="only dead letters (gave up or rejected)")
    p.add_argument("--all", action="store_true", help="also what was sent")
    p.add_argument("--retry", type=int, nargs="+", metavar="ID", help="queue these dead letters again")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_outbox)

    p = sub.add_parser("quarantine", help="messages that could not be processed (kept with their bytes)")
    p.add_argument("action", nargs="?", default="list", choices=("list", "show", "release"))
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--raw", action="store_true", help="show: write the original bytes to standard output")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("attachments", help="save a ticket's attachments to a folder (names made safe)")
    p.add_argument("ref")
    p.add_argument("--to", help="folder (default: limits.attachments_dir/REF)")
    p.set_defaults(func=cmd_attachments)
