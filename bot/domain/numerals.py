"""Chinese and Arabic numerals, and money amounts as typed in chat.

``parse_number`` reads Arabic digits (half- or full-width, ``1,000`` grouping), Chinese numerals in
everyday (一二三…十百千万, 两, 〇) and financial form (壹贰叁…拾佰仟), mixes such as ``1万2`` or
``1.5万``, the colloquial drop of the last unit (``三千五`` = 3500, ``1万2`` = 12000, ``一百二`` = 120)
and decimals with ``点`` (``五十点五``). Digit strings without units read positionally (``二〇二六``).

``parse_money`` reads an amount in yuan and returns integer fen. It strips, by itself, the
payment verbs people put in front (交了 / 已交 / 已缴 / 缴纳 / 付了 / 转了 …, 本月 / 11月份,
and 党费), currency marks (¥ ￥ RMB CNY 人民币) and trailing words (整 / 钱 / 了 / 已交 / 已转账),
so callers may pass the raw reply. More than two decimals are **rounded half-up** to the fen
(50.555 → 5056), never rejected. Negative amounts and amounts above 1,000,000 yuan are rejected,
with a reason (``MoneyProblem``) so callers can say what went wrong.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from bot.domain.text import normalize, strip_decor

MAX_MONEY_FEN = 100_000_000  # 1,000,000 yuan: anything above is a typo or a joke
_MAX_NUMBER_CHARS = 40

DIGITS: dict[str, int] = {
    "零": 0, "〇": 0, "○": 0, "洞": 0,
    "一": 1, "壹": 1, "幺": 1, "二": 2, "贰": 2, "貳": 2, "两": 2, "兩": 2,
    "三": 3, "叁": 3, "參": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "陸": 6,
    "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
SMALL_UNITS: dict[str, int] = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
BIG_UNITS: dict[str, int] = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
#: Every character that can appear inside a Chinese numeral.
NUMERAL_CHARS = frozenset(DIGITS) | frozenset(SMALL_UNITS) | frozenset(BIG_UNITS)
_ZEROS = frozenset("零〇○洞")

_ARABIC = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
_INNER_SPACE = re.compile(r"(?<!\d) | (?!\d)")

# A token is (kind, value, width): kind "n" number, "z" zero, "s" small unit, "b" big unit;
# width is 1 for a single Chinese or Arabic digit (it may be the colloquial tail as in 三千五).
_Token = tuple[str, Decimal, int]


class MoneyProblem(StrEnum):
    NOT_MONEY = "not_money"
    NEGATIVE = "negative"
    TOO_LARGE = "too_large"


def _tokenize(text: str) -> list[_Token] | None:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        m = _ARABIC.match(text, i)
        if m:
            raw = m.group().replace(",", "")
            tokens.append(("n", Decimal(raw), 1 if raw.isdigit() and len(raw) == 1 else 2))
            i = m.end()
            continue
        ch = text[i]
        if ch in _ZEROS:
            tokens.append(("z", Decimal(0), 1))
        elif ch in DIGITS:
            tokens.append(("n", Decimal(DIGITS[ch]), 1))
        elif ch in SMALL_UNITS:
            tokens.append(("s", Decimal(SMALL_UNITS[ch]), 0))
        elif ch in BIG_UNITS:
            tokens.append(("b", Decimal(BIG_UNITS[ch]), 0))
        else:
            return None
        i += 1
    return tokens


def _positional(tokens: list[_Token]) -> Decimal | None:
    """Digits without units: ``二〇二六`` → 2026, a lone Arabic number → itself."""
    if len(tokens) == 1:
        return tokens[0][1]
    if all(kind in "nz" and width == 1 for kind, _v, width in tokens):
        return Decimal("".join(str(int(v)) for _k, v, _w in tokens))
    return None


def _with_units(tokens: list[_Token]) -> Decimal | None:
    total = section = Decimal(0)
    pending: _Token | None = None
    last_small: Decimal | None = None
    last_unit: Decimal | None = None
    zero = False
    for kind, value, width in tokens:
        if kind in "nz":
            if pending is not None:
                return None
            zero = zero or kind == "z"
            pending = None if kind == "z" else (kind, value, width)
            continue
        if kind == "s":
            count = pending[1] if pending else (Decimal(1) if value == 10 else None)
            if count is None or (last_small is not None and value >= last_small):
                return None
            section += count * value
            last_small = value
        else:  # big unit
            section += pending[1] if pending else 0
            if section == 0:
                return None
            total = (total + section) * value if value > 10**4 else total + section * value
            section, last_small = Decimal(0), None
        pending, last_unit, zero = None, value, False
    if pending is not None:
        tail_unit = last_unit if last_unit is not None and last_unit >= 100 and not zero else None
        section += pending[1] * tail_unit / 10 if tail_unit and pending[2] == 1 else pending[1]
    return total + section


def _integer_part(text: str) -> Decimal | None:
    tokens = _tokenize(text)
    if not tokens:
        return None
    if all(kind in "nz" for kind, _v, _w in tokens):
        return _positional(tokens)
    return _with_units(tokens)


def _fraction_part(text: str) -> Decimal | None:
    digits = []
    for ch in text:
        if ch.isdigit() and ch.isascii():
            digits.append(ch)
        elif ch in DIGITS:
            digits.append(str(DIGITS[ch]))
        else:
            return None
    return Decimal("0." + "".join(digits)) if digits else None


def parse_number(text: str) -> Decimal | None:
    """Read a number (Arabic, Chinese or mixed); ``None`` if the text is not just a number.

    A leading ``-``, ``负`` or ``+`` gives the sign. Spaces between Chinese characters are ignored;
    spaces between two Arabic digits are not (``50 60`` is two numbers, not 5060).
    """
    t = normalize(text)
    if not t or len(t) > _MAX_NUMBER_CHARS:
        return None
    t = _INNER_SPACE.sub("", t)
    sign = Decimal(1)
    if t[0] in "-−负+":
        sign = Decimal(-1) if t[0] != "+" else sign
        t = t[1:]
    if t.count("点") == 1 and not t.endswith("点"):
        whole, frac = t.split("点")
        int_value = _integer_part(whole) if whole else None
        frac_value = _fraction_part(frac)
        if int_value is None or frac_value is None:
            return None
        return sign * (int_value + frac_value)
    value = _integer_part(t)
    return None if value is None else sign * value


# --- money -----------------------------------------------------------------------------------

_PREFIXES = re.compile(
    r"^(?:我|本人|已经|本月|这个月|上个?月|今天|刚刚?|刚才|(?:\d{1,2}|[一二三四五六七八九十]{1,3})月份?)*"
    r"(?:(?:已|已经)?(?:支付|转账|上交|缴纳|交纳|交付|交|缴|付|转)(?:了|过了|过)?)?"
    r"(?:党费)?(?:金额|共计|合计|共|计)?(?:为|是|:)?"
)
_CURRENCY_PREFIX = re.compile(r"^(?:¥|RMB|CNY|人民币)", re.IGNORECASE)
_SUFFIXES = re.compile(
    r"(?:整|钱|了|啦|的|人民币|RMB|CNY|党费|(?:已经?|已)(?:交|缴|付|转账?)(?:了)?)+$", re.IGNORECASE
)
_YUAN = re.compile(r"元|块|圆|园")
_D = "[0-9零〇一二两三四五六七八九壹贰叁肆伍陆柒捌玖]"
_SUB_YUAN = [  # what may follow the yuan mark (or stand alone as 角/分)
    re.compile(rf"(?P<j>{_D})(?:角|毛)(?:零?(?P<f>{_D})分?)?"),
    re.compile(rf"零?(?P<f>{_D})分"),
]
_AFTER_YUAN = [  # only after a yuan mark: 125块5 (= 5角), 12块50 (= 5角0分)
    re.compile(rf"(?P<j>{_D})"),
    re.compile(r"(?P<j>\d)(?P<f>\d)"),
    re.compile(rf"零(?P<f>{_D})"),
]


def _digit(text: str | None) -> int:
    if not text:
        return 0
    return int(text) if text.isascii() else DIGITS[text]


def _sub_yuan(text: str, after_yuan: bool) -> Decimal | None:
    if not text:
        return Decimal(0)
    patterns = _SUB_YUAN + _AFTER_YUAN if after_yuan else _SUB_YUAN
    for pattern in patterns:
        m = pattern.fullmatch(text)
        if m:
            groups = m.groupdict()
            return Decimal(_digit(groups.get("j"))) / 10 + Decimal(_digit(groups.get("f"))) / 100
    return None


def _money_yuan(text: str) -> Decimal | None:
    m = _YUAN.search(text)
    if m is None:
        if re.search("角|毛|分", text):
            return _sub_yuan(text, after_yuan=False)
        return parse_number(text)
    whole = parse_number(text[: m.start()]) if m.start() else None
    rest = _sub_yuan(text[m.end() :], after_yuan=True)
    if whole is None or rest is None or (rest and whole != whole.to_integral_value()):
        return None
    return whole + rest


def _clean_money_text(text: str) -> tuple[str, bool]:
    """Strip verbs, currency marks and trailing words; return (core text, negative sign seen)."""
    t = _INNER_SPACE.sub("", strip_decor(normalize(text), keep="¥-+"))
    t = _PREFIXES.sub("", t, count=1)
    t = _CURRENCY_PREFIX.sub("", t, count=1)
    negative = t[:1] in ("-", "−", "负")
    if t and t[0] in "-−负+":
        t = t[1:]
    t = _CURRENCY_PREFIX.sub("", t, count=1)
    t = _SUFFIXES.sub("", strip_decor(t))
    return t, negative


def parse_money(text: str) -> int | MoneyProblem:
    """Amount in integer fen (half-up at 0.01 yuan), or why the text is not an acceptable amount."""
    if len(text) > 200:
        return MoneyProblem.NOT_MONEY
    core, negative = _clean_money_text(text)
    yuan = _money_yuan(core) if core else None
    if yuan is None:
        return MoneyProblem.NOT_MONEY
    if negative or yuan < 0:
        return MoneyProblem.NEGATIVE
    if yuan * 100 > MAX_MONEY_FEN:
        return MoneyProblem.TOO_LARGE
    return int((yuan * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_money_fen(text: str) -> int | None:
    """Amount in integer fen, or ``None`` for anything not a plausible non-negative amount."""
    result = parse_money(text)
    return result if isinstance(result, int) else None
