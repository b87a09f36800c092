"""Build the RFC 5322 bytes of an outgoing email: headers made safe, threading, robot markers.

Built with the compat32 MIME classes and explicit RFC 2047 encoding: the modern EmailMessage header
folder spends ~9 ms refolding each Bengali header, which would dominate ingest (an acknowledgement and a
notice per message). Every header value passes through one_line(), so CR/LF/NUL in a citizen's subject
or name can never start a new header.
"""

from __future__ import annotations

import base64
import re
import secrets
from email.header import Header
from email.policy import compat32
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime

from maildesk.ingest.parse import one_line
from maildesk.outbound.render import Rendered

_NO_FOLD = compat32.clone(max_line_length=0, linesep="\r\n")


def new_message_id(domain: str, tag: str) -> str:
    return f"<{tag}.{secrets.token_hex(6)}@{domain}>"


def encoded_words(text: str) -> str:
    """RFC 2047 encoded words of at most 75 characters, split only after a space.

    Decoders drop the folding white space between encoded words; a split in the middle of a Bengali word
    shows up in some of them as a stray space, so each word's own trailing space travels encoded."""
    words, chunks, current = text.split(" "), [], ""
    for i, word in enumerate(words):
        piece = word + (" " if i < len(words) - 1 else "")
        if current and len((current + piece).encode()) > 45:  # 45 bytes -> 60 base64 chars -> 72 with markup
            chunks.append(current)
            current = ""
        current += piece
    chunks.append(current)
    out = []
    for chunk in chunks:
        data = chunk.encode()
        if len(data) > 45:  # one very long word: let the library split it
            out.append(Header(chunk, "utf-8").encode())
        else:
            out.append(f"=?utf-8?b?{base64.b64encode(data).decode()}?=")
    return "\n ".join(out)


def _plain(value: str) -> bool:
    """Safe to send as it is: ASCII, no text a reader would decode as an encoded word (a citizen's literal
    "=?utf-8?q?=0D=0A?=" would reach the officer as CR LF), and short enough for one 998-byte line."""
    return value.isascii() and "=?" not in value and len(value) < 900


def header_text(value: str) -> str:
    """A header value: plain ASCII as is, anything else as RFC 2047 encoded words."""
    value = one_line(value)
    return value if _plain(value) else encoded_words(value)


_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def address(name: str, email: str) -> str:
    """`name <email>`; the name quoted or encoded as needed. The address is written as received: one
    that is not plain ASCII (mis-decoded 8-bit mail) is refused by the SMTP server and becomes a dead
    letter, rather than crashing the message that caused it."""
    name, email = one_line(name), one_line(email).replace("<", "").replace(">", "")
    if not name:
        return email
    if _plain(name):
        if _SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{email}>"
    return f"{encoded_words(name)} <{email}>"


def _text_part(text: str, subtype: str) -> MIMEText:
    # Base64: Bengali UTF-8 grows by a third, where quoted-printable would triple it.
    return MIMEText(text, subtype, "utf-8")


def compose(
    rendered: Rendered,
    *,
    sender_name: str,
    sender: str,
    to: list[tuple[str, str]],
    message_id: str,
    date,
    in_reply_to: str | None = None,
    references: list[str] = (),
    reply_to: str | None = None,
    automatic: bool = True,
    auto_kind: str = "auto-replied",
    extra_headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    """The whole email as bytes (CRLF line ends), ready for SMTP or a .eml file."""
    body = MIMEMultipart("alternative")
    body.attach(_text_part(rendered.text, "plain"))
    body.attach(_text_part(rendered.html, "html"))
    if attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        for filename, content_type, payload in attachments:
            maintype, _, subtype = content_type.partition("/")
            part = MIMEApplication(payload)
            part.replace_header("Content-Type", f"{one_line(maintype) or 'application'}/{one_line(subtype) or 'octet-stream'}")
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", one_line(filename)))
            msg.attach(part)
    else:
        msg = body
    headers = [
        ("From", address(sender_name, sender)),
        ("To", ", ".join(address(n, e) for n, e in to)),
        ("Subject", header_text(rendered.subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", one_line(message_id)),
    ]
    if reply_to:
        headers.append(("Reply-To", one_line(reply_to)))
    if in_reply_to:
        headers.append(("In-Reply-To", one_line(in_reply_to)))
    refs = list(dict.fromkeys(one_line(r) for r in references if r))
    if refs:
        headers.append(("References", " ".join(refs)))
    if automatic:
        # RFC 3834: other robots must not answer us; Exchange honours the second header.
        headers += [("Auto-Submitted", auto_kind), ("X-Auto-Response-Suppress", "All")]
    for name, value in (extra_headers or {}).items():
        headers.append((one_line(name), header_text(value)))
    for name, value in reversed(headers):
        msg._headers.insert(0, (name, value))  # headers first, in this order, before MIME-Version
    # No refolding: long Message-IDs stay on one line (some clients keep a folded one's leading space).
    return msg.as_bytes(policy=_NO_FOLD)
