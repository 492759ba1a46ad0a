"""/help: only the commands this person may use."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.routing import Router
from handlers.access import allowed

router = Router("help")

REPLY_EXAMPLES = "回复填报示例：党费 50、已交、到、线上、请假 出差、同上、取消"


@router.command("help", "帮助", "菜单", help="查看可用命令")
async def show_help(ctx: HandlerContext) -> None:
    assert ctx.member is not None
    lines = ["党建助手可以帮您："]
    for cmd in ctx.router.all_commands():
        if cmd.help and allowed(ctx.member, cmd.audience):
            alias = cmd.aliases[0] if cmd.aliases else ""
            lines.append(f"/{cmd.name}（{alias}）— {cmd.help}" if alias else f"/{cmd.name} — {cmd.help}")
    lines.append(REPLY_EXAMPLES)
    ctx.reply("\n".join(lines))
