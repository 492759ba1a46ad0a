"""Step-by-step form state, kept in the KV (survives restarts with Redis, shared by instances), and the
pure rules for one step of the dialogue.

A session belongs to one conversation and one sender: the same member may fill one form in the group
and another in the 1:1 chat at the same time. It expires ``SESSION_TTL_SECONDS`` after the last reply,
measured with the bot's clock (``touched_at``), so the member can be told that an answer timed out; the
KV entry itself lives a day longer only to make that notice possible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.domain.text import normalize, strip_decor
from bot.errors import StorageUnavailable
from bot.forms.fields import is_skip, parse_field
from bot.forms.oneline import is_bare_confirmation, match_form, parse_one_line
from bot.forms.results import Ambiguous, FieldResult, Invalid, ParseContext, Parsed, RosterName
from bot.forms.spec import FieldSpec, FieldType, FormSpec
from bot.kv.base import KV
from bot.message import IncomingMessage

SESSION_TTL_SECONDS = 30 * 60
KV_TTL_SECONDS = SESSION_TTL_SECONDS + 24 * 3600

CANCEL_WORDS = frozenset({"取消", "退出", "算了", "不填了", "取消填报", "cancel"})  # not 不填: skips a field
SAME_AS_BEFORE = frozenset({"同上", "同上次", "跟上次一样", "和上次一样", "与上次相同", "同上月"})


@dataclass
class FormSession:
    form_key: str = ""
    campaign_id: int = 0
    member_id: int = 0  # whose answer it is
    entered_by: int = 0  # who is typing (differs for proxy answers)
    values: dict[str, Any] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # field keys still to ask; pending[0] is asked now
    options: list[dict[str, Any]] = field(default_factory=list)  # namesakes to pick from for pending[0]
    raw: str = ""  # the text given for pending[0] that named an ambiguous member
    hidden: list[int] = field(default_factory=list)  # namesakes already ruled out for pending[0]
    prefix: str = ""  # read before the next reply: "请假" then "出差" → "请假 出差"
    choose: list[int] = field(default_factory=list)  # campaign ids, while asking "which form?"
    proxy_choices: list[int] = field(default_factory=list)  # member ids, while asking "which 张三?"
    original: str = ""  # the message that led to a "which one?" question
    base_revision: int = 0  # the answer's revision when the dialogue began (0: none yet)
    started_at: str = ""  # ISO datetimes
    touched_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> FormSession:
        data = json.loads(raw)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def touch(self, now: dt.datetime) -> None:
        self.started_at = self.started_at or now.isoformat()
        self.touched_at = now.isoformat()

    def started(self) -> dt.datetime | None:
        return _when(self.started_at)

    def expired(self, now: dt.datetime) -> bool:
        touched = _when(self.touched_at)
        return touched is not None and now - touched > dt.timedelta(seconds=SESSION_TTL_SECONDS)

    def advance(self, value: Any) -> None:
        """Store the answer to ``pending[0]`` and move on to the next field."""
        self.values[self.pending.pop(0)] = value
        self.options, self.raw, self.hidden, self.prefix = [], "", [], ""


def _when(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def session_key(msg: IncomingMessage) -> str:
    return f"form:{msg.platform.value}:{msg.conversation_id}:{msg.sender_id}"


class FormSessionStore:
    """One message's view of the dialogue state (the pipeline holds the conversation lock meanwhile).

    With ``after_commit`` (the pipeline's list), writes are kept here and reach the KV only once the
    message's transaction has committed: a message handled again after a rolled-back group commit then
    starts from the state it first saw, and a failed message leaves no half-advanced dialogue behind.
    """

    def __init__(
        self,
        kv: KV,
        after_commit: list[Callable[[], Awaitable[None]]] | None = None,
        read: Mapping[str, str | None] | None = None,
    ) -> None:
        self.kv = kv
        self._read = dict(read or {})  # values read for this message already (the pipeline's one MGET per group)
        # Keys this message found empty and did not write since: clearing them needs no KV round trip.
        self._absent: set[str] = set()
        self._after_commit = after_commit
        self._pending: dict[str, str | None] = {}  # key → JSON to set, or None to delete

    # A KV outage (Redis down) must not fail the message: without the store, no dialogue state is kept,
    # one-line answers (``党费 50``) still work and a step-by-step dialogue starts afresh.
    async def load(self, msg: IncomingMessage) -> FormSession | None:
        key = session_key(msg)
        if key in self._pending:
            raw = self._pending[key]
        elif key in self._read:
            raw = self._read[key]
        else:
            try:
                raw = await self.kv.get(key)
            except StorageUnavailable:
                return None
        if raw is None:
            self._absent.add(key)
            return None
        try:
            return FormSession.from_json(raw)
        except (ValueError, TypeError):
            await self.clear(msg)
            return None

    async def save(self, msg: IncomingMessage, state: FormSession, now: dt.datetime) -> None:
        state.touch(now)
        key = session_key(msg)
        self._absent.discard(key)
        await self._write(key, state.to_json())

    async def clear(self, msg: IncomingMessage) -> None:
        key = session_key(msg)
        if key in self._absent:
            return
        await self._write(key, None)
        self._absent.add(key)

    async def _write(self, key: str, raw: str | None) -> None:
        self._read.pop(key, None)
        if self._after_commit is None:
            await self._apply(key, raw)
            return
        if not self._pending:
            self._after_commit.append(self.flush)
        self._pending[key] = raw

    async def flush(self) -> None:
        """Apply the kept writes (called after the commit)."""
        pending, self._pending = self._pending, {}
        for key, raw in pending.items():
            await self._apply(key, raw)

    async def _apply(self, key: str, raw: str | None) -> None:
        with contextlib.suppress(StorageUnavailable):
            if raw is None:
                await self.kv.delete(key)
            else:
                await self.kv.set(key, raw, KV_TTL_SECONDS)


# --- pure rules for one step ---------------------------------------------------------------------

_CN_DIGITS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_NUMBER_REPLY = re.compile(r"(?:选|选择)?第?(?P<n>\d{1,2}|[一二两三四五六七八九十])(?:个|项|位|条|号)?")


def is_cancel(text: str) -> bool:
    return strip_decor(normalize(text)).lower() in CANCEL_WORDS


def is_same_as_before(text: str) -> bool:
    return strip_decor(normalize(text)) in SAME_AS_BEFORE


def pick_number(text: str, count: int) -> int | None:
    """ "2", "2.", "第二个", "选2" → the 0-based index of an option among ``count``; else ``None``."""
    m = _NUMBER_REPLY.fullmatch(strip_decor(normalize(text)).replace(" ", ""))
    if m is None:
        return None
    n = int(m["n"]) if m["n"].isdigit() else _CN_DIGITS[m["n"]]
    return n - 1 if 1 <= n <= count else None


def choose_namesake(
    spec: FieldSpec,
    raw: str,
    options: Sequence[dict[str, Any]],
    index: int,
    ctx: ParseContext,
    hidden: Sequence[int],
) -> tuple[FieldResult, list[int]]:
    """Re-read ``raw`` after the member picked ``options[index]`` for an ambiguous name.

    The other candidates for the same typed name are renamed out of the way (not removed, so "全体"
    still counts them); returns the new result and the ids now ruled out. Another ambiguous name in
    ``raw`` gives ``Ambiguous`` again, for the next question.
    """
    chosen = options[index]
    ruled_out = {int(o["member_id"]) for o in options if o.get("input") == chosen.get("input")}
    ruled_out.discard(int(chosen["member_id"]))
    hide = [*hidden, *sorted(ruled_out - set(hidden))]
    roster = [
        RosterName(r.member_id, f"{r.name}#{r.member_id}") if r.member_id in hide else r for r in ctx.roster
    ]
    result = parse_field(spec, raw, replace(ctx, roster=roster))
    if isinstance(result, Parsed) and isinstance(result.value, list):
        names = {r.member_id: r.name for r in ctx.roster}
        result = Parsed(
            [{**m, "name": names.get(m.get("member_id", 0), m.get("name", ""))} for m in result.value]
        )
    return result, hide


def step_result(spec: FieldSpec, text: str, state: FormSession, ctx: ParseContext) -> FieldResult:
    """Read one step-by-step reply for ``spec`` (the field ``state.pending[0]``).

    Handles 无 for optional fields, a number picking an ambiguous name, and a reply that completes an
    earlier partial answer (``prefix``: "请假" asked for the reason, "出差" gives it). Keeps in ``state``
    what a later number needs (``raw``, ``hidden``); the caller stores ``options`` from ``Ambiguous``.
    """
    if not spec.required and spec.type is not FieldType.YESNO and is_skip(text):
        return Parsed(None)
    if state.options and state.raw:
        index = pick_number(text, len(state.options))
        if index is not None:
            result, state.hidden = choose_namesake(spec, state.raw, state.options, index, ctx, state.hidden)
            return result
    outcome = parse_field(spec, text, ctx)
    if isinstance(outcome, Invalid) and state.prefix:
        combined = parse_field(spec, f"{state.prefix} {text}", ctx)
        if isinstance(combined, Parsed):
            return combined
    if isinstance(outcome, Ambiguous):
        state.raw, state.hidden = text, []
    return outcome


def same_as_before(
    form: FormSpec, last: dict[str, Any], typed: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """`同上`: the member's last answer to this form, over what they typed now; dates are asked again.

    A date in the last answer (the day of last month's meeting or of yesterday's log) is not today's,
    so date fields are not copied: they come back as pending keys, in field order.
    """
    values: dict[str, Any] = {}
    pending: list[str] = []
    for spec in form.fields:
        if spec.key in typed:
            values[spec.key] = typed[spec.key]
        elif spec.type is FieldType.DATE:
            pending.append(spec.key)
        elif spec.key in last:
            values[spec.key] = last[spec.key]
        elif spec.required:
            pending.append(spec.key)
    return values, pending


def partial_answer(form: FormSpec, text: str, ctx: ParseContext) -> Invalid | None:
    """A keyword alone that starts an answer but lacks a part, e.g. "请假" without the reason.

    Returns the parser's message (which asks for the missing part); the caller keeps ``text`` as the
    session's ``prefix``.
    """
    if len(form.fields) != 1 or not text:
        return None
    outcome = parse_field(form.fields[0], text, ctx)
    return outcome if isinstance(outcome, Invalid) and outcome.recognized else None


_PROXY = re.compile(r"^代\s*(?P<name>[\u4e00-\u9fa5·]{2,5}?)(?:\s+(?P<rest>.*))?$", re.S)
_PROXY_SEPARATORS = " :：,，"


def may_be_proxy(text: str) -> bool:
    """Whether ``split_proxy`` could find a proxy answer in ``text`` (cheap: no roster needed)."""
    return normalize(text).strip().startswith("代")


def split_proxy(text: str, names: Sequence[str]) -> tuple[str, str] | None:
    """ "代 张三 党费 50" / "代张三党费50" → ("张三", "党费 50"); ``None`` if this is no proxy answer.

    Roster ``names`` let the name run into the answer without a space (longest name first); without
    a known name the name must be followed by a space ("代 欧阳小明 已交"), so that ordinary words
    starting with 代 ("代表大会…") are not taken for proxy answers.
    """
    t = normalize(text).strip()
    if not t.startswith("代"):
        return None
    body = t[1:].lstrip(_PROXY_SEPARATORS)
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        if body.startswith(name):
            return name, body[len(name) :].strip(_PROXY_SEPARATORS)
    m = _PROXY.match(t)
    if m is None or m["rest"] is None:
        return None
    return m["name"], m["rest"].strip(_PROXY_SEPARATORS)


# --- which form a reply is for -------------------------------------------------------------------


def fits_strongly(form: FormSpec, text: str, ctx: ParseContext) -> bool:
    """Does a reply without keyword clearly answer ``form``?

    Yes for a typed (non-text) value, several values, a recognisably wrong value (-50), a name to
    disambiguate, or "已交" for a money form; no for free text alone, which any chatter is.
    """
    if is_bare_confirmation(text):
        return any(s.type is FieldType.MONEY for s in form.fields)
    if len(form.fields) == 1:
        spec = form.fields[0]
        outcome = parse_field(spec, text, ctx)
        if isinstance(outcome, Invalid):
            return outcome.recognized
        return spec.type is not FieldType.TEXT or isinstance(outcome, Ambiguous)
    result = parse_one_line(form, text, ctx)
    typed = [k for k in result.values if form.field(k).type is not FieldType.TEXT]
    return bool(typed) or len(result.values) > 1 or bool(result.ambiguous)


def answers_another_form(
    text: str, others: Mapping[str, FormSpec], ctx: ParseContext, answered: bool
) -> bool:
    """In the middle of a dialogue: is this reply meant for one of the ``others`` (open) forms?

    When it does not answer the question, a keyword of another form is enough. When it also answers
    the question (``answered``), only a complete answer beyond the bare keyword counts: "党费 45" is
    meant for the dues, but "线上" or "志愿服务" may well be a meeting's place or topic.
    """
    matched = match_form(text, others, ctx) if others else None
    if matched is None:
        return False
    if not answered:
        return True
    other, rest = matched
    return bool(rest) and text.lower() not in other.keywords and parse_one_line(other, rest, ctx).complete
