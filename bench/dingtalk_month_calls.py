"""DingTalk calls for one month of the demo organisation, against the minimum possible for the same messages.

Runs the whole bot (SQLite in a temp dir, in-process KV, Stream mode) against the fake DingTalk open platform
(``tests/fakes/dingtalk_server.py``) on a fake clock that jumps from event to event through the month: the
default calendar's announcements, reminders and escalations fire, and members answer now and then in the two
bound branch groups and 1:1. Then it prints DingTalk calls by endpoint beside the minimum and the share of
the monthly quotas (5000 API calls, 3000 pushes) used.

Minimum, from the outbox rows that went to DingTalk: one call per group message, one push per reply through a
session webhook, ``ceil(n / 20)`` batchSend calls per set of identical 1:1 texts sent at the same moment.

    python -m bench.dingtalk_month_calls [--month 2026-12] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import logging
import math
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.app import BotApp
from bot.clock import SHANGHAI, FakeClock
from bot.config import load_settings
from bot.db.tables import InboundMessage, Member, OutboxMessage
from bot.message import Platform
from bot.platforms.dingtalk.adapter import DingTalkAdapter
from tests.fakes.dingtalk_server import FakeDingTalk, sample_bot_message

BATCH = 20  # oToMessages/batchSend users per call
GROUPS = {"第一党支部": "cidGroup1==", "第二党支部": "cidGroup2=="}
ROBOT_SECRET = "SECbench-robot"

# Billed by DingTalk (per organisation and month): "api" = OpenAPI calls, "push" = webhook/Stream pushes.
ENDPOINTS: list[tuple[str, str, str]] = [
    ("groupMessages", "/v1.0/robot/groupMessages/send", "api"),
    ("batchSend", "/v1.0/robot/oToMessages/batchSend", "api"),
    ("upload", "/media/upload", "api"),
    ("robot", "custom robot webhook (@)", "push"),
    ("sendBySession", "sessionWebhook replies", "push"),
    ("inbound", "Stream pushes received", "push"),
    ("accessToken", "/v1.0/oauth2/accessToken", "free"),
    ("connections", "gateway/connections/open", "free"),
]


def uid(mobile: str) -> str:
    return f"user{mobile[-2:]}"


@dataclass
class Say:
    """A member writes to the bot at ``at`` (local time), in the branch group or 1:1."""

    at: dt.datetime
    mobile: str
    text: str
    group: str = ""  # branch name, or "" for 1:1


def script(year: int, month: int) -> list[Say]:
    """Some members answer, some never do; times are Shanghai local and inside working hours."""

    def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
        return dt.datetime(year, month, day, hh, mm, tzinfo=SHANGHAI)

    return [
        Say(at(1, 9, 20), "13800000003", "@党建助手 党费 45", "第一党支部"),  # 张三
        Say(at(1, 9, 40), "13800000004", "已交"),  # 李四, 1:1
        Say(at(1, 10, 5), "13800000012", "@党建助手 党费 26", "第二党支部"),  # 周强
        Say(at(2, 11, 0), "13800000001", "已交"),  # 王建国 (secretary)
        Say(at(2, 15, 30), "13800000002", "@党建助手 党费 32.5", "第一党支部"),  # 李红梅
        Say(at(4, 9, 30), "13800000003", "@党建助手 到", "第一党支部"),  # theme day attendance
        Say(at(4, 9, 35), "13800000005", "@党建助手 到", "第一党支部"),
        Say(at(4, 10, 0), "13800000012", "@党建助手 到", "第二党支部"),
        Say(at(4, 10, 10), "13800000011", "到"),  # 孙丽, 1:1
        Say(at(8, 16, 0), "13800000005", "@党建助手 党费 120", "第一党支部"),  # 王五
        Say(at(14, 10, 0), "13800000011", "已交"),  # 孙丽
        Say(at(15, 9, 0), "13800000001", "代 陈七 党费 20"),  # the secretary enters for 陈七
        Say(at(16, 9, 0), "13800000014", "/stats"),  # 郑华 (admin)
        Say(at(16, 9, 5), "13800000001", "/stats"),
    ]


@dataclass
class Month:
    app: BotApp
    fake: FakeDingTalk
    clock: FakeClock
    inbound: int = 0
    msg_seq: int = 0
    events: int = 0
    seen: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def adapter(self) -> DingTalkAdapter:
        adapter = self.app.adapters[Platform.DINGTALK]
        assert isinstance(adapter, DingTalkAdapter)
        return adapter

    async def wait(self, predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.005)

    async def say(self, line: Say) -> None:
        self.msg_seq += 1
        url, expires = self.fake.add_session()
        body = sample_bot_message(
            msgId=f"msgBench{self.msg_seq:04d}==", text={"content": line.text}, senderStaffId=uid(line.mobile),
            senderNick=line.mobile, createAt=int(self.clock.now().timestamp() * 1000),
            robotCode=self.fake.app_key, sessionWebhook=url, sessionWebhookExpiredTime=expires,
        )
        if line.group:
            body |= {"conversationType": "2", "conversationId": GROUPS[line.group], "isInAtList": True}
        else:
            body |= {"conversationType": "1", "conversationId": f"cidP2P{uid(line.mobile)}==", "atUsers": []}
        frame = await self.fake.push_bot_message(body)
        await self.fake.wait_ack(frame)
        self.inbound += 1

        async def handled() -> bool:
            seen = self.app.metrics.value("dangjian_messages_in_total", platform="dingtalk")
            return seen >= self.inbound and (await self.adapter.health()).detail["background_tasks"] == 0

        await self.wait(handled)
        await self.app.flush_outbox()

    async def run(self, start: dt.datetime, end: dt.datetime, lines: list[Say]) -> None:
        pending = sorted(lines, key=lambda s: s.at)
        runner = self.app.runner
        while True:
            nd = runner.next_due(self.clock.now())
            candidates = [t for t in (nd, pending[0].at if pending else None) if t is not None and t < end]
            if not candidates:
                break
            at = min(candidates)
            self.clock.set(at)
            if pending and pending[0].at == at:
                await self.say(pending.pop(0))
                continue
            report = await runner.run_due(at)
            self.events += len(report.executed)
            await self.app.flush_outbox()


@dataclass
class Minimum:
    """The fewest calls that could have carried the DingTalk messages the bot actually sent."""

    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    messages: collections.Counter[str] = field(default_factory=collections.Counter)


def minimum_for(rows: list[OutboxMessage], robots: set[str]) -> Minimum:
    low = Minimum()
    direct: collections.Counter[tuple[dt.datetime, str, str]] = collections.Counter()
    for row in rows:
        p = row.payload
        handle = p.get("reply_handle") or {}
        if handle.get("session_webhook"):
            low.calls["sendBySession"] += 1
            low.messages["reply (session webhook)"] += 1
        elif p.get("conversation_id"):
            # @-mentions need the group's custom robot (a push); otherwise the robot API is one call.
            key = "robot" if p.get("mention_user_ids") and p["conversation_id"] in robots else "groupMessages"
            low.calls[key] += 1
            low.messages["group message"] += 1
        else:
            direct[(row.created_at, str(p.get("format")), str(p.get("text")))] += 1
            low.messages["1:1 message"] += 1
    low.calls["batchSend"] = sum(math.ceil(n / BATCH) for n in direct.values())
    return low


async def simulate(year: int, month: int) -> dict[str, Any]:
    start = dt.datetime(year, month, 1, tzinfo=SHANGHAI)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    clock = FakeClock(start - dt.timedelta(hours=1))
    with tempfile.TemporaryDirectory(prefix="dingtalk-bench-") as tmp:
        async with FakeDingTalk(clock=clock) as fake:
            robots = {conv: fake.add_robot(secret=ROBOT_SECRET) for conv in GROUPS.values()}
            settings = load_settings(None, env={}, overrides={
                "data_dir": str(Path(tmp) / "data"),
                "demo.announce_current": False,
                "dingtalk": {"enabled": True, "mode": "stream", "app_key": fake.app_key,
                             "app_secret": fake.app_secret, "api_base": fake.base_url, "oapi_base": fake.base_url},
                "groups": [{"platform": "dingtalk", "conversation_id": conv, "org": org, "webhook_url": robots[conv],
                            "webhook_secret": ROBOT_SECRET} for org, conv in GROUPS.items()],
            })
            app = BotApp(settings, clock, scheduler=False, background_dispatch=False)
            await app.start()
            try:
                async with app.sessions() as session, session.begin():
                    for member in (await session.execute(select(Member))).scalars():
                        if member.mobile:
                            await session.execute(update(Member).where(Member.id == member.id)
                                                  .values(dingtalk_userid=uid(member.mobile)))
                await fake.wait_connections(1)
                run = Month(app, fake, clock)
                await run.run(start, end, script(year, month))
                async with app.sessions() as session:
                    rows = list((await session.execute(
                        select(OutboxMessage).where(OutboxMessage.platform == "dingtalk"))).scalars())
                    inbound = len((await session.execute(
                        select(InboundMessage).where(InboundMessage.platform == "dingtalk"))).scalars().all())
                usage = await run.adapter.quota_usage()
            finally:
                await app.stop()
            calls = collections.Counter(fake.calls)
    calls["inbound"] = inbound
    low = minimum_for([r for r in rows if r.status == "sent"], set(robots))
    low.calls["inbound"] = inbound
    statuses = collections.Counter(r.status for r in rows)
    reasons = collections.Counter(r.reason for r in rows)
    return {"calls": calls, "low": low, "usage": usage, "statuses": statuses, "events": run.events,
            "said": run.inbound, "reasons": reasons}


def _ratio(actual: int, low: int) -> str:
    if low == 0:
        return "—" if actual == 0 else "∞"
    return f"{actual / low:.2f}"


def render(result: dict[str, Any], month: str, seconds: float) -> str:
    calls: collections.Counter[str] = result["calls"]
    low: Minimum = result["low"]
    usage = result["usage"]
    api_quota, push_quota = int(usage["api_quota"]), int(usage["push_quota"])
    out = [
        f"DingTalk calls in {month} — demo organisation (12 members, 2 branch groups with custom robots), "
        "default calendar, Stream mode",
        f"{result['events']} scheduled events run, {result['said']} member messages received, "
        f"outbox to DingTalk: {dict(result['statuses'])}; messages sent: "
        + ", ".join(f"{k} {n}" for k, n in sorted(low.messages.items())),
        "by reason: " + ", ".join(f"{k} {n}" for k, n in result["reasons"].most_common()),
        "",
        f"{'endpoint':<36}{'billed as':>10}{'actual':>9}{'minimum':>9}{'ratio':>8}",
        "-" * 72,
    ]
    totals = {"api": [0, 0], "push": [0, 0]}
    for key, label, kind in ENDPOINTS:
        actual = calls.get(key, 0)
        if kind == "free":
            out.append(f"{label:<36}{'not billed':>10}{actual:>9}{'—':>9}{'':>8}")
            continue
        minimum = low.calls.get(key, 0)
        totals[kind][0] += actual
        totals[kind][1] += minimum
        out.append(f"{label:<36}{kind:>10}{actual:>9}{minimum:>9}{_ratio(actual, minimum):>8}")
    out.append("-" * 72)
    for kind, quota in (("api", api_quota), ("push", push_quota)):
        actual, minimum = totals[kind]
        share = f"{actual / quota:.1%} of {quota}" if quota else "no quota set"
        out.append(f"{'total ' + kind:<36}{'':>10}{actual:>9}{minimum:>9}{_ratio(actual, minimum):>8}   {share}")
    out += [
        "",
        f"bot's own monthly meter (shown to admins in /stats): API {usage['api_used']}/{usage['api_quota']}, "
        f"push {usage['push_used']}/{usage['push_quota']} ({usage['month']})",
        f"finished in {seconds:.1f} s",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dingtalk_month_calls", description=__doc__.splitlines()[0])
    parser.add_argument("--month", default="2026-12", help="YYYY-MM to simulate (default 2026-12)")
    parser.add_argument("--verbose", action="store_true", help="show the bot's warnings too")
    args = parser.parse_args(argv)
    year, month = (int(x) for x in args.month.split("-"))
    logging.basicConfig(level=logging.WARNING)
    if not args.verbose:
        logging.disable(logging.WARNING)  # keep the table readable; errors still show
    began = time.monotonic()
    result = asyncio.run(simulate(year, month))
    print(render(result, args.month, time.monotonic() - began))
    failed = result["statuses"].get("failed", 0) + result["statuses"].get("pending", 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
