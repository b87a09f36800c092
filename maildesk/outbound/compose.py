"""Build the RFC 5322 bytes of an outgoing email: headers made safe, threading, robot markers."""

from __future__ import annotations

import secrets
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from maildesk.ingest.parse import one_line
from maildesk.outbound.render import Rendered


def new_message_id(domain: str, tag: str) -> str:
    return f"<{tag}.{secrets.token_hex(6)}@{domain}>"


def _address(name: str, email: str) -> Address:
    local, _, domain = one_line(email).partition("@")
    return Address(display_name=one_line(name), username=local, domain=domain)


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
    msg = EmailMessage()
    msg["From"] = _address(sender_name, sender)
    msg["To"] = [_address(n, e) for n, e in to]
    msg["Subject"] = one_line(rendered.subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if reply_to:
        msg["Reply-To"] = one_line(reply_to)
    if in_reply_to:
        msg["In-Reply-To"] = one_line(in_reply_to)
    refs = [one_line(r) for r in references if r]
    if refs:
        msg["References"] = " ".join(dict.fromkeys(refs))
    if automatic:
        # RFC 3834: other robots must not answer us; Exchange honours the second header.
        msg["Auto-Submitted"] = auto_kind
        msg["X-Auto-Response-Suppress"] = "All"
    for name, value in (extra_headers or {}).items():
        msg[name] = one_line(value)
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for filename, content_type, payload in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(payload, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=one_line(filename))
    return msg.as_bytes(policy=SMTP)
