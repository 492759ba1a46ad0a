"""What each scheduled event does for one campaign: announce, remind, escalate. Messages go to the outbox
in the caller's transaction; nudges are batched (one group message naming everyone missing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.addressing import group_messages, member_recipient, org_chats
from bot.db.members import admins, secretaries_of
from bot.db.outbox import enqueue
from bot.db.tables import Campaign, ChatBinding, Member, NudgeLog, Org
from bot.forms.render import form_example
from bot.message import OutgoingMessage, Platform
from bot.services import Services
from schedules.arrears import arrears_in_branch, arrears_notice
from schedules.audience import audience_of, missing_members, within_caps
from schedules.models import ScheduleSpec
from schedules.plan import Occurrence, PlannedEvent
from schedules.timing import format_zh


@dataclass
class ActionContext:
    services: Services
    session: AsyncSession
    spec: ScheduleSpec
    occ: Occurrence
    event: PlannedEvent
    now: dt.datetime

    def send(self, message: OutgoingMessage, reason: str) -> None:
        enqueue(self.session, message, self.now, reason=reason)

    @property
    def form_name(self) -> str:
        form = self.services.forms.get(self.spec.form)
        return form.name if form is not None else self.spec.form

    @property
    def example(self) -> str:
        form = self.services.forms.get(self.spec.form)
        return form_example(form) if form is not None else ""

    def render(self, template: str) -> str:
        text = template.format(
            title=self.occ.title or self.spec.title,
            deadline=format_zh(self.occ.deadline_at),
            purpose=self.spec.purpose,
            form_name=self.form_name,
        )
        if self.example:
            text += f"\n回复示例：{self.example}"
        return text


def _names(members: Sequence[Member]) -> str:
    return "、".join(m.name for m in members)


def _dm_all(ctx: ActionContext, members: Sequence[Member], text: str, reason: str) -> int:
    sent = 0
    for member in members:
        recipient = member_recipient(member, ctx.services.enabled_platforms)
        if recipient is not None:
            ctx.send(OutgoingMessage(recipient=recipient, text=text), reason)
            sent += 1
    return sent


async def announce(ctx: ActionContext, campaign: Campaign, org: Org) -> None:
    text = ctx.render(ctx.spec.announce_template())
    targeted = bool(ctx.spec.audience.roles or ctx.spec.audience.categories)
    messages = [] if targeted else await group_messages(ctx.session, org.id, text, ctx.services.enabled_platforms)
    if messages:
        for message in messages:
            ctx.send(message, "announce")
        return
    # No group chat bound to this organisation: tell each member 1:1 instead.
    _dm_all(ctx, await audience_of(ctx.session, campaign), text, "announce")


async def _budget_low(ctx: ActionContext, chats: Sequence[ChatBinding]) -> bool:
    return any([await ctx.services.quota_low(p) for p in {Platform(c.platform) for c in chats}])


async def remind(ctx: ActionContext, campaign: Campaign, org: Org) -> None:
    settings = ctx.services.settings.nudges
    local_now = ctx.now.astimezone(ctx.services.tz)
    missing = await missing_members(ctx.session, campaign, local_now.date())
    allowed = await within_caps(ctx.session, missing, local_now, settings.max_per_day, settings.max_per_week)
    if not allowed:
        return
    text = ctx.render(ctx.spec.remind_template())
    targeted = bool(ctx.spec.audience.roles or ctx.spec.audience.categories)
    # Role-targeted tasks (secretaries' meeting records, liaison officers' logs) are nudged 1:1;
    # whole-branch collections get one group message naming who is missing. When a platform of the
    # branch's group runs low on its monthly budget (≥80 %), targeted nudges become that group message too.
    chats = await org_chats(ctx.session, org.id, ctx.services.enabled_platforms)
    if targeted and not await _budget_low(ctx, chats):
        chats = []
    if chats:
        named = f"以下同志尚未填报：{_names(allowed)}\n{text}"
        for message in await group_messages(
            ctx.session, org.id, named, ctx.services.enabled_platforms, mention=allowed
        ):
            ctx.send(message, "remind")
    else:
        _dm_all(ctx, allowed, text, "remind")
    for member in allowed:
        ctx.session.add(NudgeLog(member_id=member.id, campaign_id=campaign.id, at=ctx.now))


async def escalate_secretary(ctx: ActionContext, campaign: Campaign, org: Org) -> None:
    local_now = ctx.now.astimezone(ctx.services.tz)
    missing = await missing_members(ctx.session, campaign, local_now.date())
    secretaries = await secretaries_of(ctx.session, org.id)
    if ctx.spec.form == "dues":
        arrears = ctx.services.settings.arrears
        notice = arrears_notice(
            await arrears_in_branch(ctx.session, org.id, ctx.now), arrears.notice_months, arrears.warning_months
        )
        if notice:
            _dm_all(ctx, secretaries, f"【党费欠缴提示】{org.name}\n{notice}", "arrears")
    if not missing:
        return
    total = len(await audience_of(ctx.session, campaign))
    title = ctx.occ.title or ctx.spec.title
    text = (
        f"【{title}】将于{format_zh(ctx.occ.deadline_at)}截止，{org.name}已填报{total - len(missing)}/{total}人。"
        f"尚未填报（{len(missing)}人）：{_names(missing)}。可发送“提醒”再次提醒他们，或“代 姓名 …”代为登记。"
    )
    _dm_all(ctx, secretaries, text, "escalate")


async def escalate_committee(
    services: Services, session: AsyncSession, spec: ScheduleSpec, occ: Occurrence, campaigns: list[Campaign], now: dt.datetime
) -> None:
    local_day = now.astimezone(services.tz).date()
    behind: list[str] = []
    for campaign in campaigns:
        missing = await missing_members(session, campaign, local_day)
        if missing:
            total = len(await audience_of(session, campaign))
            org = await session.get(Org, campaign.org_id)
            behind.append(f"{org.name if org else campaign.org_id}：{total - len(missing)}/{total}")
    if not behind:
        return
    title = occ.title or spec.title
    text = f"【{title}】截至{format_zh(now.astimezone(services.tz))}，以下{len(behind)}个支部尚未全部完成：\n" + "\n".join(
        behind[:50]
    )
    if len(behind) > 50:
        text += f"\n……另有{len(behind) - 50}个支部，详见 /stats"
    ctx = ActionContext(services, session, spec, occ, PlannedEvent("escalate_committee", now), now)
    _dm_all(ctx, await admins(session), text, "escalate")


async def open_only(ctx: ActionContext, campaign: Campaign, org: Org) -> None:
    """The campaign row is all an unannounced opening needs (the runner creates it)."""


BRANCH_ACTIONS: dict[str, Callable[[ActionContext, Campaign, Org], Awaitable[None]]] = {
    "open": open_only,
    "announce": announce,
    "remind": remind,
    "escalate_secretary": escalate_secretary,
}
