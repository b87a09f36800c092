"""The working-day calendar: due dates a clerk can check by hand against a wall calendar."""

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from maildesk.errors import ConfigError
from maildesk.workdays import (
    HolidayCalendar,
    SkippedDay,
    WorkCalendar,
    load_holiday_calendar,
    merge_year,
    package_holidays,
    parse_holiday_file,
)

ROOT = Path(__file__).resolve().parents[2]
DHAKA = ZoneInfo("Asia/Dhaka")
UTC = timezone.utc

# A test copy of a government file: the executive-order Eid day and Bijoya Dashami (a Wednesday),
# which the holidays package does not have.
FILE_2026 = """
holidays:
  - date: 2026-03-19
    name_bn: "ঈদুল ফিতর (নির্বাহী আদেশে ছুটি)"
    name_en: "Eid-ul-Fitr (executive-order holiday)"
  - date: 2026-10-21
    name_bn: "দুর্গাপূজা (বিজয়া দশমী)"
    name_en: "Durga Puja (Bijoya Dashami)"
"""


def calendar_from(texts: dict[int, str], **kwargs) -> WorkCalendar:
    """A WorkCalendar from holiday-file texts, without touching the disk."""
    days = {}
    for year, text in texts.items():
        year_days, _ = merge_year(year, parse_holiday_file(text, f"{year}.yaml", year))
        days.update(year_days)
    return WorkCalendar(HolidayCalendar(days, texts.keys()), **kwargs)


CAL = calendar_from({2026: FILE_2026})


def dhaka(*args) -> datetime:
    return datetime(*args, tzinfo=DHAKA)


def skipped_dates(due) -> list[date]:
    return [s.date for s in due.skipped]


# --- the start day (D) ------------------------------------------------------------------------------


def test_thursday_evening_starts_on_sunday():
    due = CAL.due_at(dhaka(2026, 12, 10, 18, 30), 0)
    assert due.start_day == date(2026, 12, 13)
    assert due.due_at == dhaka(2026, 12, 13, 17, 0)
    assert due.skipped == (
        SkippedDay(date(2026, 12, 11), "weekend (Friday)", "সাপ্তাহিক ছুটি (শুক্রবার)"),
        SkippedDay(date(2026, 12, 12), "weekend (Saturday)", "সাপ্তাহিক ছুটি (শনিবার)"),
    )


def test_before_office_hours_counts_the_same_day():
    assert CAL.start_day(dhaka(2026, 12, 13, 7, 45)) == date(2026, 12, 13)


def test_end_of_office_hours_is_the_boundary():
    assert CAL.start_day(dhaka(2026, 12, 14, 16, 59, 59)) == date(2026, 12, 14)
    assert CAL.start_day(dhaka(2026, 12, 14, 17, 0)) == date(2026, 12, 15)


def test_arrival_on_friday_starts_on_sunday():
    assert CAL.start_day(dhaka(2026, 12, 11, 10, 0)) == date(2026, 12, 13)


def test_received_time_is_read_in_office_time():
    # 11:30 UTC on Thursday is 17:30 in Dhaka: after hours.
    assert CAL.start_day(datetime(2026, 12, 10, 11, 30, tzinfo=UTC)) == date(2026, 12, 13)
    # 20:00 UTC on Saturday is 02:00 on Sunday in Dhaka: before hours on a working day.
    assert CAL.start_day(datetime(2026, 12, 12, 20, 0, tzinfo=UTC)) == date(2026, 12, 13)


# --- due dates ---------------------------------------------------------------------------------------


def test_victory_day_is_skipped():
    due = CAL.due_at(dhaka(2026, 12, 13, 7, 45), 3)
    assert due.due_at == dhaka(2026, 12, 17, 17, 0)  # Mon 14, Tue 15, (Wed 16 Victory Day), Thu 17
    assert due.skipped == (SkippedDay(date(2026, 12, 16), "Victory Day", "বিজয় দিবস"),)


def test_independence_day_on_a_thursday():
    due = CAL.due_at(dhaka(2026, 3, 25, 10, 0), 1)
    assert due.due_at == dhaka(2026, 3, 29, 17, 0)
    assert due.skipped[0] == SkippedDay(date(2026, 3, 26), "Independence Day", "স্বাধীনতা দিবস")
    assert skipped_dates(due) == [date(2026, 3, 26), date(2026, 3, 27), date(2026, 3, 28)]
    # Arriving after hours the day before the Thursday holiday, the clock starts on Sunday.
    assert CAL.start_day(dhaka(2026, 3, 25, 17, 30)) == date(2026, 3, 29)


def test_eid_span_with_the_executive_order_day():
    due = CAL.due_at(dhaka(2026, 3, 18, 11, 0), 3)
    # Working: Wed 18 (D), Tue 24, Wed 25, Sun 29. Eid 19–23, Independence Day 26, weekend 27–28.
    assert due.start_day == date(2026, 3, 18)
    assert due.due_at == dhaka(2026, 3, 29, 17, 0)
    assert skipped_dates(due) == [date(2026, 3, d) for d in (19, 20, 21, 22, 23, 26, 27, 28)]
    reasons = {s.date.day: s.reason_en for s in due.skipped}
    assert reasons[19] == "Eid-ul-Fitr (executive-order holiday)"
    assert reasons[22] == "Eid-ul-Fitr"


def test_file_holiday_on_a_wednesday():
    due = CAL.due_at(dhaka(2026, 10, 20, 9, 0), 1)
    assert due.due_at == dhaka(2026, 10, 22, 17, 0)
    assert due.skipped == (SkippedDay(date(2026, 10, 21), "Durga Puja (Bijoya Dashami)", "দুর্গাপূজা (বিজয়া দশমী)"),)


def test_month_end():
    due = CAL.due_at(dhaka(2026, 4, 30, 16, 0), 1)  # Thursday; 1 May is May Day and a Friday
    assert due.due_at == dhaka(2026, 5, 3, 17, 0)
    assert due.skipped[0] == SkippedDay(date(2026, 5, 1), "May Day", "মে দিবস")


def test_year_end_into_a_year_without_a_file():
    due = CAL.due_at(dhaka(2026, 12, 31, 10, 0), 3)  # Thursday
    assert due.due_at == dhaka(2027, 1, 5, 17, 0)  # Sun 3, Mon 4, Tue 5 January
    assert skipped_dates(due) == [date(2027, 1, 1), date(2027, 1, 2)]


def test_zero_working_days_is_the_end_of_the_start_day():
    assert CAL.due_at(dhaka(2026, 12, 14, 9, 30), 0).due_at == dhaka(2026, 12, 14, 17, 0)


def test_due_at_is_in_office_time_even_for_utc_input():
    due = CAL.due_at(datetime(2026, 12, 14, 3, 0, tzinfo=UTC), 0)
    assert due.due_at.tzinfo == DHAKA
    assert due.due_at.utcoffset() == timedelta(hours=6)


def test_negative_working_days_refused():
    with pytest.raises(ValueError):
        CAL.due_at(dhaka(2026, 12, 14, 9, 30), -1)


# --- stepping over days --------------------------------------------------------------------------------


def test_add_working_days_both_ways():
    assert CAL.add_working_days(date(2026, 12, 17), -1) == date(2026, 12, 15)  # over Victory Day
    assert CAL.add_working_days(date(2026, 12, 13), -1) == date(2026, 12, 10)  # over the weekend
    assert CAL.add_working_days(date(2026, 12, 10), 1) == date(2026, 12, 13)
    assert CAL.add_working_days(date(2026, 12, 12), 0) == date(2026, 12, 12)
    assert CAL.next_working_day(date(2026, 12, 15)) == date(2026, 12, 17)


def test_working_days_between_counts_office_closes():
    due = dhaka(2026, 12, 17, 17, 0)  # Thursday
    assert CAL.working_days_between(due, due) == 0
    assert CAL.working_days_between(due, dhaka(2026, 12, 20, 16, 0)) == 0  # Sunday, not over yet
    assert CAL.working_days_between(due, dhaka(2026, 12, 20, 17, 0)) == 1
    assert CAL.working_days_between(due, dhaka(2026, 12, 21, 17, 1)) == 2
    assert CAL.working_days_between(due, dhaka(2026, 12, 17, 10, 0)) == -1  # last day before due
    assert CAL.working_days_between(due, dhaka(2026, 12, 15, 17, 0)) == -1  # Victory Day between
    assert CAL.working_days_between(due, dhaka(2026, 12, 15, 16, 59)) == -2


# --- holds -------------------------------------------------------------------------------------------------


def test_hold_across_a_weekend_costs_only_office_hours():
    due = dhaka(2026, 12, 13, 17, 0)  # Sunday
    # On hold Thursday 15:00 to Sunday 11:00: 2 h Thursday + 2 h Sunday; Friday and Saturday cost nothing.
    assert CAL.extend_for_hold(due, dhaka(2026, 12, 10, 15, 0), dhaka(2026, 12, 13, 11, 0)) == dhaka(2026, 12, 14, 13, 0)


def test_hold_of_a_whole_working_day_moves_to_the_next_close():
    due = dhaka(2026, 12, 13, 17, 0)
    assert CAL.extend_for_hold(due, dhaka(2026, 12, 13, 9, 0), dhaka(2026, 12, 13, 17, 0)) == dhaka(2026, 12, 14, 17, 0)


def test_hold_outside_office_time_changes_nothing():
    due = dhaka(2026, 12, 13, 17, 0)
    assert CAL.extend_for_hold(due, dhaka(2026, 12, 10, 17, 30), dhaka(2026, 12, 13, 8, 0)) == due


def test_extension_skips_holidays():
    due = dhaka(2026, 12, 15, 17, 0)  # Tuesday; Wednesday 16 is Victory Day
    assert CAL.extend_for_hold(due, dhaka(2026, 12, 14, 9, 0), dhaka(2026, 12, 14, 12, 0)) == dhaka(2026, 12, 17, 12, 0)


def test_hold_ending_before_it_starts_refused():
    with pytest.raises(ValueError):
        CAL.extend_for_hold(dhaka(2026, 12, 13, 17), dhaka(2026, 12, 13, 12), dhaka(2026, 12, 13, 11))


# --- configuration of the week and hours -------------------------------------------------------------------


def test_weekend_and_office_hours_are_configurable():
    cal = WorkCalendar(HolidayCalendar(), weekend=(6,), office_start="10:00", office_end="16:00")
    assert cal.is_working_day(date(2026, 12, 11))  # Friday
    assert not cal.is_working_day(date(2026, 12, 13))  # Sunday
    assert cal.start_day(dhaka(2026, 12, 12, 16, 30)) == date(2026, 12, 14)  # Saturday after 16:00
    assert cal.due_at(dhaka(2026, 12, 12, 11, 0), 0).due_at == dhaka(2026, 12, 12, 16, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weekend": range(7)},
        {"weekend": (7,)},
        {"office_start": time(17), "office_end": time(9)},
        {"office_start": "nine"},
    ],
)
def test_impossible_calendars_refused(kwargs):
    with pytest.raises(ValueError):
        WorkCalendar(HolidayCalendar(), **kwargs)


@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.start_day(datetime(2026, 12, 13, 10)),
        lambda: CAL.due_at(datetime(2026, 12, 13, 10), 3),
        lambda: CAL.working_days_between(datetime(2026, 12, 13, 10), dhaka(2026, 12, 14)),
        lambda: CAL.extend_for_hold(dhaka(2026, 12, 13, 17), datetime(2026, 12, 13, 10), dhaka(2026, 12, 13, 11)),
    ],
)
def test_naive_datetimes_refused(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


# --- holiday files ------------------------------------------------------------------------------------------


def write(folder: Path, year: int, text: str) -> Path:
    path = folder / f"{year}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_removed_and_moved_holidays(tmp_path):
    assert date(2026, 8, 5) in package_holidays(2026) and date(2026, 8, 26) in package_holidays(2026)
    write(tmp_path, 2026, """
remove:
  - date: 2026-08-05
    reason: "test: cancelled by circular"
move:
  - from: 2026-08-26
    to: 2026-08-27
    reason: "moon sighted a day later"
""")
    cal = WorkCalendar(load_holiday_calendar(tmp_path, [2026]))
    assert cal.is_working_day(date(2026, 8, 5))
    assert cal.is_working_day(date(2026, 8, 26))
    assert cal.holidays.name(date(2026, 8, 27)) == package_holidays(2026)[date(2026, 8, 26)]
    assert cal.due_at(dhaka(2026, 8, 25, 10, 0), 1).due_at == dhaka(2026, 8, 26, 17, 0)
    assert cal.holidays.warnings == ()


def test_added_day_on_a_package_holiday_keeps_both_names(tmp_path):
    write(tmp_path, 2026, """
holidays:
  - date: ২০২৬-০৫-০১
    name_bn: "বুদ্ধপূর্ণিমা"
    name_en: "Buddha Purnima"
""")
    holidays = load_holiday_calendar(tmp_path, [2026])
    assert holidays.name(date(2026, 5, 1)) == ("মে দিবস; বুদ্ধপূর্ণিমা", "May Day; Buddha Purnima")


def test_warnings_for_check_config(tmp_path):
    write(tmp_path, 2026, """
remove:
  - date: 2026-08-06
    reason: "not a package holiday"
move:
  - from: 2026-03-22
    to: 2026-03-21
""")
    (tmp_path / "holidays-2026.yaml").write_text("", encoding="utf-8")
    warnings = load_holiday_calendar(tmp_path, [2026, 2027]).warnings
    assert any("remove[0].date" in w and "nothing removed" in w for w in warnings)
    assert any("no holiday file for 2027" in w and "holidays package only" in w for w in warnings)
    assert any("holidays-2026.yaml" in w and "ignored" in w for w in warnings)
    assert len(warnings) == 3  # the move lands on a day that is already Eid, so it is applied silently


def test_years_outside_the_loaded_ones_use_the_package(tmp_path):
    holidays = load_holiday_calendar(tmp_path, [2026])
    assert holidays.name(date(2030, 12, 16)) == ("বিজয় দিবস", "Victory Day")
    assert holidays.name(date(2030, 12, 17)) is None


@pytest.mark.parametrize(
    "text, key",
    [
        ("holidays:\n  - date: 2026-02-30\n    name_bn: a\n    name_en: b\n", "holidays[0].date"),
        ("holidays:\n  - date: 2025-12-31\n    name_bn: a\n    name_en: b\n", "holidays[0].date"),
        ("holidays:\n  - date: 2026-12-31 10:00:00\n    name_bn: a\n    name_en: b\n", "holidays[0].date"),
        (
            "holidays:\n  - {date: 2026-01-04, name_bn: a, name_en: b}\n  - date: 2026-01-05\n    name_bn: a\n",
            "holidays[1].name_en",
        ),
        ("holidays:\n  - date: 2026-01-05\n    name_bn: ''\n    name_en: b\n", "holidays[0].name_bn"),
        ("holidays:\n  - date: 2026-01-05\n    name_bn: a\n    name_en: b\n    nmae: c\n", "holidays[0].nmae"),
        (
            "holidays:\n  - {date: 2026-01-05, name_bn: a, name_en: b}\n  - {date: 2026-01-05, name_bn: c, name_en: d}\n",
            "holidays[1].date",
        ),
        ("holidays: {date: 2026-01-05}\n", "holidays"),
        ("holidays:\n  - 2026-01-05\n", "holidays[0]"),
        ("remove:\n  - date: 2026-08-05\n", "remove[0].reason"),
        ("move:\n  - from: 2026-08-26\n    to: 2026-13-01\n", "move[0].to"),
        ("move:\n  - from: 2026-08-27\n    to: 2026-08-28\n", "move[0].from"),
        ("holiday:\n  - date: 2026-01-05\n", "holiday"),
        ("year: 2025\n", "year"),
        ("- just a list\n", "(top)"),
        ("holidays:\n  - date: [unclosed\n", "line 3"),
    ],
)
def test_file_errors_name_the_file_and_key(tmp_path, text, key):
    path = write(tmp_path, 2026, text)
    with pytest.raises(ConfigError) as err:
        load_holiday_calendar(tmp_path, [2026])
    assert err.value.file == str(path)
    assert err.value.key == key
    assert str(path) in str(err.value) and key in str(err.value)


def test_a_file_not_saved_as_utf8(tmp_path):
    path = tmp_path / "2026.yaml"
    path.write_bytes("holidays:\n  - name_bn: দশমী\n".encode("utf-16"))
    with pytest.raises(ConfigError) as err:
        load_holiday_calendar(tmp_path, [2026])
    assert (err.value.file, err.value.key) == (str(path), "(file)")


def test_the_shipped_holiday_files():
    holidays = load_holiday_calendar(ROOT / "config" / "holidays", [2025, 2026, 2027])
    assert holidays.warnings == ()
    for year in (2025, 2026, 2027):
        names = " ".join(en for _, _, en in holidays.between(date(year, 1, 1), date(year, 12, 31)))
        for festival in ("Bijoya Dashami", "Janmashtami", "Buddha Purnima", "Victory Day", "Eid-ul-Fitr"):
            assert festival in names, (year, festival)
        for d in package_holidays(year):
            assert holidays.name(d) is not None, (year, d)  # nothing in the package lost by accident


# --- properties -----------------------------------------------------------------------------------------------

received_times = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 10, 1),
    timezones=st.sampled_from([DHAKA, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]),
)
day_counts = st.integers(min_value=0, max_value=20)
WEEKEND = {4, 5}


@given(received_times, day_counts)
def test_due_is_the_end_of_office_hours_on_a_working_day(received, n):
    due = CAL.due_at(received, n)
    local = due.due_at.astimezone(DHAKA)
    assert due.due_at.tzinfo == DHAKA
    assert local.time() == time(17) and CAL.is_working_day(local.date())
    assert due.due_at > received
    assert CAL.is_working_day(due.start_day) and due.start_day >= received.astimezone(DHAKA).date()


@given(received_times, day_counts)
def test_exactly_n_working_days_after_the_start_day(received, n):
    due = CAL.due_at(received, n)
    d, count = due.start_day, 0
    while d < due.due_at.date():
        d += timedelta(days=1)
        count += d.weekday() not in WEEKEND and CAL.holidays.name(d) is None
    assert count == n


@given(received_times, day_counts)
def test_skipped_days_are_exactly_the_non_working_days_in_the_span(received, n):
    due = CAL.due_at(received, n)
    d, expected = received.astimezone(DHAKA).date(), []
    while d <= due.due_at.date():
        if d.weekday() in WEEKEND or CAL.holidays.name(d) is not None:
            expected.append(d)
        d += timedelta(days=1)
    assert skipped_dates(due) == expected
    assert all(s.reason_en and s.reason_bn for s in due.skipped)


@given(received_times, received_times, day_counts)
def test_monotone_in_received_time(a, b, n):
    early, late = min(a, b), max(a, b)
    assert CAL.due_at(early, n).due_at <= CAL.due_at(late, n).due_at
    assert CAL.due_at(early, n).due_at < CAL.due_at(early, n + 1).due_at


@given(received_times, day_counts, st.integers(min_value=-5, max_value=10))
def test_working_days_between_agrees_with_due_dates(received, n, k):
    base = CAL.due_at(received, n + 5)
    other = CAL.add_working_days(base.due_at.date(), k)
    other_close = datetime.combine(other, time(17), tzinfo=DHAKA)
    assert CAL.working_days_between(base.due_at, other_close) == k
    assert CAL.working_days_between(other_close, base.due_at) == -k


@given(received_times, day_counts)
def test_add_working_days_round_trip(received, n):
    d = CAL.start_day(received)
    assert CAL.add_working_days(CAL.add_working_days(d, n), -n) == d


@given(received_times, day_counts, received_times, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=12)))
def test_hold_extends_by_exactly_the_working_time_on_hold(received, n, hold_start, hold_length):
    due = CAL.due_at(received, n).due_at
    extended = CAL.extend_for_hold(due, hold_start, hold_start + hold_length)
    on_hold = CAL.working_time_between(hold_start, hold_start + hold_length)
    assert extended >= due
    assert CAL.working_time_between(due, extended) == on_hold
