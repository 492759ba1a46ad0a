"""Understanding one chat message as (part of) a form answer. Pure: no I/O, no state.

- ``strip_leading``: NFKC-normalise (full-width digits/punctuation/spaces) and drop leading @mentions.
- ``match_form``: which form a message answers, by keyword at the start (longest keyword wins).
  A keyword counts only at a boundary — the rest is empty, starts with a separator, digit or
  numeral, or (single-field forms) the text still reads as an answer — so "到底怎么回事" and
  "交了吗" select nothing while "到", "到了", "请假出差", "交了50" do. One-line questions
  ("请假条怎么写？", "党费交多少") never match.
- ``parse_one_line``: fill what can be filled from one message. Single-field forms parse the whole
  remainder. Multi-field forms split on newlines / ；; / ，, / 。 (on spaces too when there is no
  other separator), recognise ``关键词：值`` pieces (``地点：会议室``, ``主持人 张三``, ``张三主持``)
  and place the other pieces in field order, skipping typed fields they do not fit.
  Only valid values are kept; the caller asks step by step for ``missing`` and re-asks ``errors``.
  Messages over ``MAX_ONE_LINE_CHARS`` (or ``MAX_PIECES`` pieces) are not split (all ``leftover``).
- ``is_bare_confirmation``: "已交" / "交了" / "已缴" with no amount (the engine then confirms the
  member's expected amount, when a base is on file, instead of asking for a number).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.numerals import NUMERAL_CHARS
from bot.domain.text import normalize, strip_decor
from bot.forms.fields import parse_field
from bot.forms.results import Ambiguous, FieldResult, Invalid, ParseContext, Parsed
from bot.forms.spec import FieldSpec, FieldType, FormSpec

_MENTION = re.compile(r"^@\S+\s+")
_LEAD_SEPARATORS = " \n:,;、=—~。!|"  # not "-" or ".": "党费 -50" is a negative amount
_VALUE_SEPARATORS = " :=：是为"
_NEUTRAL = ParseContext(today=dt.date(2000, 1, 1))
#: Longer multi-field messages (or more pieces) are not split; the engine asks field by field.
MAX_ONE_LINE_CHARS = 5000
MAX_PIECES = 300
#: Keywords that may also follow their value ("张三主持", "李四请假").
SUFFIX_KEYWORDS = frozenset({"主持", "参加", "出席", "参会", "缺席", "请假", "记录"})
_QUESTION = re.compile(
    "怎么|什么|如何|哪里|哪儿|哪个|哪位|多少|为啥|为什么|几点|几号|能不能|是不是|要不要|可不可以"
)
_BARE = re.compile(
    r"(?:我|本人)?(?:(?:已经?|刚刚?)(?:交|缴|缴纳|交纳|付|转账?|上交)(?:了|过了|过)?"
    r"|(?:交|缴|缴纳|交纳|付|转账|上交)(?:了|过了|过))(?:党费)?(?:了|啦)?"
    r"|党费(?:我)?(?:已经?|刚刚?)?(?:交|缴|缴纳|交纳|付)(?:了|过了|过)?(?:了|啦)?"
)


@dataclass
class OneLineResult:
    """What one message contributed: valid ``values``, required ``missing`` keys, ``errors``.

    ``ambiguous`` holds the options for keys whose ``errors`` message asks "which one", and ``raw``
    the text that was read for each key (so the caller can re-read it once a name is chosen);
    ``leftover`` lists pieces that fitted no field.
    """

    values: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    leftover: list[str] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.errors


def strip_leading(text: str, bot_names: Sequence[str] = ()) -> str:
    """Normalised text without leading @mentions ("@党建助手 党费50" → "党费50")."""
    t = normalize(text)
    while t.startswith("@"):
        named = next((n for n in bot_names if n and t.startswith("@" + n)), None)
        if named is not None:
            t = t[len(named) + 1 :].lstrip()
            continue
        m = _MENTION.match(t)
        if m is None:
            break
        t = t[m.end() :]
    return t


def is_bare_confirmation(text: str) -> bool:
    """ "已交" / "交了" / "已缴党费" / "党费已交": a payment claim without an amount."""
    return _BARE.fullmatch(strip_decor(strip_leading(text)).replace(" ", "")) is not None


def is_question(text: str) -> bool:
    """A one-line question ("请假条怎么写？", "党费交多少") is never taken as an answer."""
    t = strip_leading(text)
    if "\n" in t:
        return False
    core = strip_decor(t, keep="?")
    return core.endswith(("?", "吗", "么", "呢")) or _QUESTION.search(core) is not None


def _starts_boundary(rest: str) -> bool:
    first = rest[:1]
    return not first or first in _LEAD_SEPARATORS or first.isdigit() or first in NUMERAL_CHARS or first == "¥"


def _remainder(form: FormSpec, text: str, rest: str, ctx: ParseContext) -> str | None:
    stripped = rest.lstrip(_LEAD_SEPARATORS)
    if len(form.fields) != 1:
        keyed = _field_keyword(form, stripped) is not None
        return stripped if _starts_boundary(rest) or keyed else None
    spec = form.fields[0]
    whole, part = parse_field(spec, text, ctx), parse_field(spec, stripped, ctx) if stripped else None
    if isinstance(whole, Parsed) and not (isinstance(part, Parsed) and part.value == whole.value):
        return text  # the keyword is part of the answer: "线上参加", "请假 出差", "到"
    if isinstance(part, Parsed) or _starts_boundary(rest):
        return stripped
    return None


def match_form(
    text: str, forms: Mapping[str, FormSpec], ctx: ParseContext | None = None
) -> tuple[FormSpec, str] | None:
    """The form a message answers and the rest of the message, or ``None``.

    ``ctx`` (today, roster) makes the "does the rest read as an answer" check exact; without it a
    neutral context is used. Equal-length keywords in two forms: the first form wins. One-line
    questions never match. Pass only the forms the sender can answer now (open campaigns), so a
    bare "请假 出差" selects the theme day only while one is open.
    """
    t = strip_leading(text)
    if is_question(t):
        return None
    candidates = [
        (len(kw), order, form)
        for order, form in enumerate(forms.values())
        for kw in form.keywords
        if t[: len(kw)].lower() == kw
    ]
    for length, _order, form in sorted(candidates, key=lambda c: (-c[0], c[1])):
        remainder = _remainder(form, t, t[length:], ctx or _NEUTRAL)
        if remainder is not None:
            return form, remainder
    return None


# --- multi-field parsing ---------------------------------------------------------------------


def _field_words(form: FormSpec) -> list[tuple[str, FieldSpec]]:
    words = []
    for spec in form.fields:
        label = normalize(spec.label).lower()
        short = re.sub(r"\(.*?\)", "", label)
        words += [(w, spec) for w in {*spec.keywords, label, short} if w]
    return sorted(words, key=lambda w: -len(w[0]))


def _field_keyword(form: FormSpec, piece: str) -> tuple[FieldSpec, str] | None:
    """``地点：会议室`` / ``主持人 张三`` / ``主持人张三`` / ``张三主持`` → (field, value)."""
    low = piece.lower()
    for word, spec in _field_words(form):
        if low.startswith(word):
            after = piece[len(word) :]
            if not after or after[0] in _VALUE_SEPARATORS:
                return spec, after.lstrip(_VALUE_SEPARATORS)
            if len(word) >= 3:
                return spec, after
    for word, spec in _field_words(form):
        if word in SUFFIX_KEYWORDS and low.endswith(word) and len(piece) > len(word):
            return spec, piece[: -len(word)].rstrip(_VALUE_SEPARATORS)
    return None


@dataclass
class _Segment:
    spec: FieldSpec | None  # None: positional
    value: str


def _pieces(text: str) -> list[tuple[str, str]]:
    """(separator before, piece) pairs; spaces separate only when nothing else does."""
    pattern = r"([\n;,。]+)" if re.search(r"[\n;,。]", text) else r"( +)"
    parts = re.split(pattern, text)
    pairs, sep = [], ""
    for i, part in enumerate(parts):
        if i % 2:
            sep = part
        elif part.strip():
            pairs.append((sep, part.strip()))
    return pairs


def _fits_typed_field(form: FormSpec, spec: FieldSpec, piece: str, ctx: ParseContext) -> bool:
    """The piece is a valid answer to a later typed field (date, choice, number, members …)."""
    later = form.fields[form.field_keys.index(spec.key) + 1 :]
    return any(
        s.type not in (FieldType.TEXT, spec.type) and isinstance(parse_field(s, piece, ctx), Parsed)
        for s in later
    )


def _absorbs(form: FormSpec, segment: _Segment, piece: str, ctx: ParseContext) -> bool:
    """Does a keyword-less piece continue the previous keyed value ("议题：学习党章，讨论…")?"""
    spec = segment.spec
    if spec is None:
        return False
    if not segment.value:
        return True
    long_text = spec.type is FieldType.TEXT and spec.max_length > 100
    if not (long_text or spec.type is FieldType.MEMBERS):
        return False
    return not _fits_typed_field(form, spec, piece, ctx)


def _segments(form: FormSpec, text: str, ctx: ParseContext) -> list[_Segment]:
    segments: list[_Segment] = []
    for sep, piece in _pieces(text):
        keyed = _field_keyword(form, piece)
        if keyed is not None:
            segments.append(_Segment(keyed[0], keyed[1]))
        elif segments and _absorbs(form, segments[-1], piece, ctx):
            last = segments[-1]
            joiner = "" if not last.value else ("\n" if "\n" in sep else sep[:1])
            last.value = f"{last.value}{joiner}{piece}"
        else:
            segments.append(_Segment(None, piece))
    return segments


def _record(result: OneLineResult, spec: FieldSpec, outcome: FieldResult, text: str) -> None:
    result.raw[spec.key] = text
    result.errors.pop(spec.key, None)
    result.ambiguous.pop(spec.key, None)
    if isinstance(outcome, Parsed):
        result.values[spec.key] = outcome.value
        return
    result.values.pop(spec.key, None)
    result.errors[spec.key] = outcome.message
    if isinstance(outcome, Ambiguous):
        result.ambiguous[spec.key] = outcome.options


def _place(form: FormSpec, piece: str, cursor: int, result: OneLineResult, ctx: ParseContext) -> int:
    """Put a positional piece into the next open field it fits; return the new cursor."""
    fields = form.fields
    order = list(range(cursor, len(fields))) + list(range(cursor))
    for index in order:
        spec = fields[index]
        if spec.key in result.values or spec.key in result.errors:
            continue
        outcome = parse_field(spec, piece, ctx)
        fits = not isinstance(outcome, Invalid) or outcome.recognized
        if fits or (spec.type is FieldType.TEXT and _has_text(piece)):
            _record(result, spec, outcome, piece)
            return index + 1
    result.leftover.append(piece)
    return cursor


def _has_text(piece: str) -> bool:
    return bool(strip_decor(piece))


def parse_one_line(form: FormSpec, text: str, ctx: ParseContext) -> OneLineResult:
    """Parse a message (after the form keyword) into as many of the form's fields as possible."""
    result = OneLineResult()
    t = normalize(text)
    if len(form.fields) == 1:
        spec = form.fields[0]
        if _has_text(t):
            _record(result, spec, parse_field(spec, t, ctx), t)
    elif len(t) > MAX_ONE_LINE_CHARS or len(_pieces(t)) > MAX_PIECES:
        result.leftover.append(t)
    else:
        cursor = 0
        for segment in _segments(form, t, ctx):
            if segment.spec is None:
                cursor = _place(form, segment.value, cursor, result, ctx)
            elif _has_text(segment.value):
                _record(result, segment.spec, parse_field(segment.spec, segment.value, ctx), segment.value)
                cursor = form.field_keys.index(segment.spec.key) + 1
    result.missing = [
        s.key for s in form.fields if s.required and s.key not in result.values and s.key not in result.errors
    ]
    return result
