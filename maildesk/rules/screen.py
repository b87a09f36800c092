"""The loop and bounce guard: which messages must never get an automatic answer.

Each rule is a tiny named predicate with a one-line reason; the first that matches wins and its reason is
recorded on the message. The message itself is always stored: screening only silences the desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from maildesk.ingest.parse import ParsedMessage


@dataclass(frozen=True)
class Screen:
    kind: str  # "automatic", "bounce" or "own"
    reason: str


def _auto_submitted(m: ParsedMessage) -> str | None:
    value = m.header("auto-submitted").strip().lower()
    if value and not value.startswith("no"):
        return f"Auto-Submitted: {value} (RFC 3834)"
    return None


def _precedence(m: ParsedMessage) -> str | None:
    value = m.header("precedence").strip().lower()
    return f"Precedence: {value}" if value in ("bulk", "junk", "list") else None


def _mailing_list(m: ParsedMessage) -> str | None:
    for name in ("list-id", "list-unsubscribe"):
        if m.header(name):
            return f"mailing list ({name})"
    return None


def _autoreply_headers(m: ParsedMessage) -> str | None:
    for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if m.header(name):
            return f"auto-reply header {name}"
    return None


def _delivery_report(m: ParsedMessage) -> str | None:
    if m.content_type == "multipart/report":
        return "delivery status report (multipart/report)"
    return None


def _daemon_sender(m: ParsedMessage) -> str | None:
    local = m.sender.partition("@")[0]
    if local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply", "donotreply"):
        return f"robot sender {m.sender}"
    if not m.sender:
        return "no sender address"
    return None


def _empty_return_path(m: ParsedMessage) -> str | None:
    if "return-path" in m.headers and m.header("return-path").strip() in ("<>", ""):
        return "empty Return-Path (a bounce)"
    return None


RULES: list[tuple[str, Callable[[ParsedMessage], str | None]]] = [
    ("bounce", _delivery_report),
    ("bounce", _empty_return_path),
    ("automatic", _auto_submitted),
    ("automatic", _precedence),
    ("automatic", _mailing_list),
    ("automatic", _autoreply_headers),
    ("automatic", _daemon_sender),
]


def screen(message: ParsedMessage, desk_addresses: set[str]) -> Screen | None:
    """Why this message must not be answered automatically, or None if it may be."""
    if message.sender in desk_addresses:
        return Screen("own", "sent by the desk's own address")
    for kind, rule in RULES:
        reason = rule(message)
        if reason:
            if kind == "automatic" and rule is _daemon_sender and message.sender.partition("@")[0] in (
                "mailer-daemon", "postmaster"):
                kind = "bounce"
            return Screen(kind, reason)
    return None
