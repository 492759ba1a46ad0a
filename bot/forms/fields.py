"""Parse one answer for one field: ``parse_field(spec, text, ctx)`` → ``Parsed | Invalid | Ambiguous``.

It never raises for any input string. Values are JSON-serialisable:
money → int fen; integer → int; decimal → str ("2.5", rounded half-up to 2 places); date → ISO
"2026-11-15"; time → "HH:MM"; choice → canonical key; yesno → bool; attendance →
{"status": "present"|"online"|"leave", "reason": str}; text → str; members → [{"member_id", "name"}].
An optional field answered with 无 / 没有 / 略 / - parses to ``None`` (yes/no fields: ``False``). Money amounts must be above
zero unless ``min_value`` allows 0; ``min_value``/``max_value`` are inclusive (money in yuan).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from bot.domain.numerals import MoneyProblem, parse_money, parse_number
from bot.domain.text import cjk_punctuation, has_content, normalize, strip_decor
from bot.forms.answers import parse_attendance, parse_choice, parse_yesno
from bot.forms.dates import parse_date, parse_time
from bot.forms.members import parse_members
from bot.forms.results import Ambiguous, FieldResult, Invalid, ParseContext, Parsed, RosterName
from bot.forms.spec import SKIP_WORDS, FieldSpec, FieldType

__all__ = [
    "Ambiguous",
    "FieldResult",
    "Invalid",
    "ParseContext",
    "Parsed",
    "RosterName",
    "format_decimal",
    "is_skip",
    "parse_field",
]

_MAX_SHORT = 200  # longer answers to non-text fields are rejected at once
_NUMBER = re.compile(
    r"(?P<n>[-+负]?[0-9.,零〇○一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟点]+)(?P<u>\D{0,4})"
)
_HOURS = re.compile(
    r"(?P<h>[0-9.零〇一二两三四五六七八九十点]+)?个?(?P<half>半)?(?:个)?(?:小时|钟头|h|hr|hrs|hour|hours)"
    r"(?:(?P<m>[0-9零〇一二两三四五六七八九十]+)(?:分钟?|min)?)?"
)
_INNER_SPACE = re.compile(r"(?<!\d) | (?!\d)")  # "2 小时" → "2小时", but "50 60" stays two numbers
_MINUTES = re.compile(r"(?P<m>[0-9零〇一二两三四五六七八九十]+)(?:分钟|min|mins)")


def is_skip(text: str) -> bool:
    """The reply leaves an optional field empty (无 / 没有 / 略 / - …)."""
    return strip_decor(normalize(text)).lower() in SKIP_WORDS or normalize(text) in SKIP_WORDS


def format_decimal(value: Decimal) -> str:
    """Round half-up to 2 places and drop trailing zeros: 2.50 → "2.5", 10 → "10"."""
    rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()
    return format(rounded, "f")


def _range_message(spec: FieldSpec, unit: str) -> str | None:
    lo, hi = spec.min_value, spec.max_value
    if lo is not None and hi is not None:
        return f"{spec.label}应在{format_decimal(lo)}到{format_decimal(hi)}{unit}之间，例如：{spec.example}"
    if lo is not None:
        return f"{spec.label}不能小于{format_decimal(lo)}{unit}，例如：{spec.example}"
    if hi is not None:
        return f"{spec.label}不能大于{format_decimal(hi)}{unit}，例如：{spec.example}"
    return None


def _in_range(spec: FieldSpec, value: Decimal) -> bool:
    lo, hi = spec.min_value, spec.max_value
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _money(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    hint = f"请输入金额，例如：{spec.example}"
    result = parse_money(text)
    if result is MoneyProblem.NEGATIVE:
        return Invalid(f"金额不能为负数，{hint}", recognized=True)
    if result is MoneyProblem.TOO_LARGE:
        return Invalid(f"金额过大（超过100万元），请核对后重新输入，例如：{spec.example}", recognized=True)
    if not isinstance(result, int):
        return Invalid(hint)
    if result == 0 and (spec.min_value is None or spec.min_value > 0):
        return Invalid(f"金额需大于0，{hint}", recognized=True)
    if not _in_range(spec, Decimal(result) / 100):
        return Invalid(_range_message(spec, "元") or hint, recognized=True)
    return Parsed(result)


def _hours(text: str) -> Decimal | None:
    """Durations for fields with unit 小时: 2小时30分, 一个半小时, 半小时, 90分钟."""
    m = _HOURS.fullmatch(text)
    if m and (m["h"] or m["half"]):
        hours = parse_number(m["h"]) if m["h"] else Decimal(0)
        minutes = parse_number(m["m"]) if m["m"] else Decimal(0)
        if hours is None or minutes is None or minutes >= 60:
            return None
        return hours + (Decimal("0.5") if m["half"] else 0) + minutes / 60
    m = _MINUTES.fullmatch(text)
    minutes = parse_number(m["m"]) if m else None
    return minutes / 60 if minutes is not None else None


def _number(spec: FieldSpec, text: str) -> Decimal | None:
    t = _INNER_SPACE.sub("", strip_decor(normalize(text))).lower()
    if spec.unit in ("小时", "h") and (value := _hours(t)) is not None:
        return value
    m = _NUMBER.fullmatch(t)
    if m is None or m["u"] not in ("", "个", "半", "个半", spec.unit.lower()) and not _unit_word(m["u"]):
        return None
    value = parse_number(m["n"])
    if value is not None and "半" in m["u"]:
        value += Decimal("0.5")
    return value


def _unit_word(unit: str) -> bool:
    """A trailing counting word such as 人, 次, 个人, 小时: CJK letters only, no numerals."""
    return bool(re.fullmatch(r"个?[\u4e00-\u9fffA-Za-z]{1,3}", unit)) and "半" not in unit


def _numeric(spec: FieldSpec, text: str, integral: bool) -> FieldResult:
    example = spec.example
    hint = f"请输入{'整数' if integral else '数字'}，例如：{example}"
    value = _number(spec, text)
    if value is None:
        return Invalid(hint)
    if integral and value != value.to_integral_value():
        return Invalid(hint, recognized=True)
    if not _in_range(spec, value):
        return Invalid(_range_message(spec, spec.unit) or hint, recognized=True)
    return Parsed(int(value) if integral else format_decimal(value))


def _integer(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    return _numeric(spec, text, integral=True)


def _decimal(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    return _numeric(spec, text, integral=False)


def _date(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    result = parse_date(text, ctx.today)
    return result if isinstance(result, Invalid) else Parsed(result.isoformat())


def _time(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    result = parse_time(text)
    return result if isinstance(result, Invalid) else Parsed(result)


def _text(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    value = cjk_punctuation("".join(c for c in normalize(text) if c == "\n" or c.isprintable()))
    if not value or not has_content(value):
        return Invalid(f"请输入{spec.label}" + (f"，例如：{spec.example}" if spec.example else ""))
    if len(value) > spec.max_length:
        return Invalid(f"{spec.label}太长了（最多{spec.max_length}字，现有{len(value)}字），请精简后重新发送")
    return Parsed(value)


_PARSERS: dict[FieldType, Callable[[FieldSpec, str, ParseContext], FieldResult]] = {
    FieldType.MONEY: _money,
    FieldType.INTEGER: _integer,
    FieldType.DECIMAL: _decimal,
    FieldType.DATE: _date,
    FieldType.TIME: _time,
    FieldType.CHOICE: lambda spec, text, ctx: parse_choice(spec, text),
    FieldType.YESNO: lambda spec, text, ctx: parse_yesno(text),
    FieldType.ATTENDANCE: lambda spec, text, ctx: parse_attendance(text, ctx.roster),
    FieldType.TEXT: _text,
    FieldType.MEMBERS: lambda spec, text, ctx: parse_members(text, ctx.roster),
}
_LONG_OK = {FieldType.TEXT, FieldType.MEMBERS}


def parse_field(spec: FieldSpec, text: str, ctx: ParseContext) -> FieldResult:
    """Parse ``text`` as an answer to ``spec``; never raises."""
    if not spec.required and spec.type is not FieldType.YESNO and is_skip(text):
        return Parsed(None)
    if spec.type not in _LONG_OK and len(text) > _MAX_SHORT:
        return Invalid(f"回复太长了，{spec.prompt}")
    return _PARSERS[spec.type](spec, text, ctx)
