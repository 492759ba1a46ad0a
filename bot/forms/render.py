"""Turn stored values into short Chinese text (pure; used by confirmations, 我的 and ledgers)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.domain.dues import format_yuan
from bot.forms.spec import FieldSpec, FieldType, FormSpec

ATTENDANCE = {"present": "到", "online": "线上参加", "leave": "请假"}


def render_value(spec: FieldSpec, value: Any) -> str:
    if value is None or value == "":
        return "无"
    renderer = _RENDERERS.get(spec.type)
    return renderer(spec, value) if renderer else str(value)


def _money(_: FieldSpec, value: Any) -> str:
    return f"{format_yuan(int(value))}元"


def _attendance(_: FieldSpec, value: Any) -> str:
    status = ATTENDANCE.get(value.get("status", ""), "")
    reason = value.get("reason") or ""
    return f"{status}（{reason}）" if reason else status


def _members(_: FieldSpec, value: Any) -> str:
    return "、".join(m.get("name", "") for m in value) or "无"


def _date(_: FieldSpec, value: Any) -> str:
    day = dt.date.fromisoformat(str(value))
    return f"{day.year}年{day.month}月{day.day}日"


def _yesno(_: FieldSpec, value: Any) -> str:
    return "是" if value else "否"


def _choice(spec: FieldSpec, value: Any) -> str:
    return spec.choice_label(str(value))


def _decimal(spec: FieldSpec, value: Any) -> str:
    return f"{value}{spec.unit}"


_RENDERERS = {
    FieldType.MONEY: _money,
    FieldType.ATTENDANCE: _attendance,
    FieldType.MEMBERS: _members,
    FieldType.DATE: _date,
    FieldType.YESNO: _yesno,
    FieldType.CHOICE: _choice,
    FieldType.DECIMAL: _decimal,
}


def summarize(form: FormSpec, values: dict[str, Any], limit: int = 60) -> str:
    """One line: "金额：50.00元" or "类型：支委会；日期：…" (long texts cut)."""
    parts = []
    for spec in form.fields:
        if spec.key not in values:
            continue
        text = render_value(spec, values[spec.key])
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        parts.append(f"{spec.label}：{text}" if len(form.fields) > 1 else text)
    return "；".join(parts)


def money_of(form: FormSpec, values: dict[str, Any]) -> int | None:
    """The first money field's value in fen, for SQL totals."""
    for spec in form.fields:
        if spec.type is FieldType.MONEY and isinstance(values.get(spec.key), int):
            return int(values[spec.key])
    return None


def form_example(form: FormSpec) -> str:
    """What to type, e.g. "党费 50"."""
    keyword = form.keywords[0] if form.keywords else form.name
    first = form.fields[0]
    return f"{keyword} {first.example}".strip() if len(form.fields) == 1 else f"{keyword}（按提示逐项回复）"
