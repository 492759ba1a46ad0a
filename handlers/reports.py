"""Report and management commands: /missing 未交, /remind 提醒, /export 导出, /compliance 达标, /bind 绑定,
/campaign 发起. Formatting and permissions only; figures come from bot.reports (shared with the dashboard).

Scopes (bot.reports.scope): members are refused politely (naming who can), secretaries see their own
branch, admins the whole tree or any branch by name. Money never goes into a group chat. /remind,
/export, /bind and /campaign are written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from bot.addressing import group_messages, org_chats
from bot.context import HandlerContext
from bot.db import orgs as org_repo
from bot.db.campaigns import open_campaign
from bot.db.members import members_of
from bot.db.tables import Campaign, ChatBinding, Member, Org
from bot.demo import bind_chat
from bot.downloads import download_link
from bot.forms.dates import parse_date
from bot.forms.render import form_example
from bot.forms.results import Invalid
from bot.forms.spec import FormSpec
from bot.message import MessageFormat
from bot.reports.compliance import BranchCompliance, ComplianceItem, branch_compliance, cadences_from
from bot.reports.ledgers import build_ledger, find_form
from bot.reports.periods import ReportPeriod, current_period, looks_like_period, parse_period
from bot.reports.scope import MEMBER_REFUSAL, ReportScope, ScopedOrgs, may_manage, scoped_branches
from bot.reports.stats import (
    RECENT_LIMIT,
    CampaignSummary,
    campaign_summaries,
    current_form,
    current_form_of,
    current_roll,
    latest_campaigns,
    recent_campaigns,
)
from bot.reports.xlsx import export_path, save_ledger
from bot.routing import Router, split_args
from schedules import actions
from schedules.audience import missing_members, within_caps
from schedules.models import ScheduleSpec
from schedules.plan import Occurrence, PlannedEvent
from schedules.timing import format_zh

router = Router("reports")

ALL_WORDS = {"全部", "所有", "所有支部", "全部支部"}
CSV_WORDS = {"csv", "CSV"}
MAX_NAMES = 30
DEFAULT_DEADLINE_DAYS = 7
DEADLINE_TIME = dt.time(18, 0)


# ---- shared chat helpers (also used by handlers.stats) ---------------------------------------------


@dataclass
class ReportArgs:
    """``统计 党费 2026-11 第一党支部`` → form, period, organisation name (any order)."""

    form: FormSpec | None = None
    period: ReportPeriod | None = None
    org_name: str = ""
    bad_period: str = ""
    flags: set[str] = field(default_factory=set)
    rest: list[str] = field(default_factory=list)


def parse_report_args(ctx: HandlerContext, flags: set[str] | None = None) -> ReportArgs:
    out = ReportArgs()
    for token in split_args(ctx.args):
        if flags and token in flags:
            out.flags.add(token)
        elif out.form is None and (form := find_form(ctx.services.forms, token)) is not None:
            out.form = form
        elif out.period is None and (period := parse_period(token)) is not None:
            out.period = period
        elif looks_like_period(token):
            out.bad_period = token
        elif not out.org_name:
            out.org_name = token
        else:
            out.rest.append(token)
    return out


def officer_scope(ctx: HandlerContext) -> ReportScope | None:
    """The sender's report scope, or ``None`` after the polite refusal for ordinary members."""
    assert ctx.member is not None  # the pipeline answers unknown senders before routing
    scope = ReportScope.for_member(ctx.member)
    if not scope.may_report:
        ctx.reply(MEMBER_REFUSAL)
        return None
    return scope


async def branches_for(ctx: HandlerContext, scope: ReportScope, args: ReportArgs) -> ScopedOrgs | None:
    """The branches the command covers, or ``None`` after a refusal / an error message."""
    if args.bad_period:
        ctx.reply(f"时间段“{args.bad_period}”看不懂，请写成例如：2026-11、2026年11月、2026-Q4 或 2026。")
        return None
    if args.rest:
        ctx.reply(f"没有看懂“{' '.join(args.rest)}”。例如：{ctx.command.aliases[0] if ctx.command else '统计'} 党费 2026-11 第一党支部")
        return None
    scoped = await scoped_branches(ctx.session, scope, args.org_name or None)
    if not scoped.ok:
        ctx.reply(scoped.refusal)
        return None
    if not scoped.branches:
        ctx.reply("该组织下没有支部。")
        return None
    return scoped


def local_today(ctx: HandlerContext) -> dt.date:
    return ctx.now.astimezone(ctx.services.tz).date()


async def default_form(ctx: HandlerContext, org_ids: list[int]) -> FormSpec:
    return _form_or_default(ctx, await current_form(ctx.session, org_ids, ctx.now))


def _form_or_default(ctx: HandlerContext, key: str | None) -> FormSpec:
    return ctx.services.forms.get(key or "dues") or next(iter(ctx.services.forms.values()))


async def form_and_campaigns(ctx: HandlerContext, org_ids: list[int], args: ReportArgs) -> tuple[FormSpec, list[Campaign]]:
    """The form asked for (else the one being collected now) and each branch's latest campaign of it.

    A plain ``未交`` / ``统计`` for one branch (the secretary's everyday case) reads that branch's recent
    campaigns once and picks both from them."""
    if len(org_ids) == 1 and args.form is None and args.period is None:
        recent = await recent_campaigns(ctx.session, org_ids[0], ctx.now)
        complete = len(recent) < RECENT_LIMIT  # every campaign of the branch is in `recent`
        key = current_form_of(recent, ctx.now)
        if key is not None or complete:
            form = _form_or_default(ctx, key)
            latest = next((c for c in recent if c.form_key == form.key), None)
            if latest is not None or complete:
                return form, [latest] if latest is not None else []
        # Else the answer may lie beyond the recent ones: the general queries below.
    form = args.form or await default_form(ctx, org_ids)
    return form, await latest_campaigns(ctx.session, org_ids, form.key, ctx.now, args.period)


def names_text(names: list[str], limit: int = MAX_NAMES) -> str:
    shown = "、".join(names[:limit])
    return shown + (f"等{len(names)}人" if len(names) > limit else "")


@dataclass(frozen=True, slots=True)
class OfficerRequest:
    scope: ReportScope
    args: ReportArgs
    scoped: ScopedOrgs


async def officer_request(ctx: HandlerContext, flags: set[str] | None = None) -> OfficerRequest | None:
    """Scope, arguments and branches of a secretary/admin command, or ``None`` after a polite answer."""
    scope = officer_scope(ctx)
    if scope is None:
        return None
    args = parse_report_args(ctx, flags=flags)
    scoped = await branches_for(ctx, scope, args)
    return None if scoped is None else OfficerRequest(scope, args, scoped)


# ---- /missing ------------------------------------------------------------------------------------


@router.command("missing", "未交", "未填报", help="查看还有谁没有填报，例如：未交 党费（管理员可加支部名称）", audience="secretary")
async def missing(ctx: HandlerContext) -> None:
    request = await officer_request(ctx)
    if request is None:
        return
    args, scoped = request.args, request.scoped
    org_ids = [b.id for b in scoped.branches]
    if len(org_ids) == 1 and args.form is None and args.period is None:
        # A secretary's everyday 未交: the collection and its roll in one query.
        default = _form_or_default(ctx, None)
        found = await current_roll(ctx.session, org_ids[0], ctx.now, local_today(ctx), default.key)
        if found is None:
            ctx.reply(f"暂无“{default.name}”的收集记录。可以发送“发起 {default.name}”开始一次收集。")
            return
        campaign, roll = found
        c = roll.counts
        ctx.reply(roll_text(CampaignSummary(
            campaign, scoped.branches[0].name, c.total, c.answered, c.amount_fen, c.late, c.flagged,
            roll.missing, roll.on_leave,
        )))  # fmt: skip
        return
    form, campaigns = await form_and_campaigns(ctx, org_ids, args)
    if not campaigns:
        ctx.reply(f"暂无“{form.name}”的收集记录。可以发送“发起 {form.name}”开始一次收集。")
        return
    names = {b.id: b.name for b in scoped.branches}
    summaries = await campaign_summaries(ctx.session, campaigns, local_today(ctx), with_names=True, org_names=names)
    if len(summaries) == 1:
        ctx.reply(roll_text(summaries[0]))
        return
    behind = [s for s in summaries if s.missing]
    lines = [f"【{form.name}】各支部未填报名单（{len(behind)}/{len(summaries)}个支部未完成）"]
    for s in sorted(behind, key=lambda x: (x.rate, x.org_name)):
        lines.append(f"{s.org_name}（{len(s.missing)}/{s.total}）：{names_text(s.missing, 10)}")
    if not behind:
        lines.append("全部支部均已完成 ✔")
    ctx.reply("\n".join(lines))


def roll_text(s: CampaignSummary) -> str:
    """One branch's 未交 answer: who has not answered, who is on leave, the deadline."""
    if not s.missing:
        lines = [f"【{s.campaign.title}】{s.org_name}已全部填报 ✔（{s.answered}/{s.total}）"]
    else:
        lines = [f"【{s.campaign.title}】{s.org_name}尚未填报 {len(s.missing)}/{s.total} 人：{names_text(s.missing)}"]
    if s.on_leave:
        lines.append("请假中（不计入）：" + names_text(s.on_leave))
    if s.missing:
        lines.append(f"截止时间：{format_zh(s.campaign.deadline_at)}。发送“提醒”可以提醒他们。")
    return "\n".join(lines)


# ---- /remind ------------------------------------------------------------------------------------


def _in_quiet_hours(ctx: HandlerContext) -> tuple[bool, str, str]:
    settings = ctx.services.settings.nudges
    start = dt.time.fromisoformat(settings.quiet_start)
    end = dt.time.fromisoformat(settings.quiet_end)
    now = ctx.now.astimezone(ctx.services.tz).time()
    quiet = (now >= start or now < end) if start > end else (start <= now < end)
    return quiet, settings.quiet_start, settings.quiet_end


def _spec_for(ctx: HandlerContext, campaign: Campaign) -> ScheduleSpec:
    """The campaign's schedule, or a stand-in for an ad-hoc campaign (same audience, title, form)."""
    for spec in ctx.services.schedules:
        if spec.key == campaign.schedule_key:
            return spec
    audience = campaign.audience or {}
    base = ScheduleSpec.model_validate(
        {
            "key": "adhoc",
            "form": "dues",
            "title": "临时收集",
            "purpose": "请尽快填报。",
            "period": "month",
            "open": {"kind": "nth_workday"},
            "deadline": {"kind": "last_workday"},
            "audience": {"roles": list(audience.get("roles") or []), "categories": list(audience.get("categories") or [])},
        }
    )
    return base.model_copy(update={"form": campaign.form_key, "title": campaign.title})


@dataclass
class RemindOutcome:
    org: Org
    campaign: Campaign
    nudged: list[Member]
    capped: list[Member]
    in_group: bool


async def remind_campaign(ctx: HandlerContext, campaign: Campaign) -> RemindOutcome:
    """Nudge the missing members of one campaign now, through the scheduler's own remind action
    (batched group message or 1:1, per-day/per-week caps, nudge_log rows)."""
    services = ctx.services
    org = await org_repo.get_org(ctx.session, campaign.org_id)
    local_now = ctx.now.astimezone(services.tz)
    caps = services.settings.nudges
    missing_now = await missing_members(ctx.session, campaign, local_now.date())
    allowed = await within_caps(ctx.session, missing_now, local_now, caps.max_per_day, caps.max_per_week)
    spec = _spec_for(ctx, campaign)
    occ = Occurrence(
        schedule_key=spec.key, period_label=campaign.period, open_at=campaign.opened_at,
        deadline_at=campaign.deadline_at, events=(), title=campaign.title,
    )  # fmt: skip
    event = PlannedEvent("remind", ctx.now, note="manual", offset="manual")
    await actions.remind(actions.ActionContext(services, ctx.session, spec, occ, event, ctx.now), campaign, org)
    targeted = bool(spec.audience.roles or spec.audience.categories)
    in_group = not targeted and bool(await org_chats(ctx.session, org.id, services.enabled_platforms))
    capped = [m for m in missing_now if m not in allowed]
    return RemindOutcome(org, campaign, allowed, capped, in_group)


@router.command("remind", "提醒", help="立即提醒未填报的同志（受每日、每周提醒次数上限约束）", audience="secretary")
async def remind(ctx: HandlerContext) -> None:
    scope = officer_scope(ctx)
    if scope is None:
        return
    args = parse_report_args(ctx, flags=ALL_WORDS)
    if scope.is_admin and not args.org_name and not args.flags:
        ctx.reply("请指定要提醒的支部，例如：提醒 第一党支部；如需提醒所有支部，请发送：提醒 全部")
        return
    scoped = await branches_for(ctx, scope, args)
    if scoped is None:
        return
    quiet, start, end = _in_quiet_hours(ctx)
    if quiet:
        ctx.reply(f"现在是休息时间（{start}至次日{end}），为避免打扰，提醒未发送。请在{end}以后再发送“提醒”。")
        return
    org_ids = [b.id for b in scoped.branches]
    form, campaigns = await form_and_campaigns(ctx, org_ids, args)
    if not campaigns:
        ctx.reply(f"暂无“{form.name}”的收集记录，无需提醒。")
        return
    outcomes = [await remind_campaign(ctx, c) for c in campaigns]
    ctx.audit(
        "remind",
        form=form.key,
        campaign_ids=[o.campaign.id for o in outcomes],
        nudged=[m.id for o in outcomes for m in o.nudged],
        capped=[m.id for o in outcomes for m in o.capped],
    )
    caps = ctx.services.settings.nudges
    lines = []
    for o in outcomes:
        head = f"【{o.campaign.title}】{o.org.name}"
        if not o.nudged and not o.capped:
            lines.append(f"{head}：全部已填报（或请假中），无需提醒 ✔")
            continue
        if o.nudged:
            how = "已在本支部群内@提醒" if o.in_group else "已逐一私信提醒"
            lines.append(f"{head}：{how} {len(o.nudged)} 人：{names_text([m.name for m in o.nudged])}")
        if o.capped:
            lines.append(
                f"{head}：{names_text([m.name for m in o.capped])} 今日或本周已提醒过多次"
                f"（每天最多{caps.max_per_day}次、每周最多{caps.max_per_week}次），本次未再提醒。"
            )
    ctx.reply("\n".join(lines))


# ---- /export ------------------------------------------------------------------------------------


def _default_period(form: FormSpec, today: dt.date) -> ReportPeriod:
    return current_period("month" if form.key == "work_log" else "year", today)


@router.command("export", "导出", "台账", help="导出台账（Excel），例如：导出 党费 2026；导出 三会一课 2026-11", audience="secretary")
async def export(ctx: HandlerContext) -> None:
    request = await officer_request(ctx, CSV_WORDS)
    if request is None:
        return
    args, scoped = request.args, request.scoped
    form = args.form or ctx.services.forms["dues"]
    period = args.period or _default_period(form, local_today(ctx))
    scope_name = scoped.named.name if scoped.named is not None else "全部支部"
    ledger = await build_ledger(
        ctx.session, form, period, scoped.branches, now=ctx.now, tz=ctx.services.tz, scope_name=scope_name,
        policy=ctx.services.dues_policy, include_private=True,
    )  # fmt: skip
    suffix = ".csv" if args.flags & CSV_WORDS else ".xlsx"
    hint = f"org{scoped.named.id}" if scoped.named is not None else "all"
    settings = ctx.services.settings
    path = await save_ledger(ledger, export_path(settings.data_dir, ledger, hint, suffix),
                             keep_days=settings.reports.keep_export_days)
    file_name = f"{ledger.display_name}{suffix}"
    ctx.reply(
        f"{ledger.display_name}，请查收。", private=True, fmt=MessageFormat.FILE, file_path=str(path),
        file_name=file_name, title=ledger.display_name,
    )  # fmt: skip
    rows = sum(len(s.rows) for s in ledger.sheets if s.branch and not s.name.endswith("个人合计"))
    link = await download_link(ctx.services, path)
    ctx.reply(
        f"已生成“{ledger.display_name}”（{len(ledger.sheets)}个工作表，{rows}行），文件已私信发送给您。\n保存位置：{path}"
        + (f"\n如收不到文件，可用此链接下载（24小时内有效，请勿转发）：{link}" if link else ""),
        private=True,
    )
    if ctx.in_group:
        ctx.reply("台账已生成并私信发送给您（台账含个人信息，不在群内发送）。")
    ctx.audit(
        "export", form=form.key, period=period.label, orgs=[b.id for b in scoped.branches], path=str(path),
    )  # fmt: skip


# ---- /compliance --------------------------------------------------------------------------------


def _item_line(item: ComplianceItem, with_names: bool) -> str:
    mark = "✔" if item.ok else "✘"
    line = f"{mark} {item.label}：{item.detail}"
    if item.people and with_names and (not item.ok or item.key == "dues"):
        prefix = "未交" if item.key == "dues" else ""
        line += f"（{prefix}{names_text(item.people, 15)}）"
    return line


def _detail(result: BranchCompliance, with_names: bool) -> str:
    lines = [f"【{result.period.title} 组织生活达标情况】{result.org.name}"]
    lines += [_item_line(i, with_names) for i in result.items]
    pending = sum(1 for i in result.items if not i.ok and i.pending)
    foot = f"达标 {result.passed}/{len(result.items)} 项"
    if pending:
        foot += f"，其中{pending}项本期尚未结束"
    lines.append(foot)
    if not with_names and any(i.people and not i.ok for i in result.items):
        lines.append("涉及个人的名单请私聊我发送“达标”查看。")
    return "\n".join(lines)


@router.command("compliance", "达标", "达标情况", help="查看“三会一课”、主题党日、党费等是否达标，例如：达标 2026-11", audience="secretary")
async def compliance(ctx: HandlerContext) -> None:
    request = await officer_request(ctx)
    if request is None:
        return
    args, scoped = request.args, request.scoped
    today = local_today(ctx)
    period = args.period or current_period("month", today)
    if period.first > today:
        ctx.reply(f"{period.title}还没有开始，请查询当前或以前的时间段，例如：达标 {today.year}-{today.month:02d}")
        return
    cadences = cadences_from((s.key, s.period) for s in ctx.services.schedules)
    results = await branch_compliance(ctx.session, scoped.branches, period, today, cadences)
    if len(results) == 1:
        ctx.reply(_detail(results[0], with_names=not ctx.in_group))
        return
    lines = [f"【{period.title} 组织生活达标情况】共{len(results)}个支部（按达标项数排序）"]
    for r in sorted(results, key=lambda x: (-x.passed, x.org.path)):
        failed = "、".join(i.label.split("（")[0] for i in r.failed)
        lines.append(f"{r.org.name}：达标 {r.passed}/{len(r.items)} 项" + (f"，✘ {failed}" if failed else " ✔"))
    lines.append("发送“达标 支部名称”查看某个支部的详情。")
    ctx.reply("\n".join(lines))


# ---- /bind --------------------------------------------------------------------------------------


@router.command("bind", "绑定", help="在群聊中把本群绑定到支部，例如：绑定 第一党支部", audience="secretary")
async def bind(ctx: HandlerContext) -> None:
    member = ctx.member
    assert member is not None
    scope = ReportScope.for_member(member)
    if not scope.may_report:
        ctx.reply("抱歉，只有管理员或该支部的书记、副书记可以绑定群聊。")
        return
    if not ctx.in_group:
        ctx.reply("请在需要绑定的群聊中@我发送“绑定 支部名称”，例如：绑定 第一党支部。")
        return
    name = ctx.args.strip()
    if not name:
        ctx.reply("请写上支部名称，例如：绑定 第一党支部。")
        return
    org = await org_repo.find_org(ctx.session, name)
    if org is None:
        ctx.reply(f"没有找到名为“{name}”的组织，请核对名称，例如：绑定 第一党支部。")
        return
    home = await ctx.session.get(Org, member.org_id)
    if not may_manage(scope, org, home):
        ctx.reply(f"抱歉，只有管理员或{org.name}的书记、副书记可以把群聊绑定到{org.name}。")
        return
    platform, conversation = ctx.msg.platform.value, ctx.msg.conversation_id
    stmt = select(ChatBinding).where(ChatBinding.platform == platform, ChatBinding.conversation_id == conversation)
    existing = (await ctx.session.execute(stmt)).scalar_one_or_none()
    previous = await ctx.session.get(Org, existing.org_id) if existing is not None else None
    if previous is not None and previous.id == org.id:
        ctx.reply(f"本群已经绑定到{org.name}，无需重复绑定。")
        return
    if previous is not None and not may_manage(scope, previous, home):
        ctx.reply(f"本群已绑定到{previous.name}，改绑需由管理员或{previous.name}的书记操作。")
        return
    await bind_chat(
        ctx.session, platform, conversation, org.id, ctx.now,
        existing.webhook_url if existing else "", existing.webhook_secret if existing else "",
    )  # fmt: skip
    ctx.audit(
        "bind_chat", platform=platform, conversation_id=conversation, org_id=org.id,
        previous_org_id=previous.id if previous else None,
    )  # fmt: skip
    was = f"（原绑定：{previous.name}）" if previous is not None else ""
    ctx.reply(f"已将本群绑定到{org.name}{was}。今后{org.name}的收集通知和提醒会发到本群。")


# ---- /campaign ----------------------------------------------------------------------------------


def _forms_hint(ctx: HandlerContext) -> str:
    names = "、".join(f.name for f in ctx.services.forms.values())
    return f"可发起：{names}。例如：发起 主题党日 12月5日"


@router.command("campaign", "发起", help="为本支部发起一次收集，例如：发起 主题党日 12月5日（默认7天后18:00截止）", audience="secretary")
async def campaign(ctx: HandlerContext) -> None:
    member = ctx.member
    assert member is not None
    scope = ReportScope.for_member(member)
    if not scope.may_report:
        ctx.reply(f"抱歉，只有支部书记、副书记和管理员可以发起收集。{MEMBER_REFUSAL.split('。', 1)[1]}")
        return
    form: FormSpec | None = None
    org: Org | None = None
    date_parts: list[str] = []
    for token in split_args(ctx.args):
        if form is None and (found := find_form(ctx.services.forms, token)) is not None:
            form = found
        elif org is None and (named := await org_repo.find_org(ctx.session, token)) is not None:
            org = named
        else:
            date_parts.append(token)
    if form is None:
        ctx.reply(f"请说明要发起哪一项收集。{_forms_hint(ctx)}")
        return
    home = await ctx.session.get(Org, member.org_id)
    target = org or home
    if target is None or target.kind != "branch":
        ctx.reply("请写上支部名称，例如：发起 主题党日 第一党支部。")
        return
    if not may_manage(scope, target, home):
        ctx.reply(f"抱歉，您只能为本支部发起收集。{target.name}的收集请联系该支部书记或管理员。")
        return
    today = local_today(ctx)
    tz = ctx.services.tz
    if date_parts:
        parsed = parse_date(" ".join(date_parts), today)
        if isinstance(parsed, Invalid):
            ctx.reply(f"截止日期没看懂：{parsed.message}。例如：发起 {form.name} 12月5日")
            return
        deadline = dt.datetime.combine(parsed, DEADLINE_TIME, tzinfo=tz)
    else:
        deadline = dt.datetime.combine(today + dt.timedelta(days=DEFAULT_DEADLINE_DAYS), DEADLINE_TIME, tzinfo=tz)
    if deadline <= ctx.now:
        ctx.reply(f"截止时间{format_zh(deadline)}已经过去了，请写今天以后的日期，例如：发起 {form.name} 12月5日")
        return
    title = f"{form.name}（{today.month}月{today.day}日发起）"
    roles = list(form.roles)
    created_campaign, created = await open_campaign(
        ctx.session, form_key=form.key, period=today.isoformat(), org_id=target.id, title=title, opened_at=ctx.now,
        deadline_at=deadline, audience={"roles": roles, "categories": []}, created_by=member.id,
    )  # fmt: skip
    if not created:
        ctx.reply(
            f"今天已经为{target.name}发起过“{created_campaign.title}”（截止{format_zh(created_campaign.deadline_at)}），"
            f"无需重复发起。发送“统计 {form.name}”查看进度。"
        )
        return
    text = f"【{title}】{member.name}发起，请于{format_zh(deadline)}前完成填报。\n回复示例：{form_example(form)}"
    where = await _announce(ctx, target, form, text, roles)
    ctx.audit(
        "campaign_open", campaign_id=created_campaign.id, form=form.key, org_id=target.id,
        deadline=deadline.isoformat(),
    )  # fmt: skip
    ctx.reply(
        f"已为{target.name}发起“{title}”，截止{format_zh(deadline)}，{where}。"
        f"发送“统计 {form.name}”查看进度，“提醒 {form.name}”提醒未填报的同志。"
    )


async def _announce(ctx: HandlerContext, org: Org, form: FormSpec, text: str, roles: list[str]) -> str:
    """Whole-branch collections go to the branch's group chats (1:1 where none is bound);
    role-targeted ones (meeting records) go 1:1 to those who fill them in."""
    if not roles:
        messages = await group_messages(ctx.session, org.id, text, ctx.services.enabled_platforms)
        for message in messages:
            ctx.send(message, "announce")
        if messages:
            return f"已在{org.name}群内通知"
    audience = await members_of(ctx.session, [org.id], roles=roles)
    sent = sum(1 for m in audience if ctx.send_to_member(m, text, "announce"))
    who = "、".join(roles) if roles else "全体党员"
    return f"已私信通知{who}共{sent}人"
