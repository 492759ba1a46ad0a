"""/stats 统计 [form] [period] [branch]: answered / total / rate, money totals (1:1 only), branches ranked
for admins, and for admins a warning when the workday calendar falls back to Mon–Fri.

Where the chat takes pictures, a bar chart follows the text, to the same chat: branches ranked (numbered
as in the text) or, for one branch, its recent collections. Money is in the chart only when it is in the text.

Formatting only; the figures come from bot.reports.stats (SQL aggregation, shared with the dashboard).
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.context import HandlerContext
from bot.domain.dues import format_yuan
from bot.forms.spec import FieldType, FormSpec
from bot.logs import log_event
from bot.reports.charts import MAX_ROWS, Chart, ranking_chart, save_chart, trend_chart
from bot.reports.stats import CampaignSummary, campaign_summaries
from bot.routing import Router
from handlers.reports import form_and_campaigns, local_today, names_text, officer_request

router = Router("stats")
log = logging.getLogger("dangjian.stats")


def has_money(form: FormSpec) -> bool:
    return any(f.type is FieldType.MONEY for f in form.fields)


def _line(summary: CampaignSummary, with_money: bool) -> str:
    line = f"{summary.org_name}：已填报 {summary.answered}/{summary.total}（{summary.rate:.0%}）"
    if with_money and summary.amount_fen:
        line += f"，合计 {format_yuan(summary.amount_fen)} 元"
    return line


def calendar_warning(ctx: HandlerContext) -> str:
    """For admins: years (this and next) the holiday data does not cover, so schedules use Mon–Fri."""
    year = local_today(ctx).year
    missing = [y for y in (year, year + 1) if not ctx.services.calendar.is_covered(y)]
    if not missing:
        return ""
    years = "、".join(f"{y}年" for y in missing)
    return (
        f"⚠ 节假日数据尚未覆盖{years}，该年的收集和提醒暂按周一至周五推算。"
        "请在国务院办公厅发布放假安排后升级节假日数据（chinesecalendar），或在配置 [calendar] 中补充调休日期。"
    )


async def chart_wanted(ctx: HandlerContext) -> bool:
    """Charts are switched on, the picture can reach this chat, and the platform's monthly quota is not
    running low (the text matters more than the picture)."""
    if not ctx.services.settings.reports.chart or not ctx.images_reach_here():
        return False
    return not await ctx.services.quota_low(ctx.msg.platform)


async def saved_chart(ctx: HandlerContext, chart: Chart) -> Path | None:
    """The chart as a PNG file, or ``None`` when it is not worth a message or cannot be written."""
    if not chart.worth_sending:
        return None
    try:
        return await save_chart(chart, ctx.services.settings.data_dir, ctx.now)
    except OSError as exc:  # a full or read-only disk must not cost the text reply
        log_event(log, "chart_not_written", logging.WARNING, error=str(exc))
        return None


def chart_note(chart: Chart, form: FormSpec, with_money: bool) -> str:
    if chart.kind == "trend":
        return f"附图：最近{len(chart.bars)}次{form.name}的完成率" + ("及金额" if with_money else "") + "（红色为本次）。"
    note = "附图：各支部完成率，图中数字即上面的序号"
    return note + (f"（只画出前{MAX_ROWS // 2}名和后{MAX_ROWS // 2}名）。" if chart.truncated else "。")


@router.command("stats", "统计", help="查看填报统计，例如：统计 党费 2026-11（管理员：各支部排名，可加支部名称）", audience="secretary")
async def stats(ctx: HandlerContext) -> None:
    request = await officer_request(ctx)
    if request is None:
        return
    scope, args, scoped = request.scope, request.args, request.scoped
    org_ids = [b.id for b in scoped.branches]
    form, campaigns = await form_and_campaigns(ctx, org_ids, args)
    warning = calendar_warning(ctx) if scope.is_admin else ""
    if not campaigns:
        lines = [f"暂无{form.name}的收集记录。可以发送“发起 {form.name}”开始一次收集。"]
        ctx.reply("\n".join([*lines, warning] if warning else lines))
        return
    single = len(campaigns) == 1 and len(scoped.branches) == 1
    names = {b.id: b.name for b in scoped.branches}
    summaries = await campaign_summaries(ctx.session, campaigns, local_today(ctx), with_names=single, org_names=names)
    with_money = has_money(form) and not ctx.in_group  # money never goes into a group chat
    chart: Chart | None = None
    if await chart_wanted(ctx):
        if single:
            chart = await trend_chart(ctx.session, summaries[0].campaign, local_today(ctx), with_money)
        else:
            chart = ranking_chart(summaries, with_money)
    path = await saved_chart(ctx, chart) if chart is not None else None
    if single:
        s = summaries[0]
        lines = [f"【{s.campaign.title}】统计", _line(s, with_money)]
        lines.append("未填报：" + (names_text(s.missing) if s.missing else "无，全部完成 ✔"))
        if s.on_leave:
            lines.append("请假中（不计入）：" + names_text(s.on_leave))
        if s.late:
            lines.append(f"逾期补交：{s.late}人")
        if s.flagged and with_money:
            lines.append(f"金额与标准不符待核对：{s.flagged}人")
    else:
        answered = sum(s.answered for s in summaries)
        total = sum(s.total for s in summaries)
        head = f"【{form.name}】各支部填报统计（{len(summaries)}个支部，按完成率排序）"
        if args.period:
            head += f"，{args.period.title}"
        lines = [head]
        lines += [f"{i}. {_line(s, with_money)}" for i, s in enumerate(summaries, 1)]
        overall = f"合计：已填报 {answered}/{total}（{answered / total if total else 1:.0%}）"
        amount = sum(s.amount_fen for s in summaries)
        if with_money and amount:
            overall += f"，合计 {format_yuan(amount)} 元"
        lines.append(overall)
        without = len(scoped.branches) - len(summaries)
        if without:
            lines.append(f"另有{without}个支部暂无该项收集记录。")
    if chart is not None and path is not None:
        lines.append(chart_note(chart, form, with_money))
    lines += await ctx.services.quota_usage() if scope.is_admin else []  # 钉钉本月用量：API 120/5000，推送 30/3000
    if warning:
        lines.append(warning)
    ctx.reply("\n".join(lines))
    if path is not None:
        ctx.reply_image(path)
