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


def form_example(form: FormSpec, numbers: bool | None = None) -> str:
    """What to type, e.g. "捐款 50"; without ``numbers`` (default for private forms, whose amounts stay
    out of group chats): "捐款+金额"."""
    keyword = form.keywords[0] if form.keywords else form.name
    first = form.fields[0]
    if len(form.fields) != 1:
        return f"{keyword}（按提示逐项回复）"
    with_numbers = not form.private if numbers is None else numbers
    if not with_numbers and first.type is FieldType.MONEY:
        return f"{keyword}+金额"
    return f"{keyword} {first.example}".strip()


def sentence(text: str) -> str:
    """One sentence: inner full stops become commas ("名册中没有：X。请核对…" → "…：X，请核对…"), and
    it ends with a full stop (or the closing mark it already has)."""
    text = text.strip()
    head, end = (text[:-1], text[-1]) if text.endswith("。") else (text, "")
    text = head.replace("。", "，") + end
    return text if text.endswith(("。", "？", "！", "）", "”")) else f"{text}。"


def numbered(options: list[str]) -> str:
    return "\n".join(f"{i}. {option}" for i, option in enumerate(options, 1))


def namesake(name: str, group: str, mobile: str | None) -> str:
    """How to tell two members with the same name apart: "张三（第一党小组，手机尾号0003）"."""
    details = [d for d in (group, f"手机尾号{mobile[-4:]}" if mobile else "") if d]
    return f"{name}（{'，'.join(details)}）" if details else name
