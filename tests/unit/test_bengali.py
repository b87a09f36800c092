"""Bengali renderings as a citizen reads them in an acknowledgement."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from maildesk.outbound.bengali import (
    MONTHS_BN,
    WEEKDAYS_BN,
    bn_digits,
    day_part_bn,
    format_date_bn,
    format_date_en,
    format_datetime_bn,
    format_datetime_en,
    to_ascii_digits,
    working_days_bn,
    working_days_en,
)

DHAKA = ZoneInfo("Asia/Dhaka")


def test_bn_digits():
    assert bn_digits(2026) == "২০২৬"
    assert bn_digits(0) == "০"
    assert bn_digits("MD-2026-00084") == "MD-২০২৬-০০০৮৪"
    assert bn_digits(-3) == "-৩"


def test_to_ascii_digits_leaves_other_text_alone():
    assert to_ascii_digits("#due ১৫") == "#due 15"
    assert to_ascii_digits("৩ কার্যদিবস") == "3 কার্যদিবস"
    assert to_ascii_digits("০১২৩৪৫৬৭৮৯") == "0123456789"


@given(st.integers())
def test_digits_round_trip(n):
    assert to_ascii_digits(bn_digits(n)) == str(n)
    assert not any(c in "0123456789" for c in bn_digits(n))


def test_month_and_weekday_names():
    assert MONTHS_BN[0] == "জানুয়ারি" and MONTHS_BN[7] == "আগস্ট" and MONTHS_BN[11] == "ডিসেম্বর"
    assert len(MONTHS_BN) == 12
    assert WEEKDAYS_BN[date(2026, 12, 6).weekday()] == "রবিবার"
    assert WEEKDAYS_BN[date(2026, 12, 10).weekday()] == "বৃহস্পতিবার"
    assert WEEKDAYS_BN[date(2026, 12, 12).weekday()] == "শনিবার"


def test_format_date():
    assert format_date_bn(date(2026, 12, 6)) == "রবিবার, ৬ ডিসেম্বর ২০২৬"
    assert format_date_bn(date(2026, 3, 26)) == "বৃহস্পতিবার, ২৬ মার্চ ২০২৬"
    assert format_date_bn(date(2027, 1, 1)) == "শুক্রবার, ১ জানুয়ারি ২০২৭"
    assert format_date_en(date(2026, 12, 6)) == "Sunday, 6 December 2026"
    assert format_date_en(date(2026, 2, 21)) == "Saturday, 21 February 2026"


def test_format_datetime_office_close():
    dt = datetime(2026, 12, 6, 17, 0, tzinfo=DHAKA)
    assert format_datetime_bn(dt) == "রবিবার, ৬ ডিসেম্বর ২০২৬, বিকাল ৫:০০"
    assert format_datetime_en(dt) == "Sunday, 6 December 2026, 5:00 pm"


@pytest.mark.parametrize(
    "hour, minute, bn, en",
    [
        (0, 30, "রাত ১২:৩০", "12:30 am"),
        (3, 59, "রাত ৩:৫৯", "3:59 am"),
        (4, 0, "ভোর ৪:০০", "4:00 am"),
        (6, 0, "সকাল ৬:০০", "6:00 am"),
        (9, 5, "সকাল ৯:০৫", "9:05 am"),
        (11, 59, "সকাল ১১:৫৯", "11:59 am"),
        (12, 0, "দুপুর ১২:০০", "12:00 pm"),
        (13, 30, "দুপুর ১:৩০", "1:30 pm"),
        (16, 0, "বিকাল ৪:০০", "4:00 pm"),
        (18, 15, "সন্ধ্যা ৬:১৫", "6:15 pm"),
        (20, 0, "রাত ৮:০০", "8:00 pm"),
        (23, 45, "রাত ১১:৪৫", "11:45 pm"),
    ],
)
def test_day_parts(hour, minute, bn, en):
    dt = datetime(2026, 12, 7, hour, minute, tzinfo=DHAKA)
    assert format_datetime_bn(dt) == f"সোমবার, ৭ ডিসেম্বর ২০২৬, {bn}"
    assert format_datetime_en(dt) == f"Monday, 7 December 2026, {en}"


def test_day_part_rejects_impossible_hour():
    with pytest.raises(ValueError):
        day_part_bn(24)


def test_format_datetime_converts_to_the_given_zone():
    utc = datetime(2026, 12, 6, 11, 0, tzinfo=timezone.utc)  # 17:00 in Dhaka
    assert format_datetime_bn(utc, DHAKA) == "রবিবার, ৬ ডিসেম্বর ২০২৬, বিকাল ৫:০০"
    late = datetime(2026, 12, 6, 19, 30, tzinfo=timezone.utc)  # 01:30 next day in Dhaka
    assert format_datetime_en(late, DHAKA) == "Monday, 7 December 2026, 1:30 am"
    assert format_datetime_en(late) == "Sunday, 6 December 2026, 7:30 pm"


def test_working_days():
    assert working_days_bn(3) == "৩ কার্যদিবস"
    assert working_days_bn(15) == "১৫ কার্যদিবস"
    assert working_days_en(1) == "1 working day"
    assert working_days_en(3) == "3 working days"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_english_and_bengali_say_the_same_date(dt):
    dt = dt.replace(tzinfo=timezone(timedelta(hours=6)))
    bn, en = format_datetime_bn(dt), format_datetime_en(dt)
    assert to_ascii_digits(bn).split(", ")[1].split(" ")[0] == str(dt.day)
    assert str(dt.year) in to_ascii_digits(bn) and str(dt.year) in en
    assert MONTHS_BN[dt.month - 1] in bn
    hh, mm = to_ascii_digits(bn.rsplit(" ", 1)[1]).split(":")
    assert (int(hh) % 12, int(mm)) == (dt.hour % 12, dt.minute)
    assert en.endswith(f"{dt.hour % 12 or 12}:{dt.minute:02d} {'am' if dt.hour < 12 else 'pm'}")
