"""The scope matrix: member / secretary / admin × every report or management command × own and other branch.

Members are refused (politely, naming who can); a secretary may act on their own branch only; admins on
any branch. A refusal leaks nothing (no names of the other branch, no file, no nudge, no binding, no
campaign) and every allowed management action is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.tables import AuditEntry, Campaign, ChatBinding, NudgeLog
from tests.conftest import Running, start_bot, stop_bot

BRANCH1, BRANCH2 = "第一党支部", "第二党支部"
NAMES = {
    BRANCH1: ["王建国", "李红梅", "张三", "李四", "王五", "赵六", "陈七", "刘洋"],
    BRANCH2: ["孙丽", "周强", "吴敏", "郑华"],
}


@dataclass(frozen=True)
class Role:
    key: str
    sender: str
    home: str
    other: str


ROLES = {
    "member": Role("member", "13800000003", BRANCH1, BRANCH2),  # 张三
    "secretary": Role("secretary", "13800000001", BRANCH1, BRANCH2),  # 王建国
    "admin": Role("admin", "13800000014", BRANCH2, BRANCH1),  # 郑华, 党员、管理员 of 第二党支部
}
NEW_GROUP = "group:新建工作群"

# command → (text template, conversation ("dm" or a group id), a phrase every allowed reply contains)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "stats": ("统计 {branch}", "dm", "{branch}：已填报"),
    "missing": ("未交 {branch}", "dm", "{branch}尚未填报"),
    "remind": ("提醒 {branch}", "dm", "{branch}：已在本支部群内@提醒"),
    "export": ("导出 党费 2026 {branch}", "dm", "{branch}党费收缴登记表"),
    "compliance": ("达标 {branch}", "dm", "】{branch}"),
    "bind": ("绑定 {branch}", NEW_GROUP, "已将本群绑定到{branch}"),
    "campaign": ("发起 {form} {branch}", "dm", "已为{branch}发起"),
}
# different forms, so the admin's campaign for 第一党支部 is not the one its secretary opened today
CAMPAIGN_FORM = {"member": "主题党日", "secretary": "主题党日", "admin": "志愿服务"}
ALLOWED = {
    ("member", "own"): False, ("member", "other"): False,
    ("secretary", "own"): True, ("secretary", "other"): False,
    ("admin", "own"): True, ("admin", "other"): True,
}  # fmt: skip
AUDITED = {"remind": "remind", "export": "export", "bind": "bind_chat", "campaign": "campaign_open"}


async def count(running: Running, stmt: Any) -> int:
    async with running.app.sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def state(running: Running, exports: Path) -> dict[str, Any]:
    async with running.app.sessions() as session:
        bindings = (await session.execute(select(ChatBinding.conversation_id, ChatBinding.org_id))).tuples().all()
        audits = (await session.execute(select(AuditEntry.action))).scalars().all()
    return {
        "nudges": await count(running, select(func.count()).select_from(NudgeLog)),
        "campaigns": await count(running, select(func.count()).select_from(Campaign)),
        "bindings": sorted(bindings),
        "files": sorted(p.name for p in exports.glob("*")) if exports.exists() else [],
        "audits": sorted(audits),
    }


@pytest.mark.parametrize("command", list(COMMANDS))
async def test_scope_matrix(settings: Settings, clock: FakeClock, command: str) -> None:
    """One bot per command; the 3 roles × own/other branch cells run in turn on it (roles in order, so
    an admin's move of a group or a second reminder comes after the secretary's)."""
    template, where, allowed_phrase = COMMANDS[command]
    running = await start_bot(settings, clock)
    exports = settings.data_dir / "exports"
    try:
        await running.say(f"group:{BRANCH1}", "13800000003", "党费 45")  # one answer, so figures exist
        for role_key, role in ROLES.items():
            for which in ("own", "other"):
                branch = role.home if which == "own" else role.other
                text = template.format(branch=branch, form=CAMPAIGN_FORM[role_key])
                await check_cell(running, exports, role, which, command, text, where, allowed_phrase.format(branch=branch))
    finally:
        await stop_bot(running)


async def check_cell(
    running: Running, exports: Path, role: Role, which: str, command: str, text: str, where: str, phrase: str
) -> None:
    cell = (role.key, command, which)
    conversation = f"dm:{role.sender}" if where == "dm" else where
    before = await state(running, exports)
    data = await running.say(conversation, role.sender, text)
    texts = [r["text"] for r in data["replies"]]
    joined = "\n".join(texts)
    after = await state(running, exports)
    if ALLOWED[(role.key, which)]:
        assert phrase in joined, (cell, texts)
        assert not joined.startswith("抱歉"), (cell, texts)
        if command in AUDITED:
            assert after["audits"].count(AUDITED[command]) == before["audits"].count(AUDITED[command]) + 1, cell
        return
    assert len(texts) == 1 and texts[0].startswith("抱歉"), (cell, texts)
    assert "管理员" in texts[0] and "书记" in texts[0], (cell, texts)  # says who can
    branch = role.home if which == "own" else role.other
    for name in NAMES[branch] + NAMES[role.other]:
        assert name not in texts[0], (cell, name, texts)
    assert after == before, cell  # nothing happened: no file, nudge, binding, campaign or audit entry
    assert all(r["conversation_id"] == conversation for r in data["replies"]), cell
