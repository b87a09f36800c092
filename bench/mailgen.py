"""Realistic office mail, generated deterministically: the same seed and count give the same bytes.

Why generated and not the dev corpus repeated: 5,000–50,000 distinct messages are needed (distinct
Message-IDs, senders and bodies, so nothing is a duplicate), and a benchmark must be repeatable on any
machine. The mix follows what the Khaliajuri mailbox receives: Bengali, English and Banglish bodies
(drawn from the dev corpus and from phrase pools), about half multipart/alternative with HTML, some
HTML-only, some with an attachment, Bengali subjects in RFC 2047, and about 20 % replies to earlier
messages (In-Reply-To/References, "Re:" and a quoted original).

    from bench.mailgen import generate
    for message_id, raw in generate(5000, seed=7): ...
"""

from __future__ import annotations

import functools
import html
import random
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "corpus-dev"
DESK = "ict.khaliajuri@upazila.example.gov.bd"
DHAKA = timezone(timedelta(hours=6))

SUBJECTS_BN = [
    "ইন্টারনেট সংযোগ কাজ করছে না", "ল্যাপটপ মেরামতের আবেদন", "ডিজিটাল সেন্টারের প্রিন্টার নষ্ট",
    "ই-নথি প্রশিক্ষণের সময়সূচি জানতে চাই", "ওয়েবসাইটে তথ্য হালনাগাদ", "ভিডিও কনফারেন্সের জন্য সহায়তা",
    "সার্ভার রুমের এসি বন্ধ", "কম্পিউটার প্রশিক্ষণ কোর্সে ভর্তি", "ডিজিটাল স্বাক্ষরের সার্টিফিকেট",
    "ইউনিয়ন ডিজিটাল সেন্টারের সমস্যা",
]
SUBJECTS_EN = [
    "Internet down at the union parishad", "Request for laptop repair", "Printer not working",
    "e-Nothi training schedule", "Website update request", "Help needed for video conference",
    "Need a projector for a meeting", "Computer training admission", "Digital signature certificate",
    "Email account password reset",
]
SUBJECTS_BANGLISH = [
    "internet line kaj korche na", "laptop ta nosto, help dorkar", "printer e kagoj atke jacche",
    "e-nothi te login hocche na", "website e notice upload korte chai", "zoom meeting er jonno sahajjo",
    "training e vorti hote chai", "UDC te bidyut nei, server bondho",
]
BODIES_BN = [
    "আমাদের ইউনিয়ন পরিষদের ইন্টারনেট সংযোগ গত তিন দিন ধরে বন্ধ আছে। দয়া করে দ্রুত ব্যবস্থা নিন।",
    "অফিসের ল্যাপটপটি চালু হচ্ছে না, পর্দায় কিছুই আসে না। মেরামতের জন্য একজন টেকনিশিয়ান পাঠালে উপকৃত হব।",
    "ই-নথিতে নতুন ব্যবহারকারী যুক্ত করতে হবে। আমাদের অফিসের দুইজন নতুন কর্মচারী যোগ দিয়েছেন।",
    "আগামী রবিবার জেলা প্রশাসকের সাথে ভিডিও কনফারেন্স আছে। কারিগরি সহায়তা প্রয়োজন।",
    "উপজেলা ওয়েবসাইটে নতুন নোটিশ প্রকাশ করতে চাই। সংযুক্ত ফাইলটি দেখুন।",
    "কম্পিউটার প্রশিক্ষণ কোর্সে ভর্তির নিয়ম ও খরচ জানালে কৃতজ্ঞ থাকব।",
]
BODIES_EN = [
    "The internet connection at our office has been down since Tuesday. Please send someone to check the router.",
    "Our office printer jams on every page. We have tried new paper and cleaning it, nothing helps.",
    "We need help setting up a video conference with the district office next Sunday at 11 am.",
    "Please reset the password of our official email account; the officer who knew it has been transferred.",
    "Kindly let us know the schedule of the next e-Nothi training for union parishad secretaries.",
]
BODIES_BANGLISH = [
    "Sir, amader union digital center er laptop ta kaj korche na, ar printer o print dicche na. Doya kore kew ke pathan.",
    "Assalamu alaikum, e-nothi te login korte parchi na, password vul dekhacche. Ki korbo janaben.",
    "Bhai, upazila website e amader notice ta ekhono asheni. Kobe upload hobe?",
    "Internet er speed khub kom, video call e kichui shona jay na. Router ta change kora jay ki?",
]
SIGNOFFS = ["ধন্যবাদান্তে,", "বিনীত,", "Thanks and regards,", "Regards,", "Dhonnobad,"]
NAMES = ["Rafiq Uddin", "মোছাঃ সালমা খাতুন", "Abdul Karim", "নাসরিন আক্তার", "Shahidul Islam", "তানভীর হাসান",
         "Mitu Rani Das", "Jahangir Alam", "রুমানা পারভীন", "Kamrul Hasan"]
DOMAINS = ["example.com", "mail.example.bd", "upazila.example.bd", "udc.example.bd", "school.example.bd"]
ATTACHMENTS = [("application/pdf", "abedon.pdf"), ("image/jpeg", "photo.jpg"),
               ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "notice.docx")]


@functools.lru_cache(maxsize=1)
def corpus_bodies() -> tuple[str, ...]:
    """Plain-text bodies of the dev corpus (real office mail in all three languages)."""
    from maildesk.rules.eml import subject_and_bodies
    from maildesk.ingest.htmltext import html_to_text

    bodies = []
    for path in sorted(CORPUS.glob("*.eml")):
        _subject, text, html_body = subject_and_bodies(path.read_bytes())
        body = (text or (html_to_text(html_body) if html_body else "")).strip()
        if 40 <= len(body) <= 3000:
            bodies.append(body)
    return tuple(bodies)


def _body(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45 and corpus_bodies():
        main = rng.choice(corpus_bodies())
    else:
        pool = rng.choice((BODIES_BN, BODIES_EN, BODIES_BANGLISH))
        main = " ".join(rng.sample(pool, k=min(len(pool), rng.randint(1, 3))))
    return f"{main}\n\n{rng.choice(SIGNOFFS)}\n{rng.choice(NAMES)}"


def _html(text: str) -> str:
    paras = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))
    return (f'<html><head><meta charset="utf-8"></head><body><div dir="ltr" style="font-family:Arial,'
            f'sans-serif;font-size:13px">{paras}</div></body></html>')


def _quoted(parent_text: str, parent_from: str, when: datetime) -> str:
    lines = "\n".join("> " + line for line in parent_text.splitlines())
    return f"On {format_datetime(when)}, {parent_from} wrote:\n{lines}"


class _Sent:
    __slots__ = ("message_id", "sender", "name", "subject", "text", "date", "references")

    def __init__(self, message_id, sender, name, subject, text, date, references):
        self.message_id, self.sender, self.name = message_id, sender, name
        self.subject, self.text, self.date, self.references = subject, text, date, references


def generate(count: int, seed: int = 7, reply_share: float = 0.2,
             start: datetime = datetime(2026, 11, 1, 9, 0, tzinfo=DHAKA)) -> Iterator[tuple[str, bytes]]:
    """Yield (Message-ID, raw bytes) for `count` messages; same seed, same bytes."""
    rng = random.Random(seed)
    senders = [(f"{rng.choice(['citizen', 'udc', 'up', 'office', 'school'])}{i}@{rng.choice(DOMAINS)}",
                rng.choice(NAMES)) for i in range(max(50, count // 3))]
    earlier: list[_Sent] = []
    when = start
    for n in range(count):
        when += timedelta(seconds=rng.randint(20, 600))
        m = EmailMessage(policy=policy.SMTP)
        reply = earlier and rng.random() < reply_share
        if reply:
            parent = rng.choice(earlier[-2000:])
            sender, name = parent.sender, parent.name
            subject = parent.subject if parent.subject.lower().startswith("re:") else f"Re: {parent.subject}"
            new_text = _body(rng).split("\n\n")[0]
            text = f"{new_text}\n\n{_quoted(parent.text, f'{parent.name} <{parent.sender}>', parent.date)}"
            references = [*parent.references[-8:], parent.message_id]
            m["In-Reply-To"] = parent.message_id
            m["References"] = " ".join(references)
        else:
            sender, name = rng.choice(senders)
            subject = rng.choice(rng.choice((SUBJECTS_BN, SUBJECTS_EN, SUBJECTS_BANGLISH)))
            text = _body(rng)
            references = []
        message_id = f"<bench.{seed}.{n}.{rng.getrandbits(40):010x}@{sender.partition('@')[2]}>"
        m["From"] = f"{name} <{sender}>"
        m["To"] = f"ICT Office Khaliajuri <{DESK}>"
        m["Subject"] = subject  # non-ASCII subjects come out as RFC 2047 encoded-words
        m["Date"] = format_datetime(when)
        m["Message-ID"] = message_id
        m["MIME-Version"] = "1.0"
        shape = rng.random()
        if shape < 0.12:  # HTML only, as some webmail sends
            m.set_content(_html(text), subtype="html", charset="utf-8", cte="quoted-printable")
        elif shape < 0.62:
            m.set_content(text, charset="utf-8", cte="quoted-printable")
            m.add_alternative(_html(text), subtype="html", charset="utf-8", cte="quoted-printable")
        else:
            m.set_content(text, charset="utf-8", cte=rng.choice(("quoted-printable", "base64", "8bit")))
        if rng.random() < 0.08:
            ctype, filename = rng.choice(ATTACHMENTS)
            maintype, _, subtype = ctype.partition("/")
            m.add_attachment(rng.randbytes(rng.randint(8_000, 120_000)), maintype=maintype, subtype=subtype,
                             filename=filename)
        earlier.append(_Sent(message_id, sender, name, subject, text, when, references))
        yield message_id, m.as_bytes()


_SENDER = re.compile(rb"\b(citizen|udc|up|office|school)(\d+)@")


def copies(messages: list[tuple[str, bytes]], count: int, start: int = 0) -> Iterator[tuple[str, bytes]]:
    """More distinct mail cheaply: `count` copies of `messages`, each with its own Message-IDs (threads
    stay within their copy) and its own citizens. Copy 0 is the original."""
    for k in range(start, start + count):
        for mid, raw in messages:
            if k == 0:
                yield mid, raw
                continue
            tag = f"bench.c{k}.".encode()
            yield mid.replace("bench.", f"bench.c{k}.", 1), _SENDER.sub(
                rb"\1\2c" + str(k).encode() + rb"@", raw.replace(b"<bench.", b"<" + tag))


def write_maildir(folder: Path, messages) -> int:
    """Drop messages into folder/new (what an MTA delivering to disk does); returns how many."""
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for n, (_mid, raw) in enumerate(messages, 1):
        (folder / "new" / f"{1790000000 + n}.bench{n:07d}.maildesk").write_bytes(raw)
    return n


if __name__ == "__main__":  # a quick look: python bench/mailgen.py 3
    import sys

    for mid, raw in generate(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(raw.decode("utf-8", "replace")[:1500], "\n" + "=" * 80)
