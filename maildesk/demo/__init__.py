"""`maildesk demo`: the real pipeline on a local Maildir, a SQLite file and a folder of sent .eml files.

It needs no mail account. The shipped sample mail is copied into the demo inbox under fixed Maildir keys,
so running the demo again adds nothing new and the exactly-once rules keep every count the same.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.jobs.ingest import ingest_all
from maildesk.jobs.send import send_pending
from maildesk.settings import Endpoint, default_config_dir, load_settings
from maildesk.store.models import Outbox, Ticket

SAMPLES = Path(__file__).parent / "mail"


def seed_mailbox(maildir: Path) -> int:
    """Copy sample mail into new/ unless that key was delivered before. Returns how many were added."""
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    known = {name.partition(":")[0] for sub in ("new", "cur") for name in os.listdir(maildir / sub)}
    added = 0
    for i, sample in enumerate(sorted(SAMPLES.glob("*.eml"))):
        key = f"{1795000000 + i * 60}.demo-{sample.stem}.maildesk"
        if key not in known:
            shutil.copyfile(sample, maildir / "tmp" / key)
            os.replace(maildir / "tmp" / key, maildir / "new" / key)
            added += 1
    return added


def run_demo(folder: str | os.PathLike, out=sys.stdout) -> int:
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    env = {
        "MAILDESK_MAILBOX_URL": f"maildir://{root / 'mailbox'}",
        "MAILDESK_SMTP_URL": f"file://{root / 'sent'}",
        "MAILDESK_DATABASE_URL": f"sqlite:///{root / 'maildesk.db'}",
    }
    settings = load_settings(default_config_dir() / "maildesk.toml", env=env)
    added = seed_mailbox(Path(Endpoint.parse(env["MAILDESK_MAILBOX_URL"], ("maildir",), "-", "-").path))
    logging.getLogger("maildesk").setLevel(logging.WARNING)  # the table below is the demo's report
    desk = build_desk(settings)
    try:
        reports = ingest_all(desk)
        sent = send_pending(desk)
        with desk.sessions() as s:
            tickets = list(s.scalars(select(Ticket).order_by(Ticket.id)))
            acks = {o.ticket_id: o for o in s.scalars(select(Outbox).where(Outbox.kind == "ack"))}
            rows = []
            for t in tickets:
                od = desk.offices[t.office]
                ack = acks.get(t.id)
                rows.append((t.ref, t.service or "triage", t.status,
                             od.calendar.local(t.due_at).strftime("%Y-%m-%d %H:%M") if t.due_at else "-",
                             (ack.status if ack else "none (screened)"), t.subject[:48]))
    finally:
        desk.close()
    print(f"maildesk demo in {root}", file=out)
    print(f"  inbox    {root / 'mailbox'}  ({added} sample messages added this run)", file=out)
    for r in reports:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(r.kinds.items())) or "nothing new"
        print(f"  ingest   {r.seen} read, {r.stored} stored ({kinds}), {r.duplicates} already stored", file=out)
    print(f"  outbox   {sent.sent} sent as .eml files into {root / 'sent'}", file=out)
    print(file=out)
    header = ("ticket", "service", "status", "due (Asia/Dhaka)", "acknowledgement", "subject")
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)), file=out)
    print(file=out)
    print(f"Open the acknowledgements with any mail program: {root / 'sent'}/*.eml", file=out)
    first = rows[0][0] if rows else "REF"
    print(f"Look at a ticket:  MAILDESK_DATABASE_URL={env['MAILDESK_DATABASE_URL']} maildesk show {first}", file=out)
    print("Run the demo again: nothing is duplicated.", file=out)
    return 0
