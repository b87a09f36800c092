"""Jinja2 rendering of every email the desk sends: Bengali first, then English.

Each email is three templates: NAME.subject.txt, NAME.txt and NAME.html. HTML autoescapes citizen text;
StrictUndefined makes a missing value an error in tests rather than a blank in a citizen's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from maildesk.ingest.parse import one_line
from maildesk.outbound import bengali


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("maildesk", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        bn_digits=bengali.bn_digits,
        date_bn=bengali.format_date_bn,
        date_en=bengali.format_date_en,
        datetime_bn=bengali.format_datetime_bn,
        datetime_en=bengali.format_datetime_en,
        workdays_bn=bengali.working_days_bn,
        workdays_en=bengali.working_days_en,
        quote=lambda text: "\n".join("> " + line for line in (text or "").splitlines()),
    )
    return env


def render(name: str, **context) -> Rendered:
    env = environment()
    subject = env.get_template(f"{name}.subject.txt").render(**context)
    return Rendered(
        subject=one_line(subject),
        text=env.get_template(f"{name}.txt").render(**context),
        html=env.get_template(f"{name}.html").render(**context),
    )
