"""Officer commands: lines of the officer's new text that start with '#' and a known verb.

Officers type on phones and Bengali keyboards, so verbs have Bengali aliases, case does not matter and
Bengali digits count as digits. A command line is taken out of the text that is relayed to the citizen.
A line that looks like a command but is not one (``#foo``) comes back as an ``unknown`` command with an
error, so the officer can be told rather than silently ignored; '#' inside ordinary text
("টিকিট #MD-2026-00084 …") is text. Pure: the caller strips quotes first (commands are searched only in
the officer's new text) and checks what needs the clock or the store (a due date in the past, whether
the assignee is an officer).

Verbs and aliases (``#verb`` may be followed by ':'):

=========  =================================================  ==========================================
verb       aliases                                            args
=========  =================================================  ==========================================
resolve    resolve, resolved, solved, সমাধান, সমাধানকৃত         comment text or None
close      close, closed, বন্ধ                                comment text or None
reopen     reopen, re-open, পুনরায়-খুলুন, "পুনরায় খুলুন",      comment text or None
           আবার-খুলুন
status     status, অবস্থা                                     'open' | 'waiting' | 'scheduled'
service    service, সেবা                                      charter code, e.g. '2.2.7' (ASCII digits)
due        due, সময়সীমা, মেয়াদ                                 ('days', n) working days | ('date', date)
assign     assign, দায়িত্ব                                    e-mail address, lower-cased
note       note, নোট, মন্তব্য                                   the note text (internal, never relayed)
=========  =================================================  ==========================================

Status words: open = open, in-progress, in progress, progress, working, খোলা, চলমান, প্রক্রিয়াধীন;
waiting = waiting, wait, on-hold, on hold, hold, pending, অপেক্ষা, অপেক্ষায়, অপেক্ষমাণ, স্থগিত;
scheduled = scheduled, schedule, নির্ধারিত. The first word decides when it is a status word; otherwise a
reason holding exactly one status word ("#status সিএ-র অনুমোদনের অপেক্ষায়") takes that status.
The '#' must touch the verb: "# close the window" is text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from maildesk.outbound.bengali import bn_digits, to_ascii_digits
from maildesk.rules.refs import TICKET_REF


@dataclass(frozen=True)
class Command:
    """One command line. ``error`` is a message for the officer (English / Bengali) when it can't run."""

    verb: str
    args: object
    raw_line: str
    error: str | None = None


def _key(text: str) -> str:
    """Comparison form: NFC (so U+09DF য় equals য + nukta), case-folded, no joiners, single spaces."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = re.sub(r"[\u200b\u200c\u200d\ufeff]", "", text)
    return " ".join(text.split())


def _table(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_key(alias): name for name, aliases in groups.items() for alias in aliases}


_VERBS = _table(
    {
        "resolve": ("resolve", "resolved", "solved", "সমাধান", "সমাধানকৃত"),
        "close": ("close", "closed", "বন্ধ"),
        "reopen": ("reopen", "re-open", "পুনরায়-খুলুন", "পুনরায় খুলুন", "পুনরায়_খুলুন", "আবার-খুলুন", "আবার খুলুন"),
        "status": ("status", "অবস্থা"),
        "service": ("service", "সেবা"),
        "due": ("due", "সময়সীমা", "মেয়াদ"),
        "assign": ("assign", "দায়িত্ব"),
        "note": ("note", "নোট", "মন্তব্য"),
    }
)
# Longest first, so "পুনরায় খুলুন" wins over a shorter alias that starts it.
_VERB_ALIASES = sorted(_VERBS, key=len, reverse=True)

_STATUSES = _table(
    {
        "open": ("open", "in-progress", "in progress", "inprogress", "progress", "working", "খোলা", "চলমান",
                 "প্রক্রিয়াধীন"),
        "waiting": ("waiting", "wait", "on-hold", "on hold", "hold", "pending", "অপেক্ষা", "অপেক্ষায়",
                    "অপেক্ষমাণ", "অপেক্ষমান", "স্থগিত"),
        "scheduled": ("scheduled", "schedule", "নির্ধারিত"),
    }
)

_LOOKS_LIKE_COMMAND = re.compile(r"^#([^\W\d_][\w\-]*)(?:[\s:].*)?$")
_SERVICE_CODE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{1,2}$")
_DAYS = re.compile(r"^(\d{1,4})(?:\s*(?:working days?|days?|wd|কার্যদিবস|কর্মদিবস|দিন))?$")
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_DAY_FIRST_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")  # 20/12/2026, as offices write it
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
MAX_DUE_DAYS = 365


def parse_commands(text: str, *, services: Collection[str] | None = None) -> tuple[list[Command], str]:
    """Commands in the officer's new text, and that text without them (blank runs collapsed, trimmed).

    ``services``: the charter's service codes; when given, ``#service`` with another code is an error.
    """
    commands: list[Command] = []
    kept: list[str] = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        command = parse_line(line, services=services)
        if command is None:
            kept.append(line.rstrip())
        else:
            commands.append(command)
    remaining = re.sub(r"\n(?:[ \t\xa0]*\n)+", "\n\n", "\n".join(kept)).strip()
    return commands, remaining


def parse_line(line: str, *, services: Collection[str] | None = None) -> Command | None:
    """The command on one line, or None when the line is ordinary text."""
    raw = line.strip()
    if not raw.startswith("#") or raw[1:2].isspace():
        return None
    key = _key(raw[1:])
    for alias in _VERB_ALIASES:
        if key == alias or (key.startswith(alias) and key[len(alias)] in " :"):
            verb = _VERBS[alias]
            rest = _rest_after(raw[1:], alias)
            return _PARSERS[verb](verb, rest, raw, services)
    match = _LOOKS_LIKE_COMMAND.match(raw)
    if match and not TICKET_REF.fullmatch(match.group(1)) and len(raw.split()) <= 4:
        return Command("unknown", None, raw, f"unknown command #{match.group(1)}")
    return None


def _rest_after(body: str, alias: str) -> str:
    """What follows the verb as the officer wrote it (original case), without a leading ':'."""
    words = len(alias.split())
    parts = unicodedata.normalize("NFC", body).split(None, words)
    rest = parts[words] if len(parts) > words else ""
    if not rest and ":" in parts[-1]:  # "#due:5"
        rest = parts[-1].split(":", 1)[1]
    return rest.lstrip(":").strip()


def _comment(verb, rest, raw, services) -> Command:
    return Command(verb, rest or None, raw)


def _status(verb, rest, raw, services) -> Command:
    key = _key(rest)
    state = _STATUSES.get(key) or _STATUSES.get(key.split(" ")[0] if key else "")
    if state is None and key:
        words = [w.strip(".,;:!?।()'\"") for w in key.split()]
        found = {_STATUSES[w] for w in words if w in _STATUSES}
        found |= {s for alias, s in _STATUSES.items() if " " in alias and f" {alias} " in f" {key} "}
        state = found.pop() if len(found) == 1 else None
    if state is None:
        return Command(
            verb, None, raw,
            "#status needs one of: open, waiting, scheduled / #status এর পরে লিখুন: খোলা, অপেক্ষা বা নির্ধারিত",
        )
    return Command(verb, state, raw)


def _service(verb, rest, raw, services) -> Command:
    code = to_ascii_digits(rest.split()[0]) if rest else ""
    if not _SERVICE_CODE.match(code):
        return Command(
            verb, None, raw,
            "#service needs a charter service code such as 2.2.7 / "
            "#service এর পরে সেবার কোড লিখুন, যেমন ২.২.৭",
        )
    if services is not None and code not in services:
        return Command(verb, None, raw, f"no charter service {code} / সিটিজেন চার্টারে {bn_digits(code)} নম্বর সেবা নেই")
    return Command(verb, code, raw)


def _due(verb, rest, raw, services) -> Command:
    value = _key(to_ascii_digits(rest))
    days = _DAYS.match(value)
    if days and 1 <= int(days.group(1)) <= MAX_DUE_DAYS:
        return Command(verb, ("days", int(days.group(1))), raw)
    iso, day_first = _ISO_DATE.match(value), _DAY_FIRST_DATE.match(value)
    if iso or day_first:
        y, m, d = iso.groups() if iso else day_first.groups()[::-1]
        try:
            return Command(verb, ("date", date(int(y), int(m), int(d))), raw)
        except ValueError:
            return Command(verb, None, raw, f"no such date: {rest} / এমন কোনো তারিখ নেই: {bn_digits(rest)}")
    return Command(
        verb, None, raw,
        f"#due needs a number of working days (1–{MAX_DUE_DAYS}) or a date such as 2026-12-20 / "
        f"#due এর পরে কার্যদিবসের সংখ্যা (১–{bn_digits(MAX_DUE_DAYS)}) বা তারিখ লিখুন, যেমন ২০২৬-১২-২০",
    )


def _assign(verb, rest, raw, services) -> Command:
    address = rest.strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    address = address.strip("<>").strip()
    if not _EMAIL.match(address):
        return Command(
            verb, None, raw, "#assign needs one e-mail address / #assign এর পরে একটি ইমেইল ঠিকানা লিখুন"
        )
    return Command(verb, address.lower(), raw)


def _note(verb, rest, raw, services) -> Command:
    if not rest:
        return Command(verb, None, raw, "#note needs some text / #note এর পরে কিছু লিখুন")
    return Command(verb, rest, raw)


_PARSERS = {
    "resolve": _comment,
    "close": _comment,
    "reopen": _comment,
    "status": _status,
    "service": _service,
    "due": _due,
    "assign": _assign,
    "note": _note,
}
