"""WorkdayCalendar: 2026 official data, shifting reasons, workday arithmetic, the 2027 fallback."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.workdays import ShiftResult, WorkdayCalendar

D = dt.date


@pytest.fixture
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# ---- 2026 official data (State Council notice of 4 Nov 2025) ---------------------------------------


def test_national_day_2026(cal: WorkdayCalendar) -> None:
    assert not any(cal.is_workday(d) for d in days(D(2026, 10, 1), D(2026, 10, 7)))
    assert all(cal.holiday_name(d) == "国庆节" for d in days(D(2026, 10, 1), D(2026, 10, 7)))
    assert cal.is_workday(D(2026, 9, 20))  # Sunday makeup
    assert cal.is_workday(D(2026, 10, 10))  # Saturday makeup
    assert cal.is_makeup_day(D(2026, 10, 10)) and cal.is_makeup_day(D(2026, 9, 20))
    assert cal.holiday_name(D(2026, 10, 10)) is None


def test_spring_festival_2026_nine_days_not_enum_days(cal: WorkdayCalendar) -> None:
    rest = days(D(2026, 2, 15), D(2026, 2, 23))
    assert not any(cal.is_workday(d) for d in rest)
    assert {cal.holiday_name(d) for d in rest} == {"春节"}
    assert cal.is_workday(D(2026, 2, 14)) and cal.is_workday(D(2026, 2, 28))
    assert cal.is_workday(D(2026, 2, 24))


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (D(2026, 1, 1), "元旦"),
        (D(2026, 4, 5), "清明节"),
        (D(2026, 5, 3), "劳动节"),
        (D(2026, 6, 19), "端午节"),
        (D(2026, 9, 25), "中秋节"),
        (D(2026, 11, 28), None),  # an ordinary Saturday
        (D(2026, 11, 27), None),  # an ordinary Friday
    ],
)
def test_holiday_names_in_chinese(cal: WorkdayCalendar, day: dt.date, name: str | None) -> None:
    assert cal.holiday_name(day) == name


# ---- shifting -----------------------------------------------------------------------------------


def test_theme_day_national_day_shift_reason(cal: WorkdayCalendar) -> None:
    result = cal.shift(D(2026, 10, 2), "next")
    assert result == ShiftResult(D(2026, 10, 8), "10月2日为国庆节假期，顺延至10月8日")
    assert result.moved


def test_new_year_shift_uses_makeup_sunday_only_when_allowed() -> None:
    allowed = WorkdayCalendar().shift(D(2026, 1, 2), "next")
    assert allowed.date == D(2026, 1, 4)
    assert "元旦" in allowed.reason and "调休上班日" in allowed.reason
    strict = WorkdayCalendar(allow_makeup_days=False)
    assert strict.shift(D(2026, 1, 2), "next").date == D(2026, 1, 5)
    assert not strict.is_workday(D(2026, 1, 4))
    assert strict.is_official_workday(D(2026, 1, 4))
    assert "调休" in strict.rest_reason(D(2026, 1, 4))


def test_labour_day_shift(cal: WorkdayCalendar) -> None:
    result = cal.shift(D(2026, 5, 1), "next")
    assert result.date == D(2026, 5, 6)
    assert "劳动节" in result.reason


def test_other_policies(cal: WorkdayCalendar) -> None:
    previous = cal.shift(D(2026, 10, 2), "previous")
    assert previous == ShiftResult(D(2026, 9, 30), "10月2日为国庆节假期，提前至9月30日")
    skipped = cal.shift(D(2026, 10, 2), "skip")
    assert skipped.date is None and "国庆节" in skipped.reason
    assert cal.shift(D(2026, 10, 2), "none") == ShiftResult(D(2026, 10, 2), "")
    assert cal.shift(D(2026, 11, 27), "next") == ShiftResult(D(2026, 11, 27), "")
    weekend = cal.shift(D(2026, 11, 15), "next")
    assert weekend == ShiftResult(D(2026, 11, 16), "11月15日为周日，顺延至11月16日")
    with pytest.raises(ValueError):
        cal.shift(D(2026, 10, 2), "later")  # type: ignore[arg-type]


# ---- navigation and arithmetic ----------------------------------------------------------------------


def test_five_workdays_from_sep_28(cal: WorkdayCalendar) -> None:
    expected = [D(2026, 9, 28), D(2026, 9, 29), D(2026, 9, 30), D(2026, 10, 8), D(2026, 10, 9)]
    assert cal.workdays_from(D(2026, 9, 28), 5) == expected
    assert cal.add_workdays(D(2026, 9, 28), 4) == D(2026, 10, 9)
    assert cal.add_workdays(D(2026, 10, 9), -4) == D(2026, 9, 28)
    assert cal.add_workdays(D(2026, 9, 30), 1) == D(2026, 10, 8)
    assert cal.add_workdays(D(2026, 10, 9), 1) == D(2026, 10, 10)  # makeup Saturday counts
    assert cal.add_workdays(D(2026, 10, 3), 0) == D(2026, 10, 3)
    assert cal.workdays_from(D(2026, 9, 28), 0) == []


def test_next_and_previous_workday(cal: WorkdayCalendar) -> None:
    assert cal.next_workday(D(2026, 10, 1)) == D(2026, 10, 8)
    assert cal.next_workday(D(2026, 10, 8)) == D(2026, 10, 8)
    assert cal.next_workday(D(2026, 10, 8), include_self=False) == D(2026, 10, 9)
    assert cal.previous_workday(D(2026, 10, 7)) == D(2026, 9, 30)
    assert cal.previous_workday(D(2026, 9, 30), include_self=False) == D(2026, 9, 29)


def test_nth_workday(cal: WorkdayCalendar) -> None:
    assert cal.nth_workday(2026, 11, 1) == D(2026, 11, 2)  # Nov 1 is a Sunday
    assert cal.nth_workday(2026, 10, 1) == D(2026, 10, 8)
    assert cal.nth_workday(2026, 10, 3) == D(2026, 10, 10)
    assert cal.nth_workday(2026, 12, -1) == D(2026, 12, 31)
    assert cal.nth_workday(2026, 2, -1) == D(2026, 2, 28)  # makeup Saturday is the last workday
    assert WorkdayCalendar(allow_makeup_days=False).nth_workday(2026, 2, -1) == D(2026, 2, 27)
    with pytest.raises(ValueError):
        cal.nth_workday(2026, 10, 0)
    with pytest.raises(ValueError):
        cal.nth_workday(2026, 10, 30)


# ---- coverage, fallback and config overrides --------------------------------------------------------


def test_2027_falls_back_and_is_reported(cal: WorkdayCalendar) -> None:
    assert cal.is_covered(2026)
    assert not cal.is_covered(2027)
    assert cal.uncovered_years(D(2026, 9, 1), D(2027, 3, 31)) == [2027]
    assert cal.uncovered_years(2025, 2026) == []
    assert cal.fallback_years == set()
    assert cal.is_workday(D(2027, 1, 1))  # a Friday: Mon–Fri fallback knows no New Year's Day
    assert not cal.is_workday(D(2027, 1, 2))
    assert cal.holiday_name(D(2027, 10, 1)) is None
    assert cal.fallback_years == {2027}


def test_config_overrides_in_fallback_year() -> None:
    cal = WorkdayCalendar(extra_holidays=[D(2027, 1, 1)], extra_workdays=[D(2027, 2, 20)])
    assert not cal.is_workday(D(2027, 1, 1))
    result = cal.shift(D(2027, 1, 1), "next")
    assert result.date == D(2027, 1, 4)
    assert "管理员配置" in result.reason
    assert cal.is_workday(D(2027, 2, 20)) and cal.is_makeup_day(D(2027, 2, 20))
    assert cal.nth_workday(2027, 1, 1) == D(2027, 1, 4)


def test_config_overrides_win_over_package() -> None:
    cal = WorkdayCalendar(extra_holidays=[D(2026, 10, 8)], extra_workdays=[D(2026, 10, 3)])
    assert not cal.is_workday(D(2026, 10, 8))
    assert cal.is_workday(D(2026, 10, 3))
    assert cal.next_workday(D(2026, 10, 4)) == D(2026, 10, 9)


def test_package_error_for_covered_year_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(day: dt.date) -> tuple[bool, str | None]:
        raise NotImplementedError("no data")

    monkeypatch.setattr(chinese_calendar, "get_holiday_detail", broken)
    cal = WorkdayCalendar()
    assert not cal.is_workday(D(2026, 10, 3))
    assert cal.is_workday(D(2026, 10, 2))
    assert cal.fallback_years == {2026}


def test_per_day_answers_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dt.date] = []
    real = chinese_calendar.get_holiday_detail

    def counting(day: dt.date) -> tuple[bool, str | None]:
        calls.append(day)
        answer: tuple[bool, str | None] = real(day)
        return answer

    monkeypatch.setattr(chinese_calendar, "get_holiday_detail", counting)
    cal = WorkdayCalendar()
    for _ in range(3):
        cal.is_workday(D(2026, 10, 2))
        cal.holiday_name(D(2026, 10, 2))
    assert calls == [D(2026, 10, 2)]


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=D(1990, 1, 1), max_value=D(2100, 12, 31)),
    allow=st.booleans(),
    policy=st.sampled_from(["next", "previous", "skip", "none"]),
)
def test_never_raises_for_any_date(day: dt.date, allow: bool, policy: str) -> None:
    cal = WorkdayCalendar(allow_makeup_days=allow)
    assert isinstance(cal.is_workday(day), bool)
    name = cal.holiday_name(day)
    assert name is None or isinstance(name, str)
    result = cal.shift(day, policy)  # type: ignore[arg-type]
    if result.date is not None:
        assert policy == "none" or cal.is_workday(result.date)
    assert bool(result.reason) == (policy != "none" and not cal.is_workday(day))
