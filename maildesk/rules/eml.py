"""Subject and bodies of a raw .eml, for evaluating the classifier on a corpus and in tests.

The desk's own parser (maildesk.ingest) does much more; this is the small part the rules need, so the
evaluation runs without the rest of the pipeline.
"""

from __future__ import annotations

import mailparser


def subject_and_bodies(raw: bytes) -> tuple[str, str, str | None]:
    """(subject, plain text, html or None) of a raw message, decoded by mail-parser."""
    msg = mailparser.parse_from_bytes(raw)
    text = "\n".join(msg.text_plain or [])
    html = "\n".join(msg.text_html or []) or None
    return msg.subject or "", text, html
