"""Ticket references (``ICT-2026-00042``): the thread key people can see and type.

Headers (In-Reply-To/References) thread most replies, but a citizen who writes a fresh mail about an old
request, or a client that drops the headers, still keeps the ``[ICT-2026-00042]`` in the subject.
"""

from __future__ import annotations

import re

from maildesk.outbound.bengali import to_ascii_digits

# PREFIX-YYYY-NNNNN: prefix of 2–10 letters, the year, a counter of at least five digits.
TICKET_REF = re.compile(r"[A-Z]{2,10}-\d{4}-\d{5,}")
_BOUNDED = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2,10}-\d{4}-\d{5,})(?![A-Za-z0-9])")
_BRACKETED = re.compile(r"\[\s*([A-Za-z]{2,10}-\d{4}-\d{5,})\s*\]")


def find_ticket_ref(subject: str, text: str = "") -> str | None:
    """The ticket a message is about: ``[REF]`` in the subject, a bare REF there, then the same in the text.

    Bengali digits count (``MD-২০২৬-০০০৮৪``); the result is upper-case with ASCII digits.
    """
    for source in (subject or "", text or ""):
        source = to_ascii_digits(source)
        for pattern in (_BRACKETED, _BOUNDED):
            match = pattern.search(source)
            if match:
                return match.group(1).upper()
    return None
