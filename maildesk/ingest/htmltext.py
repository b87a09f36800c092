"""HTML -> readable plain text (paragraphs and line breaks kept, scripts and styles dropped).

One converter for the whole desk: classification, reply stripping and stored text all use it.
"""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "li", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "ul", "ol"}
_SKIP = {"script", "style", "head", "title"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK and tag != "br":
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    """Plain text of an HTML body; never raises on broken markup."""
    parser = _Text()
    try:
        parser.feed(html or "")
        parser.close()
    except Exception:
        return html_lib.unescape(re.sub(r"<[^>]+>", " ", html or ""))
    text = "".join(parser.out).replace("\xa0", " ")
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
