"""Attachments out of the database onto disk, under names a citizen cannot turn against the office.

maildesk keeps every message's raw bytes in the database; an officer who wants the files of a ticket
exports them. A file name comes from the sender, so it may say `../../etc/passwd`, `/etc/cron.d/x`,
`C:\\Windows\\x`, `CON`, or hide a NUL or a right-to-left override: `safe_filename` keeps only a plain last
path part, and `export_ticket` writes with O_EXCL|O_NOFOLLOW inside the target folder and nowhere else.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from maildesk.ingest.parse import ParseError, parse_message
from maildesk.store.models import Message, Ticket

MAX_NAME_BYTES = 150
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_UNSAFE = re.compile(r'[<>:"|?*\\/]')


def _visible(ch: str) -> bool:
    # Cc: control characters (NUL, CR, LF…); Cf: invisible formatting such as U+202E RIGHT-TO-LEFT OVERRIDE;
    # but keep ZWJ/ZWNJ (U+200D/U+200C), which Bengali spelling needs.
    cat = unicodedata.category(ch)
    return not (cat in ("Cc", "Cs", "Co", "Cn") or (cat == "Cf" and ch not in "\u200c\u200d"))


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """One harmless file name: no folders, no control characters, no leading dot, bounded length."""
    text = unicodedata.normalize("NFC", name or "")
    text = "".join(ch for ch in text if _visible(ch))
    text = re.split(r"[\\/]", text)[-1]  # the last path part, for / and \ alike
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split()).strip(" .")
    if text.split(".")[0].strip().lower() in _WINDOWS_RESERVED:  # CON, nul.txt, COM1.tar.gz …
        text = "_" + text
    if not text or set(text) <= {"_", "."}:
        text = fallback
    return _truncate(text)


def _truncate(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = ext if dot and 0 < len(ext) <= 10 else ""
    stem = stem if ext else name
    budget = MAX_NAME_BYTES - len(ext.encode("utf-8")) - (1 if ext else 0)
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" .") or "attachment"
    return f"{cut}.{ext}" if ext else cut


def write_new(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` to folder/name, or "name (2)", … if taken; never follows a symlink, never overwrites."""
    folder = folder.resolve()
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    for n in range(1, 1000):
        candidate = name if n == 1 else (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
        path = folder / candidate
        if path.parent != folder:  # cannot happen after safe_filename; refuse rather than trust it
            raise ValueError(f"attachment name {candidate!r} leaves {folder}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o640)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return path
    raise FileExistsError(f"too many files named like {name!r} in {folder}")


def export_ticket(session: Session, ticket: Ticket, folder: Path) -> list[Path]:
    """Every attachment of every message on the ticket, in arrival order, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for msg in session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)):
        try:
            parsed = parse_message(msg.raw)
        except ParseError:
            continue
        for att in parsed.attachments:
            written.append(write_new(folder, safe_filename(att.filename), att.payload))
    return written
