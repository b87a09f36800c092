"""Property-based fuzzing (hypothesis) of everything a stranger's bytes touch.

Mutated and truncated MIME, wrong and unknown charsets, 8-bit bytes in headers, missing From/Date/Message-ID,
duplicate Message-IDs, enormous headers, deeply nested multiparts, zero-byte and oversized attachments go
through the real ingest cycle (a Maildir and a SQLite file): each message ends stored, quarantined (with
its bytes, officer told) or recognised as a re-delivery, and nothing raises. Plus: parsing never fails
with anything but ParseError, no subject or name ever makes an extra header, attachment names stay put.
"""

from __future__ import annotations

import email
import itertools
import logging
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from maildesk.app import build_desk
from maildesk.attachments import MAX_NAME_BYTES, safe_filename
from maildesk.ingest.parse import ParseError, parse_message
from maildesk.jobs.ingest import ingest_all
from maildesk.outbound.compose import compose
from maildesk.outbound.render import Rendered
from maildesk.store.models import IngestFailure, Message, Outbox
from tests.helpers import CORPUS_DEV, SUNDAY_MORNING, FixedClock, drop_into_maildir, make_mail, settings_for

MAX_BYTES = 300_000  # the fuzz desk's limits.max_message_bytes
SEEDS = [p.read_bytes() for p in sorted(CORPUS_DEV.glob("*.eml"))[:12]] + [
    make_mail(),
    make_mail(subject="ল্যাবের কম্পিউটার নষ্ট", body="শেখ রাসেল ডিজিটাল ল্যাবের কম্পিউটার চালু হচ্ছে না।",
              html="<p>শেখ রাসেল <b>ল্যাব</b></p>"),
]
FUZZ = settings(max_examples=60, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


class Crashes(logging.Handler):
    """Every log record that carries a traceback: an exception the pipeline had to catch."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def fuzz_desk(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    desk = build_desk(settings_for(tmp).with_overrides(max_message_bytes=MAX_BYTES), clock=FixedClock(SUNDAY_MORNING))
    desk.tmp = tmp
    crashes = Crashes()
    logging.getLogger("maildesk").addHandler(crashes)
    desk.crashes = crashes
    yield desk
    logging.getLogger("maildesk").removeHandler(crashes)
    desk.close()


_keys = itertools.count(1)


def ingest_and_account(desk, raws: list[bytes]) -> dict[str, str]:
    """Drop the messages in, ingest until settled; returns uid -> "stored" | "quarantined" | "redelivery"."""
    keys = []
    for raw in raws:
        key = f"{next(_keys):07d}.fuzz"
        drop_into_maildir(desk.tmp / "mailbox", raw, key)
        keys.append(key)
    desk.crashes.records.clear()
    for _ in range(desk.settings.max_attempts + 1):
        [report] = ingest_all(desk)
        assert report.error is None
    assert desk.crashes.records == [], [r.getMessage() for r in desk.crashes.records]
    fate = {}
    with desk.sessions() as s:
        for key, raw in zip(keys, raws):
            if s.scalar(select(Message.id).where(Message.uid == key)) is not None:
                fate[key] = "stored"
            elif s.scalar(select(IngestFailure.quarantined).where(IngestFailure.uid == key)):
                fate[key] = "quarantined"
            else:
                m = parse_message(raw)  # a re-delivery: the same Message-ID and the same content
                earlier = s.scalars(select(Message.raw).where(Message.message_id == m.message_id)).all()
                assert any(parse_message(r).fingerprint == m.fingerprint for r in earlier), key
                fate[key] = "redelivery"
    return fate


# ---- mutations -------------------------------------------------------------------------------------------


def truncate(raw: bytes, at: float) -> bytes:
    return raw[:max(1, int(len(raw) * at))]


def splice(raw: bytes, at: float, junk: bytes) -> bytes:
    i = int(len(raw) * at)
    return raw[:i] + junk + raw[i:]


def drop_headers(raw: bytes, names: set[str]) -> bytes:
    head, sep, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw else raw.partition(b"\r\n\r\n")
    lines = [line for line in head.splitlines(keepends=True)
             if line.split(b":", 1)[0].strip().lower().decode("latin-1") not in names]
    return b"".join(lines) + sep + body


def set_charsets(raw: bytes, charset: str) -> bytes:
    return raw.replace(b"charset=\"utf-8\"", f"charset=\"{charset}\"".encode()).replace(
        b"charset=utf-8", f"charset={charset}".encode())


CHARSETS = st.sampled_from(["x-unknown-42", "utf-7", "iso-2022-jp", "bogus", "", "utf-16", "windows-1252",
                            "unicode-1-1-utf-7", "../../etc/passwd", "utf-8\x00"])
HEADER_NAMES = st.sets(st.sampled_from(["from", "date", "message-id", "to", "subject", "content-type",
                                        "mime-version", "content-transfer-encoding"]))


@st.composite
def mutated(draw) -> bytes:
    raw = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "junk", "8bit-header", "drop", "charset", "dup-header", "crlf"]))
        if kind == "truncate":
            raw = truncate(raw, draw(st.floats(0.01, 1.0)))
        elif kind == "junk":
            raw = splice(raw, draw(st.floats(0, 1)), draw(st.binary(min_size=1, max_size=64)))
        elif kind == "8bit-header":
            raw = draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b"") .join([b"Subject: ", b"\n"]) + raw
        elif kind == "drop":
            raw = drop_headers(raw, draw(HEADER_NAMES))
        elif kind == "charset":
            raw = set_charsets(raw, draw(CHARSETS))
        elif kind == "dup-header":
            raw = b"From: other@example.com\nMessage-ID: <dup@example.com>\nContent-Type: multipart/mixed\n" + raw
        else:
            raw = raw.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\r", b"\r\r\n"])))
    assume(raw.strip())
    return raw


def nested(depth: int, leaf: bytes = b"deep text") -> bytes:
    head = [b"From: nest@example.com", b"To: desk@upazila.example.gov.bd", b"Subject: nested",
            f"Message-ID: <nest-{depth}-{next(_keys)}@example.com>".encode(), b"MIME-Version: 1.0"]
    body = leaf
    ctype = b"text/plain"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (b"--" + boundary + b"\nContent-Type: " + ctype + b"\n\n" + body + b"\n--" + boundary + b"--\n")
        ctype = b"multipart/mixed; boundary=\"" + boundary + b"\""
    return b"\n".join(head) + b"\nContent-Type: " + ctype + b"\n\n" + body


def with_attachment(size: int, name: str = "scan.pdf") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "att@example.com", "desk@upazila.example.gov.bd", "scan"
    m["Message-ID"] = f"<att-{size}-{next(_keys)}@example.com>"
    m.set_content("Please see the scan.")
    m.add_attachment(b"\x00" * size, maintype="application", subtype="pdf", filename=("utf-8", "", name))  # RFC 2231
    return bytes(m)


# ---- properties through the pipeline ---------------------------------------------------------------------


@FUZZ
@given(raws=st.lists(mutated(), min_size=1, max_size=3))
def test_mutated_mime_always_ends_stored_quarantined_or_known(fuzz_desk, raws):
    ingest_and_account(fuzz_desk, raws)


@FUZZ
@given(depth=st.integers(0, 120), size=st.sampled_from([0, 1, 4096]), name=st.text(max_size=80))
def test_deep_nesting_and_odd_attachments(fuzz_desk, depth, size, name):
    fate = ingest_and_account(fuzz_desk, [nested(depth), with_attachment(size, name)])
    assert list(fate.values()) == ["stored", "stored"]


@FUZZ
@given(subject_len=st.integers(1, 400_000), refs=st.integers(0, 3000))
def test_enormous_headers(fuzz_desk, subject_len, refs):
    raw = make_mail(subject="x" * min(subject_len, 250_000), message_id=f"<big-{next(_keys)}@example.com>",
                    References=" ".join(f"<r{i}@example.com>" for i in range(refs)) or "<none@example.com>")
    fate = ingest_and_account(fuzz_desk, [raw])
    expected = "quarantined" if len(raw) > MAX_BYTES else "stored"
    assert list(fate.values()) == [expected]
    with fuzz_desk.sessions() as s:  # the answers still fit SMTP's 998-byte lines (RFC 5322 2.1.1)
        ticket = s.scalar(select(Message.ticket_id).where(Message.uid == next(iter(fate))))
        for out in s.scalars(select(Outbox.raw).where(Outbox.ticket_id == ticket)) if ticket else ():
            assert max(len(line) for line in out.split(b"\r\n")) <= 998


@FUZZ
@given(missing=HEADER_NAMES, copies=st.integers(2, 3))
def test_missing_headers_and_duplicate_message_ids(fuzz_desk, missing, copies):
    base = make_mail(subject="same id", message_id=f"<twin-{next(_keys)}@example.com>")
    raws = [drop_headers(base, missing)] * copies + [base.replace(b"same id", b"other text")]
    fate = ingest_and_account(fuzz_desk, raws)
    assert list(fate.values()).count("stored") >= 1


def test_an_oversized_attachment_is_quarantined_with_its_bytes_and_the_officer_told(fuzz_desk):
    raw = with_attachment(MAX_BYTES)
    [(key, fate)] = ingest_and_account(fuzz_desk, [raw]).items()
    assert fate == "quarantined"
    with fuzz_desk.sessions() as s:
        f = s.scalar(select(IngestFailure).where(IngestFailure.uid == key))
        assert f.raw == raw and "max_message_bytes" in f.reason
        assert s.scalar(select(Outbox.id).where(Outbox.dedupe_key == f"quarantine:{f.id}")) is not None


# ---- pure properties -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=4000), mutated()))
def test_parsing_fails_only_with_parse_error(raw):
    try:
        m = parse_message(raw)
    except ParseError:
        return
    for value in (m.subject, m.sender, m.sender_name, m.reply_to, m.message_id):
        assert not set(value) & {"\r", "\n", "\x00"}
    assert len(m.message_id) <= 300 and len(m.sender) <= 254


HOSTILE_TEXT = st.lists(st.sampled_from(list("ab: <>@\"\\,;=?\r\n\x00\t\u202eকখ") + ["Bcc: x@y.z", "=?utf-8?q?=0D=0A?="]),
                        max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(subject=HOSTILE_TEXT, name=HOSTILE_TEXT, ref=HOSTILE_TEXT)
def test_no_subject_or_name_ever_makes_an_extra_header(subject, name, ref):
    raw = compose(Rendered(subject=subject, text="text", html="<p>html</p>"), sender_name=name,
                  sender="ict.khaliajuri@upazila.example.gov.bd", to=[(name, "citizen@example.com")],
                  message_id="<m@upazila.example.gov.bd>", date=datetime(2026, 12, 6, tzinfo=timezone.utc),
                  in_reply_to=f"<{ref}@example.com>", references=[f"<{ref}@example.com>"],
                  extra_headers={"X-Maildesk-Ticket": ref})
    msg = email.message_from_bytes(raw, policy=policy.default)
    names = {k.lower() for k in msg.keys()}
    assert names <= {"from", "to", "subject", "date", "message-id", "in-reply-to", "references", "auto-submitted",
                     "x-auto-response-suppress", "x-maildesk-ticket", "content-type", "mime-version"}
    assert [a.addr_spec for a in msg["To"].addresses] == ["citizen@example.com"]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in head and b"\r\n\r\n" not in head
    assert all(line.startswith((b" ", b"\t")) or b":" in line for line in head.split(b"\r\n"))


@settings(max_examples=500, deadline=None)
@given(name=st.one_of(st.text(max_size=400), st.sampled_from(
    ["../../etc/passwd", "/etc/passwd", "..", ".", "C:\\boot.ini", "a/../../b", "\x00", "CON.txt", "nul", "...",
     "x\u202egpj.exe", "ফাইল/../../ফাইল.pdf", " .hidden ", "a" * 1000 + ".pdf"])))
def test_a_safe_filename_never_leaves_the_folder(name, tmp_path_factory):
    safe = safe_filename(name)
    assert safe and safe not in (".", "..") and not safe.startswith(".")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe and "\u202e" not in safe
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    folder = Path("/srv/maildesk/export")
    assert (folder / safe).resolve().parent == folder.resolve() if not folder.exists() else True
    assert Path(safe).name == safe and not Path(safe).is_absolute()
