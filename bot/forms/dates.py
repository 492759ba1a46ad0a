"""Dates and times as members type them: 11月15日, 15号, 昨天, 2026/11/15, 下午三点半, 9点30 …

Year and month resolution (records are mostly about the past):
- ``M月D日`` without a year is in ``today``'s year, unless that is more than 183 days ahead; then
  it is the previous year (on 2026-01-05, "12月30日" is 2025-12-30).
- ``D号`` / ``D日`` alone is in the current month, unless that is more than 7 days ahead; then it
  is the previous month (on 2026-12-02, "30号" is 2026-11-30).
- ``周五`` / ``星期五`` alone is the most recent such day (today included); ``本周五`` / ``这周五``
  is in the current Monday-based week, ``上周五`` the week before, ``下周五`` the week after.
A trailing time or weekday (``11月15日 下午3点``, ``11月15日（周五）``) is accepted and ignored.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable

from bot.domain.numerals import parse_number
from bot.domain.text import normalize, strip_decor
from bot.forms.results import Invalid

DATE_HINT = "请输入日期，例如：11月15日 或 2026-11-15"
TIME_HINT = "请输入时间，例如：15:00 或 下午3点"
_N = "[0-9零〇○一二两三四五六七八九十]"
_RELATIVE = {"今天": 0, "今日": 0, "当天": 0, "昨天": -1, "昨日": -1, "前天": -2, "大前天": -3,
             "明天": 1, "明日": 1, "后天": 2}  # fmt: skip
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6,
             "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}  # fmt: skip
_WEEKDAY = re.compile(r"(?P<rel>上上|上|本|这|下)?个?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天七1-7])")
_FULL = re.compile(
    rf"(?P<y>\d{{4}}|\d{{2}}|{_N}{{4}})(?:年|-|/|\.)(?P<m>{_N}{{1,3}})(?:月|-|/|\.)(?P<d>{_N}{{1,3}})[日号]?"
)
_COMPACT = re.compile(r"(?P<y>(?:19|20)\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)")
_MONTH_DAY = re.compile(rf"(?P<m>{_N}{{1,3}})月(?:份)?(?P<d>{_N}{{1,3}})[日号]?")
_SHORT = re.compile(r"(?P<m>\d{1,2})[./-](?P<d>\d{1,2})")
_DAY = re.compile(rf"(?P<d>{_N}{{1,3}})[日号]")
_ANNOTATION = re.compile(r"\(?(?:周|星期|礼拜)[一二三四五六日天七]\)?")

_TIME = re.compile(
    rf"(?P<p>凌晨|早上|早晨|清晨|上午|早|中午|午间|下午|午后|傍晚|晚上|晚间|夜里|夜间|晚)?"
    rf"(?P<h>{_N}{{1,3}})(?:(?P<sep>[:点时])(?P<m>{_N}{{1,3}}|半|一刻|三刻|整)?分?(?::\d{{2}})?)?(?:钟|左右|整)?"
)
_PM = {"下午", "午后", "傍晚", "晚上", "晚间", "夜里", "夜间", "晚"}
_AM = {"凌晨", "早上", "早晨", "清晨", "上午", "早"}
_MINUTE_WORDS = {"半": 30, "一刻": 15, "三刻": 45, "整": 0}


def _int(text: str) -> int | None:
    value = parse_number(text)
    if value is None or value != value.to_integral_value() or value < 0:
        return None
    return int(value)


def _make(year: int, month: int, day: int) -> dt.date | Invalid:
    if not 1 <= month <= 12:
        return Invalid("月份应在1到12之间，例如：11月15日", recognized=True)
    if not 1900 <= year <= 2100:
        return Invalid("年份不对，例如：2026年11月15日", recognized=True)
    last = calendar.monthrange(year, month)[1]
    if month == 2 and day == 29 and last == 28:
        return Invalid(f"{year}年2月没有29日，请检查日期，例如：2月28日", recognized=True)
    if not 1 <= day <= last:
        return Invalid(f"{month}月没有{day}日，请检查日期，例如：{month}月{last}日", recognized=True)
    return dt.date(year, month, day)


def _full(m: re.Match[str], today: dt.date) -> dt.date | Invalid:
    year, month, day = _int(m["y"]), _int(m["m"]), _int(m["d"])
    if year is None or month is None or day is None:
        return Invalid(DATE_HINT)
    year = year + 2000 if year < 100 else year
    return _make(year, month, day)


def _month_day(m: re.Match[str], today: dt.date) -> dt.date | Invalid:
    month, day = _int(m["m"]), _int(m["d"])
    if month is None or day is None:
        return Invalid(DATE_HINT)
    result = _make(today.year, month, day)
    if isinstance(result, dt.date) and (result - today).days > 183:
        return _make(today.year - 1, month, day)
    return result


def _day_only(m: re.Match[str], today: dt.date) -> dt.date | Invalid:
    day = _int(m["d"])
    if day is None:
        return Invalid(DATE_HINT)
    result = _make(today.year, today.month, day)
    if isinstance(result, dt.date) and (result - today).days <= 7:
        return result
    prev = today.replace(day=1) - dt.timedelta(days=1)
    earlier = _make(prev.year, prev.month, day)
    return earlier if isinstance(earlier, dt.date) else result


def _weekday(m: re.Match[str], today: dt.date) -> dt.date | Invalid:
    target = _WEEKDAYS[m["wd"]]
    rel = m["rel"]
    if rel is None:
        return today - dt.timedelta(days=(today.weekday() - target) % 7)
    weeks = {"上上": -2, "上": -1, "本": 0, "这": 0, "下": 1}[rel]
    monday = today - dt.timedelta(days=today.weekday())
    return monday + dt.timedelta(weeks=weeks, days=target)


_DATE_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str], dt.date], dt.date | Invalid]]] = [
    (_COMPACT, _full),
    (_FULL, _full),
    (_MONTH_DAY, _month_day),
    (_SHORT, _month_day),
    (_DAY, _day_only),
    (_WEEKDAY, _weekday),
]


def _relative(text: str, today: dt.date) -> tuple[dt.date, str] | None:
    for word in sorted(_RELATIVE, key=len, reverse=True):
        if text.startswith(word):
            return today + dt.timedelta(days=_RELATIVE[word]), text[len(word) :]
    return None


def _tail_ok(tail: str) -> bool:
    """What may follow a date: nothing, a weekday note, a time or a time range."""
    tail = strip_decor(tail)
    if not tail or _ANNOTATION.fullmatch(tail) or tail in _PM | _AM | {"中午"}:
        return True
    tail = strip_decor(_ANNOTATION.sub("", tail, count=1))
    first = re.split(r"[-~至到]", tail, maxsplit=1)[0]
    return not tail or isinstance(parse_time(first), str)


def parse_date(text: str, today: dt.date) -> dt.date | Invalid:
    """A calendar date, or ``Invalid`` with a Chinese hint."""
    t = strip_decor(normalize(text)).replace("\n", " ")
    if not t or len(t) > 40:
        return Invalid(DATE_HINT)
    rel = _relative(t, today)
    if rel is not None:
        return rel[0] if _tail_ok(rel[1]) else Invalid(DATE_HINT)
    for pattern, build in _DATE_PATTERNS:
        m = pattern.match(t)
        if m and _tail_ok(t[m.end() :]):
            return build(m, today)
    return Invalid(DATE_HINT)


def _hour(period: str | None, hour: int) -> int | None:
    if period in _PM:
        if hour == 12 and period in {"晚上", "晚间", "夜里", "夜间", "晚"}:
            return 0
        return hour + 12 if hour < 12 else (hour if hour <= 23 else None)
    if period == "中午":
        return hour + 12 if 1 <= hour <= 3 else (hour if 10 <= hour <= 14 else None)
    if period in _AM:
        if period == "凌晨" and hour == 12:
            return 0
        return hour if hour <= 12 else None
    return hour if hour <= 23 else (0 if hour == 24 else None)


def parse_time(text: str) -> str | Invalid:
    """A clock time as "HH:MM", or ``Invalid`` with a Chinese hint."""
    t = strip_decor(normalize(text)).replace(" ", "")
    m = _TIME.fullmatch(t) if 0 < len(t) <= 20 else None
    if m is None or (m["p"] is None and m["sep"] is None):
        return Invalid(TIME_HINT)
    hour = _int(m["h"])
    minute_text = m["m"] or "0"
    minute = _MINUTE_WORDS.get(minute_text, _int(minute_text))
    if hour is None or minute is None:
        return Invalid(TIME_HINT)
    hour24 = _hour(m["p"], hour)
    if hour24 is None or not 0 <= minute <= 59:
        return Invalid("时间不对，小时应为0到23、分钟为0到59，例如：15:30", recognized=True)
    return f"{hour24:02d}:{minute:02d}"
