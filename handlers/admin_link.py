"""/admin (后台): an admin gets a one-time login link to the web dashboard, always 1:1."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.dashboard.auth import LINK_TTL_SECONDS, issue_login_link
from bot.routing import Router
from handlers.access import require

router = Router("admin_link")


@router.command("admin", "后台", "管理后台", help="获取管理后台的一次性登录链接（私信发送）", audience="admin")
async def admin_link(ctx: HandlerContext) -> None:
    member = require(ctx, "admin")
    if member is None:
        return
    link = await issue_login_link(ctx.services, member.id)
    minutes = LINK_TTL_SECONDS // 60
    ctx.reply(
        f"管理后台一次性登录链接（{minutes}分钟内有效，只能使用一次，请勿转发）：\n{link}",
        private=True,
    )
    if ctx.in_group:
        ctx.reply("管理后台登录链接已私信发送给您。")
    ctx.audit("admin_link_issued")
