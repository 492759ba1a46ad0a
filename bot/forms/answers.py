"""Short answers: yes/no, attendance (到 / 线上 / 请假 出差) and choices (aliases or the option number)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.domain.text import has_content, is_decor, normalize, strip_decor
from bot.forms.results import FieldResult, Invalid, Parsed, RosterName
from bot.forms.spec import FieldSpec

ATTENDANCE_HINT = "请回复：到、线上 或 请假加原因，例如：请假 出差"
LEAVE_REASON_HINT = "请说明请假原因，例如：请假 出差"
YESNO_HINT = "请回复“是”或“否”，例如：是"
MAX_REASON = 100

_YES = frozenset(
    ["是", "是的", "是滴", "对", "对的", "有", "有的", "好", "好的", "行", "可以", "嗯", "嗯嗯", "同意", "确认", "确定", "需要", "要", "没问题", "对头", "yes", "y", "ok", "okay", "1", "true", "✓", "√", "✔", "☑", "👍", "👌", "⭕", "是滴"]
)  # fmt: skip
_NO = frozenset(
    ["否", "不", "不是", "没有", "无", "不对", "不要", "不需要", "不用", "没", "不同意", "不行", "不可以", "算了", "不好", "没了", "no", "n", "0", "false", "×", "✗", "✘", "❌", "✕", "👎"]
)  # fmt: skip

_SEP = r"[\s,;:。、!?~/|()\[\]【】\-—]*"
_PRESENT = re.compile(
    r"(?:已经?|准时|按时|现场)?(?:签到|报到|到场|到会|参加|参会|出席|在场|来了|到|在)(?:了|啦)?"
)
_ONLINE = re.compile(
    r"(?:已经?|通过)?(?:线上|在线|视频|远程|网上|网络|云端?|腾讯会议|钉钉会议|钉钉视频|视频会议|直播)"
    r"(?:参加|参会|出席|签到|到|学习|观看|方式)?(?:了|啦)?"
)
_LEAVE = [
    re.compile(rf"请假了?{_SEP}(?P<r>.*)"),
    re.compile(rf"(?P<r>.+?){_SEP}请假了?"),
    re.compile(rf"(?:不能|无法|没法|没办法|不)(?:去|来)?(?:参加|参会|出席|到场|到)了?{_SEP}(?P<r>.*)"),
    re.compile(rf"(?:参加|去|来|到)不了{_SEP}(?P<r>.*)"),
    re.compile(rf"(?P<r>.+?){_SEP}(?:不能|无法|没法|没办法)(?:去|来)?(?:参加|参会|出席|到场|到)了?"),
]
_REASON_PREFIX = re.compile(r"^(?:请假)?(?:原因|理由|事由)?[:：]?(?:因为|由于|因)?")


def _fold(text: str) -> str:
    """Case-, width-, space- and punctuation-insensitive form for comparing short answers."""
    return "".join(c for c in normalize(text).lower() if not is_decor(c))


def parse_yesno(text: str) -> FieldResult:
    raw = normalize(text).lower()
    folded = _fold(raw)
    for candidate in (raw, strip_decor(raw), folded, re.sub("[了啦呀吧哦嘛呢]+$", "", folded)):
        if candidate in _YES:
            return Parsed(True)
        if candidate in _NO:
            return Parsed(False)
    return Invalid(YESNO_HINT)


def _reason(raw: str) -> FieldResult:
    reason = strip_decor(raw)
    cleaned = _REASON_PREFIX.sub("", reason, count=1)
    reason = strip_decor(cleaned) if len(cleaned) >= 2 else reason
    if not reason or not has_content(reason):
        return Invalid(LEAVE_REASON_HINT, recognized=True)
    if len(reason) > MAX_REASON:
        return Invalid(f"请假原因请控制在{MAX_REASON}字以内，例如：请假 出差", recognized=True)
    return Parsed({"status": "leave", "reason": reason})


def _present_with_name(text: str, roster: Sequence[RosterName]) -> bool:
    """ "到 张三": the present word followed by a roster member's name."""
    parts = re.split(_SEP.replace("*", "+"), text, maxsplit=1)
    names = {member.name for member in roster}
    return len(parts) == 2 and _PRESENT.fullmatch(parts[0]) is not None and parts[1] in names


def parse_attendance(text: str, roster: Sequence[RosterName] = ()) -> FieldResult:
    t = strip_decor(normalize(text)).replace("\n", " ")
    if not t or len(t) > MAX_REASON + 20:
        return Invalid(ATTENDANCE_HINT)
    compact = t.replace(" ", "")
    if _PRESENT.fullmatch(compact) or _present_with_name(t, roster):
        return Parsed({"status": "present", "reason": ""})
    if _ONLINE.fullmatch(compact):
        return Parsed({"status": "online", "reason": ""})
    for pattern in _LEAVE:
        m = pattern.fullmatch(t)
        if m:
            return _reason(m["r"])
    return Invalid(ATTENDANCE_HINT)


def _overlaps(alias: str, folded: str) -> bool:
    return (len(alias) >= 2 and alias in folded) or folded in alias


def choice_hint(spec: FieldSpec) -> str:
    labels = [spec.choice_label(key) for key in spec.choices]
    return f"请从以下选项中选择：{'、'.join(labels)}，例如：{labels[0]}"


def parse_choice(spec: FieldSpec, text: str) -> FieldResult:
    folded = _fold(text)
    if not folded or len(folded) > 50:
        return Invalid(choice_hint(spec))
    aliases = {key: {_fold(key), *(_fold(a) for a in names)} - {""} for key, names in spec.choices.items()}
    exact = [key for key, names in aliases.items() if folded in names]
    if len(exact) == 1:
        return Parsed(exact[0])
    if folded.isdigit() and 1 <= int(folded) <= len(spec.choices) and not exact:
        return Parsed(list(spec.choices)[int(folded) - 1])
    if len(folded) >= 2:
        near = [key for key, names in aliases.items() if any(_overlaps(a, folded) for a in names)]
        if len(near) == 1:
            return Parsed(near[0])
    return Invalid(choice_hint(spec))
