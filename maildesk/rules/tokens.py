"""HMAC tokens that prove an officer is answering a notice the desk sent to that officer.

The token binds office, ticket, officer and purpose, so a token copied from another ticket, or used by
another sender, does not verify. It travels in the notice's Message-ID (mail clients echo it back in
In-Reply-To/References) and, where the mailbox allows plus-addressing, in the Reply-To address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

TOKEN_LEN = 16
# <ICT-2026-00042.notice.ap.abcdefghijklmnop.x7k2q9@domain>: ref, purpose, officer, token, unique part
_NOTICE_ID = re.compile(
    r"<([A-Z]{2,10}-\d{4}-\d{5,})\.([a-z]+)\.([A-Za-z0-9_-]+)\.([a-z2-7]{%d})(?:\.[A-Za-z0-9]+)?@" % TOKEN_LEN
)
_PLUS = re.compile(r"\+([A-Z]{2,10}-\d{4}-\d{5,})\.([a-z2-7]{%d})@" % TOKEN_LEN, re.IGNORECASE)


def make_token(secret: str, office: str, ref: str, officer: str, purpose: str = "notice") -> str:
    mac = hmac.new(secret.encode(), f"{office}|{ref}|{officer}|{purpose}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:TOKEN_LEN]


def notice_message_id(secret: str, office: str, ref: str, officer: str, domain: str, unique: str,
                      purpose: str = "notice") -> str:
    """A Message-ID for mail to an officer: unique per email, carrying the officer's token."""
    token = make_token(secret, office, ref, officer, purpose)
    return f"<{ref}.{purpose}.{officer}.{token}.{unique}@{domain}>"


def plus_address(desk_address: str, secret: str, office: str, ref: str, officer: str) -> str:
    local, _, domain = desk_address.partition("@")
    return f"{local}+{ref}.{make_token(secret, office, ref, officer, 'reply')}@{domain}"


def verified_ref(secret: str, office: str, officer: str, thread_ids, recipients) -> str | None:
    """The ticket ref that `officer` holds a valid token for in these headers, or None."""
    for mid in thread_ids:
        m = _NOTICE_ID.match(mid.strip())  # a folded header value may keep its leading space
        if not m:
            continue
        ref, purpose, who, token = m.groups()
        if who == officer and hmac.compare_digest(token, make_token(secret, office, ref, officer, purpose)):
            return ref
    for address in recipients:
        m = _PLUS.search(address)
        if m:
            ref, token = m.group(1).upper(), m.group(2).lower()
            if hmac.compare_digest(token, make_token(secret, office, ref, officer, "reply")):
                return ref
    return None
