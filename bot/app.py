"""Composition root: builds every part from settings, starts and stops them in order.

The only module of ``bot`` that imports ``handlers`` and ``schedules``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select, text

from bot import sections
from bot.addressing import member_recipient
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.dashboard import dashboard_routes
from bot.db import journal
from bot.db.engine import create_engine, session_factory
from bot.db.members import admins, secretaries_of
from bot.db.outbox import counts as outbox_counts
from bot.db.outbox import enqueue
from bot.db.tables import Member, Org
from bot.demo import seed_demo, sync_config_groups
from bot.dispatcher import InlineReplies, OutboxDispatcher
from bot.downloads import download_routes
from bot.errors import StorageUnavailable
from bot.inbound import InboundPipeline
from bot.kv.base import KV
from bot.kv.memory import MemoryKV
from bot.kv.redis import RedisKV
from bot.local_chat import DatabaseLocalBackend
from bot.logs import app_log, log_event
from bot.message import OutgoingMessage, Platform
from bot.metrics import Metrics
from bot.migrations import upgrade
from bot.platforms.base import PlatformAdapter
from bot.platforms.local.adapter import LocalAdapter
from bot.reports.charts import charts_dir
from bot.services import Services
from bot.web import build_web_app
from handlers import build_router
from schedules.runner import ScheduleRunner
from schedules.service import SchedulerService


def build_kv(settings: Settings, clock: Clock) -> KV:
    return RedisKV(settings.redis.url) if settings.redis.url else MemoryKV(clock)


class BotApp:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        scheduler: bool | None = None,
        background_dispatch: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.run_scheduler = settings.scheduler.enabled if scheduler is None else scheduler
        self.background_dispatch = background_dispatch
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.worker: int | None = None  # index among `run --workers N`, None when serving alone
        self.engine = create_engine(settings.database_url, settings.database.echo)
        self.sessions = session_factory(self.engine)
        self.kv = build_kv(settings, self.clock)
        self.metrics = Metrics()
        self.services = Services(
            settings=settings,
            sessions=self.sessions,
            kv=self.kv,
            clock=self.clock,
            metrics=self.metrics,
            forms=sections.form_specs(settings),
            dues_policy=sections.dues_policy(settings),
            calendar=sections.workday_calendar(settings),
            schedules=sections.schedule_specs(settings),
            enabled_platforms=frozenset(self._enabled_platforms()),
            quota_usage=self._quota_usage,
            quota_low=self._quota_low,
        )
        self.router = build_router()
        self.adapters: dict[Platform, PlatformAdapter] = {}
        self.dispatcher = OutboxDispatcher(self.services, {}, settings.outbox)
        self.inline_replies = InlineReplies(self.services, self.dispatcher.notify)
        self.inbound = InboundPipeline(self.services, self.router, self.dispatcher.notify, self.inline_replies.settle)
        self.runner = ScheduleRunner(self.services, self.dispatcher.notify, self.instance)
        self.scheduler = SchedulerService(self.runner, self.clock, self.services.tz)
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.web_app: web.Application | None = None

    def _enabled_platforms(self) -> list[Platform]:
        enabled = [Platform.LOCAL] if self.settings.local.enabled else []
        if sections.dingtalk_settings(self.settings).enabled:
            enabled.append(Platform.DINGTALK)
        if sections.wecom_settings(self.settings).enabled:
            enabled.append(Platform.WECOM)
        return enabled

    async def start(self) -> web.Application:
        await upgrade(self.engine)
        async with self.sessions() as session, session.begin():
            now = self.clock.now()
            empty = (await session.execute(select(func.count(Org.id)))).scalar_one() == 0
            seeded = empty and self.settings.demo.seed
            if seeded:
                await seed_demo(session, now)
            await sync_config_groups(session, self.settings.groups, now)
        if seeded and self.settings.demo.announce_current:
            # The demo starts with this month's dues collection announced in each branch group.
            await self.runner.start_current("dues", self.clock.now())
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self.adapters = self._build_adapters(self._http)
        self.dispatcher.messengers = dict(self.adapters)
        for adapter in self.adapters.values():
            await adapter.start(self.inbound)
        self._register_gauges()
        if self.background_dispatch:
            self._spawn(self.dispatcher.run())
        if self.run_scheduler:
            await self.scheduler.start()
        routes = [r for a in self.adapters.values() for r in a.routes()] + dashboard_routes(self.services)
        routes += download_routes(self.services)
        self.web_app = build_web_app(routes, self.health, self.metrics.render, self.settings.server.max_body_bytes)
        self._warn_calendar()
        log_event(app_log, "started", instance=self.instance, platforms=[p.value for p in self.adapters])
        return self.web_app

    def _build_adapters(self, http: aiohttp.ClientSession) -> dict[Platform, PlatformAdapter]:
        from bot.platform_factory import build_adapters

        adapters: dict[Platform, PlatformAdapter] = {}
        if self.settings.local.enabled:
            images = charts_dir(self.settings.data_dir)  # /stats charts, shown inline in the chat page
            adapters[Platform.LOCAL] = LocalAdapter(DatabaseLocalBackend(self.services), self.clock, images_dir=images)
        adapters.update(build_adapters(self.services, http, self.alert_admins, self.contact_event,
                                       stream_consumer=self.worker in (None, 0)))
        return adapters

    def _warn_calendar(self) -> None:
        year = self.clock.now().astimezone(self.services.tz).year
        for y in (year, year + 1):
            if not self.services.calendar.is_covered(y):
                log_event(
                    app_log, "calendar_fallback", logging.WARNING, year=y,
                    detail=f"{y}年法定节假日数据缺失，按周一至周五及 [calendar] extra_holidays/extra_workdays 推算",
                )

    async def _quota_usage(self) -> list[str]:
        """Monthly quota lines of the adapters that meter one (DingTalk), for the admins' /stats."""
        lines: list[str] = []
        for adapter in self.adapters.values():
            if (line := getattr(adapter, "quota_line", None)) is not None:
                with contextlib.suppress(Exception):  # /stats must answer even if the KV hiccups
                    lines.append(str(await line()))
        return lines

    async def _quota_low(self, platform: Platform) -> bool:
        low = getattr(self.adapters.get(platform), "budget_low", None)
        if low is None:
            return False
        try:
            return bool(await low())
        except Exception:  # noqa: BLE001 - unknown usage: keep the normal routing
            return False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _register_gauges(self) -> None:
        async def outbox() -> dict[tuple[tuple[str, str], ...], float]:
            async with self.sessions() as session:
                return {(("status", k),): float(v) for k, v in (await outbox_counts(session)).items()}

        async def next_due() -> dict[tuple[tuple[str, str], ...], float]:
            nd = self.scheduler.next_due
            return {(): (nd - self.clock.now()).total_seconds() if nd else 0.0}

        self.metrics.gauge("dangjian_outbox_messages", "Outbox rows by status", outbox)
        self.metrics.gauge("dangjian_scheduler_next_due_seconds", "Seconds until the next scheduled event", next_due)

    async def flush_outbox(self) -> int:
        """Deliver everything due now (tests and CLI use this instead of the background loop)."""
        total = 0
        while handled := await self.dispatcher.drain_once():
            total += handled
        return total

    async def alert_admins(self, key: str, text_zh: str) -> None:
        """Tell every admin once per key (deduplicated in the KV for 30 days)."""
        try:
            if not await self.kv.set_if_absent(f"alert:{key}", "1", 30 * 86400):
                return
        except StorageUnavailable:
            pass
        # An alert about a platform (key "dingtalk:…") often means that platform cannot send right now
        # (quota used up, credentials rejected): reach admins elsewhere when they are reachable elsewhere.
        enabled = self.services.enabled_platforms
        elsewhere = frozenset(p for p in enabled if not key.startswith(f"{p.value}:"))
        async with self.sessions() as session, session.begin():
            now = self.clock.now()
            for admin in await admins(session):
                recipient = member_recipient(admin, elsewhere) or member_recipient(admin, enabled)
                if recipient is not None:
                    enqueue(session, OutgoingMessage(recipient=recipient, text=text_zh), now, reason="alert")
        self.dispatcher.notify()

    async def contact_event(self, event: Any) -> None:
        """DingTalk contact change: when a member leaves the organisation, tell their secretary privately."""
        if getattr(event, "event_type", "") != "user_leave_org":
            return
        try:
            if not await self.kv.set_if_absent(f"contact:{event.event_id}", "1", 7 * 86400):
                return
        except StorageUnavailable:
            pass
        async with self.sessions() as session, session.begin():
            now = self.clock.now()
            rows = await session.execute(select(Member).where(Member.dingtalk_userid.in_(list(event.user_ids))))
            for member in rows.scalars().all():
                text_zh = (
                    f"【人员变动】{member.name}已退出钉钉组织（离职、调出或被移除）。请确认其党组织关系是否需要转接，"
                    "并更新党员名册；机器人不会自动删除或停用该党员。"
                )
                for secretary in await secretaries_of(session, member.org_id):
                    recipient = member_recipient(secretary, self.services.enabled_platforms)
                    if recipient is not None:
                        enqueue(session, OutgoingMessage(recipient=recipient, text=text_zh), now, reason="contact")
                journal.audit(session, now, None, "contact_left", member_id=member.id, event_id=event.event_id)
        self.dispatcher.notify()

    async def health(self) -> dict[str, object]:
        db_ok = True
        try:
            async with self.sessions() as session:
                await session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means unhealthy
            db_ok = False
        kv_ok = await self.kv.ping()
        platforms = {}
        for platform, adapter in self.adapters.items():
            h = await adapter.health()
            platforms[platform.value] = {"ok": h.ok, **h.detail}
        status = "ok" if db_ok and kv_ok else ("degraded" if db_ok else "error")
        return {
            "status": status,
            "instance": self.instance,
            **({"worker": self.worker} if self.worker is not None else {}),
            "database": {"ok": db_ok, "backend": "sqlite" if self.settings.is_sqlite else "postgresql"},
            "kv": {"ok": kv_ok, "backend": "redis" if self.settings.redis.url else "memory"},
            "platforms": platforms,
        }

    async def stop(self) -> None:
        await self.scheduler.stop()
        self.dispatcher.stop()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.stop()
        await self.inline_replies.drain()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        await self.kv.close()
        await self.engine.dispose()
        log_event(app_log, "stopped", logging.INFO, instance=self.instance)


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose supervisor died (even by SIGKILL) stops too, instead of serving on unsupervised."""
    parent = os.getppid()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        if os.getppid() != parent:
            log_event(app_log, "supervisor_gone", logging.WARNING, parent=parent)
            stop.set()


async def serve(
    settings: Settings, host: str, port: int, *, worker: int | None = None, scheduler: bool | None = None
) -> None:
    """Run until cancelled (Ctrl-C) or SIGTERM, then stop cleanly.

    ``worker``: this process is one of ``dangjian run --workers N`` (bot/workers.py): its socket shares
    the port with the others (``SO_REUSEPORT``)."""
    bot = BotApp(settings, scheduler=scheduler)
    bot.worker = worker
    app = await bot.start()
    runner = web.AppRunner(app, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    watch = asyncio.create_task(_stop_when_orphaned(stop)) if worker is not None else None
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=True if worker is not None else None)
        await site.start()
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if worker in (None, 0):
            print(f"党建助手已启动 dangjian-bot is running: http://{shown}:{port}/chat", flush=True)
        await stop.wait()
    finally:
        if watch is not None:
            watch.cancel()
        await runner.cleanup()
        await bot.stop()
