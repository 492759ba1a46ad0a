"""Plain replies that answer open forms: `党费 50`, `已交`, `到`, `请假 出差`, `同上`, `取消`, `代 张三 党费 50`,
one-line or step by step. The parsing and the pure step rules are in bot.forms; this module holds the
dialogue: which campaign a reply answers, what to ask next, where each answer may be shown.

- A form keyword selects its form among the open campaigns ("到" → theme day even while dues are open);
  without one, the reply goes to the one open campaign it fits, else the bot asks which (numbered).
- Step by step: one session per conversation and sender (the pipeline holds that lock), expiring 30
  minutes after the last reply. A reply meant for another open form, or a proxy answer, is handled on
  the side and the question asked again; one that starts another dialogue replaces this one.
- Private forms (money): amounts, bases and money examples go to the 1:1 chat only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.context import HandlerContext
from bot.db.campaigns import (
    UNKNOWN,
    answered_campaign_ids,
    current_revision,
    in_audience,
    last_values,
    open_campaigns_with_answers,
    save_response,
)
from bot.db.members import has_role, members_of, roster_names
from bot.db.tables import Campaign, Member, Org, Response
from bot.domain.dues import DuesCategory, compute_dues, format_yuan, is_large_payment
from bot.forms.oneline import is_bare_confirmation, match_form, parse_one_line, strip_leading
from bot.forms.render import form_example, money_of, namesake, numbered, sentence, summarize
from bot.forms.results import Ambiguous, Invalid, ParseContext, Parsed, RosterName
from bot.forms.session import (
    FormSession,
    FormSessionStore,
    answers_another_form,
    fits_strongly,
    is_cancel,
    is_same_as_before,
    may_be_proxy,
    partial_answer,
    pick_number,
    same_as_before,
    split_proxy,
    step_result,
)
from bot.forms.spec import FieldType, FormSpec
from bot.routing import Router

router = Router("forms")

PROXY_ROLES = ("书记", "副书记", "组织委员", "党小组长")
BRANCH_PROXY_ROLES = ("书记", "副书记", "组织委员")  # the whole branch; 党小组长: their Party group only
NOT_UNDERSTOOD = "没有看懂这条消息，可以回复例如：到、请假 出差、已交；发送“帮助”查看可用命令。"
NOTHING_OPEN = "目前没有需要您填报的内容（查看已登记的记录可发送“我的”）。"

Pair = tuple[Campaign, FormSpec]
_ROSTER_FIELDS = (FieldType.ATTENDANCE, FieldType.MEMBERS)  # parsed against the branch roster


@dataclass
class Reads:
    """What one reply has read already (the same transaction, so still true): saves repeated queries."""

    rosters: dict[int, list[RosterName]] = field(default_factory=dict)  # org id → its roster
    answers: dict[tuple[int, int], Response | None] = field(default_factory=dict)  # (member, campaign) → answer


@dataclass
class Turn:
    """One reply being answered: who types, for whom, in which chat."""

    ctx: HandlerContext
    member: Member  # whose answer
    actor: Member  # who is typing
    store: FormSessionStore

    @property
    def proxy(self) -> bool:
        return self.member.id != self.actor.id

    read: Reads = field(default_factory=Reads)

    def fresh(self) -> Turn:
        """The same sender, answering for themselves again (after a proxy session)."""
        return Turn(self.ctx, self.actor, self.actor, self.store, self.read)

    async def roster(self, org_id: int) -> list[RosterName]:
        if org_id not in self.read.rosters:
            rows = await roster_names(self.ctx.session, org_id)
            self.read.rosters[org_id] = [RosterName(i, n) for i, n in rows]
        return self.read.rosters[org_id]

    async def split_proxy(self, text: str) -> tuple[str, str] | None:
        """``代 张三 …`` → (name, rest) against the sender's branch roster (read only for such texts)."""
        if not may_be_proxy(text):
            return None
        return split_proxy(text, [r.name for r in await self.roster(self.actor.org_id)])


async def _always(_: HandlerContext) -> bool:
    return True


@router.reply(_always)
async def handle_reply(ctx: HandlerContext) -> None:
    assert ctx.member is not None
    turn = Turn(ctx, ctx.member, ctx.member, FormSessionStore(ctx.services.kv, ctx.after_commit, ctx.kv_read))
    text = strip_leading(ctx.text)
    state = await turn.store.load(ctx.msg)
    if state is not None and state.expired(ctx.now):
        await turn.store.clear(ctx.msg)
        if not is_cancel(text) and not await _starts_anew(turn, text):
            await _expired(turn, state)
            return
        state = None
    if is_cancel(text):
        await turn.store.clear(ctx.msg)
        ctx.reply("已取消本次填报，没有保存任何内容。" if state else "当前没有进行中的填报，无需取消。")
        return
    if state is None:
        await _fresh(turn, text)
    else:
        await _continue(turn, state, text)


# --- starting ------------------------------------------------------------------------------------


async def _fresh(turn: Turn, text: str) -> None:
    """A message outside any dialogue: maybe a proxy answer, then an answer to an open form."""
    proxy = await turn.split_proxy(text)
    if proxy is not None:
        name, rest = proxy
        target = await _proxy_target(turn, name, rest)
        if target is None:
            return
        turn.member = target
        text = rest
    await _start(turn, text)


async def _start(turn: Turn, text: str) -> None:
    ctx = turn.ctx
    pairs = await _open_for(turn)
    pctx = await _parse_context(turn, [f for _, f in pairs])
    if is_same_as_before(text):
        await _start_same(turn, pairs, pctx)
        return
    open_forms = {f.key: f for _, f in pairs}
    matched = match_form(text, open_forms, pctx) if open_forms else None
    if matched is None and (closed := match_form(text, ctx.services.forms, await _parse_context(turn))) is not None:
        _not_open(turn, closed[0], text)
        return
    if matched is not None:
        form, rest = matched
        mine = [p for p in pairs if p[1].key == form.key]
        pending = await _unanswered(turn, mine)
        if len(pending) > 1:
            await _ask_which(turn, pending, text)
            return
        await _answer(turn, form, (pending or mine)[0][0], rest, pctx, keyword_text=text)
        return
    pending = await _unanswered(turn, pairs)
    top = _best_fits(pending, text, pctx)
    done = [] if top else _best_fits([p for p in pairs if p not in pending], text, pctx)
    if done:
        # A bare value is never taken as a correction ("1" may answer someone else): ask for the keyword.
        campaign, form = done[0]
        example = _example(turn, form, confirm=False)
        ctx.reply(f"您已登记过“{campaign.title}”，如需修改请带上关键词重新回复，例如：{example}。")
    elif not top:
        _not_understood(turn, pending)
    elif len(top) > 1:
        await _ask_which(turn, top, text)
    else:
        campaign, form = top[0]
        await _answer(turn, form, campaign, text, pctx)


def _best_fits(pairs: list[Pair], text: str, pctx: ParseContext) -> list[Pair]:
    """The campaigns the reply fits strongly (in their order); empty if none does."""
    return [(c, f) for c, f in pairs if fits_strongly(f, text, pctx)]


def _not_open(turn: Turn, form: FormSpec, text: str) -> None:
    if form.roles and not has_role(turn.member, *form.roles):
        turn.ctx.reply(
            f"“{form.name}”由{'、'.join(form.roles)}填报，您无需填报（查看自己的记录可发送“我的”）。"
        )
    elif text.startswith("请假"):
        turn.ctx.reply(
            f"目前没有需要您填报的“{form.name}”，如需请一段时间的假请回复，例如：请假 至 12月20日 出差。"
        )
    else:
        turn.ctx.reply(f"目前没有需要您填报的“{form.name}”（查看已登记的记录可发送“我的”）。")


def _not_understood(turn: Turn, pending: list[Pair]) -> None:
    if not pending:
        turn.ctx.reply(NOT_UNDERSTOOD)
        return
    campaign, form = pending[0]
    example = _example(turn, form)
    if len(pending) == 1:
        turn.ctx.reply(f"没有看懂这条消息，您有一项待填报“{campaign.title}”，请回复例如：{example}。")
    else:
        titles = "、".join(f"“{c.title}”" for c, _ in pending)
        turn.ctx.reply(f"没有看懂这条消息，您有{len(pending)}项待填报{titles}，请回复例如：{example}。")


async def _ask_which(turn: Turn, pairs: list[Pair], text: str) -> None:
    ctx = turn.ctx
    state = FormSession(
        member_id=turn.member.id, entered_by=turn.actor.id, choose=[c.id for c, _ in pairs], original=text
    )
    await turn.store.save(ctx.msg, state, ctx.now)
    who = f"{turn.member.name}有" if turn.proxy else "您有"
    options = numbered([f"{c.title}（例如：{_example(turn, f)}）" for c, f in pairs])
    ctx.reply(f"{who}{len(pairs)}项待填报，这条回复是哪一项？请回复序号：\n{options}\n回复“取消”放弃。")


async def _start_same(turn: Turn, pairs: list[Pair], pctx: ParseContext) -> None:
    """`同上` without keyword: the open, unanswered campaigns of forms the member answered before."""
    session = turn.ctx.session
    pending = [
        (c, f) for c, f in await _unanswered(turn, pairs) if await last_values(session, turn.member, f.key)
    ]
    if not pairs:
        turn.ctx.reply(NOTHING_OPEN)
    elif not pending:
        turn.ctx.reply(f"没有找到可以照抄的上次记录，请直接回复内容，例如：{_example(turn, pairs[0][1])}。")
    elif len(pending) > 1:
        await _ask_which(turn, pending, "同上")
    else:
        campaign, form = pending[0]
        await _answer(turn, form, campaign, "同上", pctx)


# --- one answer --------------------------------------------------------------------------------


async def _answer(
    turn: Turn, form: FormSpec, campaign: Campaign, text: str, pctx: ParseContext, keyword_text: str = ""
) -> None:
    """Answer ``campaign`` with ``text`` (the reply after its keyword): save it, or begin asking."""
    ctx = turn.ctx
    if form.roles and not has_role(turn.member, *form.roles) and not turn.proxy:
        ctx.reply(f"“{form.name}”由{'、'.join(form.roles)}填报，您无需填报（如需代为登记请联系支部书记）。")
        return
    if not in_audience(campaign, turn.member):
        ctx.reply(
            f"“{campaign.title}”不需要{'他' if turn.proxy else '您'}填报（查看已登记的记录可发送“我的”）。"
        )
        return
    if is_same_as_before(text):
        await _same_as_before(turn, form, campaign, {})
        return
    expected = _expected_dues(ctx, turn.member) if form.key == "dues" else None
    if expected is not None and is_bare_confirmation(text or keyword_text):
        await _save(turn, form, campaign, {form.fields[0].key: expected})
        return
    result = parse_one_line(form, text, pctx) if text and not is_bare_confirmation(text) else None
    if result is not None and result.complete:
        await _save(turn, form, campaign, dict(result.values))
        return
    state = FormSession(form.key, campaign.id, turn.member.id, turn.actor.id)
    state.base_revision = await _revision(turn, campaign)
    error: str | None = None
    if result is None:
        state.pending = list(form.field_keys)
        partial = partial_answer(form, keyword_text, pctx)
        if partial is not None:  # "请假" alone: ask for the reason
            state.prefix, error = keyword_text, partial.message
    else:
        state.values = dict(result.values)
        state.pending = list(dict.fromkeys([*result.errors, *result.missing]))
        first = state.pending[0]
        error = result.errors.get(first)
        if first in result.ambiguous:
            state.options, state.raw = result.ambiguous[first], result.raw.get(first, "")
    await turn.store.save(ctx.msg, state, ctx.now)
    intro = (
        f"开始填报“{campaign.title}”，共{len(state.pending)}项，可随时回复“取消”。\n"
        if len(state.pending) > 1 and not state.values
        else ""
    )
    # The expected amount goes with a question, not with a rejection (one sentence).
    hint = _dues_hint(turn, expected) if form.key == "dues" and error is None else ""
    _ask(turn, form, intro + await _question(turn, form, state, error), hint)


async def _same_as_before(turn: Turn, form: FormSpec, campaign: Campaign, typed: dict[str, object]) -> None:
    ctx = turn.ctx
    last = await last_values(ctx.session, turn.member, form.key)
    if not last:
        ctx.reply(f"没有找到上一次的“{form.name}”记录，请直接回复内容，例如：{_example(turn, form)}。")
        return
    values, pending = same_as_before(form, dict(last), dict(typed))
    if not pending:
        await turn.store.clear(ctx.msg)
        await _save(turn, form, campaign, values)
        return
    state = FormSession(form.key, campaign.id, turn.member.id, turn.actor.id, values, pending)
    state.base_revision = await _revision(turn, campaign)
    await turn.store.save(ctx.msg, state, ctx.now)
    _ask(turn, form, "其余各项已按上次填写，" + await _question(turn, form, state))


# --- continuing a dialogue -----------------------------------------------------------------------


async def _continue(turn: Turn, state: FormSession, text: str) -> None:
    ctx = turn.ctx
    member = await ctx.session.get(Member, state.member_id)
    if member is not None:
        turn.member = member
    if state.proxy_choices:
        await _resolve_proxy_choice(turn, state, text)
        return
    if state.choose:
        await _resolve_choice(turn, state, text)
        return
    form = ctx.services.forms.get(state.form_key)
    campaign = await ctx.session.get(Campaign, state.campaign_id)
    if form is None or campaign is None or not state.pending:
        await turn.store.clear(ctx.msg)
        await _fresh(turn.fresh(), text)
        return
    if await _revision(turn, campaign) != state.base_revision:
        # Answered meanwhile in another chat (group vs 1:1): this dialogue is stale.
        await turn.store.clear(ctx.msg)
        await _fresh(turn.fresh(), text)
        return
    pctx = await _parse_context(turn)
    if is_same_as_before(text):
        await _same_as_before(turn, form, campaign, state.values)
        return
    spec = form.field(state.pending[0])
    outcome = step_result(spec, text, state, pctx)
    if form.key == "dues" and not isinstance(outcome, Parsed) and is_bare_confirmation(text):
        expected = _expected_dues(ctx, turn.member)
        outcome = Parsed(expected) if expected is not None else outcome
    if await _aside(turn, state, form, campaign, text, pctx, answered=isinstance(outcome, Parsed)):
        return
    if isinstance(outcome, Invalid):
        await turn.store.save(ctx.msg, state, ctx.now)
        _ask(turn, form, sentence(outcome.message))
        return
    if isinstance(outcome, Ambiguous):
        state.options = outcome.options
        await turn.store.save(ctx.msg, state, ctx.now)
        _ask(turn, form, await _question(turn, form, state, outcome.message))
        return
    state.advance(outcome.value)
    if state.pending:
        await turn.store.save(ctx.msg, state, ctx.now)
        _ask(turn, form, await _question(turn, form, state))
        return
    await turn.store.clear(ctx.msg)
    await _save(turn, form, campaign, state.values)


async def _aside(
    turn: Turn,
    state: FormSession,
    form: FormSpec,
    campaign: Campaign,
    text: str,
    pctx: ParseContext,
    answered: bool,
) -> bool:
    """A reply meant for something else than the question: another form, or a proxy answer.

    Handled as a fresh message. If that completes at once, the question is asked again; if it starts
    its own dialogue, the unfinished one is dropped (and the member told). When the reply is also a
    valid answer to the question (``answered``; text questions accept almost anything), only a proxy
    answer or a complete answer to another form beyond its bare keyword counts.
    """
    ctx = turn.ctx
    if not await _meant_elsewhere(turn, form, text, pctx, answered):
        return False
    await turn.store.clear(ctx.msg)
    await _fresh(turn.fresh(), text)
    if await turn.store.load(ctx.msg) is not None:
        ctx.reply(f"未完成的“{campaign.title}”已放弃，没有保存。")
        return True
    await turn.store.save(ctx.msg, state, ctx.now)
    _ask(turn, form, f"继续填报“{campaign.title}”：" + await _question(turn, form, state))
    return True


async def _meant_elsewhere(turn: Turn, form: FormSpec, text: str, pctx: ParseContext, answered: bool) -> bool:
    if await turn.split_proxy(text) is not None:
        return True
    others = {f.key: f for _, f in await _open_for(turn.fresh()) if f.key != form.key}
    return answers_another_form(text, others, pctx, answered)


async def _resolve_choice(turn: Turn, state: FormSession, text: str) -> None:
    """The answer to "which one?": a number (or a form's name) picks the campaign."""
    ctx = turn.ctx
    campaigns = [await ctx.session.get(Campaign, cid) for cid in state.choose]
    forms = ctx.services.forms
    pairs = [(c, forms[c.form_key]) for c in campaigns if c is not None and c.form_key in forms]
    index = pick_number(text, len(pairs))
    if index is None:
        index = next((i for i, (c, f) in enumerate(pairs) if text in (f.name, c.title, *f.keywords)), None)
    if index is None:
        await _restart_or_reask(turn, state, text, len(pairs))
        return
    await turn.store.clear(ctx.msg)
    campaign, form = pairs[index]
    pctx = await _parse_context(turn)
    matched = match_form(state.original, {form.key: form}, pctx)
    rest = matched[1] if matched is not None else state.original
    await _answer(turn, form, campaign, rest, pctx, keyword_text=state.original if matched else "")


async def _starts_anew(turn: Turn, text: str) -> bool:
    """A recognisable new start: a form keyword, a proxy answer or `同上`."""
    if is_same_as_before(text):
        return True
    if await turn.split_proxy(text) is not None:
        return True
    return match_form(text, turn.ctx.services.forms, await _parse_context(turn.fresh())) is not None


async def _expired(turn: Turn, state: FormSession) -> None:
    ctx = turn.ctx
    form = ctx.services.forms.get(state.form_key)
    campaign = await ctx.session.get(Campaign, state.campaign_id) if state.campaign_id else None
    started = state.started()
    minutes = int((ctx.now - started).total_seconds() // 60) if started else 30
    what = f"“{campaign.title}”的填报" if campaign else "上一次的填报"
    example = _example(turn, form) if form else "已交"
    ctx.reply(f"{what}（{minutes}分钟前开始）已超过30分钟未回复，没有保存，请重新回复，例如：{example}。")


# --- proxy answers -------------------------------------------------------------------------------


async def _proxy_target(turn: Turn, name: str, rest: str) -> Member | None:
    """The member a `代 张三 …` answer is for, or ``None`` after a polite refusal or a question."""
    ctx, actor = turn.ctx, turn.actor
    if not has_role(actor, *PROXY_ROLES):
        ctx.reply(
            "抱歉，只有支部书记、副书记、组织委员或党小组长可以代他人登记，您本人的情况请直接回复，例如：已交。"
        )
        return None
    branch = await members_of(ctx.session, [actor.org_id])
    wide = has_role(actor, *BRANCH_PROXY_ROLES)
    scope = [m for m in branch if wide or (actor.group_id is not None and m.group_id == actor.group_id)]
    example = next((m.name for m in scope if m.id != actor.id), name)
    matches = [m for m in branch if m.name == name]
    if not matches:
        ctx.reply(f"本支部名册中没有“{name}”，请核对姓名，例如：代 {example} 已交。")
        return None
    matches = [m for m in matches if m in scope]
    if not matches:
        ctx.reply(f"{name}不在您的党小组，党小组长只能代本小组党员登记，例如：代 {example} 已交。")
        return None
    if not rest:
        ctx.reply(f"请写明要为{name}登记的内容，例如：代 {name} 已交。")
        return None
    if len(matches) > 1:
        state = FormSession(
            member_id=actor.id, entered_by=actor.id, proxy_choices=[m.id for m in matches], original=rest
        )
        await turn.store.save(ctx.msg, state, ctx.now)
        labels = numbered(await _namesakes(turn, matches))
        ctx.reply(f"本支部有{len(matches)}位“{name}”，请回复序号选择代谁登记：\n{labels}\n回复“取消”放弃。")
        return None
    return matches[0]


async def _restart_or_reask(turn: Turn, state: FormSession, text: str, options: int) -> None:
    """No option number: a message that starts something new replaces the question, else ask again."""
    ctx = turn.ctx
    if await _starts_anew(turn, text):
        await turn.store.clear(ctx.msg)
        await _fresh(turn.fresh(), text)
        return
    await turn.store.save(ctx.msg, state, ctx.now)
    ctx.reply(f"请回复序号1到{options}，例如：1（回复“取消”放弃）。")


async def _resolve_proxy_choice(turn: Turn, state: FormSession, text: str) -> None:
    ctx = turn.ctx
    index = pick_number(text, len(state.proxy_choices))
    if index is None:
        await _restart_or_reask(turn, state, text, len(state.proxy_choices))
        return
    await turn.store.clear(ctx.msg)
    target = await ctx.session.get(Member, state.proxy_choices[index])
    if target is None:
        ctx.reply("这位党员已不在名册中，请重新回复，例如：代 张三 已交。")
        return
    turn = Turn(ctx, target, turn.actor, turn.store, turn.read)
    await _start(turn, state.original)


# --- saving ------------------------------------------------------------------------------------


async def _save(turn: Turn, form: FormSpec, campaign: Campaign, values: dict[str, object]) -> None:
    ctx = turn.ctx
    amount = money_of(form, values)
    flag = _flag(ctx, turn.member, form, amount)
    key = (turn.member.id, campaign.id)
    saved = await save_response(
        ctx.session, campaign=campaign, member=turn.member, values=dict(values), entered_by=turn.actor,
        now=ctx.now, platform=ctx.msg.platform.value, amount_fen=amount, flag_note=flag,
        existing=turn.read.answers.get(key, UNKNOWN),
    )  # fmt: skip
    turn.read.answers[key] = saved.response
    await turn.store.clear(ctx.msg)
    who = f"为{turn.member.name}" if turn.proxy else ""
    verb = f"已{who}登记" if saved.created else f"已{who}更新（第{saved.response.revision}次提交，以此为准）"
    late = "（已过截止时间，记为逾期补交）" if saved.response.late else ""
    summary = summarize(form, values)
    detail = f"{verb}：{campaign.title} — {summary}{late}"
    if flag:
        detail += f"\n提示：{flag}，已标记请支部书记核对。"
    if form.private and ctx.in_group:
        ctx.reply(f"{verb}“{campaign.title}”{late}，详情已私信。")
        ctx.reply(detail, private=True)
    else:
        ctx.reply(detail, private=form.private)
    if turn.proxy:
        note = f"{turn.actor.name}已代您登记：{campaign.title} — {summary}{late}，如有出入请直接回复更正。"
        ctx.send_to_member(turn.member, note, "proxy")
        ctx.audit("proxy_answer", campaign_id=campaign.id, member_id=turn.member.id, form=form.key)


def _flag(ctx: HandlerContext, member: Member, form: FormSpec, amount: int | None) -> str:
    if form.key != "dues" or amount is None:
        return ""
    if is_large_payment(amount, ctx.services.dues_policy):
        return f"单次{format_yuan(amount)}元属大额党费（1000元以上），需单独登记并全额上缴"
    expected = _expected_dues(ctx, member)
    if expected is not None and amount != expected:
        return f"应交{format_yuan(expected)}元，实交{format_yuan(amount)}元"
    return ""


# --- asking ------------------------------------------------------------------------------------


def _ask(turn: Turn, form: FormSpec, text: str, personal: str = "") -> None:
    """Ask or re-ask; for private forms in a group only a pointer goes to the group, the rest 1:1."""
    ctx = turn.ctx
    if form.private and ctx.in_group:
        ctx.reply(f"“{form.name}”的填报提示已私信您，请按提示回复（金额只在私聊中显示）。")
        ctx.reply(personal + text, private=True)
    else:
        ctx.reply(personal + text, private=form.private)


async def _question(turn: Turn, form: FormSpec, state: FormSession, error: str | None = None) -> str:
    """The text asking for ``state.pending[0]``: the error or prompt, and numbered namesakes if any."""
    spec = form.field(state.pending[0])
    if state.options:
        members = [await turn.ctx.session.get(Member, int(o["member_id"])) for o in state.options]
        labels = await _namesakes(turn, [m for m in members if m is not None])
        return f"{error or spec.prompt}\n{numbered(labels)}\n请回复序号，例如：1。"
    return sentence(error or spec.prompt)


async def _namesakes(turn: Turn, members: list[Member]) -> list[str]:
    """Labels telling namesakes apart: the Party group, and the mobile's last digits 1:1 (in a group
    chat only where the Party groups do not tell them apart)."""
    session = turn.ctx.session
    names: dict[int, str] = {}
    for group_id in {m.group_id for m in members if m.group_id}:
        group = await session.get(Org, group_id)
        names[group_id] = group.name if group else ""
    groups = [names.get(m.group_id or 0, "") for m in members]
    mobiles = not turn.ctx.in_group or len(set(groups)) < len(groups)
    return [namesake(m.name, g, m.mobile if mobiles else None) for m, g in zip(members, groups, strict=True)]


def _example(turn: Turn, form: FormSpec, confirm: bool = True) -> str:
    """An example answer; no money figures for private forms in a group chat (there: "已交" for dues
    with a base on file, when ``confirm``)."""
    in_group = turn.ctx.in_group
    if confirm and form.key == "dues" and in_group and _expected_dues(turn.ctx, turn.member) is not None:
        return "已交"
    return form_example(form, numbers=not (form.private and in_group))


# --- lookups -----------------------------------------------------------------------------------


async def _parse_context(turn: Turn, forms: list[FormSpec] | None = None) -> ParseContext:
    """``forms``: the only forms this context will parse; the roster is read only if one of them has a
    field that names members (most replies, such as ``党费 50``, never need it)."""
    ctx = turn.ctx
    today = ctx.now.astimezone(ctx.services.tz).date()
    if forms is not None and not any(s.type in _ROSTER_FIELDS for f in forms for s in f.fields):
        return ParseContext(today=today)
    return ParseContext(today=today, roster=await turn.roster(turn.member.org_id))


async def _open_for(turn: Turn) -> list[Pair]:
    """Open campaigns (with a known form) the member is in the audience of, newest deadline first."""
    found = []
    for campaign, answer in await open_campaigns_with_answers(turn.ctx.session, turn.member, turn.ctx.now):
        turn.read.answers[(turn.member.id, campaign.id)] = answer
        form = turn.ctx.services.forms.get(campaign.form_key)
        if form is not None:
            found.append((campaign, form))
    return found


async def _unanswered(turn: Turn, pairs: list[Pair]) -> list[Pair]:
    known = turn.read.answers
    if all((turn.member.id, c.id) in known for c, _ in pairs):
        return [(c, f) for c, f in pairs if known[(turn.member.id, c.id)] is None]
    answered = await answered_campaign_ids(turn.ctx.session, turn.member.id, [c.id for c, _ in pairs])
    return [(c, f) for c, f in pairs if c.id not in answered]


async def _revision(turn: Turn, campaign: Campaign) -> int:
    return await current_revision(turn.ctx.session, campaign.id, turn.member.id)


def _expected_dues(ctx: HandlerContext, member: Member) -> int | None:
    """This month's dues from the member's base (or category); ``None`` when no base is on file."""
    if member.category not in DuesCategory._value2member_map_:
        return None
    category = DuesCategory(member.category)
    if category in (DuesCategory.IN_SERVICE, DuesCategory.RETIRED) and member.dues_base_fen is None:
        return None
    return compute_dues(member.dues_base_fen, category, ctx.services.dues_policy).amount_fen


def _dues_hint(turn: Turn, expected: int | None) -> str:
    if expected is None:
        return ""
    who = turn.member.name if turn.proxy else "您"
    return f"按登记的缴费基数，{who}每月应交党费{format_yuan(expected)}元，可直接回复“已交”确认。\n"
