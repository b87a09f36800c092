"""Bengali (and matching English) renderings of numbers, dates and times for citizen-facing mail.

Citizens read the Bengali text first, so dates, times and counts are written the way an office letter
writes them: Bengali digits, Bengali month and weekday names, and a day-part word before a 12-hour time
("বিকাল ৫:০০"). The English helpers produce the same facts in the same order for the English half.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

_BN_DIGITS = "০১২৩৪৫৬৭৮৯"
_TO_BN = str.maketrans("0123456789", _BN_DIGITS)
_TO_ASCII = str.maketrans(_BN_DIGITS, "0123456789")

# Gregorian months as written in Bangladesh government letters; index 0 is January.
MONTHS_BN = (
    "জানুয়ারি", "ফেব্রুয়ারি", "মার্চ", "এপ্রিল", "মে", "জুন",
    "জুলাই", "আগস্ট", "সেপ্টেম্বর", "অক্টোবর", "নভেম্বর", "ডিসেম্বর",
)
MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
# Indexed like date.weekday(): Monday is 0.
WEEKDAYS_BN = ("সোমবার", "মঙ্গলবার", "বুধবার", "বৃহস্পতিবার", "শুক্রবার", "শনিবার", "রবিবার")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Day-part words before a 12-hour time, following the CLDR `bn` day periods (half-open hour ranges):
# a 12-hour clock is ambiguous without them ("৫:০০" could be dawn or afternoon).
_DAY_PARTS_BN = (
    (4, "ভোর"),      # 04:00–05:59
    (6, "সকাল"),     # 06:00–11:59
    (12, "দুপুর"),   # 12:00–15:59
    (16, "বিকাল"),   # 16:00–17:59
    (18, "সন্ধ্যা"),  # 18:00–19:59
    (20, "রাত"),     # 20:00–03:59
)


def bn_digits(x: object) -> str:
    """Write a number (or any text) with Bengali digits: 2026 → "২০২৬"."""
    return str(x).translate(_TO_BN)


def to_ascii_digits(s: str) -> str:
    """Turn Bengali digits into ASCII ones, so "#due ১৫" and "15" parse the same."""
    return s.translate(_TO_ASCII)


def day_part_bn(hour: int) -> str:
    """The Bengali word for the part of the day that `hour` (0–23) falls in."""
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0–23, got {hour}")
    word = _DAY_PARTS_BN[-1][1]  # before 04:00 it is still night
    for start, name in _DAY_PARTS_BN:
        if hour >= start:
            word = name
    return word


def _hour12(hour: int) -> int:
    return hour % 12 or 12


def _local(dt: datetime, tz: tzinfo | None) -> datetime:
    return dt.astimezone(tz) if tz is not None else dt


def format_date_bn(d: date) -> str:
    """"রবিবার, ৬ ডিসেম্বর ২০২৬"."""
    return f"{WEEKDAYS_BN[d.weekday()]}, {bn_digits(d.day)} {MONTHS_BN[d.month - 1]} {bn_digits(d.year)}"


def format_time_bn(dt: datetime) -> str:
    """"বিকাল ৫:০০": day-part word, 12-hour clock, Bengali digits."""
    return f"{day_part_bn(dt.hour)} {bn_digits(_hour12(dt.hour))}:{bn_digits(f'{dt.minute:02d}')}"


def format_datetime_bn(dt: datetime, tz: tzinfo | None = None) -> str:
    """"রবিবার, ৬ ডিসেম্বর ২০২৬, বিকাল ৫:০০"; with `tz`, the time is first converted to it."""
    dt = _local(dt, tz)
    return f"{format_date_bn(dt.date())}, {format_time_bn(dt)}"


def format_date_en(d: date) -> str:
    """"Sunday, 6 December 2026"."""
    return f"{WEEKDAYS_EN[d.weekday()]}, {d.day} {MONTHS_EN[d.month - 1]} {d.year}"


def format_time_en(dt: datetime) -> str:
    """"5:00 pm"."""
    return f"{_hour12(dt.hour)}:{dt.minute:02d} {'am' if dt.hour < 12 else 'pm'}"


def format_datetime_en(dt: datetime, tz: tzinfo | None = None) -> str:
    """"Sunday, 6 December 2026, 5:00 pm"; with `tz`, the time is first converted to it."""
    dt = _local(dt, tz)
    return f"{format_date_en(dt.date())}, {format_time_en(dt)}"


def working_days_bn(n: int) -> str:
    """"৩ কার্যদিবস" — the charter's own wording (Bengali does not inflect it for plural)."""
    return f"{bn_digits(n)} কার্যদিবস"


def working_days_en(n: int) -> str:
    """"3 working days" / "1 working day"."""
    return f"{n} working day" if abs(n) == 1 else f"{n} working days"
