"""Leave of absence: `请假 至 12月20日 出差` (self) or `设置请假 张三 至 12月20日` (secretary).

A member on leave is not nudged and not counted as missing for campaigns in that time."""

from __future__ import annotations

import re

from bot.context import HandlerContext
from bot.db.members import is_secretary, members_of
from bot.db.tables import Member
from bot.forms.dates import parse_date
from bot.forms.results import Invalid
from bot.routing import Router

router = Router("leave")

SELF_RE = re.compile(r"^请假\s*(?:至|到|直到)\s*(?P<date>\S+?)(?:\s+(?P<reason>.+))?$")
SET_RE = re.compile(r"^(?:设置请假|登记请假)\s*(?P<name>\S+)\s*(?:至|到)\s*(?P<date>\S+?)(?:\s+(?P<reason>.+))?$")
END_RE = re.compile(r"^(?:销假|取消请假)(?:\s+(?P<name>\S+))?$")


async def _is_leave(ctx: HandlerContext) -> bool:
    text = ctx.text.strip()
    if m := SELF_RE.match(text):
        # "请假 到时候再说" is a theme-day leave with a reason, not a leave of absence until a date.
        return not text[2:].lstrip().startswith("到") or _is_date(ctx, m.group("date"))
    return bool(SET_RE.match(text) or END_RE.match(text))


def _is_date(ctx: HandlerContext, text: str) -> bool:
    return not isinstance(parse_date(text, ctx.now.astimezone(ctx.services.tz).date()), Invalid)


def _apply(ctx: HandlerContext, member: Member, date_text: str, reason: str) -> bool:
    today = ctx.now.astimezone(ctx.services.tz).date()
    parsed = parse_date(date_text, today)
    if isinstance(parsed, Invalid):
        ctx.reply(parsed.message + " 例如：请假 至 12月20日 出差")
        return False
    if parsed < today:
        ctx.reply("请假截止日期已经过去了，请写今天以后的日期，例如：请假 至 12月20日 出差")
        return False
    member.leave_until = parsed
    member.leave_reason = (reason or "")[:200]
    ctx.audit("leave_set", member_id=member.id, until=parsed.isoformat())
    return True


@router.reply(_is_leave)
async def leave(ctx: HandlerContext) -> None:
    member = ctx.member
    assert member is not None
    text = ctx.text.strip()
    if m := SELF_RE.match(text):
        if _apply(ctx, member, m.group("date"), m.group("reason") or ""):
            ctx.reply(f"已登记请假至{member.leave_until:%m月%d日}，期间不再提醒您，也不计入未填报。发送“销假”可提前结束。")
        return
    if m := SET_RE.match(text):
        target = await _branch_member(ctx, m.group("name"))
        if target is not None and _apply(ctx, target, m.group("date"), m.group("reason") or ""):
            ctx.reply(f"已为{target.name}登记请假至{target.leave_until:%m月%d日}。")
        return
    m = END_RE.match(text)
    assert m is not None
    target = await _branch_member(ctx, m.group("name")) if m.group("name") else member
    if target is not None:
        target.leave_until = None
        target.leave_reason = ""
        ctx.audit("leave_end", member_id=target.id)
        ctx.reply(f"{'已为' + target.name if target.id != member.id else '已'}销假，恢复正常提醒。")


async def _branch_member(ctx: HandlerContext, name: str) -> Member | None:
    actor = ctx.member
    assert actor is not None
    if not is_secretary(actor):
        ctx.reply("抱歉，只有支部书记、副书记可以为他人登记请假。")
        return None
    matches = [m for m in await members_of(ctx.session, [actor.org_id]) if m.name == name]
    if len(matches) != 1:
        ctx.reply(f"本支部没有找到唯一的“{name}”，请核对姓名。")
        return None
    return matches[0]
