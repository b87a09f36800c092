"""Read the promised time out of a Citizen Charter deadline, as the charter writes it.

The charter is typed by hand ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রয়োজ্য ক্ষেত্রে)"), with Bengali or ASCII
digits, spelling variants and stray spaces, so the parser looks for meanings, not exact strings, and
refuses (ValueError) rather than guess when it finds no number of working days.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from maildesk.outbound.bengali import to_ascii_digits

# Qualifier keys, stable for code and templates; QUALIFIER_TEXT gives the words to show people.
WHERE_APPLICABLE = "where_applicable"
AS_REQUIRED = "as_required"
QUALIFIER_TEXT = {
    WHERE_APPLICABLE: ("প্রযোজ্য ক্ষেত্রে", "where applicable"),
    AS_REQUIRED: ("চাহিদা অনুযায়ী", "or as required"),
}



def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(unicodedata.normalize("NFC", regex), re.IGNORECASE)


# Matched against the text with all whitespace removed, so "ক্ষে ত্রে" and "কার্য দিবস" still match.
_IMMEDIATE = _pattern(r"তাৎক্ষ[ণন]িক|immediate")
_WHERE_APPLICABLE = _pattern(r"প্রয\u09bc?োজ্য|whereapplicable")
_AS_REQUIRED = _pattern(r"চাহিদা?(?:অনুযায়ী|মোতাবেক)|asrequired")
_WORKING_DAYS = _pattern(r"(\d+)(?:কার্যদিবস|কর্মদিবস|workingdays?)")

# Design (docs/design.md, "Working days"): an immediate service with no stated number of days is due
# by the end of the next working day.
IMMEDIATE_ONLY_WORKING_DAYS = 1


@dataclass(frozen=True)
class Deadline:
    """What a charter deadline promises: act at once (`immediate`) and/or within `working_days`."""

    immediate: bool
    working_days: int
    qualifiers: tuple[str, ...]
    as_written: str


def _normalise(text: str) -> str:
    """NFC (the nukta letters য়/ড় come both precomposed and decomposed), the old ত্‍ spelling of ৎ,
    ASCII digits, and no whitespace or zero-width joiners at all."""
    text = unicodedata.normalize("NFC", text).replace("ত্\u200d", "ৎ")
    text = to_ascii_digits(text)
    return re.sub(r"[\s\u200b\u200c\u200d]+", "", text)


def parse_deadline(text: str) -> Deadline:
    """Parse e.g. "তাৎক্ষণিক/ ৩ কার্যদিবস (প্রযোজ্য ক্ষেত্রে)" → immediate, 3 days, where applicable."""
    if not isinstance(text, str):
        raise ValueError(f"a charter deadline must be text, got {text!r}")
    flat = _normalise(text)
    immediate = bool(_IMMEDIATE.search(flat))
    qualifiers = tuple(
        key
        for key, pattern in ((WHERE_APPLICABLE, _WHERE_APPLICABLE), (AS_REQUIRED, _AS_REQUIRED))
        if pattern.search(flat)
    )
    numbers = {int(m.group(1)) for m in _WORKING_DAYS.finditer(flat)}
    if len(numbers) > 1:
        found = ", ".join(str(n) for n in sorted(numbers))
        raise ValueError(f"charter deadline {text!r} names several numbers of working days ({found})")
    if numbers:
        working_days = numbers.pop()
    elif immediate:
        working_days = IMMEDIATE_ONLY_WORKING_DAYS
    else:
        raise ValueError(
            f"charter deadline {text!r} has no number of working days "
            "(expected e.g. \"৩ কার্যদিবস\" or \"তাৎক্ষণিক\")"
        )
    return Deadline(immediate=immediate, working_days=working_days, qualifiers=qualifiers, as_written=text)
