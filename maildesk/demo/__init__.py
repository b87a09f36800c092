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

from email import message_from_bytes, policy
from email.message import EmailMessage

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


OFFICER_REPLY_KEY = "1795999999.demo-officer-reply.maildesk"


def officer_reply(notice_raw: bytes, officer_email: str, desk_address: str) -> bytes:
    """The officer pressing Reply on the notice in their own mail client: an answer, a command, a
    signature and the quoted notice, threaded by In-Reply-To/References as every client does."""
    notice = message_from_bytes(notice_raw, policy=policy.default)
    reply = EmailMessage()
    reply["From"] = officer_email
    reply["To"] = desk_address
    reply["Subject"] = f"Re: {notice['Subject']}"
    reply["Message-ID"] = "<demo-officer-reply@upazila.example.gov.bd>"
    reply["In-Reply-To"] = notice["Message-ID"]
    reply["References"] = notice["Message-ID"]
    quoted = "\n".join("> " + line for line in notice.get_body(("plain",)).get_content().splitlines())
    reply.set_content(
        "আগামী রবিবার সকাল ১০টায় ল্যাবটি পরিদর্শন করে ল্যাপটপ ও রাউটার দেখা হবে। অনুগ্রহ করে ল্যাব সহকারীকে "
        "উপস্থিত রাখবেন।\n\n#status scheduled\n\n-- \nসহকারী প্রোগ্রামার, খালিয়াজুরী\n\n"
        f"On Sun, 22 Nov 2026 at 09:30, Maildesk <{desk_address}> wrote:\n{quoted}\n")
    return bytes(reply)


def answer_first_ticket(desk, maildir: Path) -> bool:
    """Play the officer once: reply to the first ticket's notice, unless that reply was delivered before."""
    known = {name.partition(":")[0] for sub in ("new", "cur") for name in os.listdir(maildir / sub)}
    if OFFICER_REPLY_KEY in known:
        return False
    with desk.sessions() as s:
        notice = s.scalar(select(Outbox).where(Outbox.kind == "notice").order_by(Outbox.id).limit(1))
        if notice is None:
            return False
        ticket = s.get(Ticket, notice.ticket_id)
        od = desk.offices[ticket.office]
        officer = od.charter.officers[ticket.officer]
        raw = officer_reply(notice.raw, officer.email, od.charter.office.desk_address)
    (maildir / "tmp" / OFFICER_REPLY_KEY).write_bytes(raw)
    os.replace(maildir / "tmp" / OFFICER_REPLY_KEY, maildir / "new" / OFFICER_REPLY_KEY)
    return True


def run_demo(folder: str | os.PathLike, out=sys.stdout) -> int:
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    env = {
        "MAILDESK_MAILBOX_URL": f"maildir://{root / 'mailbox'}",
        "MAILDESK_SMTP_URL": f"file://{root / 'sent'}",
        "MAILDESK_DATABASE_URL": f"sqlite:///{root / 'maildesk.db'}",
    }
    settings = load_settings(default_config_dir() / "maildesk.toml", env=env)
    maildir = Path(Endpoint.parse(env["MAILDESK_MAILBOX_URL"], ("maildir",), "-", "-").path)
    added = seed_mailbox(maildir)
    logging.getLogger("maildesk").setLevel(logging.WARNING)  # the table below is the demo's report
    desk = build_desk(settings)
    try:
        reports = ingest_all(desk)
        sent = send_pending(desk)
        replied = answer_first_ticket(desk, maildir)
        if replied:  # the officer's answer comes back through the same mailbox
            officer_reports = ingest_all(desk)
            officer_sent = send_pending(desk)
        with desk.sessions() as s:
            relay = s.scalar(select(Outbox).where(Outbox.kind == "relay").order_by(Outbox.id).limit(1))
            relay_info = (relay.message_id, relay.recipients[0], s.get(Ticket, relay.ticket_id).ref) if relay else None
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
    if replied:
        r = officer_reports[0]
        print(f"The officer answered the first notice from their mail client (a reply with '#status scheduled');", file=out)
        print(f"  ingest   {r.stored} stored ({', '.join(f'{k}: {v}' for k, v in sorted(r.kinds.items()))}); "
              f"{officer_sent.sent} more emails sent", file=out)
    if relay_info:
        mid, to, ref = relay_info
        name = "".join(c if c.isalnum() or c in "-._@" else "_" for c in mid.strip("<>"))
        print(f"  {ref}: the answer went to {to} without the quote or signature: {root / 'sent' / (name + '.eml')}",
              file=out)
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
