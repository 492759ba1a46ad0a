"""/stats: answered / total / missing for the latest campaign; formatting only, figures from bot.reports."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.db import orgs as org_repo
from bot.domain.dues import format_yuan
from bot.reports.stats import CampaignSummary, campaign_summary, latest_campaigns
from bot.routing import Router, split_args
from handlers.access import LEVELS, level_of, require

router = Router("stats")


def _form_from_args(ctx: HandlerContext, args: list[str]) -> tuple[str, str]:
    form_key, period = "dues", ""
    for arg in args:
        matched = next((f for f in ctx.services.forms.values() if arg in (f.key, f.name, *f.keywords)), None)
        if matched is not None:
            form_key = matched.key
        elif arg[:4].isdigit():
            period = arg
    return form_key, period


def _line(summary: CampaignSummary, with_money: bool) -> str:
    line = f"{summary.org_name}：已填报 {summary.answered}/{summary.total}（{summary.rate:.0%}）"
    if with_money and summary.amount_fen:
        line += f"，合计 {format_yuan(summary.amount_fen)} 元"
    return line


@router.command("stats", "统计", help="查看本支部（管理员：全部支部）的填报统计，例如：统计 党费 2026-11", audience="secretary")
async def stats(ctx: HandlerContext) -> None:
    member = require(ctx, "secretary")
    if member is None:
        return
    form_key, period = _form_from_args(ctx, list(split_args(ctx.args)))
    form = ctx.services.forms[form_key]
    is_admin = level_of(member) >= LEVELS["admin"]
    if is_admin:
        org_ids = [b.id for b in await org_repo.branches(ctx.session)]
    else:
        org_ids = [member.org_id]
    campaigns = await latest_campaigns(ctx.session, org_ids, form_key, ctx.now, period)
    if not campaigns:
        ctx.reply(f"暂无{form.name}的收集记录。可以发送“发起 {form.name}”开始一次收集。")
        return
    day = ctx.now.astimezone(ctx.services.tz).date()
    summaries = [await campaign_summary(ctx.session, c, day) for c in campaigns]
    summaries.sort(key=lambda s: (-s.rate, s.org_name))
    with_money = not ctx.in_group  # money never goes into a group chat
    title = campaigns[0].title
    lines = [f"【{title}】统计"]
    lines += [_line(s, with_money) for s in summaries]
    if len(summaries) == 1:
        s = summaries[0]
        lines.append("未填报：" + ("、".join(s.missing) if s.missing else "无，全部完成 ✔"))
        if s.on_leave:
            lines.append("请假中（不计入）：" + "、".join(s.on_leave))
        if s.late:
            lines.append(f"逾期补交：{s.late}人")
        if s.flagged and with_money:
            lines.append(f"金额与标准不符待核对：{s.flagged}人")
    ctx.reply("\n".join(lines))
