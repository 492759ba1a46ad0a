"""Property tests: no input string makes the parsers raise; formatted values parse back."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.numerals import MAX_MONEY_FEN, parse_money_fen, parse_number
from bot.forms.builtin import BUILTIN_FORMS
from bot.forms.fields import Ambiguous, Invalid, ParseContext, Parsed, RosterName, parse_field
from bot.forms.oneline import is_bare_confirmation, match_form, parse_one_line
from bot.forms.spec import FieldSpec, FieldType

TODAY = dt.date(2026, 11, 27)
ROSTER = [RosterName(i, n) for i, n in enumerate(["张三", "李四", "王五", "李娜", "李娜", "王和平"], 1)]
CTX = ParseContext(today=TODAY, roster=ROSTER)
FAST = settings(max_examples=200, deadline=None, database=None)

SPECS: dict[FieldType, FieldSpec] = {
    spec.type: spec for form in BUILTIN_FORMS.values() for spec in form.fields
}
SPECS[FieldType.INTEGER] = FieldSpec(key="n", label="人数", type=FieldType.INTEGER, min_value=Decimal(0))
SPECS[FieldType.TIME] = FieldSpec(key="t", label="时间", type=FieldType.TIME)
SPECS[FieldType.YESNO] = FieldSpec(key="y", label="是否", type=FieldType.YESNO)

# Characters the parsers care about, so examples hit the interesting paths, plus anything at all.
TRICKY = (
    "0123456789０１２３４５６７８９．.,，、:：;；-－+负零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟"
    "点元块角毛分整¥￥RMB年月日号上下午晚点半刻周星期今昨明天请假到线上参加全体除和与张三李四王娜 \n\t@#😀✓√是否"
)
ANY_TEXT = st.one_of(
    st.text(), st.text(alphabet=TRICKY, max_size=40), st.text(alphabet=TRICKY, max_size=3000)
)


def test_every_field_type_is_covered() -> None:
    assert set(SPECS) == set(FieldType)


@pytest.mark.parametrize("field_type", list(FieldType))
def test_parse_field_never_raises(field_type: FieldType) -> None:
    spec = SPECS[field_type]

    @FAST
    @given(ANY_TEXT)
    def check(text: str) -> None:
        result = parse_field(spec, text, CTX)
        assert isinstance(result, Parsed | Invalid | Ambiguous)
        if isinstance(result, Invalid | Ambiguous):
            assert result.message and len(result.message) < 300

    check()


@FAST
@given(ANY_TEXT, st.sampled_from(sorted(BUILTIN_FORMS)))
def test_one_line_never_raises(text: str, form_key: str) -> None:
    is_bare_confirmation(text)
    found = match_form(text, BUILTIN_FORMS, CTX)
    if found is not None:
        assert found[0].key in BUILTIN_FORMS and isinstance(found[1], str)
    result = parse_one_line(BUILTIN_FORMS[form_key], text, CTX)
    assert set(result.values).isdisjoint(result.errors)


# --- round trips ----------------------------------------------------------------------------

_DIGITS = "零一二三四五六七八九"
_FINANCIAL = str.maketrans("一二三四五六七八九十百千", "壹贰叁肆伍陆柒捌玖拾佰仟")


def _section(n: int) -> str:
    out, zero, started = "", False, False
    for digit, unit in zip((n // 1000, n // 100 % 10, n // 10 % 10, n % 10), "千百十 ", strict=True):
        if digit == 0:
            zero = zero or started
            continue
        if zero:
            out, zero = out + "零", False
        out, started = out + _DIGITS[digit] + unit.strip(), True
    return out


def chinese_int(n: int) -> str:
    """Standard Chinese reading of 0 <= n < 10**8, e.g. 10500 → 一万零五百."""
    if n == 0:
        return "零"
    high, low = divmod(n, 10000)
    text = _section(high) + "万" if high else ""
    if low:
        text += ("零" if high and low < 1000 else "") + _section(low)
    return text


def chinese_money(fen: int, financial: bool) -> str:
    yuan, rest = divmod(fen, 100)
    jiao, cents = divmod(rest, 10)
    text = chinese_int(yuan) + "元"
    if jiao:
        text += _DIGITS[jiao] + "角"
    if cents:
        text += ("零" if not jiao else "") + _DIGITS[cents] + "分"
    return text.translate(_FINANCIAL) if financial else text


FEN = st.integers(min_value=0, max_value=MAX_MONEY_FEN)


@FAST
@given(FEN)
def test_money_round_trip_decimal(fen: int) -> None:
    yuan, cents = divmod(fen, 100)
    assert parse_money_fen(f"{yuan}.{cents:02d}") == fen
    assert parse_money_fen(f"¥{yuan}.{cents:02d}元") == fen


@FAST
@given(st.integers(min_value=0, max_value=MAX_MONEY_FEN // 100))
def test_money_round_trip_whole_yuan(yuan: int) -> None:
    assert parse_money_fen(f"{yuan}元") == yuan * 100
    assert parse_money_fen(f"交了{yuan}") == yuan * 100


@FAST
@given(FEN, st.booleans())
def test_money_round_trip_chinese(fen: int, financial: bool) -> None:
    text = chinese_money(fen, financial)
    assert parse_money_fen(text) == fen, text


@FAST
@given(st.integers(min_value=0, max_value=10**8 - 1))
def test_number_round_trip_chinese(n: int) -> None:
    assert parse_number(chinese_int(n)) == n, chinese_int(n)


@FAST
@given(st.integers(min_value=1, max_value=10**12))
def test_money_never_above_cap(extra_fen: int) -> None:
    fen = MAX_MONEY_FEN + extra_fen
    assert parse_money_fen(f"{fen // 100}.{fen % 100:02d}") is None


DATE_SPEC = SPECS[FieldType.DATE]


@FAST
@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_iso_dates_round_trip(day: dt.date) -> None:
    assert parse_field(DATE_SPEC, day.isoformat(), CTX) == Parsed(day.isoformat())
    assert parse_field(DATE_SPEC, f"{day.year}年{day.month}月{day.day}日", CTX) == Parsed(day.isoformat())
    assert parse_field(DATE_SPEC, day.strftime("%Y/%m/%d"), CTX) == Parsed(day.isoformat())


@FAST
@given(st.dates(min_value=dt.date(TODAY.year, 1, 1), max_value=dt.date(TODAY.year, 12, 31)))
def test_month_day_round_trip(day: dt.date) -> None:
    """Without a year, a date of this year up to ~6 months ahead (all of 2026 on 2026-11-27)."""
    for text in (f"{day.month}月{day.day}日", f"{day.month}月{day.day}号", f"{day.month}.{day.day}"):
        assert parse_field(DATE_SPEC, text, CTX) == Parsed(day.isoformat()), text


@FAST
@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)), st.integers(1, 12))
def test_month_day_resolution_rule(today: dt.date, month: int) -> None:
    """Any today, any month: the resolved date is this year or last, at most ~6 months ahead."""
    ctx = ParseContext(today=today)
    result = parse_field(DATE_SPEC, f"{month}月28日", ctx)
    assert isinstance(result, Parsed)
    resolved = dt.date.fromisoformat(result.value)
    assert resolved.year in (today.year, today.year - 1)
    assert -366 <= (resolved - today).days <= 183
