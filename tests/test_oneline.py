"""One message → which form, and which fields it fills."""

import datetime as dt

import pytest

from bot.errors import ConfigError
from bot.forms.builtin import BUILTIN_FORMS, load_forms
from bot.forms.fields import ParseContext, RosterName
from bot.forms.oneline import (
    OneLineResult,
    is_bare_confirmation,
    match_form,
    parse_one_line,
    strip_leading,
)
from bot.forms.spec import FieldType

NAMES = ["张三", "李四", "王五", "赵六", "张伟", "张玮", "李娜", "李娜"]
CTX = ParseContext(today=dt.date(2026, 11, 27), roster=[RosterName(i, n) for i, n in enumerate(NAMES, 1)])
FORMS = BUILTIN_FORMS


def matched(text: str) -> tuple[str, str] | None:
    found = match_form(text, FORMS, CTX)
    return (found[0].key, found[1]) if found else None


def one_line(form_key: str, text: str) -> OneLineResult:
    return parse_one_line(FORMS[form_key], text, CTX)


def test_strip_leading() -> None:
    assert strip_leading("@党建助手 党费５０") == "党费50"
    assert strip_leading("@党建助手\u2005@张三 到") == "到"
    assert strip_leading("＠党建助手　交了５０元") == "交了50元"
    assert strip_leading("@党建助手党费50", bot_names=["党建助手"]) == "党费50"
    assert strip_leading("  到\u200b ") == "到"
    assert strip_leading("邮箱a@b.com") == "邮箱a@b.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("党费 50", ("dues", "50")),
        ("党费50", ("dues", "50")),
        ("党费：50元", ("dues", "50元")),
        ("交党费50", ("dues", "50")),
        ("缴纳党费 五十元", ("dues", "五十元")),
        ("交了50", ("dues", "50")),
        ("已交50元", ("dues", "50元")),
        ("已交党费50", ("dues", "50")),
        ("@党建助手 党费 50", ("dues", "50")),
        ("党费", ("dues", "")),
        ("已交", ("dues", "")),
        ("交了", ("dues", "")),
        ("到", ("theme_day", "到")),
        ("到了", ("theme_day", "到了")),
        ("签到", ("theme_day", "签到")),
        ("已到", ("theme_day", "已到")),
        ("线上", ("theme_day", "线上")),
        ("线上参加", ("theme_day", "线上参加")),
        ("请假 出差", ("theme_day", "请假 出差")),
        ("请假出差", ("theme_day", "请假出差")),
        ("请假", ("theme_day", "")),
        ("主题党日 到", ("theme_day", "到")),
        ("主题党日签到", ("theme_day", "签到")),
        ("主题党日 请假 生病", ("theme_day", "请假 生病")),
        ("三会一课 支委会，11月20日", ("meeting", "支委会,11月20日")),  # remainders are normalised
        ("会议记录：\n支委会", ("meeting", "支委会")),
        ("工作日志 11月26日", ("work_log", "11月26日")),
        ("工作日志：企业：华翔公司", ("work_log", "企业:华翔公司")),
        ("志愿服务 11月22日 社区清洁 3小时", ("volunteer", "11月22日 社区清洁 3小时")),
    ],
)
def test_match_form(text: str, expected: tuple[str, str]) -> None:
    assert matched(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "到底怎么回事",
        "交了吗",
        "党费标准",
        "日志怎么写",
        "收到",
        "好的",
        "大家好",
        "",
        "   ",
        "/help",
        "签到表在哪",
    ],
)
def test_no_match(text: str) -> None:
    assert matched(text) is None


def test_match_form_without_ctx_uses_neutral_context() -> None:
    found = match_form("请假 出差", FORMS)
    assert found is not None and found[0].key == "theme_day"


def test_longest_keyword_wins_across_forms() -> None:
    forms = load_forms([{"key": "donation", "name": "捐款", "keywords": ["交了捐款", "捐款"],
                         "fields": [{"key": "amount", "label": "捐款金额", "type": "money"}]}])  # fmt: skip
    found = match_form("交了捐款100", forms, CTX)
    assert found is not None and (found[0].key, found[1]) == ("donation", "100")
    found = match_form("交了100", forms, CTX)
    assert found is not None and found[0].key == "dues"


@pytest.mark.parametrize(
    "text",
    [
        "已交",
        "交了",
        "已缴",
        "已缴纳",
        "已交党费",
        "党费已交",
        "党费交了",
        "已经交了",
        "交过了",
        "已交。",
        "@党建助手 已交",
    ],
)
def test_bare_confirmation(text: str) -> None:
    assert is_bare_confirmation(text)


@pytest.mark.parametrize("text", ["已交50", "交了50元", "交", "交党费", "党费", "交了吗", "到", ""])
def test_not_bare_confirmation(text: str) -> None:
    assert not is_bare_confirmation(text)


def test_single_field_forms() -> None:
    assert one_line("dues", "50").values == {"amount": 5000}
    assert one_line("dues", "").missing == ["amount"]
    assert one_line("dues", "很多").errors == {"amount": "请输入金额，例如：50 或 50.5"}
    leave = one_line("theme_day", "请假 出差")
    assert leave.values == {"attendance": {"status": "leave", "reason": "出差"}} and leave.complete
    assert one_line("theme_day", "请假").errors == {"attendance": "请说明请假原因，例如：请假 出差"}


TEMPLATE = """会议类型：支委会
时间：11月20日下午3点
地点：三楼会议室
主持人：张三
议题：研究发展党员，讨论预备党员转正
参会人员：张三、李四、王五
缺席：赵六（出差）
决议：同意李四为发展对象"""


def test_meeting_template() -> None:
    result = one_line("meeting", TEMPLATE)
    assert result.complete and not result.leftover
    assert result.values == {
        "meeting_type": "branch_committee",
        "date": "2026-11-20",
        "place": "三楼会议室",
        "host": "张三",
        "topic": "研究发展党员，讨论预备党员转正",
        "attendees": [{"member_id": 1, "name": "张三"}, {"member_id": 2, "name": "李四"},
                      {"member_id": 3, "name": "王五"}],
        "absentees": "赵六（出差）",
        "resolutions": "同意李四为发展对象",
    }  # fmt: skip


def test_meeting_positional_comma_line() -> None:
    result = one_line("meeting", "党员大会，11月15日，会议室，张三，学习党章，张三、李四")
    assert result.complete
    assert result.values["meeting_type"] == "branch_general"
    assert result.values["place"] == "会议室" and result.values["host"] == "张三"
    assert result.values["topic"] == "学习党章"
    assert [a["member_id"] for a in result.values["attendees"]] == [1, 2]


def test_meeting_space_separated_with_suffix_keyword() -> None:
    result = one_line("meeting", "支委会 11月20日 三楼会议室 张三主持 议题：学习 二十大精神 参会：全体")
    assert result.complete
    assert result.values["host"] == "张三"
    assert result.values["topic"] == "学习 二十大精神"
    assert len(result.values["attendees"]) == len(NAMES)


def test_meeting_incomplete_lists_missing_required_fields_in_order() -> None:
    result = one_line("meeting", "党课，11月15日，地点：会议室")
    assert result.values == {"meeting_type": "lecture", "date": "2026-11-15", "place": "会议室"}
    assert result.missing == ["host", "topic", "attendees"]
    assert not result.errors


def test_meeting_skips_fields_a_piece_does_not_fit() -> None:
    result = one_line("meeting", "11月15日，会议室")
    assert result.values == {"date": "2026-11-15", "place": "会议室"}
    assert result.missing == ["meeting_type", "host", "topic", "attendees"]


def test_meeting_bad_values_are_errors_not_values() -> None:
    result = one_line("meeting", "支委会，2月30日，会议室，参会：张三、孙悟空")
    assert "date" not in result.values and "attendees" not in result.values
    assert result.errors["date"].startswith("2月没有30日")
    assert "孙悟空" in result.errors["attendees"]
    assert "date" not in result.missing


def test_meeting_ambiguous_attendee() -> None:
    result = one_line("meeting", "参会人员：张三、李娜")
    assert "attendees" in result.errors and [o["member_id"] for o in result.ambiguous["attendees"]] == [7, 8]


def test_keyed_text_stops_before_a_typed_value() -> None:
    result = one_line("meeting", "议题：学习党章，全体")
    assert result.values["topic"] == "学习党章"
    assert len(result.values["attendees"]) == len(NAMES)


def test_later_keyword_overrides() -> None:
    assert one_line("meeting", "地点：一楼\n地点：二楼").values["place"] == "二楼"


def test_work_log() -> None:
    result = one_line("work_log", "11月26日，华翔公司，走访复工情况，协调口罩500个")
    assert result.values == {"date": "2026-11-26", "enterprise": "华翔公司", "work": "走访复工情况",
                             "solved": "协调口罩500个"}  # fmt: skip
    assert result.complete
    keyed = one_line("work_log", "企业：华翔公司\n工作内容：督导防控\n待解决：员工返岗难")
    assert keyed.values == {"enterprise": "华翔公司", "work": "督导防控", "open_issues": "员工返岗难"}
    assert keyed.missing == ["date"]


def test_volunteer() -> None:
    assert one_line("volunteer", "11月22日，社区清洁，3小时").values == {
        "date": "2026-11-22", "activity": "社区清洁", "hours": "3"}  # fmt: skip
    result = one_line("volunteer", "社区清洁 两个半小时")
    assert result.values == {"activity": "社区清洁", "hours": "2.5"} and result.missing == ["date"]
    too_long = one_line("volunteer", "昨天 社区清洁 30小时")
    assert "0.5到24" in too_long.errors["hours"]


def test_junk_goes_to_leftover() -> None:
    result = one_line("volunteer", "11月22日，社区清洁，3小时，😀")
    assert result.leftover == ["😀"] and result.complete


def test_huge_messages_are_not_split() -> None:
    result = one_line("meeting", "议题 " + "学 " * 3000)
    assert result.values == {} and result.leftover


def test_load_forms_adds_and_overrides() -> None:
    forms = load_forms([
        {"key": "donation", "name": "捐款", "keywords": ["捐款"], "private": True,
         "fields": [{"key": "amount", "label": "捐款金额", "type": "money", "min_value": 1}]},
        {"key": "dues", "keywords": ["党费", "月党费"]},
    ])  # fmt: skip
    assert set(forms) == {*BUILTIN_FORMS, "donation"}
    assert forms["donation"].fields[0].type is FieldType.MONEY
    assert forms["dues"].keywords == ["党费", "月党费"]
    assert forms["dues"].fields == BUILTIN_FORMS["dues"].fields and forms["dues"].private
    found = match_form("捐款 一百元", forms, CTX)
    assert found is not None and parse_one_line(found[0], found[1], CTX).values == {"amount": 10000}
    assert BUILTIN_FORMS["dues"].keywords[0] == "党费"  # built-ins untouched


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ([{"name": "x"}], "forms[0]: every form needs a key"),
        ([{"key": "a", "name": "甲", "fields": [{"key": "f", "label": "f", "type": "text"}]}] * 2,
         "forms[1]: duplicate form key 'a'"),
        ([{"key": "poll", "name": "投票", "fields": [{"key": "c", "label": "选项", "type": "choice"}]}],
         "forms[0] (key='poll'): fields.0: Value error, field 'c': a choice field needs choices"),
        ([{"key": "poll", "name": "投票", "fields": []}], "forms[0] (key='poll'): fields"),
        ([{"key": "dues", "fields": [{"key": "amount", "label": "金额", "type": "cash"}]}], "forms[0] (key='dues')"),
    ],
)  # fmt: skip
def test_load_forms_errors_name_the_entry(config: list[dict[str, object]], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_forms(config)
    assert fragment in str(info.value)


def test_builtin_forms_shape() -> None:
    assert set(BUILTIN_FORMS) == {"dues", "theme_day", "meeting", "work_log", "volunteer"}
    assert BUILTIN_FORMS["dues"].private and not BUILTIN_FORMS["theme_day"].private
    assert BUILTIN_FORMS["meeting"].roles == ["书记", "副书记", "委员"]
    assert BUILTIN_FORMS["meeting"].field_keys == ["meeting_type", "date", "place", "host", "topic", "attendees",
                                                   "absentees", "resolutions"]  # fmt: skip
    for form in BUILTIN_FORMS.values():
        for field in form.fields:
            assert field.prompt.startswith("请"), field.key


@pytest.mark.parametrize(
    "text",
    [
        "请假条怎么写？",
        "请假条怎么写",
        "党费交多少",
        "党费50吗",
        "到了吗",
        "线上参加可以吗?",
        "志愿服务 怎么登记",
    ],
)
def test_questions_never_match(text: str) -> None:
    assert matched(text) is None
