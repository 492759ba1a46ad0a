"""`dangjian schedule preview`: every message the schedules would send in a date range, to whom, and why
a date moved. Reads the organisation from the database (or the demo roster when it is empty); sends
and writes nothing."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import sections
from bot.config import Settings
from bot.db.engine import create_engine, session_factory
from bot.db.tables import Org
from bot.migrations import upgrade
from schedules.audience import target_orgs
from schedules.models import ScheduleSpec
from schedules.plan import plan_many
from schedules.timing import format_zh

RECIPIENTS = {
    "open": "（不发消息，开始收集）",
    "announce": "{orgs}的群（未绑定群的支部：逐人私信）",
    "remind": "{orgs}中届时尚未填报的党员（群内一条汇总消息，@未填报者）",
    "escalate_secretary": "{orgs}的支部书记（私信，附未填报名单）",
    "escalate_committee": "党委管理员（私信，列出未完成的支部）",
}
KIND_ZH = {"open": "开始", "announce": "通知", "remind": "提醒", "escalate_secretary": "报告书记", "escalate_committee": "报告党委"}


async def _org_names(session: AsyncSession, specs: list[ScheduleSpec]) -> dict[str, str]:
    names: dict[str, str] = {}
    for spec in specs:
        orgs = await target_orgs(session, spec)
        shown = "、".join(o.name for o in orgs[:5]) + (f"等{len(orgs)}个组织" if len(orgs) > 5 else "")
        names[spec.key] = shown or "（无匹配组织）"
    return names


async def _demo_sessions() -> async_sessionmaker[AsyncSession]:
    from bot.clock import SystemClock
    from bot.demo import seed_demo

    engine = create_engine("sqlite+aiosqlite:///:memory:")
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await seed_demo(session, SystemClock().now())
    return sessions


async def render_preview(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], start: dt.date, end: dt.date
) -> str:
    specs = sections.schedule_specs(settings)
    calendar = sections.workday_calendar(settings)
    async with sessions() as session:
        empty = (await session.execute(select(func.count(Org.id)))).scalar_one() == 0
    source = "数据库中的组织"
    if empty:
        sessions = await _demo_sessions()
        source = "演示组织（数据库为空）"
    async with sessions() as session:
        org_names = await _org_names(session, specs)
    plan = plan_many(specs, start, end, calendar)
    lines = [f"日程预览 schedule preview {start} → {end}（{source}，不发送任何消息）", ""]
    if plan.notes:
        lines += ["⚠ 注意 notes:"] + [f"  - {n}" for n in plan.notes] + [""]
    per_day: dict[dt.date, list[str]] = defaultdict(list)
    for occ, event in plan.timeline():
        if not start <= event.due_at.date() <= end:
            continue
        title = occ.title or occ.schedule_key
        who = RECIPIENTS[event.kind].format(orgs=org_names.get(occ.schedule_key, ""))
        line = f"  {format_zh(event.due_at)} [{KIND_ZH[event.kind]}] {title}（截止{format_zh(occ.deadline_at)}）→ {who}"
        if event.note:
            line += f"\n      原因 why: {event.note}"
        per_day[event.due_at.date()].append(line)
    count = 0
    for day in sorted(per_day):
        lines.append(f"{day.isoformat()} 星期{'一二三四五六日'[day.weekday()]}{' （调休/节假日数据缺失）' if not calendar.is_covered(day.year) else ''}")
        lines.extend(per_day[day])
        count += len(per_day[day])
    if plan.skipped:
        lines += ["", "跳过 skipped:"] + [f"  - {label}: {reason}" for label, reason in plan.skipped]
    lines += ["", f"共 {count} 条消息事件 events in range."]
    return "\n".join(lines)
