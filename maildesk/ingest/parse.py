"""Raw bytes -> ParsedMessage, a plain value the pure core can reason about.

mail-parser decodes each part with its own charset and RFC 2047 headers; this module only picks out
what the desk needs and makes it safe (no CR/LF in one-line fields, a content hash when there is no
Message-ID, addresses lower-cased).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr

import mailparser

from maildesk.ingest.htmltext import html_to_text

_MSGID = re.compile(r"<[^<>\s\x00-\x1f\x7f]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")


class ParseError(Exception):
    """The bytes could not be understood as an email at all."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    payload: bytes = field(repr=False)
    inline: bool = False  # an image shown inside the HTML (cid:), e.g. a logo in a signature

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str  # with angle brackets; synthesised from the content hash when missing
    has_message_id: bool
    content_hash: str
    sender: str  # lower-cased address, "" when missing
    sender_name: str
    reply_to: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    html: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: dict[str, str] = field(repr=False)  # lower-case name -> decoded value (first occurrence)
    content_type: str = "text/plain"
    attachments: tuple[Attachment, ...] = ()
    size: int = 0
    flowed: bool = False  # the text part is format=flowed (RFC 3676): soft line breaks end in a space
    # A bounce: the Message-ID(s) of the message that could not be delivered (from its message/rfc822 or
    # text/rfc822-headers part), and the recipients a delivery-status part reports as failed (None when
    # there is no machine-readable report).
    bounced_ids: tuple[str, ...] = ()
    failed_recipients: tuple[str, ...] | None = None
    # What the message says, whatever its headers or transfer encoding: a re-delivery has the same one.
    fingerprint: str = ""
    # Set by ingest when another message with different content already holds this Message-ID.
    key_suffix: str = ""

    @property
    def message_key(self) -> str:
        """The store's unique key: the Message-ID (a content hash when there is none)."""
        base = self.message_id if self.has_message_id else f"sha256:{self.content_hash}"
        return f"{base}#{self.key_suffix}" if self.key_suffix else base

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this message says it answers, nearest first (for a bounce: the bounced one)."""
        seen = []
        for mid in (*self.in_reply_to, *reversed(self.references), *self.bounced_ids):
            if mid not in seen:
                seen.append(mid)
        return tuple(seen)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def one_line(value: str | None) -> str:
    """Header-safe text: control characters (CR, LF, NUL, …) become spaces."""
    return _CONTROL.sub(" ", value or "").strip()


def _decode(value) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # undecodable RFC 2047: keep the raw text rather than fail the message
        return str(value)


MAX_MSGID = 250  # longer ones (legal but absurd) are replaced by a stable digest that fits every column


def _fit_msgid(mid: str) -> str:
    if len(mid) <= MAX_MSGID:
        return mid
    return f"<long.{hashlib.sha256(mid.encode('utf-8', 'surrogateescape')).hexdigest()[:40]}@maildesk.invalid>"


def _msgids(value: str) -> tuple[str, ...]:
    return tuple(_fit_msgid(m) for m in _MSGID.findall(value or ""))[:100]


_ANGLE_TAIL = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>\s*$")


def _mailbox(value: str) -> tuple[str, str]:
    """Display name and address of a From/Reply-To header. A single angle-address at the end wins: an
    encoded word in the name can hide ':' or '@' (or CR/LF) that throw a plain address parser off."""
    tail = _ANGLE_TAIL.search(value)
    if tail and value.count("<") == 1:
        return _decode(value[:tail.start()].strip().strip('"')), tail.group(1)
    name, addr = parseaddr(value)
    return _decode(name), addr


def _address(addr: str) -> str:
    """A lower-cased address, or "" when it is none (no @) or longer than any real one (RFC 5321: 254)."""
    addr = one_line(addr).lower()
    return addr if "@" in addr and len(addr) <= 254 else ""


def _addresses(values) -> tuple[str, ...]:
    found = (_address(addr) for _, addr in getaddresses([str(v) for v in values]))
    return tuple(a for a in found if a)[:200]


_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers",
                   "message/global-headers")
_QUOTED_MSGID = re.compile(r"^\s*message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _looks_like_bounce(msg, sender: str, headers: dict[str, str]) -> bool:
    return (msg.get_content_type() == "multipart/report" or sender.partition("@")[0] in _BOUNCE_SENDERS
            or headers.get("return-path", "x").strip() in ("<>", ""))


def _original_ids(msg, text: str) -> tuple[str, ...]:
    """The Message-ID of the message a bounce returns: from its attached copy or headers, else quoted in the text."""
    found: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):  # message/rfc822: the email package parsed the copy already
            headers = [h for h in payload if hasattr(h, "get")]
            values = [str(h.get("message-id", "")) or str(h.get("in-reply-to", "")) for h in headers[:1]]
        else:
            body = part.get_payload(decode=True) or b""
            values = [m.group(1) for m in _QUOTED_MSGID.finditer(body.decode("utf-8", "replace"))]
        found += [mid for v in values for mid in _msgids(v)]
    if not found:
        found = [m.group(1) for m in _QUOTED_MSGID.finditer(text or "")]
    return tuple(dict.fromkeys(found))[:5]


def _failed_recipients(msg) -> tuple[str, ...] | None:
    """Recipients a message/delivery-status part (RFC 3464) reports with Action: failed."""
    reports = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    if not reports:
        return None
    failed: list[str] = []
    for part in reports:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if not hasattr(block, "get") or str(block.get("action", "")).strip().lower() != "failed":
                continue
            recipient = str(block.get("final-recipient") or block.get("original-recipient") or "")
            address = recipient.partition(";")[2].strip() if ";" in recipient else recipient.strip()
            address = parseaddr(address)[1].lower()
            if "@" in address:
                failed.append(address)
    return tuple(dict.fromkeys(failed))


def _shown_in_html(content_id: str | None, html: str | None) -> bool:
    """An attached image the HTML displays itself (src="cid:…"): a signature logo, not a document."""
    cid = (content_id or "").strip().strip("<>")
    return bool(cid and html and f"cid:{cid}" in html)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes. Raises ParseError only when nothing usable is there."""
    if not raw or not raw.strip():
        raise ParseError("empty message")
    content_hash = hashlib.sha256(raw).hexdigest()
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises many kinds on broken MIME
        raise ParseError(f"unparseable MIME: {type(exc).__name__}: {exc}") from exc
    msg = mail.message

    headers: dict[str, str] = {}
    for name, value in msg.items():
        headers.setdefault(name.lower(), one_line(_decode(value)))

    ids = _msgids(headers.get("message-id", ""))
    has_id = bool(ids)
    message_id = ids[0] if has_id else f"<sha256.{content_hash[:40]}@maildesk.invalid>"

    # Split the address from the raw header first: a decoded display name may hold commas or quotes.
    name, sender = _mailbox(str(msg.get("from", "")))
    _, reply_to = _mailbox(str(msg.get("reply-to", "")))

    date = None
    try:
        if mail.date is not None:
            date = mail.date if mail.date.tzinfo else mail.date.replace(tzinfo=timezone.utc)
    except Exception:
        date = None

    # NUL never reaches the store: PostgreSQL text cannot hold it (SQLite can, so only one backend would fail).
    text = "\n".join(p for p in mail.text_plain if p).replace("\x00", "").strip("\n")
    html = "\n".join(p for p in mail.text_html if p).replace("\x00", "") or None
    if not text and html:
        text = html_to_text(html)

    attachments = []
    for att in mail.attachments:
        payload = att.get("payload") or ""
        try:
            data = base64.b64decode(payload) if att.get("binary") else payload.encode("utf-8", "replace")
        except Exception:
            data = payload.encode("utf-8", "replace") if isinstance(payload, str) else b""
        attachments.append(
            Attachment(
                filename=one_line(att.get("filename") or "attachment"),
                content_type=one_line(att.get("mail_content_type") or "application/octet-stream"),
                payload=data,
                inline=_shown_in_html(att.get("content-id"), html),
            )
        )

    flowed = False
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            flowed = str(part.get_param("format", "")).lower() == "flowed"
            break

    sender = _address(sender)
    bounced_ids: tuple[str, ...] = ()
    failed = None
    if _looks_like_bounce(msg, sender, headers):
        bounced_ids = tuple(i for i in _original_ids(msg, text) if i not in ids)
        failed = _failed_recipients(msg)

    digest = hashlib.sha256()
    for piece in (" ".join(text.split()), " ".join((html or "").split())):
        digest.update(piece.encode("utf-8", "surrogateescape") + b"\0")
    for att in attachments:
        digest.update(hashlib.sha256(att.payload).digest())

    return ParsedMessage(
        fingerprint=digest.hexdigest(),
        bounced_ids=bounced_ids,
        failed_recipients=failed,
        flowed=flowed,
        message_id=message_id,
        has_message_id=has_id,
        content_hash=content_hash,
        sender=sender,
        sender_name=one_line(name)[:300],
        reply_to=_address(reply_to),
        to=_addresses(msg.get_all("to", [])),
        cc=_addresses(msg.get_all("cc", [])),
        subject=one_line(headers.get("subject", "")),
        date=date,
        text=text,
        html=html,
        in_reply_to=_msgids(headers.get("in-reply-to", "")),
        references=_msgids(" ".join(str(v) for v in msg.get_all("references", []))),
        headers=headers,
        content_type=msg.get_content_type(),
        attachments=tuple(attachments),
        size=len(raw),
    )
