"""charter.yaml -> the office, its services, officers and grievance ladder.

The charter file is the office's own data; every validation error names the file and the dotted key,
so a clerk who mistyped an officer key or a deadline can find the line to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maildesk.deadline import Deadline, parse_deadline
from maildesk.errors import ConfigError

SERVICE_CODES = ("2.1.1", "2.1.2", "2.1.3") + tuple(f"2.2.{i}" for i in range(1, 12))


@dataclass(frozen=True)
class Officer:
    key: str
    name_bn: str
    name_en: str
    title_bn: str
    title_en: str
    email: str


@dataclass(frozen=True)
class Service:
    code: str
    group: str
    name_bn: str
    name_en: str
    delivery_methods: tuple[str, ...]
    documents: tuple[str, ...]
    fee: str
    deadline_text: str
    deadline: Deadline
    officer: str


@dataclass(frozen=True)
class Level:
    """One rung of the grievance ladder: who is told, how many working days after the due date."""

    index: int
    name: str
    after_working_days: int
    notify: tuple[str, ...]
    tell_citizen: bool


@dataclass(frozen=True)
class Office:
    key: str
    name_bn: str
    name_en: str
    desk_address: str
    desk_aliases: tuple[str, ...]
    desk_name: str
    ticket_prefix: str
    timezone: str
    default_officer: str
    reopen_days: int
    office_start: str
    office_end: str
    triage_working_days: int = 1
    plus_addressing: bool = False
    authserv_id: str | None = None
    admin: str | None = None
    alert_after_failures: int = 5
    auto_replies_per_hour: int = 5
    auto_replies_per_day: int = 20


@dataclass(frozen=True)
class Charter:
    path: Path
    office: Office
    officers: dict[str, Officer]
    services: dict[str, Service]
    ladder: tuple[Level, ...]
    raw: dict[str, Any] = field(repr=False)

    def officer_by_email(self, email: str | None) -> Officer | None:
        email = (email or "").strip().lower()
        for officer in self.officers.values():
            if officer.email.lower() == email:
                return officer
        return None

    def desk_addresses(self) -> set[str]:
        return {a.lower() for a in (self.office.desk_address, *self.office.desk_aliases)}

    def responsible_officer(self, service_code: str | None) -> Officer:
        if service_code and service_code in self.services:
            return self.officers[self.services[service_code].officer]
        return self.officers[self.office.default_officer]


def _need(table: dict, key: str, file: Path, dotted: str, kind=str):
    if not isinstance(table, dict) or key not in table or table[key] in (None, ""):
        raise ConfigError(file, f"{dotted}.{key}" if dotted else key, "missing")
    value = table[key]
    if not isinstance(value, kind):
        raise ConfigError(file, f"{dotted}.{key}", f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _str_list(table: dict, key: str, file: Path, dotted: str) -> tuple[str, ...]:
    value = table.get(key, []) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(file, f"{dotted}.{key}", "expected a list of text lines")
    return tuple(value)


def load_charter(path: str | Path) -> Charter:
    """Load and validate a charter file."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(file, "-", "charter file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, "-", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(file, "-", "expected a mapping with office, officers, services, escalation")

    o = _need(raw, "office", file, "", dict)
    officers_raw = _need(raw, "officers", file, "", dict)
    officers = {}
    for key, entry in officers_raw.items():
        dotted = f"officers.{key}"
        email = _need(entry, "email", file, dotted)
        if "@" not in email:
            raise ConfigError(file, f"{dotted}.email", f"not an email address: {email!r}")
        officers[str(key)] = Officer(
            key=str(key),
            name_bn=_need(entry, "name_bn", file, dotted),
            name_en=_need(entry, "name_en", file, dotted),
            title_bn=entry.get("title_bn", ""),
            title_en=entry.get("title_en", ""),
            email=email,
        )

    default_officer = _need(o, "default_officer", file, "office")
    if default_officer not in officers:
        raise ConfigError(file, "office.default_officer", f"unknown officer {default_officer!r}")
    prefix = _need(o, "ticket_prefix", file, "office")
    if not (prefix.isascii() and prefix.isalpha() and prefix.isupper() and 2 <= len(prefix) <= 10):
        raise ConfigError(file, "office.ticket_prefix", "use 2 to 10 capital letters, e.g. ICT")
    hours = o.get("office_hours", "09:00-17:00")
    try:
        start, end = (h.strip() for h in str(hours).split("-"))
        if not (len(start) == 5 and len(end) == 5 and start < end):
            raise ValueError
    except ValueError as exc:
        raise ConfigError(file, "office.office_hours", "write office hours like 09:00-17:00") from exc
    def number(table, key, dotted, default, low=0):
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(file, dotted, f"expected a whole number of at least {low}, got {value!r}")
        return value

    limits = o.get("auto_reply_limits") or {}
    if not isinstance(limits, dict):
        raise ConfigError(file, "office.auto_reply_limits", "expected per_hour and per_day")
    admin = o.get("admin")
    if admin is not None and admin not in officers:
        raise ConfigError(file, "office.admin", f"unknown officer {admin!r}")
    plus = o.get("plus_addressing", False)
    if not isinstance(plus, bool):
        raise ConfigError(file, "office.plus_addressing", "expected true or false")
    office = Office(
        triage_working_days=number(o, "triage_working_days", "office.triage_working_days", 1),
        plus_addressing=plus,
        authserv_id=(str(o["authserv_id"]).strip() or None) if o.get("authserv_id") else None,
        admin=admin,
        alert_after_failures=number(o, "alert_after_failures", "office.alert_after_failures", 5, 1),
        auto_replies_per_hour=number(limits, "per_hour", "office.auto_reply_limits.per_hour", 5, 1),
        auto_replies_per_day=number(limits, "per_day", "office.auto_reply_limits.per_day", 20, 1),
        key=_need(o, "key", file, "office"),
        name_bn=_need(o, "name_bn", file, "office"),
        name_en=_need(o, "name_en", file, "office"),
        desk_address=_need(o, "desk_address", file, "office"),
        desk_aliases=_str_list(o, "desk_aliases", file, "office"),
        desk_name=o.get("desk_name") or "Maildesk",
        ticket_prefix=prefix,
        timezone=o.get("timezone", "Asia/Dhaka"),
        default_officer=default_officer,
        reopen_days=number(o, "reopen_days", "office.reopen_days", 30),
        office_start=start,
        office_end=end,
    )
    if office.desk_address.lower() in {x.email.lower() for x in officers.values()}:
        raise ConfigError(file, "office.desk_address", "must not be an officer's own address")

    services_raw = _need(raw, "services", file, "", dict)
    services = {}
    for code, entry in services_raw.items():
        code = str(code)
        dotted = f"services.{code}"
        deadline_text = _need(entry, "deadline", file, dotted)
        try:
            deadline = parse_deadline(deadline_text)
        except ValueError as exc:
            raise ConfigError(file, f"{dotted}.deadline", str(exc)) from exc
        officer = _need(entry, "officer", file, dotted)
        if officer not in officers:
            raise ConfigError(file, f"{dotted}.officer", f"unknown officer {officer!r}")
        services[code] = Service(
            code=code,
            group=entry.get("group", ""),
            name_bn=_need(entry, "name_bn", file, dotted),
            name_en=_need(entry, "name_en", file, dotted),
            delivery_methods=_str_list(entry, "delivery_methods", file, dotted),
            documents=_str_list(entry, "documents", file, dotted),
            fee=_need(entry, "fee", file, dotted),
            deadline_text=deadline_text,
            deadline=deadline,
            officer=officer,
        )

    ladder = []
    for i, entry in enumerate(raw.get("escalation", []) or []):
        dotted = f"escalation[{i}]"
        notify = _str_list(entry, "notify", file, dotted)
        for who in notify:
            if who != "responsible" and who not in officers:
                raise ConfigError(file, f"{dotted}.notify", f"unknown officer {who!r}")
        after = entry.get("after_working_days")
        if not isinstance(after, int):
            raise ConfigError(file, f"{dotted}.after_working_days", "expected a whole number of working days")
        if ladder and after <= ladder[-1].after_working_days:
            raise ConfigError(file, f"{dotted}.after_working_days", "levels must come in increasing order")
        ladder.append(
            Level(
                index=i,
                name=_need(entry, "level", file, dotted),
                after_working_days=after,
                notify=notify,
                tell_citizen=bool(entry.get("tell_citizen", False)),
            )
        )
    return Charter(path=file, office=office, officers=officers, services=services, ladder=tuple(ladder), raw=raw)
