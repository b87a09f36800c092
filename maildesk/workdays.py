"""The Bangladesh working-day calendar: the one place that says which days and hours count.

Every deadline, reminder and "overdue by N working days" in maildesk is computed here, so the rule is
stated once (docs/design.md, "Working days"):

* The office works Sunday–Thursday; Friday and Saturday are the weekend (configurable).
* Public holidays are the `holidays` package's list for BD, corrected by the government's announced list
  for the year in config/holidays/YYYY.yaml (lunar holidays move with the moon; executive-order days are
  added each year). Years without a file use the package alone, with a warning for check-config.
* A message received on a working day before the end of office hours starts its clock that day (D);
  otherwise on the next working day. A due date is the end of office hours on the Nth working day after D.
* Time on hold pauses the clock: the due date moves on by the working time spent on hold.

Nothing here reads a clock: callers pass aware datetimes. Only `load_holiday_calendar` reads files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
import yaml

from maildesk.errors import ConfigError
from maildesk.outbound.bengali import WEEKDAYS_BN, WEEKDAYS_EN, to_ascii_digits

COUNTRY = "BD"
Names = tuple[str, str]  # (name_bn, name_en)


# --------------------------------------------------------------------------------------------------
# Public holidays
# --------------------------------------------------------------------------------------------------

_package_cache: dict[int, dict[date, Names]] = {}


def _package_year(year: int) -> dict[date, Names]:
    if year not in _package_cache:
        bn = holidays_pkg.country_holidays(COUNTRY, years=year, language="bn")
        en = holidays_pkg.country_holidays(COUNTRY, years=year, language="en_BD")
        _package_cache[year] = {d: (bn[d], en.get(d, bn[d])) for d in bn}
    return _package_cache[year]


def package_holidays(year: int) -> dict[date, Names]:
    """The `holidays` package's BD list for one year, named in Bengali and English (a fresh copy)."""
    return dict(_package_year(year))


class HolidayCalendar:
    """Public holidays by date. `days` is the final list for `years`; any other year falls back to the
    holidays package alone (so a due date that runs into an unlisted year still skips the fixed
    holidays). `warnings` are for check-config, not errors."""

    def __init__(
        self,
        days: Mapping[date, Names] | None = None,
        years: Iterable[int] = (),
        warnings: Iterable[str] = (),
    ):
        self.years = frozenset(years)
        self.warnings = tuple(warnings)
        self._days = dict(days or {})
        stray = sorted({d.year for d in self._days} - self.years)
        if stray:
            raise ValueError(f"holiday days given for years {stray} not listed in years")

    def name(self, d: date) -> Names | None:
        """(name_bn, name_en) if `d` is a public holiday, else None."""
        if d.year in self.years:
            return self._days.get(d)
        return _package_year(d.year).get(d)

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and self.name(d) is not None

    def between(self, start: date, end: date) -> list[tuple[date, str, str]]:
        """All holidays from start to end inclusive, as (date, name_bn, name_en), for listing."""
        out = []
        d = start
        while d <= end:
            names = self.name(d)
            if names:
                out.append((d, *names))
            d += timedelta(days=1)
        return out


# --------------------------------------------------------------------------------------------------
# The per-year holiday files (config/holidays/YYYY.yaml)
# --------------------------------------------------------------------------------------------------

_TOP_KEYS = {"year", "source", "holidays", "remove", "move"}
_ENTRY_KEYS = {
    "holidays": ({"date", "name_bn", "name_en"}, {"note"}),
    "remove": ({"date", "reason"}, {"note"}),
    "move": ({"from", "to"}, {"reason", "note"}),
}
_FILE_NAME = re.compile(r"^(\d{4})\.ya?ml$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so an impossible date like 2026-02-30 is reported with
    its key instead of failing inside the YAML parser."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class HolidayFile:
    """One year's corrections to the package list, as the clerk wrote them."""

    file: str
    year: int
    add: tuple[tuple[date, str, str], ...]  # (date, name_bn, name_en)
    remove: tuple[tuple[date, str], ...]  # (date, reason)
    move: tuple[tuple[date, date], ...]  # (from, to)


def _as_date(value: Any, year: int, file: str, key: str) -> date:
    if isinstance(value, datetime):
        raise ConfigError(file, key, f"write a date only, like {year}-03-26 (no time of day)")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(to_ascii_digits(value.strip()))
        except ValueError:
            raise ConfigError(file, key, f"{value!r} is not a date: write it like {year}-03-26") from None
    if not isinstance(value, date):
        raise ConfigError(file, key, f"{value!r} is not a date: write it like {year}-03-26")
    if value.year != year:
        raise ConfigError(file, key, f"{value.isoformat()} is not in {year}: this file is for {year} only")
    return value


def _as_text(value: Any, file: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(file, key, "must be non-empty text")
    return value.strip()


def _entries(data: dict, section: str, file: str) -> list[tuple[str, dict]]:
    items = data.get(section) or []
    if not isinstance(items, list):
        raise ConfigError(file, section, "must be a list of entries, each starting with '- '")
    required, optional = _ENTRY_KEYS[section]
    out = []
    for i, entry in enumerate(items):
        key = f"{section}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(file, key, f"must be an entry with {', '.join(sorted(required))}")
        missing = sorted(required - entry.keys())
        if missing:
            raise ConfigError(file, f"{key}.{missing[0]}", "is missing")
        unknown = sorted(entry.keys() - required - optional, key=str)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise ConfigError(file, f"{key}.{unknown[0]}", f"unknown key (allowed: {allowed})")
        out.append((key, entry))
    return out


def parse_holiday_file(text: str, file: str | Path, year: int) -> HolidayFile:
    """Check and read one year's file; every mistake is a ConfigError naming the file and key."""
    file = str(file)
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ConfigError(file, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(file, "(top)", "must be a mapping with holidays / remove / move lists")
    unknown = sorted(data.keys() - _TOP_KEYS, key=str)
    if unknown:
        raise ConfigError(file, str(unknown[0]), f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if "year" in data and data["year"] != year:
        raise ConfigError(file, "year", f"says {data['year']!r} but the file name is for {year}")

    add, seen = [], {}
    for key, e in _entries(data, "holidays", file):
        d = _as_date(e["date"], year, file, f"{key}.date")
        if d in seen:
            raise ConfigError(file, f"{key}.date", f"{d} is already listed at {seen[d]}")
        seen[d] = key
        name_bn = _as_text(e["name_bn"], file, f"{key}.name_bn")
        add.append((d, name_bn, _as_text(e["name_en"], file, f"{key}.name_en")))

    remove = []
    for key, e in _entries(data, "remove", file):
        d = _as_date(e["date"], year, file, f"{key}.date")
        if d in seen:
            raise ConfigError(file, f"{key}.date", f"{d} is also added at {seen[d]}: keep one of the two")
        remove.append((d, _as_text(e["reason"], file, f"{key}.reason")))

    move = []
    for key, e in _entries(data, "move", file):
        src = _as_date(e["from"], year, file, f"{key}.from")
        dst = _as_date(e["to"], year, file, f"{key}.to")
        if src == dst:
            raise ConfigError(file, f"{key}.to", "is the same day as 'from'")
        move.append((src, dst))
    return HolidayFile(file=file, year=year, add=tuple(add), remove=tuple(remove), move=tuple(move))


def _join(a: Names, b: Names) -> Names:
    """Two holidays on one day (e.g. May Day and Buddha Purnima) keep both names."""
    return tuple(x if y in x.split("; ") else f"{x}; {y}" for x, y in zip(a, b))  # type: ignore[return-value]


def merge_year(year: int, hf: HolidayFile | None) -> tuple[dict[date, Names], list[str]]:
    """The package list for `year` with the file applied: remove, then move, then add."""
    days = package_holidays(year)
    if hf is None:
        return days, []
    warnings = []
    for i, (d, _reason) in enumerate(hf.remove):
        if days.pop(d, None) is None:
            warnings.append(
                f"{hf.file}: remove[{i}].date: {d} is not a holiday in the holidays package; nothing removed "
                "(the entry can be deleted)"
            )
    for i, (src, dst) in enumerate(hf.move):
        names = days.pop(src, None)
        if names is None:
            if dst in days:
                warnings.append(
                    f"{hf.file}: move[{i}]: the holidays package already has {days[dst][1]} on {dst}; "
                    "the entry can be deleted"
                )
                continue
            raise ConfigError(
                hf.file, f"move[{i}].from",
                f"{src} is not a holiday in the holidays package, so there is nothing to move; "
                "add the day under 'holidays' instead",
            )
        days[dst] = _join(days[dst], names) if dst in days else names
    for d, name_bn, name_en in hf.add:
        days[d] = _join(days[d], (name_bn, name_en)) if d in days else (name_bn, name_en)
    return days, warnings


def load_holiday_calendar(folder: Path, years: Iterable[int]) -> HolidayCalendar:
    """Read config/holidays/YYYY.yaml for each year and merge it with the package list."""
    folder = Path(folder)
    days: dict[date, Names] = {}
    warnings: list[str] = []
    years = sorted(set(years))
    for year in years:
        path = next((p for p in (folder / f"{year}.yaml", folder / f"{year}.yml") if p.is_file()), None)
        if path is None:
            expected = folder / f"{year}.yaml"
            warnings.append(f"no holiday file for {year} ({expected}): using the holidays package only")
            hf = None
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ConfigError(path, "(file)", "is not UTF-8 text: save it as UTF-8") from None
            hf = parse_holiday_file(text, path, year)
        year_days, year_warnings = merge_year(year, hf)
        days.update(year_days)
        warnings.extend(year_warnings)
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.suffix in (".yaml", ".yml") and not _FILE_NAME.match(p.name):
                warnings.append(f"{p}: ignored; holiday files are named by year, like 2026.yaml")
    return HolidayCalendar(days, years, warnings)


# --------------------------------------------------------------------------------------------------
# Working days and hours
# --------------------------------------------------------------------------------------------------


class SkippedDay(NamedTuple):
    """A non-working day a due date stepped over, with the reason, so anyone can check by hand."""

    date: date
    reason_en: str
    reason_bn: str


@dataclass(frozen=True)
class DueDate:
    """When a ticket is due, the day its clock started, and every day skipped on the way."""

    due_at: datetime  # aware, in the office time zone, at the end of office hours
    start_day: date
    working_days: int
    skipped: tuple[SkippedDay, ...]


def _aware(dt: datetime, name: str) -> None:
    if not isinstance(dt, datetime):
        raise ValueError(f"{name} must be a datetime, got {dt!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {dt.isoformat()})")


def _as_time(value: time | str, name: str) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} must be a time like 09:00, got {value!r}") from None


class WorkCalendar:
    """Working days and office hours for one office: the rule every deadline is computed by."""

    def __init__(
        self,
        holidays: HolidayCalendar,
        tz: str | ZoneInfo = "Asia/Dhaka",
        weekend: Iterable[int] = (4, 5),
        office_start: time | str = time(9),
        office_end: time | str = time(17),
    ):
        self.holidays = holidays
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.weekend = frozenset(weekend)
        if not self.weekend <= set(range(7)) or len(self.weekend) == 7:
            raise ValueError(
                f"weekend must be weekday numbers 0–6 (Monday=0), not all seven: {sorted(self.weekend)}"
            )
        self.office_start = _as_time(office_start, "office_start")
        self.office_end = _as_time(office_end, "office_end")
        if not self.office_start < self.office_end:
            hours = f"{self.office_start}–{self.office_end}"
            raise ValueError(f"office hours must start before they end ({hours})")

    # -- days ---------------------------------------------------------------------------------------

    def non_working_reason(self, d: date) -> tuple[str, str] | None:
        """(reason_en, reason_bn) if `d` is not a working day, else None."""
        names = self.holidays.name(d)
        if names is not None:
            return names[1], names[0]
        if d.weekday() in self.weekend:
            return f"weekend ({WEEKDAYS_EN[d.weekday()]})", f"সাপ্তাহিক ছুটি ({WEEKDAYS_BN[d.weekday()]})"
        return None

    def is_working_day(self, d: date) -> bool:
        return d.weekday() not in self.weekend and self.holidays.name(d) is None

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after `d`."""
        return self.add_working_days(d, 1)

    def add_working_days(self, d: date, n: int) -> date:
        """The nth working day after `d` (before it if n < 0); n = 0 returns `d` unchanged."""
        step = 1 if n >= 0 else -1
        left = abs(n)
        while left:
            d += timedelta(days=step)
            if self.is_working_day(d):
                left -= 1
        return d

    # -- instants -----------------------------------------------------------------------------------

    def local(self, dt: datetime) -> datetime:
        """`dt` (aware) in the office time zone."""
        _aware(dt, "datetime")
        return dt.astimezone(self.tz)

    def office_close(self, d: date) -> datetime:
        """The end of office hours on `d`, aware, in the office time zone."""
        return datetime.combine(d, self.office_end, tzinfo=self.tz)

    def office_open(self, d: date) -> datetime:
        return datetime.combine(d, self.office_start, tzinfo=self.tz)

    def start_day(self, received: datetime) -> date:
        """D: the day of receipt if it is a working day and office hours have not ended, else the next
        working day (mail at 07:45 counts that day; mail at 17:00 or later counts the next)."""
        _aware(received, "received")
        local = received.astimezone(self.tz)
        d = local.date()
        if self.is_working_day(d) and local.time() < self.office_end:
            return d
        return self.next_working_day(d)

    def due_at(self, received: datetime, working_days: int) -> DueDate:
        """Due at the end of office hours on the Nth working day after D (N = 0: the end of D)."""
        _aware(received, "received")
        if working_days < 0:
            raise ValueError(f"working_days must be 0 or more, got {working_days}")
        start = self.start_day(received)
        last = self.add_working_days(start, working_days)
        skipped = []
        d = received.astimezone(self.tz).date()
        while d <= last:
            reason = self.non_working_reason(d)
            if reason:
                skipped.append(SkippedDay(d, *reason))
            d += timedelta(days=1)
        return DueDate(
            due_at=self.office_close(last), start_day=start, working_days=working_days, skipped=tuple(skipped)
        )

    def working_days_between(self, a: datetime, b: datetime) -> int:
        """How many working days ended (office close on a working day) after `a` up to and including `b`;
        negative, counted the same way, when `b` is before `a`. With a = a due date and b = now, this is
        "overdue by N working days": 0 from the due moment until the next working day's close, -1 during
        the last working day before it."""
        _aware(a, "a")
        _aware(b, "b")
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        d = a.astimezone(self.tz).date()
        last = b.astimezone(self.tz).date()
        while d <= last:
            if self.is_working_day(d) and a < self.office_close(d) <= b:
                count += 1
            d += timedelta(days=1)
        return count

    # -- working time (holds) -----------------------------------------------------------------------

    def _office_window(self, d: date) -> tuple[datetime, datetime] | None:
        if not self.is_working_day(d):
            return None
        return self.office_open(d), self.office_close(d)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Office-hours time on working days within [a, b] (zero if b is not after a)."""
        _aware(a, "a")
        _aware(b, "b")
        total = timedelta(0)
        if b <= a:
            return total
        d = a.astimezone(self.tz).date()
        last = b.astimezone(self.tz).date()
        while d <= last:
            window = self._office_window(d)
            if window:
                lo, hi = max(window[0], a), min(window[1], b)
                if hi > lo:
                    total += hi - lo
            d += timedelta(days=1)
        return total

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant `amount` of office-hours time after `start`, in the office time zone. An amount
        that ends exactly at closing time stays on that day (17:00), not the next morning."""
        _aware(start, "start")
        if amount < timedelta(0):
            raise ValueError(f"amount must not be negative, got {amount}")
        cursor = start.astimezone(self.tz)
        if not amount:
            return cursor
        d = cursor.date()
        while True:
            window = self._office_window(d)
            if window and cursor < window[1]:
                lo = max(cursor, window[0])
                room = window[1] - lo
                if amount <= room:
                    return lo + amount
                amount -= room
            d += timedelta(days=1)

    def extend_for_hold(self, due_at: datetime, hold_start: datetime, hold_end: datetime) -> datetime:
        """Move a due date on by the office-hours time the ticket spent on hold (like RT's
        IgnoreOnStatuses): a hold from Thursday 15:00 to Sunday 11:00 costs 4 hours, not 3 days."""
        _aware(due_at, "due_at")
        _aware(hold_start, "hold_start")
        _aware(hold_end, "hold_end")
        if hold_end < hold_start:
            raise ValueError(
                f"hold ends ({hold_end.isoformat()}) before it starts ({hold_start.isoformat()})"
            )
        return self.add_working_time(due_at, self.working_time_between(hold_start, hold_end))
