"""How fast the desk reads officers' replies: the pure part and the whole pipeline.

1. Pure: parse + strip quotes/signature + read commands + decide, over the 28 reply fixtures
   (tests/data/replies: 20 text bodies, 8 HTML client formats), repeated.
2. Pipeline on a Maildir, a temp SQLite file and the outbox: N citizens write, then N officer replies
   (a Thunderbird-style reply to each notice with quote, signature, a command and a 40 KB attachment) are
   ingested; each reply is one transaction (message row, ticket change, events, relay + confirmation queued).

    python bench/bench_officer.py [N]     (default 300)
"""

from __future__ import annotations

import email
import json
import os
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from maildesk import desk as core  # noqa: E402
from maildesk.app import build_desk  # noqa: E402
from maildesk.charter import load_charter  # noqa: E402
from maildesk.ingest.parse import parse_message  # noqa: E402
from maildesk.jobs.ingest import ingest_all  # noqa: E402
from maildesk.officer import parse_officer_reply  # noqa: E402
from maildesk.rules.tokens import notice_message_id, verified_ref  # noqa: E402
from maildesk.settings import default_config_dir  # noqa: E402
from maildesk.store.models import Outbox, Ticket  # noqa: E402
from tests.helpers import SUNDAY_MORNING, FixedClock, drop_into_maildir, settings_for  # noqa: E402
from tests.mailclient import new_mail, reply  # noqa: E402

REPLIES = ROOT / "tests" / "data" / "replies"
CHARTER = load_charter(default_config_dir() / "charter.yaml")
AP = CHARTER.officers["ap"].email


def fixtures() -> list[bytes]:
    raws = [p.read_bytes() for p in sorted((REPLIES / "replies-html-dev").glob("*.eml"))]
    for line in (REPLIES / "replies-dev.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            m = EmailMessage()
            m["From"], m["To"], m["Subject"] = AP, CHARTER.office.desk_address, "Re: [ICT-2026-00001] x"
            m.set_content(json.loads(line)["raw_body"])
            raws.append(bytes(m))
    notice = notice_message_id("bench", "khaliajuri", "ICT-2026-00001", "ap", "upazila.example.gov.bd", "b1")
    out = []
    for raw in raws:
        msg = email.message_from_bytes(raw)
        for name in ("In-Reply-To", "References", "From"):
            del msg[name]
        msg["In-Reply-To"], msg["References"], msg["From"] = notice, notice, AP
        out.append(msg.as_bytes())
    return out


def bench_pure(rounds: int = 40) -> None:
    raws = fixtures()
    ticket = core.TicketView(id=1, ref="ICT-2026-00001", status="open", service="2.2.5", officer="ap",
                             citizen_email="citizen@example.com", due_at=None, resolved_at=None, closed_at=None)
    officer = CHARTER.officers["ap"]
    start = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for raw in raws:
            m = parse_message(raw)
            vref = verified_ref("bench", "khaliajuri", "ap", m.thread_ids, m.to)
            s = core.Situation(message=m, now=SUNDAY_MORNING, charter=CHARTER, ticket=ticket, officer=officer,
                               verified_ref=vref)
            d = core.decide(s, None, parse_officer_reply(m, CHARTER))
            assert d.kind in ("officer_reply", "officer_error"), d.kind
            n += 1
    elapsed = time.perf_counter() - start
    print(f"pure: {n} replies ({len(raws)} fixtures x {rounds}) in {elapsed:.2f} s = {n / elapsed:,.0f} replies/s "
          f"({elapsed / n * 1000:.2f} ms each: parse, strip, commands, token, decide)")


def bench_pipeline(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        desk = build_desk(settings_for(tmp), clock=FixedClock(SUNDAY_MORNING))
        try:
            mailbox = tmp / "mailbox"
            for i in range(n):
                request = new_mail(sender=f"citizen{i}@example.com", to=CHARTER.office.desk_address,
                                   subject="ইন্টারনেট সংযোগ নেই", text="ইউনিয়ন পরিষদের ইন্টারনেট সংযোগ বন্ধ।",
                                   message_id=f"<bench-{i}@example.com>")
                drop_into_maildir(mailbox, request.as_bytes(), f"{i:06d}.c")
            start = time.perf_counter()
            [r] = ingest_all(desk)
            opened = time.perf_counter() - start
            with desk.sessions() as s:
                notices = [email.message_from_bytes(raw, policy=policy.default) for raw in
                           s.scalars(select(Outbox.raw).where(Outbox.kind == "notice").order_by(Outbox.id))]
            pdf = os.urandom(40_000)
            for i, notice in enumerate(notices):
                msg = reply(notice, sender=AP, text="রাউটার বদলে দেওয়া হয়েছে।\nThe router was replaced.\n#resolve",
                            signature="Md. Munjurul Alam\nAssistant Programmer",
                            attachments=(("invoice.pdf", "application/pdf", pdf),))
                drop_into_maildir(mailbox, msg.as_bytes(), f"{n + i:06d}.o")
            start = time.perf_counter()
            [r2] = ingest_all(desk)
            replied = time.perf_counter() - start
            with desk.sessions() as s:
                resolved = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.status == "resolved"))
                relays = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == "relay"))
            assert r.stored == n and r2.stored == n and resolved == n and relays == n, (r, r2, resolved, relays)
            print(f"pipeline (Maildir + SQLite): {n} new requests in {opened:.2f} s = {n / opened:,.0f}/s; "
                  f"{n} officer replies in {replied:.2f} s = {n / replied:,.0f}/s "
                  f"({replied / n * 1000:.1f} ms each, relay with a 40 KB attachment + confirmation queued)")
        finally:
            desk.close()


if __name__ == "__main__":
    bench_pure()
    bench_pipeline(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
