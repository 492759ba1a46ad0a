"""parse_field for every field type, with a fixed today (2026-11-27, a Friday) and roster."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from bot.forms.builtin import BUILTIN_FORMS
from bot.forms.fields import Ambiguous, Invalid, ParseContext, Parsed, RosterName, parse_field
from bot.forms.spec import FieldSpec, FieldType, FormSpec

TODAY = dt.date(2026, 11, 27)
NAMES = [
    "张三",
    "李四",
    "王五",
    "赵六",
    "张伟",
    "张玮",
    "李娜",
    "李娜",
    "欧阳明月",
    "王和平",
    "刘洋",
    "陈晓红",
]
ROSTER = [RosterName(i, name) for i, name in enumerate(NAMES, start=1)]
CTX = ParseContext(today=TODAY, roster=ROSTER)


def spec(type_: FieldType, **extra: Any) -> FieldSpec:
    return FieldSpec(key="f", label=extra.pop("label", "字段"), type=type_, **extra)


def value(field: FieldSpec, text: str, ctx: ParseContext = CTX) -> Any:
    result = parse_field(field, text, ctx)
    assert isinstance(result, Parsed), result
    return result.value


def invalid(field: FieldSpec, text: str) -> str:
    result = parse_field(field, text, CTX)
    assert isinstance(result, Invalid), result
    return result.message


# --- money, numbers -------------------------------------------------------------------------

MONEY = BUILTIN_FORMS["dues"].field("amount")


@pytest.mark.parametrize(("text", "fen"), [("50", 5000), ("交了50", 5000), ("伍拾元", 5000), ("0.2", 20)])
def test_money(text: str, fen: int) -> None:
    assert value(MONEY, text) == fen


def test_money_messages_say_what_is_expected() -> None:
    assert invalid(MONEY, "好多钱") == "请输入金额，例如：50 或 50.5"
    assert "负数" in invalid(MONEY, "-50")
    assert "过大" in invalid(MONEY, "2000000")
    assert "大于0" in invalid(MONEY, "0")


def test_money_range_in_yuan() -> None:
    field = spec(FieldType.MONEY, min_value=Decimal("10"), max_value=Decimal("500"), label="捐款金额")
    assert value(field, "10") == 1000
    assert "10到500元" in invalid(field, "9.99")
    assert parse_field(field, "500.01", CTX) == Invalid("捐款金额应在10到500元之间，例如：50 或 50.5", True)


def test_integer() -> None:
    field = spec(FieldType.INTEGER, label="人数", min_value=Decimal(1))
    assert value(field, "12") == 12
    assert value(field, "十二") == 12
    assert value(field, "12人") == 12
    assert value(field, "３个") == 3
    assert "整数" in invalid(field, "2.5")
    assert "不能小于1" in invalid(field, "0")
    assert isinstance(parse_field(field, "很多", CTX), Invalid)


def test_decimal_and_hours() -> None:
    hours = BUILTIN_FORMS["volunteer"].field("hours")
    for text, expected in [("2.5", "2.5"), ("2.50", "2.5"), ("两个半小时", "2.5"), ("2小时30分", "2.5"),
                           ("半小时", "0.5"), ("90分钟", "1.5"), ("3h", "3"), ("3个小时", "3"), ("24", "24"),
                           ("1小时20分钟", "1.33")]:  # fmt: skip
        assert value(hours, text) == expected, text
    assert "0.5到24" in invalid(hours, "25")
    assert "0.5到24" in invalid(hours, "10分钟")
    plain = spec(FieldType.DECIMAL)
    assert value(plain, "10") == "10"
    assert value(plain, "1.005") == "1.01"  # half-up at two places
    assert value(plain, "3.5公里") == "3.5"


# --- dates and times ------------------------------------------------------------------------

DATE = spec(FieldType.DATE, label="日期")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("11月15日", "2026-11-15"),
        ("11月15号", "2026-11-15"),
        ("15号", "2026-11-15"),
        ("15日", "2026-11-15"),
        ("今天", "2026-11-27"),
        ("昨天", "2026-11-26"),
        ("前天", "2026-11-25"),
        ("明天", "2026-11-28"),
        ("2026-11-15", "2026-11-15"),
        ("2026/11/15", "2026-11-15"),
        ("2026.11.15", "2026-11-15"),
        ("2026年11月15日", "2026-11-15"),
        ("２０２６年１１月１５日", "2026-11-15"),
        ("二〇二六年十一月十五日", "2026-11-15"),
        ("十一月十五日", "2026-11-15"),
        ("11.15", "2026-11-15"),
        ("11-15", "2026-11-15"),
        ("11/15", "2026-11-15"),
        ("20261115", "2026-11-15"),
        ("12月31日", "2026-12-31"),
        ("1月5日", "2026-01-05"),
        ("6月1日", "2026-06-01"),
        ("周五", "2026-11-27"),
        ("星期三", "2026-11-25"),
        ("上周五", "2026-11-20"),
        ("下周一", "2026-11-30"),
        ("30号", "2026-11-30"),
        ("31号", "2026-10-31"),
        ("11月15日下午3点", "2026-11-15"),
        ("11月15日（周日）", "2026-11-15"),
        ("2026-11-15 15:00", "2026-11-15"),
        ("今天下午", "2026-11-27"),
    ],
)
def test_dates(text: str, iso: str) -> None:
    assert value(DATE, text) == iso


def test_month_day_far_in_the_future_is_last_year() -> None:
    january = ParseContext(today=dt.date(2026, 1, 5))
    assert value(DATE, "12月30日", january) == "2025-12-30"
    assert value(DATE, "6月30日", january) == "2026-06-30"  # 176 days ahead: this year
    assert value(DATE, "7月10日", january) == "2025-07-10"  # 186 days ahead: last year


def test_day_only_far_ahead_is_last_month() -> None:
    december = ParseContext(today=dt.date(2026, 12, 2))
    assert value(DATE, "30号", december) == "2026-11-30"
    assert value(DATE, "5号", december) == "2026-12-05"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("2月30日", "2月没有30日"), ("13月1日", "1到12"), ("2月29日", "2026年2月没有29日"), ("11月31日", "11月没有31日"),
     ("明年", "例如"), ("11月15日abc", "例如：11月15日")],
)  # fmt: skip
def test_impossible_dates(text: str, fragment: str) -> None:
    assert fragment in invalid(DATE, text)


def test_leap_day() -> None:
    assert value(DATE, "2028年2月29日") == "2028-02-29"


TIME = spec(FieldType.TIME, label="时间")


@pytest.mark.parametrize(
    ("text", "hhmm"),
    [("15:00", "15:00"), ("15：00", "15:00"), ("下午3点", "15:00"), ("下午三点半", "15:30"), ("15点", "15:00"),
     ("9点30", "09:30"), ("9点30分", "09:30"), ("上午9:30", "09:30"), ("晚上8点", "20:00"), ("中午12点", "12:00"),
     ("中午1点", "13:00"), ("三点一刻", "03:15"), ("下午3点三刻", "15:45"), ("12点半", "12:30"), ("9时05分", "09:05"),
     ("下午 3 点", "15:00"), ("早上8点", "08:00"), ("凌晨12点", "00:00"), ("下午15:00", "15:00")],
)  # fmt: skip
def test_times(text: str, hhmm: str) -> None:
    assert value(TIME, text) == hhmm


@pytest.mark.parametrize("text", ["3", "25:00", "上午15点", "9:60", "下午", "三点钟以后", ""])
def test_bad_times(text: str) -> None:
    assert "例如" in invalid(TIME, text)


# --- choices, yes/no, attendance ------------------------------------------------------------

MEETING_TYPE = BUILTIN_FORMS["meeting"].field("meeting_type")


@pytest.mark.parametrize(
    ("text", "key"),
    [("支部党员大会", "branch_general"), ("党员大会", "branch_general"), ("大会", "branch_general"),
     ("支委会", "branch_committee"), ("支部委员会", "branch_committee"), ("支委会议", "branch_committee"),
     ("党小组会", "group"), ("小组会", "group"), ("党课", "lecture"), (" 党 课 ", "lecture"),
     ("branch_committee", "branch_committee"), ("BRANCH_GENERAL", "branch_general"), ("1", "branch_general"),
     ("4", "lecture"), ("专题党课学习", "lecture"), ("支委会。", "branch_committee")],
)  # fmt: skip
def test_choice(text: str, key: str) -> None:
    assert value(MEETING_TYPE, text) == key


def test_choice_invalid_lists_options() -> None:
    message = invalid(MEETING_TYPE, "支部")
    assert message == "请从以下选项中选择：支部党员大会、支委会、党小组会、党课，例如：支部党员大会"
    assert isinstance(parse_field(MEETING_TYPE, "5", CTX), Invalid)


YESNO = spec(FieldType.YESNO)


@pytest.mark.parametrize(
    "text", ["是", "是的", "对", "有", "好的", "可以", "yes", "Y", "OK", "✓", "√", "👍", "是！"]
)
def test_yes(text: str) -> None:
    assert value(YESNO, text) is True


@pytest.mark.parametrize("text", ["否", "不", "不是", "没有", "no", "N", "×", "不需要", "不用了。"])
def test_no(text: str) -> None:
    assert value(YESNO, text) is False


def test_yesno_invalid() -> None:
    assert invalid(YESNO, "也许") == "请回复“是”或“否”，例如：是"


ATTENDANCE = BUILTIN_FORMS["theme_day"].field("attendance")


@pytest.mark.parametrize(
    ("text", "status", "reason"),
    [("到", "present", ""), ("已到", "present", ""), ("签到", "present", ""), ("参加", "present", ""),
     ("到！", "present", ""), ("到了", "present", ""), ("到 张三", "present", ""), ("线上", "online", ""),
     ("线上参加", "online", ""), ("视频参加", "online", ""), ("腾讯会议参加", "online", ""),
     ("请假 出差", "leave", "出差"), ("请假，出差", "leave", "出差"), ("请假:身体不适", "leave", "身体不适"),
     ("请假（出差）", "leave", "出差"), ("请假出差", "leave", "出差"), ("出差请假", "leave", "出差"),
     ("因病请假", "leave", "因病"), ("请假 原因：带孩子看病", "leave", "带孩子看病"),
     ("来不了，单位值班", "leave", "单位值班"), ("不能参加 出差在外", "leave", "出差在外")],
)  # fmt: skip
def test_attendance(text: str, status: str, reason: str) -> None:
    assert value(ATTENDANCE, text) == {"status": status, "reason": reason}


def test_leave_needs_a_reason() -> None:
    assert invalid(ATTENDANCE, "请假") == "请说明请假原因，例如：请假 出差"
    assert invalid(ATTENDANCE, "请假。") == "请说明请假原因，例如：请假 出差"
    assert invalid(ATTENDANCE, "不能参加") == "请说明请假原因，例如：请假 出差"
    assert "100字" in invalid(ATTENDANCE, "请假 " + "忙" * 101)


@pytest.mark.parametrize("text", ["收到", "好的", "到底什么时候", "?", "👍"])
def test_attendance_rejects_other_replies(text: str) -> None:
    assert invalid(ATTENDANCE, text) == "请回复：到、线上 或 请假加原因，例如：请假 出差"


# --- text -----------------------------------------------------------------------------------

PLACE = BUILTIN_FORMS["meeting"].field("place")


def test_text() -> None:
    assert value(PLACE, "  三楼会议室 ") == "三楼会议室"
    assert value(PLACE, "三楼，会议室") == "三楼，会议室"
    assert value(PLACE, "三楼,会议室") == "三楼，会议室"  # Chinese punctuation kept full-width
    assert value(PLACE, "Room 301, Block A") == "Room 301, Block A"
    assert value(PLACE, "'; DROP TABLE members; --") == "'; DROP TABLE members; --"
    assert "最多100字" in invalid(PLACE, "会" * 101)
    assert invalid(PLACE, "   ") == "请输入会议地点，例如：三楼会议室"
    assert isinstance(parse_field(PLACE, "😀😀", CTX), Invalid)


def test_optional_fields_can_be_skipped() -> None:
    absentees = BUILTIN_FORMS["meeting"].field("absentees")
    for text in ["无", "没有", "略", "-", "暂无", "无。"]:
        assert value(absentees, text) is None
    assert value(absentees, "李四（出差）") == "李四（出差）"
    assert isinstance(parse_field(PLACE, "无", CTX), Parsed)  # required text: "无" is the answer


# --- members --------------------------------------------------------------------------------

ATTENDEES = BUILTIN_FORMS["meeting"].field("attendees")


def ids(text: str) -> list[int]:
    return [entry["member_id"] for entry in value(ATTENDEES, text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("张三、李四", [1, 2]), ("张三，李四，王五", [1, 2, 3]), ("张三,李四 王五", [1, 2, 3]), ("张三和李四", [1, 2]),
     ("张三、李四和王五", [1, 2, 3]), ("张三李四", [1, 2]), ("张三和王和平", [1, 10]), ("王和平", [10]),
     ("张三；李四", [1, 2]), ("张三/李四", [1, 2]), ("张三、张三", [1]), ("刘洋同志", [11]), ("张三、李四等", [1, 2]),
     ("欧阳明月", [9]), ("欧阳明", [9]), ("陈晓虹", [12]), ("王武", [3]), ("赵六 、 李四", [2, 4][::-1])],
)  # fmt: skip
def test_members(text: str, expected: list[int]) -> None:
    assert ids(text) == expected


def test_member_values_carry_roster_names() -> None:
    assert value(ATTENDEES, "陈晓虹") == [{"member_id": 12, "name": "陈晓红"}]


def test_whole_roster() -> None:
    for text in ["全体", "全部", "全员", "全体党员", "所有人", "全体参加"]:
        assert ids(text) == list(range(1, 13))
    assert ids("全体除张三、李四") == list(range(3, 13))
    assert ids("除张三外全体") == list(range(2, 13))
    empty = ParseContext(today=TODAY)
    assert isinstance(parse_field(ATTENDEES, "全体", empty), Invalid)


def test_unknown_names_are_named() -> None:
    message = invalid(ATTENDEES, "张三、孙悟空、猪八戒")
    assert message.startswith("名册中没有：孙悟空、猪八戒。")
    assert "例如：张三、李四" in message


def test_ambiguous_names() -> None:
    result = parse_field(ATTENDEES, "张三、李娜", CTX)
    assert isinstance(result, Ambiguous)
    assert result.message == "名单中有2位“李娜”，请确认是哪一位。"
    assert [o["member_id"] for o in result.options] == [7, 8]
    typo = parse_field(ATTENDEES, "张炜", CTX)  # one character from 张三, 张伟 and 张玮
    assert isinstance(typo, Ambiguous)
    assert {o["name"] for o in typo.options} == {"张三", "张伟", "张玮"}
    assert "“张炜”可能是" in typo.message


# --- specs ----------------------------------------------------------------------------------


def test_default_prompt_from_label() -> None:
    field = FieldSpec(key="amount", label="捐款金额", type=FieldType.MONEY)
    assert field.prompt == "请输入捐款金额，例如：50 或 50.5"
    optional = FieldSpec(key="note", label="备注", type=FieldType.TEXT, required=False)
    assert optional.prompt == "请输入备注（没有请回复“无”）"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [({"key": "会议", "label": "x", "type": "text"}, "'会议'"),
     ({"key": "a b", "label": "x", "type": "text"}, "'a b'"),
     ({"key": "kind", "label": "x", "type": "choice"}, "'kind': a choice field needs choices"),
     ({"key": "n", "label": "x", "type": "text", "choices": {"a": ["b"]}}, "'n'"),
     ({"key": "n", "label": "x", "type": "integer", "min_value": 5, "max_value": 1}, "'n'"),
     ({"key": "n", "label": "x", "type": "colour"}, "type"),
     ({"key": "n", "label": "x", "type": "text", "requried": False}, "requried")],
)  # fmt: skip
def test_field_spec_validation_names_the_field(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        FieldSpec.model_validate(data)


def test_form_spec_rejects_duplicate_field_keys() -> None:
    field = {"key": "amount", "label": "金额", "type": "money"}
    with pytest.raises(ValidationError, match="form 'donation': duplicate field key 'amount'"):
        FormSpec.model_validate({"key": "donation", "name": "捐款", "fields": [field, field]})
    with pytest.raises(ValidationError, match="form key"):
        FormSpec.model_validate({"key": "捐款", "name": "捐款", "fields": [field]})


def test_numbers_separated_by_a_space_are_not_glued() -> None:
    field = spec(FieldType.INTEGER)
    assert isinstance(parse_field(field, "50 60", CTX), Invalid)
    assert value(field, "50 人") == 50
    assert value(BUILTIN_FORMS["volunteer"].field("hours"), "2 小时 30 分") == "2.5"
