"""Plain replies that answer open forms: `党费 50`, `已交`, `到`, `请假 出差`, `同上`, `取消`, `代 张三 党费 50`,
one-line or step by step. The parsing is in bot.forms; this module holds the dialogue."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.context import HandlerContext
from bot.db.campaigns import in_audience, last_values, open_campaigns_for, respondent_ids, save_response
from bot.db.members import has_role, is_secretary, members_of
from bot.db.tables import Campaign, Member
from bot.domain.dues import DuesCategory, compute_dues, format_yuan, is_large_payment
from bot.forms.fields import is_skip, parse_field
from bot.forms.oneline import is_bare_confirmation, match_form, parse_one_line, strip_leading
from bot.forms.render import form_example, money_of, summarize
from bot.forms.results import Ambiguous, Invalid, ParseContext, Parsed, RosterName
from bot.forms.session import FormSession, FormSessionStore
from bot.forms.spec import FormSpec
from bot.inbound import NOT_UNDERSTOOD
from bot.routing import Router

router = Router("forms")

CANCEL_WORDS = {"取消", "退出", "算了", "不填了", "cancel"}
SAME_AS_BEFORE = {"同上", "同上次", "跟上次一样", "和上次一样"}
PROXY_RE = re.compile(r"^代\s*(?P<name>[\u4e00-\u9fa5·]{2,5}?)\s+(?P<rest>.+)$")
PROXY_ROLES = ("书记", "副书记", "党小组长", "组织委员")


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


async def _always(_: HandlerContext) -> bool:
    return True


@router.reply(_always)
async def handle_reply(ctx: HandlerContext) -> None:
    assert ctx.member is not None
    turn = Turn(ctx, ctx.member, ctx.member, FormSessionStore(ctx.services.kv))
    text = strip_leading(ctx.text)
    if text.lower() in CANCEL_WORDS:
        await _cancel(turn)
        return
    state = await turn.store.load(ctx.msg)
    if state is not None:
        await _continue(turn, state, text)
        return
    proxy = PROXY_RE.match(text)
    if proxy:
        target = await _proxy_target(turn, proxy.group("name"))
        if target is None:
            return
        turn.member = target
        text = proxy.group("rest").strip()
    await _start(turn, text)


async def _cancel(turn: Turn) -> None:
    state = await turn.store.load(turn.ctx.msg)
    await turn.store.clear(turn.ctx.msg)
    turn.ctx.reply("已取消本次填报，没有保存任何内容。" if state else "当前没有进行中的填报。")


async def _proxy_target(turn: Turn, name: str) -> Member | None:
    ctx, actor = turn.ctx, turn.actor
    if not has_role(actor, *PROXY_ROLES):
        ctx.reply("抱歉，只有支部书记、副书记、组织委员或党小组长可以代他人登记。")
        return None
    branch = await members_of(ctx.session, [actor.org_id])
    matches = [m for m in branch if m.name == name]
    if not is_secretary(actor) and not has_role(actor, "组织委员"):
        matches = [m for m in matches if actor.group_id and m.group_id == actor.group_id]
    if len(matches) != 1:
        where = "本支部" if is_secretary(actor) else "本党小组"
        ctx.reply(f"{where}没有找到唯一的“{name}”，请核对姓名，例如：代 张三 党费 50。")
        return None
    return matches[0]


async def _parse_context(turn: Turn) -> ParseContext:
    ctx = turn.ctx
    roster = await members_of(ctx.session, [turn.member.org_id])
    return ParseContext(
        today=ctx.now.astimezone(ctx.services.tz).date(),
        roster=[RosterName(m.id, m.name) for m in roster],
    )


async def _open_for(turn: Turn, form_key: str | None = None) -> list[tuple[Campaign, FormSpec]]:
    found = []
    for campaign in await open_campaigns_for(turn.ctx.session, turn.member, turn.ctx.now):
        form = turn.ctx.services.forms.get(campaign.form_key)
        if form is not None and (form_key is None or form.key == form_key):
            found.append((campaign, form))
    return found


async def _unanswered(turn: Turn, pairs: list[tuple[Campaign, FormSpec]]) -> list[tuple[Campaign, FormSpec]]:
    return [(c, f) for c, f in pairs if turn.member.id not in await respondent_ids(turn.ctx.session, c.id)]


async def _start(turn: Turn, text: str) -> None:
    ctx = turn.ctx
    forms = ctx.services.forms
    pctx = await _parse_context(turn)
    same = text in SAME_AS_BEFORE
    matched = None if same else match_form(text, forms, pctx)
    if matched is not None:
        form, rest = matched
        pairs = await _open_for(turn, form.key)
        if not pairs:
            ctx.reply(f"目前没有进行中的“{form.name}”收集，无需填报。发送“我的”可查看已登记的记录。")
            return
        pending = await _unanswered(turn, pairs)
        campaign = (pending or pairs)[0][0]
        await _answer(turn, form, campaign, rest, pctx)
        return
    pairs = await _unanswered(turn, await _open_for(turn))
    if is_bare_confirmation(text):
        pairs = [(c, f) for c, f in pairs if f.key == "dues"] or pairs
    if not pairs:
        ctx.reply("目前没有需要您填报的内容。" if same or _looks_like_answer(text) else NOT_UNDERSTOOD)
        return
    if len(pairs) > 1:
        await _ask_which(turn, pairs, text)
        return
    campaign, form = pairs[0]
    if same:
        await _same_as_before(turn, form, campaign)
        return
    if not _fits(form, text, pctx):
        # Chatter that is no answer at all: point at the open task instead of starting a dialogue.
        ctx.reply(f"没有看懂这条消息。您有一项待填报：{campaign.title}，请回复例如：{form_example(form)}。")
        return
    await _answer(turn, form, campaign, text, pctx)


def _fits(form: FormSpec, text: str, pctx: ParseContext) -> bool:
    """Does the text read as (part of) an answer to this form?"""
    if is_bare_confirmation(text) or _looks_like_answer(text):
        return True
    result = parse_one_line(form, text, pctx)
    return bool(result.values) or any(k in result.ambiguous for k in result.errors)


def _looks_like_answer(text: str) -> bool:
    return bool(re.match(r"^[\d０-９一二三四五六七八九十百千万零两壹贰叁肆伍陆柒捌玖拾佰仟¥￥]", text)) or is_bare_confirmation(text)


async def _ask_which(turn: Turn, pairs: list[tuple[Campaign, FormSpec]], text: str) -> None:
    state = FormSession(member_id=turn.member.id, entered_by=turn.actor.id, choose=[c.id for c, _ in pairs], original=text)
    await turn.store.save(turn.ctx.msg, state)
    options = "\n".join(f"{i}. {c.title}（{f.name}，例如：{form_example(f)}）" for i, (c, f) in enumerate(pairs, 1))
    turn.ctx.reply(f"您有{len(pairs)}项待填报，这条回复是哪一项？请回复序号：\n{options}\n回复“取消”放弃。")


async def _same_as_before(turn: Turn, form: FormSpec, campaign: Campaign) -> None:
    values = await last_values(turn.ctx.session, turn.member, form.key)
    if not values:
        turn.ctx.reply(f"没有找到您上一次的“{form.name}”记录，请直接回复内容，例如：{form_example(form)}。")
        return
    await _save(turn, form, campaign, dict(values))


async def _answer(turn: Turn, form: FormSpec, campaign: Campaign, text: str, pctx: ParseContext) -> None:
    ctx = turn.ctx
    if form.roles and not has_role(turn.member, *form.roles) and not turn.proxy:
        ctx.reply(f"“{form.name}”由{'、'.join(form.roles)}填报。如需代为登记，请联系支部书记。")
        return
    if not in_audience(campaign, turn.member):
        ctx.reply(f"“{campaign.title}”不需要您填报。")
        return
    if text in SAME_AS_BEFORE:
        await _same_as_before(turn, form, campaign)
        return
    expected = _expected_dues(ctx, turn.member) if form.key == "dues" else None
    if form.key == "dues" and (not text or is_bare_confirmation(text)) and expected is not None:
        await _save(turn, form, campaign, {form.fields[0].key: expected})
        return
    result = parse_one_line(form, text, pctx) if text and not is_bare_confirmation(text) else None
    values = dict(result.values) if result else {}
    if result is not None and result.complete:
        await _save(turn, form, campaign, values)
        return
    pending = [k for k in form.field_keys if k not in values and (form.field(k).required or result is None)]
    if result is not None:
        pending = list(dict.fromkeys([*result.errors, *result.missing]))
    state = FormSession(form.key, campaign.id, turn.member.id, turn.actor.id, values, pending)
    if result is not None and pending and pending[0] in result.ambiguous:
        state.options = result.ambiguous[pending[0]]
    await turn.store.save(ctx.msg, state)
    first_error = result.errors.get(pending[0]) if result is not None and pending else None
    intro = f"开始填报“{campaign.title}”，共{len(pending)}项，可随时回复“取消”。\n" if len(pending) > 1 and not values else ""
    hint = _dues_hint(ctx, turn.member, expected) if form.key == "dues" else ""
    ctx.reply(intro + hint + (first_error or form.field(pending[0]).prompt), private=form.private)


def _expected_dues(ctx: HandlerContext, member: Member) -> int | None:
    category = DuesCategory(member.category) if member.category in DuesCategory._value2member_map_ else None
    if category is None:
        return None
    if category in (DuesCategory.IN_SERVICE, DuesCategory.RETIRED) and member.dues_base_fen is None:
        return None
    return compute_dues(member.dues_base_fen, category, ctx.services.dues_policy).amount_fen


def _dues_hint(ctx: HandlerContext, member: Member, expected: int | None) -> str:
    if expected is None:
        return ""
    return f"按登记的缴费基数，您每月应交党费{format_yuan(expected)}元，可直接回复“已交”确认。\n"


async def _continue(turn: Turn, state: FormSession, text: str) -> None:
    ctx = turn.ctx
    if state.choose:
        await _resolve_choice(turn, state, text)
        return
    turn.member = await ctx.session.get(Member, state.member_id) or turn.member
    form = ctx.services.forms.get(state.form_key)
    campaign = await ctx.session.get(Campaign, state.campaign_id)
    if form is None or campaign is None or not state.pending:
        await turn.store.clear(ctx.msg)
        ctx.reply("这次填报已失效，请重新回复，例如：党费 50。")
        return
    spec = form.field(state.pending[0])
    pctx = await _parse_context(turn)
    if not spec.required and is_skip(text):
        outcome: Parsed | Invalid | Ambiguous = Parsed(None)
    elif state.options and text.isdigit() and 1 <= int(text) <= len(state.options):
        chosen = state.options[int(text) - 1]
        outcome = Parsed([{"member_id": chosen["member_id"], "name": chosen["name"]}])
    else:
        outcome = parse_field(spec, text, pctx)
    if isinstance(outcome, Invalid):
        ctx.reply(outcome.message + " 回复“取消”可放弃。", private=form.private)
        return
    if isinstance(outcome, Ambiguous):
        state.options = outcome.options
        await turn.store.save(ctx.msg, state)
        ctx.reply(outcome.message)
        return
    state.values[spec.key] = outcome.value
    state.pending.pop(0)
    state.options = []
    if state.pending:
        await turn.store.save(ctx.msg, state)
        ctx.reply(form.field(state.pending[0]).prompt, private=form.private)
        return
    await turn.store.clear(ctx.msg)
    await _save(turn, form, campaign, state.values)


async def _resolve_choice(turn: Turn, state: FormSession, text: str) -> None:
    ctx = turn.ctx
    campaigns = [await ctx.session.get(Campaign, cid) for cid in state.choose]
    pairs = [(c, ctx.services.forms[c.form_key]) for c in campaigns if c is not None and c.form_key in ctx.services.forms]
    index = int(text) - 1 if text.isdigit() else next(
        (i for i, (c, f) in enumerate(pairs) if text in (f.name, c.title, *f.keywords)), -1
    )
    if not 0 <= index < len(pairs):
        ctx.reply(f"请回复序号 1–{len(pairs)}，或回复“取消”。")
        return
    await turn.store.clear(ctx.msg)
    campaign, form = pairs[index]
    await _answer(turn, form, campaign, state.original, await _parse_context(turn))


async def _save(turn: Turn, form: FormSpec, campaign: Campaign, values: dict[str, object]) -> None:
    ctx = turn.ctx
    amount = money_of(form, values)
    flag = _flag(ctx, turn.member, form, amount)
    saved = await save_response(
        ctx.session, campaign=campaign, member=turn.member, values=dict(values), entered_by=turn.actor,
        now=ctx.now, platform=ctx.msg.platform.value, amount_fen=amount, flag_note=flag,
    )
    await turn.store.clear(ctx.msg)
    who = f"为{turn.member.name}" if turn.proxy else ""
    verb = f"已{who}登记" if saved.created else f"已{who}更新（第{saved.response.revision}次修改）"
    late = "（已过截止时间，记为逾期补交）" if saved.response.late else ""
    detail = f"{verb}：{campaign.title} — {summarize(form, values)}{late}"
    if flag:
        detail += f"\n提示：{flag}，已标记请支部书记核对。"
    if form.private and ctx.in_group:
        ctx.reply(f"{verb}“{campaign.title}”，详情已私信。")
        ctx.reply(detail, private=True)
    else:
        ctx.reply(detail, private=form.private)
    if turn.proxy:
        ctx.send_to_member(turn.member, f"{turn.actor.name}已代您登记：{campaign.title} — {summarize(form, values)}", "proxy")
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
