"""Data-driven check of real-world reply phrasings in tests/data/replies.tsv.

Columns: form_key, field_key (or "-" for a whole message), input, expected.
- input: ``\\n`` is a newline; ``{{repeat:TEXT:N}}`` is TEXT repeated N times.
- field rows: ``parse_field``; expected is the JSON value, ``INVALID`` or ``AMBIGUOUS``.
  Member lists are compared as the list of member ids.
- "-" rows: ``match_form`` on all forms then ``parse_one_line``; expected is the JSON object of
  values (complete answer), ``MISSING:<keys>`` (values so far valid, these required keys still
  needed), ``INVALID:<key>`` / ``AMBIGUOUS:<key>`` (that key must be re-asked) or ``NOMATCH``.
"""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.forms.builtin import load_forms
from bot.forms.fields import Ambiguous, Invalid, ParseContext, Parsed, RosterName, parse_field
from bot.forms.oneline import match_form, parse_one_line
from bot.forms.spec import FieldType, FormSpec

TABLE = Path(__file__).parent / "data" / "replies.tsv"
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
CTX = ParseContext(today=dt.date(2026, 11, 27), roster=[RosterName(i, n) for i, n in enumerate(NAMES, 1)])
EXTRA = {
    "key": "extra",
    "name": "活动报名",
    "keywords": ["捐款", "报名"],
    "fields": [
        {"key": "donation", "label": "捐款金额", "type": "money", "min_value": 10},
        {"key": "start_time", "label": "开始时间", "type": "time", "required": False},
        {"key": "projector", "label": "是否需要投影", "type": "yesno", "required": False},
        {"key": "headcount", "label": "人数", "type": "integer", "required": False},
    ],
}
FORMS = load_forms([EXTRA])


def _expand(text: str) -> str:
    text = re.sub(r"\{\{repeat:(.+?):(\d+)\}\}", lambda m: m.group(1) * int(m.group(2)), text)
    return text.replace("\\n", "\n")


def _rows() -> list[Any]:
    rows = []
    for number, line in enumerate(TABLE.read_text(encoding="utf-8").splitlines(), start=1):
        if number == 1 or not line.strip() or line.startswith("#"):
            continue
        form_key, field_key, text, expected = line.split("\t")
        rows.append(pytest.param(form_key, field_key, _expand(text), expected, id=f"L{number}:{text[:20]}"))
    return rows


ROWS = _rows()


def test_table_is_big_enough() -> None:
    assert len(ROWS) >= 170


def _ids(form: FormSpec, values: dict[str, Any]) -> dict[str, Any]:
    members = {f.key for f in form.fields if f.type is FieldType.MEMBERS}
    return {k: [m["member_id"] for m in v] if k in members and v else v for k, v in values.items()}


def _check_field(form: FormSpec, field_key: str, text: str, expected: str) -> None:
    spec = form.field(field_key)
    result = parse_field(spec, text, CTX)
    if expected == "INVALID":
        assert isinstance(result, Invalid), result
        assert "例如" in result.message or "最多" in result.message, result.message
    elif expected == "AMBIGUOUS":
        assert isinstance(result, Ambiguous), result
    else:
        assert isinstance(result, Parsed), result
        value = result.value
        if spec.type is FieldType.MEMBERS:
            value = [m["member_id"] for m in value]
        assert value == json.loads(expected)


def _check_message(form_key: str, text: str, expected: str) -> None:
    found = match_form(text, FORMS, CTX)
    if expected == "NOMATCH":
        assert found is None, found
        return
    assert found is not None and found[0].key == form_key, found
    form = found[0]
    result = parse_one_line(form, found[1], CTX)
    kind, _, keys = expected.partition(":")
    if kind == "MISSING":
        assert result.missing == keys.split(","), result
        assert not result.errors, result
    elif kind == "INVALID":
        assert keys in result.errors and keys not in result.values, result
        assert keys not in result.ambiguous
    elif kind == "AMBIGUOUS":
        assert keys in result.errors and keys in result.ambiguous, result
    else:
        assert result.complete, result
        assert _ids(form, result.values) == json.loads(expected)


@pytest.mark.parametrize(("form_key", "field_key", "text", "expected"), ROWS)
def test_reply(form_key: str, field_key: str, text: str, expected: str) -> None:
    if field_key == "-":
        _check_message(form_key, text, expected)
    else:
        _check_field(FORMS[form_key], field_key, text, expected)
