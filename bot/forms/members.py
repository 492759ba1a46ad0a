"""Member lists: "张三、李四和王五", "全体", "全体除张三", resolved against the branch roster.

Matching, per name typed: exact roster name first; then a run of names without separators
("张三李四", "张三和王和平" — the roster decides where names end, so a 和 inside a name survives);
then a one-character typo (edit distance 1; for two-character input only a substitution).
Unknown names give ``Invalid`` naming them; a name that fits several members (同名, or a typo
close to two names) gives ``Ambiguous`` with the options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.domain.text import normalize, one_line, strip_decor
from bot.forms.results import Ambiguous, FieldResult, Invalid, Parsed, RosterName

MEMBERS_HINT = "请输入姓名，用“、”分隔，例如：张三、李四（全体参加可回复“全体”）"
_ALL = re.compile(
    r"(?:全体|全部|全员|所有人?|大家)(?:党员|人员|同志)?(?:都)?(?:参加|参会|到会|到齐|出席|到)?了?"
)
_EXCEPT = [
    re.compile(rf"{_ALL.pattern}[,(]?除了?(?P<rest>.+?)(?:以外|之外|外)?(?:[,)].*)?"),
    re.compile(rf"除了?(?P<rest>.+?)(?:以外|之外|外)[,]?{_ALL.pattern}"),
]
_SPLIT = re.compile(r"[\s,;、/|。.]+")
_CONNECTORS = ("以及", "和", "与", "及", "跟", "同")
_CONNECT_SPLIT = re.compile("|".join(_CONNECTORS))
_NAME_LIKE = re.compile(r"[\u3400-\u9fff·]{2,5}")
_MAX_CHARS = 2000


def _clean_chunk(chunk: str) -> str:
    chunk = strip_decor(chunk)
    for suffix in ("等同志", "等人", "同志", "等"):
        if chunk.endswith(suffix) and len(chunk) > len(suffix) + 1:
            chunk = chunk[: -len(suffix)]
    return chunk


def _distance_one(typed: str, name: str) -> bool:
    """Exactly one edit apart; two-character input allows only a substitution."""
    if typed == name or abs(len(typed) - len(name)) > 1:
        return False
    if len(typed) == len(name):
        return sum(a != b for a, b in zip(typed, name, strict=True)) == 1
    if len(typed) < 3:
        return False
    short, long_ = sorted((typed, name), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


class _Roster:
    def __init__(self, roster: Sequence[RosterName]) -> None:
        self.members = list(roster)
        self.by_name: dict[str, list[RosterName]] = {}
        for member in roster:
            self.by_name.setdefault(normalize(member.name), []).append(member)
        self.lengths = sorted({len(n) for n in self.by_name if n}, reverse=True)

    def fuzzy(self, typed: str) -> list[RosterName]:
        if len(typed) < 2 or not typed.replace("·", "").isalpha():
            return []
        return [
            m
            for name, ms in self.by_name.items()
            if len(name) >= 2 and _distance_one(typed, name)
            for m in ms
        ]

    def segment(self, chunk: str) -> list[str] | None:
        """Split a run like "张三李四" or "张三和王和平" into exact roster names."""
        if len(chunk) > 60:
            return None
        best: list[list[str] | None] = [None] * (len(chunk) + 1)
        best[0] = []
        for i in range(len(chunk)):
            if best[i] is None:
                continue
            for size in self.lengths:
                piece = chunk[i : i + size]
                if len(piece) == size and piece in self.by_name and best[i + size] is None:
                    best[i + size] = [*(best[i] or []), piece]
            for word in _CONNECTORS:
                if i > 0 and chunk.startswith(word, i) and best[i + len(word)] is None:
                    best[i + len(word)] = best[i]
        found = best[len(chunk)]
        return found if found and len(found) >= 2 else None


def _resolve_chunk(chunk: str, roster: _Roster) -> list[tuple[str, list[RosterName]]]:
    """(typed name, candidates) pairs for one separator-delimited chunk."""
    if chunk in roster.by_name:
        return [(chunk, roster.by_name[chunk])]
    names = roster.segment(chunk)
    if names:
        return [(name, roster.by_name[name]) for name in names]
    pieces = [p for p in _CONNECT_SPLIT.split(chunk) if p]
    if len(pieces) > 1 and all(p in roster.by_name or roster.fuzzy(p) for p in pieces):
        return [(p, roster.by_name.get(p) or roster.fuzzy(p)) for p in pieces]
    return [(chunk, roster.fuzzy(chunk))]


def _value(members: list[RosterName]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    out: list[dict[str, Any]] = []
    for member in members:
        if member.member_id not in seen:
            seen.add(member.member_id)
            out.append({"member_id": member.member_id, "name": member.name})
    return out


def _ambiguous(pairs: list[tuple[str, list[RosterName]]]) -> Ambiguous:
    details, options = [], []
    for typed, candidates in pairs:
        names = [c.name for c in candidates]
        if len(set(names)) == 1:
            details.append(f"名单中有{len(names)}位“{names[0]}”")
        else:
            shown = [
                n + (f"（{names.count(n)}人）" if names.count(n) > 1 else "") for n in dict.fromkeys(names)
            ]
            details.append(f"“{typed}”可能是{'、'.join(shown)}")
        options += [{"input": typed, "member_id": c.member_id, "name": c.name} for c in candidates]
    return Ambiguous("；".join(details) + "，请确认是哪一位。", options)


def _resolve(text: str, roster: _Roster) -> FieldResult:
    chunks = [_clean_chunk(c) for c in _SPLIT.split(text)]
    pairs = [pair for chunk in chunks if chunk for pair in _resolve_chunk(chunk, roster)]
    if not pairs:
        return Invalid(MEMBERS_HINT)
    unknown = [typed for typed, candidates in pairs if not candidates]
    if unknown:
        looks_like_names = all(_NAME_LIKE.fullmatch(c) for c in chunks if c)
        shown = "、".join(unknown[:5]) + ("等" if len(unknown) > 5 else "")
        message = f"名册中没有：{shown}。请核对姓名，用“、”分隔，例如：张三、李四"
        return Invalid(message, recognized=looks_like_names)
    unclear = [(typed, cands) for typed, cands in pairs if len(cands) > 1]
    if unclear:
        return _ambiguous(unclear)
    return Parsed(_value([cands[0] for _typed, cands in pairs]))


def parse_members(text: str, roster: Sequence[RosterName]) -> FieldResult:
    """A list of roster members as ``[{"member_id": int, "name": str}, ...]`` (input order, no repeats)."""
    t = strip_decor(one_line(text))
    if not t or len(t) > _MAX_CHARS:
        return Invalid(MEMBERS_HINT)
    index = _Roster(roster)
    compact = t.replace(" ", "")
    if _ALL.fullmatch(compact):
        return Parsed(_value(index.members)) if index.members else Invalid("名册中还没有党员，请先导入名册")
    for pattern in _EXCEPT:
        m = pattern.fullmatch(compact)
        if m:
            excluded = _resolve(m["rest"], index)
            if not isinstance(excluded, Parsed):
                return excluded
            ids = {entry["member_id"] for entry in excluded.value}
            return Parsed(_value([mem for mem in index.members if mem.member_id not in ids]))
    return _resolve(t, index)
