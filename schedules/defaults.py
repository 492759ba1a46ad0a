"""The default calendar from the branch work regulation (shared/domain/party-branch-work.md §2.2, §1.6, §6).

Every entry can be overridden by key, or removed with ``enabled = false``, in ``[[schedules]]``.
"""

from __future__ import annotations

from typing import Any

from schedules.models import ScheduleSpec

_FIRST_WORKDAY = {"kind": "nth_workday", "n": 1, "time": "09:00"}
_LAST_WORKDAY = {"kind": "last_workday", "time": "18:00"}
_SECRETARY = {"roles": ["书记"]}


def _meeting(key: str, title: str, purpose: str, period: str, **extra: Any) -> dict[str, Any]:
    """A 三会一课-style record: the responsible person is asked to hold the meeting and record it."""
    entry: dict[str, Any] = {
        "key": key,
        "form": "meeting",
        "title": title,
        "purpose": purpose,
        "audience": _SECRETARY,
        "period": period,
        "open": _FIRST_WORKDAY,
        "deadline": _LAST_WORKDAY,
        "reminders": ["-5wd", "-1wd"],
        "escalate_committee": "0h",
    }
    entry.update(extra)
    return entry


def _yearly_december(key: str, title: str, purpose: str) -> dict[str, Any]:
    return _meeting(
        key,
        title,
        purpose,
        "year",
        open={"kind": "month_in_period", "month": 12, "day": 1, "time": "09:00"},
        reminders=["-15wd", "-5wd", "-1wd"],
        escalate_committee="-3wd",
    )


_DEFAULTS: list[dict[str, Any]] = [
    {
        "key": "dues",
        "form": "dues",
        "title": "{month}月党费收缴",
        "purpose": "按月交纳党费是党员的基本义务（《党章》、中组发〔2008〕3号），支部每月相对固定日期收缴并登记台账。",
        "period": "month",
        "open": _FIRST_WORKDAY,
        "deadline": {"kind": "day_of_month", "day": 15, "time": "18:00"},
        "holiday_policy": "next",
        "reminders": ["-3d", "-1d"],
        "escalate_secretary": "-1d",
        "escalate_committee": "0h",
    },
    {
        "key": "theme_day",
        "form": "theme_day",
        "title": "{month}月主题党日",
        "purpose": "主题党日每月相对固定一天开展（《中国共产党支部工作条例（试行）》），请按时参加并签到，活动记录当天填报。",
        "period": "month",
        "open": {"kind": "weekday_of_month", "weekday": 4, "nth": 1, "time": "09:00"},
        "deadline": {"kind": "same_day", "time": "18:00"},
        "holiday_policy": "next",
        "reminders": ["-2h"],
    },
    _meeting(
        "branch_committee_meeting",
        "{month}月支部委员会会议记录",
        "支部委员会会议一般每月召开一次（《支部工作条例》第十二条），请书记按时召开并登记会议记录。",
        "month",
    ),
    _meeting(
        "party_group_meeting",
        "{month}月党小组会记录",
        "党小组会一般每月召开一次（《支部工作条例》第十三条），请党小组长按时召开并登记会议记录。",
        "month",
        audience={"roles": ["党小组长"]},
        escalate_secretary="-1wd",
    ),
    _meeting(
        "general_meeting",
        "{year}年第{quarter}季度支部党员大会记录",
        "支部党员大会一般每季度召开一次（《支部工作条例》第十一条），请书记按时召开并登记会议记录。",
        "quarter",
        reminders=["-10wd", "-3wd"],
    ),
    _meeting(
        "party_lecture",
        "{year}年第{quarter}季度党课记录",
        "党课是“三会一课”的组成部分，本地默认每季度至少一次（可在配置中调整），请按时讲授并登记记录。",
        "quarter",
        reminders=["-10wd", "-3wd"],
    ),
    _yearly_december(
        "org_life_meeting",
        "{year}年度组织生活会",
        "组织生活会每年至少召开一次，一般在第四季度，请在年底前召开并登记会议记录和整改清单。",
    ),
    _yearly_december(
        "democratic_appraisal",
        "{year}年度民主评议党员",
        "民主评议党员一般每年开展一次，可与组织生活会结合，请在年底前完成并登记评议结果。",
    ),
    {
        "key": "work_log",
        "form": "work_log",
        "title": "{month}月{day}日工作日志",
        "purpose": "驻企联络员每个工作日记录工作日志，用于汇总周报和工作动态，一次采集、多处使用。",
        "audience": {"roles": ["联络员"]},
        "period": "day",
        "open": {"kind": "cron", "expr": "0 9 * * *"},
        "deadline": {"kind": "same_day", "time": "20:00"},
        "holiday_policy": "skip",
        "reminders": ["-2h"],
        "escalate_secretary": "0h",
        "announce": False,
    },
]

DEFAULT_SCHEDULES: list[ScheduleSpec] = [ScheduleSpec.model_validate(entry) for entry in _DEFAULTS]
