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
    return f"Precedence: {value}" if value in ("bulk", "junk", "list", "auto_reply") else None


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
    if local in ("mailer-daemon", "postmaster"):
        return f"mail server {m.sender}"
    return None


def _robot_sender(m: ParsedMessage) -> str | None:
    local = m.sender.partition("@")[0]
    if local in ("noreply", "no-reply", "do-not-reply", "donotreply", "no_reply"):
        return f"robot sender {m.sender}"
    if not m.sender:
        return "no sender address"
    return None


def _empty_return_path(m: ParsedMessage) -> str | None:
    if "return-path" in m.headers and m.header("return-path").strip() in ("<>", ""):
        return "empty Return-Path (a bounce)"
    return None


# The order is data: a delivery report or a mail server's message is a bounce even when it also carries
# Auto-Submitted; an empty Return-Path alone comes last, because RFC 3834 auto-replies use one too.
RULES: list[tuple[str, Callable[[ParsedMessage], str | None]]] = [
    ("bounce", _delivery_report),
    ("bounce", _daemon_sender),
    ("automatic", _auto_submitted),
    ("automatic", _precedence),
    ("automatic", _mailing_list),
    ("automatic", _autoreply_headers),
    ("automatic", _robot_sender),
    ("bounce", _empty_return_path),
]


def _unplussed(address: str) -> str:
    local, at, domain = address.partition("@")
    return local.partition("+")[0] + at + domain


def screen(message: ParsedMessage, desk_addresses: set[str]) -> Screen | None:
    """Why this message must not be answered automatically, or None if it may be."""
    own = {_unplussed(a.lower()) for a in desk_addresses}
    if message.sender and _unplussed(message.sender) in own:
        return Screen("own", "sent by the desk's own address")
    for kind, rule in RULES:
        reason = rule(message)
        if reason:
            return Screen(kind, reason)
    return None


REPEAT_MIN_CHARS = 20  # "#resolve" or "status" twice is a person; a paragraph twice is a robot


def _squash(text: str) -> str:
    return " ".join((text or "").split()).lower()


def repeated(message: ParsedMessage, earlier_texts) -> Screen | None:
    """The same text as an earlier message from this sender on this ticket: an autoresponder that marks
    nothing (no Auto-Submitted, no Precedence) answering the desk's answers. Without this, a naive robot at
    the citizen's end and another at the officer's would relay each other's replies forever."""
    text = _squash(message.text)
    if len(text) < REPEAT_MIN_CHARS:
        return None
    if any(_squash(t) == text for t in earlier_texts):
        return Screen("automatic", "the same text as an earlier message from this sender on this ticket "
                                   "(an autoresponder?)")
    return None
