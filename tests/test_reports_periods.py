"""Report periods (pure): what people type, and which campaign labels fall inside."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.reports.periods import label_in_period, parse_period, sub_periods


@pytest.mark.parametrize(
    ("text", "label", "first", "last"),
    [
        ("2026-11", "2026-11", "2026-11-01", "2026-11-30"),
        ("2026-2", "2026-02", "2026-02-01", "2026-02-28"),
        ("2026年11月", "2026-11", "2026-11-01", "2026-11-30"),
        ("2026/11", "2026-11", "2026-11-01", "2026-11-30"),
        ("2026", "2026", "2026-01-01", "2026-12-31"),
        ("2026年度", "2026", "2026-01-01", "2026-12-31"),
        ("2026-Q4", "2026-Q4", "2026-10-01", "2026-12-31"),
        ("2026年第四季度", "2026-Q4", "2026-10-01", "2026-12-31"),
    ],
)
def test_parse_period(text: str, label: str, first: str, last: str) -> None:
    period = parse_period(text)
    assert period is not None
    assert (period.label, period.first.isoformat(), period.last.isoformat()) == (label, first, last)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "11月", "明年", "26-11", "2026-Q5", ""])
def test_bad_periods(text: str) -> None:
    assert parse_period(text) is None


def test_labels_in_period() -> None:
    nov = parse_period("2026-11")
    q4 = parse_period("2026-Q4")
    assert nov is not None and q4 is not None
    assert label_in_period("2026-11", nov) and label_in_period("2026-11-27", nov)
    assert not label_in_period("2026-10", nov) and not label_in_period("2026-Q4", nov)
    assert all(label_in_period(x, q4) for x in ("2026-10", "2026-12-31", "2026-Q4", "2026-W44"))
    assert not label_in_period("2026", q4)


def test_sub_periods_stop_at_today() -> None:
    q4 = parse_period("2026-Q4")
    assert q4 is not None
    months = sub_periods(q4, "month", until=dt.date(2026, 11, 27))
    assert [p.label for p in months] == ["2026-10", "2026-11"]
    assert [p.label for p in sub_periods(q4, "quarter")] == ["2026-Q4"]
