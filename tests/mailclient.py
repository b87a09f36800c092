"""What an officer's or citizen's mail client does when its user presses Reply (for tests).

Built the way Thunderbird does it: To the Reply-To (else From), "Re: " subject, In-Reply-To and
References from the message answered, the new text on top, a "-- " signature, an attribution line and
the whole original quoted with "> "; the HTML part quotes in <blockquote type="cite">. Options leave
out what some clients leave out (the threading headers, the HTML part), so tests can cover them.
"""

from __future__ import annotations

import html as html_lib
import re
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from datetime import datetime, timezone


def _plain(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    return body.get_content() if body is not None else ""


def reply(original: EmailMessage, *, sender: str, text: str, signature: str | None = None,
          to: str | None = None, cc: tuple[str, ...] = (), attachments: tuple[tuple[str, str, bytes], ...] = (),
          threading: bool = True, html: bool = True, date: datetime | None = None,
          headers: dict[str, str] | None = None) -> EmailMessage:
    """A reply to `original` from `sender` with `text` typed on top of the quote.

    attachments: (filename, "type/subtype", bytes). threading=False drops In-Reply-To/References (as a
    client does when the user starts a fresh mail and pastes the subject)."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to or original["Reply-To"] or original["From"]
    if cc:
        msg["Cc"] = ", ".join(cc)
    subject = str(original["Subject"] or "")
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    if threading:
        parent = str(original["Message-ID"]).strip()
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join([*str(original.get("References") or "").split(), parent])
    for name, value in (headers or {}).items():
        msg[name] = value
    who = parseaddr(str(original["From"]))
    attribution = f"On {original['Date']}, {who[0] or who[1]} wrote:"
    quoted = "\n".join("> " + line if line else ">" for line in _plain(original).splitlines())
    body = text.rstrip("\n") + "\n\n"
    if signature:
        body += "-- \n" + signature.rstrip("\n") + "\n\n"
    body += attribution + "\n" + quoted + "\n"
    msg.set_content(body)
    if html:
        esc = html_lib.escape
        paragraphs = "".join(f"<div>{esc(line) or '<br>'}</div>" for line in text.splitlines())
        sig = (f'<div class="moz-signature">-- <br>{"<br>".join(esc(x) for x in signature.splitlines())}</div>'
               if signature else "")
        original_html = original.get_body(("html",))
        inner = original_html.get_content() if original_html is not None else f"<pre>{esc(_plain(original))}</pre>"
        inner = re.sub(r"(?is)^.*?<body[^>]*>|</body>.*$", "", inner)  # clients quote the body, not the document
        msg.add_alternative(
            f"<html><body>{paragraphs}<br>{sig}<div class=\"moz-cite-prefix\">{esc(attribution)}<br></div>"
            f"<blockquote type=\"cite\">{inner}</blockquote></body></html>", subtype="html")
    for filename, content_type, payload in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def new_mail(*, sender: str, to: str, subject: str, text: str, cc: tuple[str, ...] = (),
             message_id: str | None = None, date: datetime | None = None,
             headers: dict[str, str] | None = None) -> EmailMessage:
    """A fresh message (no threading headers), as typed into a new compose window."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2])
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    return msg
