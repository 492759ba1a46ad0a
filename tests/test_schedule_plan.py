"""Schedule specs, defaults, config loading and the pure occurrence planner (no clock, no sleeps)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.domain.workdays import WorkdayCalendar
from bot.errors import ConfigError
from schedules.plan import Occurrence, Plan, parse_offset, period_of, plan_many, plan_occurrences
from schedules.spec import DEFAULT_SCHEDULES, ScheduleConfigError, ScheduleSpec, load_schedules
from schedules.timing import crontab_dow_to_names

SH = ZoneInfo("Asia/Shanghai")
D = dt.date


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SH)


def default(key: str) -> ScheduleSpec:
    return next(s for s in DEFAULT_SCHEDULES if s.key == key)


def spec(**changes: Any) -> ScheduleSpec:
    """A monthly test schedule; keyword arguments replace fields."""
    base: dict[str, Any] = {
        "key": "test",
        "form": "dues",
        "title": "{month}月测试",
        "purpose": "测试用途",
        "period": "month",
        "open": {"kind": "day_of_month", "day": 1, "time": "09:00"},
        "deadline": {"kind": "day_of_month", "day": 15, "time": "18:00"},
    }
    base.update(changes)
    return ScheduleSpec.model_validate(base)


def only(plan: Plan, label: str) -> Occurrence:
    found = [o for o in plan.occurrences if o.period_label == label]
    assert len(found) == 1, [o.period_label for o in plan.occurrences]
    return found[0]


def events(occ: Occurrence) -> list[tuple[str, dt.datetime]]:
    return [(e.kind, e.due_at) for e in occ.events]


@pytest.fixture
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


# ---- the default dues schedule ----------------------------------------------------------------------


def test_dues_november_2026(cal: WorkdayCalendar) -> None:
    plan = plan_occurrences(default("dues"), D(2026, 11, 1), D(2026, 11, 30), cal)
    occ = only(plan, "2026-11")
    assert occ.title == "11月党费收缴"
    assert occ.open_at == at(2026, 11, 2, 9)  # Nov 1 is a Sunday: 1st workday is Nov 2
    assert occ.open_note == ""
    assert occ.deadline_at == at(2026, 11, 16, 18)  # the 15th is a Sunday → next workday
    assert occ.deadline_note == "截止日11月15日为周日，顺延至11月16日"
    assert events(occ) == [
        ("announce", at(2026, 11, 2, 9)),
        ("remind", at(2026, 11, 13, 18)),
        ("remind", at(2026, 11, 15, 18)),
        ("escalate_secretary", at(2026, 11, 15, 18)),
        ("escalate_committee", at(2026, 11, 16, 18)),
    ]
    assert all("11月16日" in e.note for e in occ.events if e.kind != "announce")
    assert [occ.claim_key(e) for e in occ.events][1] == ("dues", "2026-11", "remind", "-3d")
    assert not occ.fallback and plan.uncovered_years == [] and plan.skipped == []


def test_theme_days_2026_shift_after_holidays(cal: WorkdayCalendar) -> None:
    plan = plan_occurrences(default("theme_day"), D(2026, 1, 1), D(2026, 12, 31), cal)
    opens = {o.period_label: o.open_at.date() for o in plan.occurrences}
    assert len(opens) == 12
    assert opens["2026-01"] == D(2026, 1, 4)  # makeup Sunday
    assert opens["2026-05"] == D(2026, 5, 6)
    assert opens["2026-10"] == D(2026, 10, 8)
    october = only(plan, "2026-10")
    assert october.open_note == "10月2日为国庆节假期，顺延至10月8日"
    assert october.events[0].kind == "announce" and "国庆节" in october.events[0].note
    assert october.deadline_at == at(2026, 10, 8, 18)
    strict = plan_occurrences(
        default("theme_day"), D(2026, 1, 1), D(2026, 1, 31), WorkdayCalendar(allow_makeup_days=False)
    )
    assert only(strict, "2026-01").open_at == at(2026, 1, 5, 9)


def test_skip_and_previous_policies(cal: WorkdayCalendar) -> None:
    theme = default("theme_day")
    skipped = plan_occurrences(
        theme.model_copy(update={"holiday_policy": "skip"}), D(2026, 10, 1), D(2026, 11, 30), cal
    )
    assert [o.period_label for o in skipped.occurrences] == ["2026-11"]
    assert skipped.skipped == [("2026-10", "10月2日为国庆节假期，本期不安排")]
    previous = plan_occurrences(
        theme.model_copy(update={"holiday_policy": "previous"}), D(2026, 10, 1), D(2026, 10, 31), cal
    )
    assert only(previous, "2026-10").open_at == at(2026, 9, 30, 9)


# ---- quiet hours and dropped events -----------------------------------------------------------------


def test_quiet_hours_move_escalation_and_drop_late_reminder(cal: WorkdayCalendar) -> None:
    s = spec(
        deadline={"kind": "day_of_month", "day": 16, "time": "22:30"},
        reminders=["-3h", "-1h"],
        escalate_secretary="0h",
    )
    occ = only(plan_occurrences(s, D(2026, 11, 1), D(2026, 11, 30), cal), "2026-11")
    assert occ.deadline_at == at(2026, 11, 16, 22, 30)
    assert events(occ) == [
        ("announce", at(2026, 11, 2, 9)),  # Nov 1 is a Sunday, default policy "next"
        ("remind", at(2026, 11, 16, 19, 30)),
        ("escalate_secretary", at(2026, 11, 17, 8)),  # escalations may land after the deadline
    ]
    assert "免打扰" in occ.events[2].note and "11月17日08:00" in occ.events[2].note
    assert any("提醒" in d and "晚于截止时间" in d for d in occ.dropped)


def test_daytime_quiet_hours_keep_reminder_before_deadline(cal: WorkdayCalendar) -> None:
    s = spec(
        deadline={"kind": "day_of_month", "day": 16, "time": "14:30"},
        reminders=["-2h"],
        quiet_hours=("12:00", "14:00"),
    )
    occ = only(plan_occurrences(s, D(2026, 11, 1), D(2026, 11, 30), cal), "2026-11")
    remind = occ.events[1]
    assert (remind.kind, remind.due_at) == ("remind", at(2026, 11, 16, 14))
    assert "12:30" in remind.note and "14:00" in remind.note


def test_quiet_announce_moves_to_morning(cal: WorkdayCalendar) -> None:
    s = spec(
        open={"kind": "day_of_month", "day": 2, "time": "22:00"},
        deadline={"kind": "offset_days", "days": 3, "time": "18:00"},
    )
    occ = only(plan_occurrences(s, D(2026, 11, 1), D(2026, 11, 30), cal), "2026-11")
    assert occ.open_at == at(2026, 11, 2, 22)
    assert occ.events[0].due_at == at(2026, 11, 3, 8)
    assert occ.deadline_at == at(2026, 11, 5, 18)


def test_reminders_before_open_are_dropped(cal: WorkdayCalendar) -> None:
    s = default("theme_day").model_copy(update={"reminders": ("-1d", "-2h")})
    occ = only(plan_occurrences(s, D(2026, 11, 1), D(2026, 11, 30), cal), "2026-11")
    assert [e.offset for e in occ.events if e.kind == "remind"] == ["-2h"]
    assert len(occ.dropped) == 1 and "早于开始时间" in occ.dropped[0]


def test_deadline_never_before_open(cal: WorkdayCalendar) -> None:
    s = spec(open={"kind": "day_of_month", "day": 20}, deadline={"kind": "day_of_month", "day": 10})
    occ = only(plan_occurrences(s, D(2026, 11, 1), D(2026, 11, 30), cal), "2026-11")
    assert occ.deadline_at == occ.open_at == at(2026, 11, 20, 9)
    assert "早于开始时间" in occ.deadline_note


def test_workday_offsets(cal: WorkdayCalendar) -> None:
    s = spec(deadline={"kind": "offset_workdays", "days": 2, "time": "18:00"}, reminders=["-1wd"])
    occ = only(plan_occurrences(s, D(2026, 9, 1), D(2026, 9, 30), cal), "2026-09")
    assert occ.open_at == at(2026, 9, 1, 9)
    assert occ.deadline_at == at(2026, 9, 3, 18)
    assert occ.events[1].due_at == at(2026, 9, 2, 18)
    october = only(
        plan_occurrences(
            spec(open={"kind": "day_of_month", "day": 30}, deadline={"kind": "offset_workdays", "days": 1}),
            D(2026, 9, 1),
            D(2026, 9, 30),
            cal,
        ),
        "2026-09",
    )
    assert october.deadline_at == at(2026, 10, 8, 18)  # one workday after Sep 30 skips the holiday


# ---- preview over the 2026/2027 boundary ------------------------------------------------------------

MONTHS = ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]


def test_preview_sep_2026_to_mar_2027(cal: WorkdayCalendar) -> None:
    monthly = [s for s in DEFAULT_SCHEDULES if s.period == "month"]
    plan = plan_many(monthly, D(2026, 9, 1), D(2027, 3, 31), cal)
    for key in ("dues", "theme_day", "branch_committee_meeting", "party_group_meeting"):
        assert [o.period_label for o in plan.occurrences if o.schedule_key == key] == MONTHS
    theme = {o.period_label: o for o in plan.occurrences if o.schedule_key == "theme_day"}
    assert [theme[m].open_at.date() for m in MONTHS] == [
        D(2026, 9, 4),
        D(2026, 10, 8),
        D(2026, 11, 6),
        D(2026, 12, 4),
        D(2027, 1, 1),
        D(2027, 2, 5),
        D(2027, 3, 5),
    ]
    assert theme["2026-10"].open_note.startswith("10月2日为国庆节假期")
    assert plan.uncovered_years == [2027]
    assert any("2027年" in note and "周一至周五" in note for note in plan.notes)
    for occ in plan.occurrences:
        assert occ.fallback == (occ.open_at.year == 2027 or occ.deadline_at.year == 2027)
    timeline = plan.timeline()
    assert [ev.due_at for _, ev in timeline] == sorted(ev.due_at for _, ev in timeline)
    claims = [(occ.claim_key(ev), ev.due_at) for occ, ev in timeline]
    assert len({c for c, _ in claims}) == len(claims)
    for _, ev in timeline:
        assert ev.due_at.tzinfo is not None and ev.due_at.utcoffset() == dt.timedelta(hours=8)


def test_preview_2027_with_admin_holidays() -> None:
    cal = WorkdayCalendar(extra_holidays=[D(2027, 1, 1)])
    plan = plan_many([default("dues"), default("theme_day")], D(2027, 1, 1), D(2027, 1, 31), cal)
    dues, theme = plan.occurrences[0], plan.occurrences[1]
    assert dues.open_at == at(2027, 1, 4, 9) and dues.fallback
    assert theme.open_at == at(2027, 1, 4, 9)
    assert "管理员配置" in theme.open_note
    assert plan.uncovered_years == [2027]


# ---- quarterly, yearly, cron, daily -----------------------------------------------------------------


def test_quarterly_general_meeting(cal: WorkdayCalendar) -> None:
    plan = plan_occurrences(default("general_meeting"), D(2026, 1, 1), D(2026, 12, 31), cal)
    assert [o.period_label for o in plan.occurrences] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    q4 = only(plan, "2026-Q4")
    assert q4.title == "2026年第4季度支部党员大会记录"
    assert (q4.open_at, q4.deadline_at) == (at(2026, 10, 8, 9), at(2026, 12, 31, 18))
    assert only(plan, "2026-Q1").open_at == at(2026, 1, 4, 9)
    strict = plan_occurrences(
        default("general_meeting"), D(2026, 1, 1), D(2026, 3, 31), WorkdayCalendar(allow_makeup_days=False)
    )
    assert only(strict, "2026-Q1").open_at == at(2026, 1, 5, 9)


def test_yearly_december_schedules(cal: WorkdayCalendar) -> None:
    for key, title in (
        ("org_life_meeting", "2026年度组织生活会"),
        ("democratic_appraisal", "2026年度民主评议党员"),
    ):
        occ = only(plan_occurrences(default(key), D(2026, 11, 1), D(2026, 11, 30), cal), "2026")
        assert occ.title == title
        assert (occ.open_at, occ.deadline_at) == (at(2026, 12, 1, 9), at(2026, 12, 31, 18))
        assert events(occ) == [
            ("announce", at(2026, 12, 1, 9)),
            ("remind", at(2026, 12, 10, 18)),
            ("remind", at(2026, 12, 24, 18)),
            ("escalate_committee", at(2026, 12, 28, 18)),
            ("remind", at(2026, 12, 30, 18)),
        ]


def test_yearly_dec_31_on_weekend_moves_to_last_workday(cal: WorkdayCalendar) -> None:
    s = spec(
        period="year",
        open={"kind": "month_in_period", "month": 12, "day": 1},
        deadline={"kind": "day_of_month", "day": 31, "month": 12},
        deadline_policy="previous",
    )
    occ = only(plan_occurrences(s, D(2022, 6, 1), D(2022, 6, 1), cal), "2022")
    assert occ.deadline_at == at(2022, 12, 30, 18)  # 2022-12-31 is a Saturday
    assert "提前至12月30日" in occ.deadline_note
    last = spec(
        period="year", open={"kind": "month_in_period", "month": 12}, deadline={"kind": "last_workday"}
    )
    assert only(plan_occurrences(last, D(2022, 1, 1), D(2022, 1, 1), cal), "2022").deadline_at == at(
        2022, 12, 30, 18
    )


def test_cron_open_rule_uses_standard_weekday_numbers(cal: WorkdayCalendar) -> None:
    s = spec(
        period="week",
        open={"kind": "cron", "expr": "30 8 * * 1"},
        deadline={"kind": "offset_days", "days": 4, "time": "18:00"},
    )
    plan = plan_occurrences(s, D(2026, 9, 28), D(2026, 10, 18), cal)
    assert [(o.period_label, o.open_at) for o in plan.occurrences] == [
        ("2026-W40", at(2026, 9, 28, 8, 30)),
        ("2026-W41", at(2026, 10, 8, 8, 30)),  # Monday Oct 5 is National Day → next workday
        ("2026-W42", at(2026, 10, 12, 8, 30)),
    ]
    assert "国庆节" in plan.occurrences[1].open_note
    weekdays = spec(
        period="day",
        open={"kind": "cron", "expr": "0 9 * * 1-5"},
        deadline={"kind": "same_day"},
        holiday_policy="skip",
    )
    opened = [
        o.open_at.weekday()
        for o in plan_occurrences(weekdays, D(2026, 11, 1), D(2026, 11, 30), cal).occurrences
    ]
    assert len(opened) == 21 and set(opened) == {0, 1, 2, 3, 4}
    assert crontab_dow_to_names("0,7") == "sun" and crontab_dow_to_names("1-5") == "mon,tue,wed,thu,fri"


def test_work_log_daily_on_workdays(cal: WorkdayCalendar) -> None:
    s = default("work_log")
    assert s.audience.roles == ("联络员",) and s.escalate_committee == ""
    plan = plan_occurrences(s, D(2026, 9, 26), D(2026, 10, 11), cal)
    assert [o.open_at.date() for o in plan.occurrences] == [
        D(2026, 9, 28),
        D(2026, 9, 29),
        D(2026, 9, 30),
        D(2026, 10, 8),
        D(2026, 10, 9),
        D(2026, 10, 10),
    ]
    first = plan.occurrences[0]
    assert first.title == "9月28日工作日志" and first.period_label == "2026-09-28"
    assert first.deadline_at == at(2026, 9, 28, 20)
    assert events(first) == [("remind", at(2026, 9, 28, 18)), ("escalate_secretary", at(2026, 9, 28, 20))]
    skipped = dict(plan.skipped)
    assert "国庆节" in skipped["2026-10-01"] and "中秋节" in skipped["2026-09-26"]
    assert "2026-10-11" not in skipped  # ordinary Sunday: not news


def test_daily_next_policy_keeps_one_occurrence_per_day(cal: WorkdayCalendar) -> None:
    s = spec(period="day", open={"kind": "cron", "expr": "0 9 * * *"}, deadline={"kind": "same_day"})
    plan = plan_occurrences(s, D(2026, 10, 1), D(2026, 10, 9), cal)
    assert [(o.period_label, o.open_note) for o in plan.occurrences] == [
        ("2026-10-08", ""),
        ("2026-10-09", ""),
    ]
    assert any("合并" in n for n in plan.notes)


def test_period_of_and_offsets() -> None:
    labels = {
        p: period_of(
            spec(period=p, open={"kind": "cron", "expr": "0 9 * * *"}, deadline={"kind": "same_day"}),
            D(2026, 11, 27),
        )
        for p in ("month", "quarter", "year", "day", "week")
    }
    assert labels == {
        "month": "2026-11",
        "quarter": "2026-Q4",
        "year": "2026",
        "day": "2026-11-27",
        "week": "2026-W48",
    }
    assert (parse_offset("-3d").amount, parse_offset("-3d").unit) == (-3, "d")
    assert parse_offset("-2wd").unit == "wd" and parse_offset("-30m").amount == -30
    assert parse_offset("0").text == "0h" and parse_offset("+1d").text == "+1d"
    for bad in ("3 days", "-d", "", "-2w"):
        with pytest.raises(ValueError):
            parse_offset(bad)
    with pytest.raises(ValueError):
        plan_occurrences(default("dues"), D(2026, 2, 1), D(2026, 1, 1), WorkdayCalendar())


# ---- defaults and config ----------------------------------------------------------------------------


def test_default_calendar_contents() -> None:
    keys = [s.key for s in DEFAULT_SCHEDULES]
    assert keys == [
        "dues",
        "theme_day",
        "branch_committee_meeting",
        "party_group_meeting",
        "general_meeting",
        "party_lecture",
        "org_life_meeting",
        "democratic_appraisal",
        "work_log",
    ]
    dues = default("dues")
    assert (dues.reminders, dues.escalate_secretary, dues.escalate_committee) == (("-3d", "-1d"), "-1d", "0h")
    assert default("branch_committee_meeting").audience.roles == ("书记",)
    assert default("party_group_meeting").audience.roles == ("党小组长",)
    assert {default(k).period for k in ("general_meeting", "party_lecture")} == {"quarter"}
    assert all(s.purpose for s in DEFAULT_SCHEDULES)


def test_load_schedules_overrides_adds_and_removes() -> None:
    specs = load_schedules(
        [
            {"key": "dues", "deadline": {"day": 10}, "reminders": ["-2d"]},
            {"key": "party_lecture", "open": {"kind": "month_in_period", "month": 2, "day": 1}},
            {"key": "work_log", "enabled": False},
            {
                "key": "volunteer",
                "form": "volunteer",
                "title": "{month}月志愿服务",
                "purpose": "记录志愿服务时长",
                "period": "month",
                "open": {"kind": "nth_workday", "n": -1},
                "deadline": {"kind": "last_workday"},
            },
        ]
    )
    by_key = {s.key: s for s in specs}
    assert "work_log" not in by_key and "volunteer" in by_key
    assert by_key["dues"].deadline.day == 10 and by_key["dues"].deadline.time == "18:00"
    assert by_key["dues"].reminders == ("-2d",) and by_key["dues"].escalate_secretary == "-1d"
    assert by_key["party_lecture"].open.kind == "month_in_period"
    assert load_schedules(None) == DEFAULT_SCHEDULES


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"key": "dues", "deadline": {"day": 40}}, "schedules[0] (key 'dues'): deadline.day"),
        ({"key": "dues", "reminders": ["-3x"]}, "reminders"),
        ({"key": "dues", "reminders": ["+1d"]}, "reminders"),
        ({"key": "dues", "escalate_committee": "soon"}, "escalate_committee"),
        ({"key": "dues", "open": {"kind": "cron", "expr": "0 9 * *"}}, "open.expr"),
        ({"key": "dues", "open": {"kind": "nth_workday", "n": 0}}, "open.n"),
        ({"key": "dues", "open": {"time": "9am"}}, "open.time"),
        ({"key": "dues", "quiet_hours": ["21:00", "25:00"]}, "quiet_hours"),
        ({"key": "dues", "holiday_policy": "later"}, "holiday_policy"),
        ({"key": "dues", "remind_text": "{nme}"}, "remind_text"),
        ({"key": "dues", "bogus": 1}, "bogus"),
        ({"key": "work_log", "deadline": {"kind": "last_workday"}}, "deadline.kind"),
        ({"key": "dues", "period": "day"}, "open.kind"),
        ({"key": "new_one", "form": "x"}, "schedules[0] (key 'new_one'): title"),
        ({"key": "Bad Key", "form": "x"}, "key"),
        ({"form": "x"}, "schedules[0]: key"),
    ],
)
def test_invalid_config_names_the_key(entry: dict[str, Any], named: str) -> None:
    with pytest.raises(ScheduleConfigError) as caught:
        load_schedules([entry])
    assert named in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_duplicate_keys_rejected() -> None:
    with pytest.raises(ScheduleConfigError, match=r"schedules\[1\] \(key 'dues'\): key: duplicate"):
        load_schedules([{"key": "dues"}, {"key": "dues"}])


def test_models_reject_bad_values_directly() -> None:
    with pytest.raises(ValidationError):
        spec(deadline={"kind": "offset_days"})  # needs "days"
    with pytest.raises(ValidationError):
        spec(period="quarter", open={"kind": "month_in_period", "month": 4})
