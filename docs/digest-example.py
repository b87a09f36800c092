"""Regenerate docs/digest-example.* and docs/report-example.* with the real commands.

Five weeks of office life are played through the real pipeline with a simulated clock: citizens' mail
(the demo samples and part of the dev corpus) lands in a Maildir, the ingest cycle runs, officers answer
by replying to their notices (#resolve, #status waiting), and the escalation sweep runs every hour. Then

    maildesk digest --preview --now 2026-12-20T09:00 --out docs/digest-example
    maildesk report --quarter 2026Q4 --now 2027-01-03T10:00 --out docs/report-example

write the examples. Run from the repository:  python docs/digest-example.py
"""

from __future__ import annotations

import csv
import email
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from maildesk.app import build_desk  # noqa: E402
from maildesk.cli import main as maildesk  # noqa: E402
from maildesk.jobs.escalate import escalate_all  # noqa: E402
from maildesk.jobs.ingest import ingest_all  # noqa: E402
from maildesk.jobs.send import send_pending  # noqa: E402
from maildesk.settings import default_config_dir, load_settings  # noqa: E402
from maildesk.store.models import Outbox, Ticket  # noqa: E402

DHAKA = ZoneInfo("Asia/Dhaka")
START, DIGEST_AT, END = datetime(2026, 11, 22, 8, 0, tzinfo=DHAKA), datetime(2026, 12, 20, 9, 0, tzinfo=DHAKA), \
    datetime(2027, 1, 3, 10, 0, tzinfo=DHAKA)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now.astimezone(timezone.utc)


def office_moment(rnd: random.Random, day) -> datetime:
    """Mostly office hours, some evenings and weekends, like real mail."""
    hour = rnd.choice([9, 10, 10, 11, 12, 14, 15, 16, 19, 22])
    return datetime(day.year, day.month, day.day, hour, rnd.randrange(60), tzinfo=DHAKA)


def arrivals(rnd: random.Random) -> list[tuple[datetime, bytes]]:
    samples = sorted((ROOT / "maildesk" / "demo" / "mail").glob("*.eml"))
    corpus = ROOT / "tests" / "data" / "corpus-dev"
    with open(corpus / "labels.csv", encoding="utf-8") as f:
        corpus_files = [corpus / row["file"] for row in csv.DictReader(f) if row["label"] != "none"]
    files = samples + rnd.sample(corpus_files, 40)
    days = (END - START).days - 7
    return sorted((office_moment(rnd, (START + timedelta(days=rnd.randrange(days))).date()), p.read_bytes())
                  for p in files)


def officer_reply(desk, ticket: Ticket, command: str, answer: str) -> bytes:
    """What the officer's mail client sends when they answer the notice."""
    with desk.sessions() as s:
        notice = s.scalars(select(Outbox).where(Outbox.ticket_id == ticket.id, Outbox.kind == "notice")
                           .order_by(Outbox.id)).first()
    original = email.message_from_bytes(notice.raw, policy=policy.default)
    officer = desk.offices[ticket.office].charter.officers[ticket.officer]
    m = EmailMessage()
    m["From"] = f"{officer.name_en} <{officer.email}>"
    m["To"] = original["Reply-To"] or original["From"]
    m["Subject"] = "Re: " + original["Subject"]
    m["Message-ID"] = f"<reply-{ticket.ref}-{command.strip('#').split()[0]}@officer.example.gov.bd>"
    m["In-Reply-To"] = original["Message-ID"].strip()
    m["References"] = original["Message-ID"].strip()
    m.set_content(f"{command}\n{answer}\n\n-- \n{officer.name_bn}\n")
    return bytes(m)


def drop(maildir: Path, raw: bytes, key: str, at: datetime) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "tmp" / key).write_bytes(raw)
    os.replace(maildir / "tmp" / key, maildir / "new" / key)
    os.utime(maildir / "new" / key, (at.timestamp(), at.timestamp()))


def main() -> int:
    rnd = random.Random(2026)
    work = Path(tempfile.mkdtemp(prefix="maildesk-example-"))
    env = {"MAILDESK_MAILBOX_URL": f"maildir://{work / 'mailbox'}", "MAILDESK_SMTP_URL": f"file://{work / 'sent'}",
           "MAILDESK_DATABASE_URL": f"sqlite:///{work / 'maildesk.db'}", "MAILDESK_HMAC_SECRET": "example"}
    clock = Clock(START)
    desk = build_desk(load_settings(default_config_dir() / "maildesk.toml", env=env), clock=clock)
    mail = arrivals(rnd)
    plans: dict[str, tuple[datetime, str, str]] = {}  # ticket ref -> when the officer answers, and how
    n, now, previewed = 0, START, False
    while now <= END:
        clock.now = now
        while n < len(mail) and mail[n][0] <= now:
            drop(work / "mailbox", mail[n][1], f"{int(mail[n][0].timestamp())}.m{n}", mail[n][0])
            n += 1
        for ref, (when, command, answer) in list(plans.items()):
            if when <= now:
                with desk.sessions() as s:
                    t = s.scalar(select(Ticket).where(Ticket.ref == ref))
                drop(work / "mailbox", officer_reply(desk, t, command, answer), f"{int(when.timestamp())}.{ref}", when)
                del plans[ref]
        ingest_all(desk)
        with desk.sessions() as s:
            for t in s.scalars(select(Ticket).where(Ticket.status.in_(["open", "triage"]), Ticket.opened_at >= now)):
                # The officer's week: most requests answered within days, some put on hold, some forgotten.
                roll = rnd.random()
                if roll < 0.6:
                    plans[t.ref] = (now + timedelta(hours=rnd.randrange(3, 200)), "#resolve",
                                    "আপনার সমস্যাটির সমাধান করা হয়েছে। ধন্যবাদ।")
                elif roll < 0.72:
                    plans[t.ref] = (now + timedelta(hours=rnd.randrange(2, 30)), "#status waiting",
                                    "অনুগ্রহ করে অফিসের স্মারক নম্বরসহ আবেদনপত্রটি পাঠান।")
        if now.minute == 0:
            escalate_all(desk)
        send_pending(desk)
        if not previewed and now >= DIGEST_AT:
            desk_env = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                maildesk(["digest", "--preview", "--now", DIGEST_AT.isoformat(), "--out",
                          str(ROOT / "docs" / "digest-example")])
            finally:
                for k, v in desk_env.items():
                    os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            previewed = True
        now += timedelta(minutes=30)
    desk.close()
    os.environ.update(env)
    return maildesk(["report", "--quarter", "2026Q4", "--now", END.isoformat(), "--out",
                     str(ROOT / "docs" / "report-example")])


if __name__ == "__main__":
    sys.exit(main())
