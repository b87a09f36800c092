"""Keep only what the officer typed in a reply: no quoted notice, no attribution, no signature.

The desk relays the officer's answer to the citizen and reads commands from it, so anything left of the
quoted notice would leak the desk's own help line ("#resolve, #close, …") into commands and the
citizen's mail. Pure functions: text (and the HTML part, when there is one) in, text out.

How, in order:

1. HTML, when given: the quote containers mail clients mark (Gmail ``gmail_quote``, Apple and
   Thunderbird ``blockquote type=cite`` / ``moz-cite-prefix``, Yahoo ``yahoo_quoted``) and signature
   containers are removed; Outlook's reply separators (``#appendonsend``, ``#divRplyFwdMsg``, the
   ``border-top:solid #E1E1E1`` header block) end the officer's part. The rest becomes text through the
   desk's one converter (:mod:`maildesk.ingest.htmltext`).
2. Text: attribution lines and header blocks are found with mail-parser-reply's ``HEADER_REGEX``, to
   which this module adds a Bengali entry (Gmail's Bengali UI: "… তারিখে … লিখেছেন:"). A header followed
   by ``>`` lines bounds a quote, and officer text may follow it (bottom-posting, inline answers); a
   header followed by unprefixed text (Outlook, Yahoo, Samsung) starts a quote that runs to the end.
   The library's own reply splitting is not used: it only keeps the text above the first header (it
   loses bottom-posted and inline answers), misses Yahoo for Android's attribution that has the first
   quoted line on the same line, and cuts everything after any "Thanks," line.
3. Per officer segment: client signatures (``-- `` blocks, "Sent from my iPhone", "Get Outlook for
   Android", …) and a typed sign-off (a closing line such as "Regards," or "ধন্যবাদান্তে" followed only
   by name/designation lines) are removed; command lines inside a sign-off are kept.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from mailparser_reply import EmailMessage
from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE

from maildesk.ingest.htmltext import html_to_text


@dataclass(frozen=True)
class ReplyParts:
    """The three parts of an officer's reply; ``reply_text`` is what gets relayed and searched."""

    reply_text: str
    quoted_text: str
    signature: str


def strip_reply(text: str | None, html: str | None = None, *, flowed: bool = False) -> str:
    """The officer's new text. ``flowed=True`` when the text part is ``format=flowed`` (RFC 3676)."""
    return split_reply(text, html, flowed=flowed).reply_text


def split_reply(text: str | None, html: str | None = None, *, flowed: bool = False) -> ReplyParts:
    """Split a reply into new text, quoted text and signature; HTML first when there is an HTML part."""
    if html and html.strip():
        kept, quoted, signature = _cut_html(html)
        parts = _split_text(html_to_text(kept))
        if parts.reply_text or not (text and text.strip()):
            return ReplyParts(
                parts.reply_text,
                _join_blocks([html_to_text(q) for q in quoted] + [parts.quoted_text]),
                _join_blocks([html_to_text(s) for s in signature] + [parts.signature]),
            )
        # The HTML held nothing of the officer's (a client that quotes in a way we do not know):
        # the text part is the better witness.
    body = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return _split_text(unflow(body) if flowed else body)


# --------------------------------------------------------------------------------------------------
# Header and attribution detection (mail-parser-reply, plus a Bengali entry)

# Gmail with the Bengali UI: "রবি, ১৫ ফেব, ২০২৬ তারিখে ১:৫৪ AM টায় তারিখে Name <addr> লিখেছেন:", hard-wrapped
# after "<" when long. A digit on the first line (the date) keeps an officer's own "… লিখেছেন:" apart.
# Written so that the regex stays linear in the line length (no nested unbounded repeats).
_BN_WROTE = r"^(" + QUOTED_MATCH_INCLUDE + r"(?=[^\n]*[0-9০-৯])[^\n]*(?:লিখেছেন|\n[^\n]*লিখেছেন)\s?:)$"
BENGALI_ENTRY = {
    "wrote_header": _BN_WROTE,
    "disclaimers": [],
    "signatures": ["ধন্যবাদান্তে", "শুভেচ্ছান্তে"],
    "sent_from": "আমার .{1,30} থেকে পাঠানো",
}
# mail-parser-reply is extended per language by adding an entry to its language table.
MAIL_LANGUAGES.setdefault("bn", BENGALI_ENTRY)

_HEADER_RE = EmailMessage(text="", languages=["bn", "en"]).HEADER_REGEX
# The library's English patterns backtrack quadratically on long lines; attributions and header lines
# are short (clients wrap them), so longer lines are not offered to it.
_MAX_HEADER_LINE = 300

# Yahoo Mail for Android writes the first quoted line on the attribution line:
# "On Tue, Jun 9, 2026 at 2:10 PM, Name<addr> wrote:   first quoted line". The address keeps an
# officer's own sentence apart.
_INLINE_ATTRIBUTION = re.compile(r"^On\s(?=[^<\n]*\d)[^<\n]*<[^<>\s]+@[^<>\s]+>\s*wrote:\s+\S", re.IGNORECASE)
_SEPARATOR = re.compile(r"^[_\-=]{10,}$")

# --------------------------------------------------------------------------------------------------
# Signatures and sign-offs

_SIG_DASHES = re.compile(r"^--\s*$")
_SENT_FROM = re.compile(
    r"^(?:Sent from (?:my \S.{0,40}|Yahoo Mail.{0,30}|Outlook.{0,30}|Mail for Windows.{0,10}|Samsung.{0,40})"
    r"|Get Outlook for \S.{0,20}?(?:\s*<[^>]*>)?"
    r"|আমার .{1,30} থেকে পাঠানো)$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^(?:(?:with |best |kind |warm |warmest )?regards|best wishes|(?:many )?thanks|thank you"
    r"|thanks (?:and|&) regards|(?:yours )?sincerely|sincerely yours|yours (?:faithfully|truly)|cheers|best"
    r"|dhonnobad(?:ante)?|ধন্যবাদান্তে|শুভেচ্ছান্তে|ধন্যবাদ|শুভেচ্ছাসহ|শুভেচ্ছা|বিনীত|আপনার বিশ্বস্ত|নিবেদক)"
    r"\s*[,.!।]*$",
    re.IGNORECASE,
)
_COMMAND_LINE = re.compile(r"^#\w")
_SENTENCE_END = (".", "?", "!", "।", ":", ";")
_MAX_NAME_LINES = 8  # a closing line plus the lines of a name, designation, office and phone


def _is_name_line(line: str) -> bool:
    """A short line that reads like a name, a designation, an office, a phone number or an address."""
    return (
        len(line) <= 80
        and len(line.split()) <= 10
        and not line.endswith(_SENTENCE_END)
        and "।" not in line
        and "?" not in line
    )


# --------------------------------------------------------------------------------------------------
# Text


def _split_text(text: str) -> ReplyParts:
    lines = [line.rstrip() for line in text.split("\n")]
    bare = [_bare(line) for line in lines]
    quote_lines, cut = _find_quotes(bare)

    segments: list[list[str]] = []
    current: list[str] = []
    for i, line in enumerate(lines[:cut]):
        if i in quote_lines:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(line)
    if current:
        segments.append(current)

    kept: list[list[str]] = []
    signature: list[str] = []
    content_before = False
    for segment in segments:
        body, sig = _clean_segment(segment, content_before)
        signature += sig
        if body:
            kept.append(body)
            content_before = content_before or any(
                _bare(line) and not _COMMAND_LINE.match(_bare(line)) for line in body
            )

    quoted = [lines[i] for i in sorted(quote_lines)] + lines[cut:]
    return ReplyParts(
        reply_text=_join_blocks(["\n".join(block) for block in kept]),
        quoted_text=_collapse("\n".join(quoted)),
        signature=_collapse("\n".join(signature)),
    )


def _bare(line: str) -> str:
    """The line without surrounding whitespace, no-break spaces or zero-width spaces."""
    return line.replace("\u200b", "").replace("\ufeff", "").strip()


def _find_quotes(bare: list[str]) -> tuple[set[int], int]:
    """Indexes of quoted lines before ``cut``, and ``cut``: the first line of a quote that runs to the end."""
    cut = len(bare)
    for i, line in enumerate(bare):
        if _INLINE_ATTRIBUTION.match(line):
            cut = i
            break

    quote_lines = {i for i, line in enumerate(bare) if line.startswith(">")}
    probe = [line if len(line) <= _MAX_HEADER_LINE else "\u2026" for line in bare]
    joined = "\n".join(probe)
    starts = [0]
    for line in probe[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    for match in _HEADER_RE.finditer(joined):
        begin, end = match.start(), match.end()
        while begin < end and joined[begin] == "\n":
            begin += 1
        if begin >= end:
            continue
        first = bisect.bisect_right(starts, begin) - 1
        last = bisect.bisect_right(starts, end - 1) - 1
        if first >= cut:
            break
        if bare[first].startswith(">"):
            continue  # a header inside a quote is part of that quote
        following = next((line for line in bare[last + 1 :] if line), "")
        if following.startswith(">"):
            quote_lines.update(range(first, last + 1))  # bounded: officer text may follow the quote
        else:
            cut = first  # unprefixed quote (Outlook, Yahoo, Samsung): everything below is quoted
            break
    return {i for i in quote_lines if i < cut}, cut


def _clean_segment(segment: list[str], content_before: bool) -> tuple[list[str], list[str]]:
    """Remove the client signature and a typed sign-off from one run of officer lines."""
    lines = _trim(segment)
    while lines and _SEPARATOR.match(_bare(lines[-1])):
        lines = _trim(lines[:-1])

    signature: list[str] = []
    for i, line in enumerate(lines):
        if _SIG_DASHES.match(_bare(line)) or _SENT_FROM.match(_bare(line)):
            signature = lines[i:]
            lines = _trim(lines[:i])
            break

    start = _sign_off_start(lines, content_before)
    if start is not None:
        commands = [line for line in lines[start + 1 :] if _COMMAND_LINE.match(_bare(line))]
        signature = [line for line in lines[start:] if line not in commands] + signature
        lines = _trim(lines[:start] + ([""] if commands else []) + commands)
    return lines, signature


def _sign_off_start(lines: list[str], content_before: bool) -> int | None:
    """Index of the closing line of a typed sign-off at the end of ``lines``, if there is one.

    Walks up from the bottom while the lines are name-like (at most ``_MAX_NAME_LINES``), so the cost
    stays linear; the topmost closing line wins ("Thanks,\nRegards,\nName" goes whole). A closing line
    with nothing of the officer's above it is the message itself ("ধন্যবাদ") and stays.
    """
    bare = [_bare(line) for line in lines]
    first_content = next(
        (i for i, b in enumerate(bare) if b and not _COMMAND_LINE.match(b)), len(lines)
    )
    found, names = None, 0
    for i in range(len(lines) - 1, -1, -1):
        if _CLOSING.match(bare[i]) and (content_before or first_content < i):
            found = i
        if bare[i] and not _COMMAND_LINE.match(bare[i]):
            names += 1
            if names > _MAX_NAME_LINES or not _is_name_line(bare[i]):
                break
    return found


def _trim(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not _bare(lines[start]):
        start += 1
    while end > start and not _bare(lines[end - 1]):
        end -= 1
    return lines[start:end]


def _collapse(text: str) -> str:
    """Runs of blank lines become one blank line; the whole is trimmed."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n(?:[ \t\xa0]*\n)+", "\n\n", text).strip()


def _join_blocks(blocks: list[str]) -> str:
    return _collapse("\n\n".join(b for b in blocks if b and b.strip()))


def unflow(text: str) -> str:
    """Undo RFC 3676 format=flowed (DelSp=no): a line ending in a space continues on the next line."""
    out: list[str] = []
    pending: tuple[int, str] | None = None
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        content = raw[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if pending and pending[0] == depth:
            content = pending[1] + content
        elif pending:
            out.append(_flowed_line(*pending))
        pending = None
        if content.endswith(" ") and content != "-- ":
            pending = (depth, content)
        else:
            out.append(_flowed_line(depth, content))
    if pending:
        out.append(_flowed_line(*pending))
    return "\n".join(out)


def _flowed_line(depth: int, content: str) -> str:
    return (">" * depth + " " + content) if depth else content


# --------------------------------------------------------------------------------------------------
# HTML

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_QUOTE_CLASSES = {"gmail_quote", "gmail_quote_container", "gmail_attr", "moz-cite-prefix", "protonmail_quote"}
_SIGNATURE_CLASSES = {"gmail_signature", "moz-signature"}
_SIGNATURE_IDS = {"ms-outlook-mobile-signature", "signature"}
_CUT_IDS = {"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container"}
# Outlook desktop draws its reply header block with a top border in one of these colours.
_CUT_BORDERS = ("border-top:solid#e1e1e1", "border-top:solid#b5c4df")


def _marker(tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
    """'cut', 'quote', 'signature' or None for one start tag."""
    values = {name: (value or "") for name, value in attrs}
    classes = set(values.get("class", "").split())
    ident = values.get("id", "").lower()
    style = re.sub(r"\s+", "", values.get("style", "").lower())
    if ident in _CUT_IDS or any(border in style for border in _CUT_BORDERS):
        return "cut"
    if (
        classes & _QUOTE_CLASSES
        or any(c.endswith("yahoo_quoted") for c in classes)
        or (tag == "blockquote" and values.get("type", "").lower() == "cite")
    ):
        return "quote"
    if classes & _SIGNATURE_CLASSES or ident in _SIGNATURE_IDS:
        return "signature"
    return None


class _QuoteFinder(HTMLParser):
    """Finds the character spans of quote and signature elements, and where Outlook's quote begins."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self._starts = [0]
        for line in source.split("\n")[:-1]:
            self._starts.append(self._starts[-1] + len(line) + 1)
        self.source = source
        self.spans: list[tuple[int, int, str]] = []
        self.cut: int | None = None
        self._open: tuple[str, int, int, str] | None = None  # tag, depth, start, kind

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        if self.cut is not None:
            return
        if self._open:
            if tag == self._open[0]:
                self._open = (tag, self._open[1] + 1, *self._open[2:])
            return
        kind = _marker(tag, attrs)
        if kind == "cut":
            self.cut = self._offset()
        elif kind:
            start = self._offset()
            if tag in _VOID:
                self.spans.append((start, start + len(self.get_starttag_text() or ""), kind))
            else:
                self._open = (tag, 1, start, kind)

    def handle_startendtag(self, tag, attrs):
        if self.cut is None and not self._open and _marker(tag, attrs) == "cut":
            self.cut = self._offset()

    def handle_endtag(self, tag):
        if self.cut is not None or not self._open or tag != self._open[0]:
            return
        name, depth, start, kind = self._open
        if depth > 1:
            self._open = (name, depth - 1, start, kind)
            return
        here = self._offset()
        close = self.source.find(">", here)
        self.spans.append((start, len(self.source) if close < 0 else close + 1, kind))
        self._open = None

    def finish(self) -> None:
        self.close()
        if self._open and self.cut is None:
            self.spans.append((self._open[2], len(self.source), self._open[3]))
            self._open = None


def _cut_html(html: str) -> tuple[str, list[str], list[str]]:
    """(HTML without quotes and signatures, quoted HTML pieces, signature HTML pieces)."""
    html = html.replace("\r\n", "\n").replace("\r", "\n")
    finder = _QuoteFinder(html)
    try:
        finder.feed(html)
        finder.finish()
    except Exception:  # broken markup: leave it whole, the text rules still apply
        return html, [], []
    end = len(html) if finder.cut is None else finder.cut
    kept, quoted, signature, pos = [], [], [], 0
    for start, stop, kind in sorted(finder.spans):
        if start >= end or start < pos:
            continue
        kept.append(html[pos:start])
        kept.append("<p></p>")  # the removed block still separates what stood around it
        (quoted if kind == "quote" else signature).append(html[start:stop])
        pos = stop
    kept.append(html[pos:end])
    if end < len(html):
        quoted.append(html[end:])
    return "".join(kept), quoted, signature
