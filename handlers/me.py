"""/me (我的): the member's own records; /dues (党费标准): the dues standard for a base."""

from __future__ import annotations

from sqlalchemy import select

from bot.context import HandlerContext
from bot.db.tables import Campaign, Member, Response
from bot.domain.dues import DuesCategory, compute_dues, dues_explanation, format_yuan
from bot.domain.numerals import parse_money_fen
from bot.forms.render import summarize
from bot.routing import Router

router = Router("me")


@router.command("me", "我的", "我的记录", help="查看我自己的登记记录")
async def my_records(ctx: HandlerContext) -> None:
    member = ctx.member
    assert member is not None
    stmt = (
        select(Response, Campaign)
        .join(Campaign, Campaign.id == Response.campaign_id)
        .where(Response.member_id == member.id)
        .order_by(Response.updated_at.desc())
        .limit(12)
    )
    rows = (await ctx.session.execute(stmt)).all()
    # Records can carry amounts: in a group chat they go 1:1, and the group only hears where they went.
    if not rows:
        ctx.reply("您还没有任何登记记录，收到填报通知后直接回复即可，例如：党费 50。", private=ctx.in_group)
    else:
        entered = {r.entered_by for r, _ in rows if r.entered_by != member.id}
        names = {m.id: m.name for m in (await ctx.session.execute(select(Member).where(Member.id.in_(entered)))).scalars()}
        lines = [f"{member.name}的最近记录："]
        for response, campaign in rows:
            form = ctx.services.forms.get(campaign.form_key)
            summary = summarize(form, response.values) if form else ""
            marks = "（逾期）" if response.late else ""
            marks += "（待核对）" if response.flagged else ""
            if response.entered_by != member.id:
                marks += f"（{names.get(response.entered_by, '他人')}代登记）"
            lines.append(f"· {campaign.title}：{summary}{marks}")
        ctx.reply("\n".join(lines), private=ctx.in_group)
    if ctx.in_group:
        ctx.reply("您的记录已私信发送。" if rows else "已私信回复您。")


@router.command("dues", "党费标准", "党费计算", help="按月缴费基数计算应交党费，例如：党费标准 6500")
async def dues_standard(ctx: HandlerContext) -> None:
    member = ctx.member
    assert member is not None
    args = ctx.args.split()
    category = DuesCategory.IN_SERVICE
    for arg in list(args):
        if arg in DuesCategory._value2member_map_:
            category = DuesCategory(arg)
            args.remove(arg)
    base = parse_money_fen(args[0]) if args else member.dues_base_fen
    if base is None and category in (DuesCategory.IN_SERVICE, DuesCategory.RETIRED):
        ctx.reply("请提供月缴费基数（税后工资收入），例如：党费标准 6500；离退休人员：党费标准 4000 离退休。")
        return
    std = compute_dues(base, category, ctx.services.dues_policy)
    text = dues_explanation(std)
    if std.capped:
        text += f"（按2017年规定每月一般不超过{format_yuan(std.amount_fen)}元，本人自愿可多交）"
    ctx.reply(text, private=ctx.in_group)
    if ctx.in_group:
        ctx.reply("计算结果已私信发送（缴费基数属个人隐私，不在群内显示）。")
