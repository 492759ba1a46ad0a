"""Monthly usage counters (API calls and Webhook/Stream pushes) shared by all instances through the KV.

DingTalk counts per organisation and per calendar month (Asia/Shanghai); our counters are an estimate
(other apps of the org also draw on the quota), so they only warn — the bot stops sending only when
DingTalk itself answers with a quota code (90020 / ApiCountLimitForOrg / 20001).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Literal

from bot.clock import SHANGHAI, Clock
from bot.errors import StorageUnavailable
from bot.kv.base import KV
from bot.platforms.base import AdminAlert
from bot.platforms.dingtalk.runtime import send_alert

log = logging.getLogger("bot.platforms.dingtalk")

Kind = Literal["api", "push"]
COUNTER_TTL_S = 35 * 24 * 3600  # outlives the month; the month is part of the key
EXHAUSTED_FLAG_TTL_S = 3600  # after a quota answer, probe DingTalk again at most hourly
WARN_RATIO = 0.8
_LABEL = {"api": "API调用量", "push": "推送（Webhook/Stream）用量"}


class QuotaMeter:
    def __init__(self, kv: KV, clock: Clock, app_key: str, limits: dict[Kind, int], alert: AdminAlert) -> None:
        self._kv = kv
        self._clock = clock
        self._app_key = app_key
        self._limits = limits
        self._alert = alert
        self._pending: dict[Kind, int] = {"api": 0, "push": 0}
        self._writer: asyncio.Task[None] | None = None

    def month(self) -> str:
        return self._clock.now().astimezone(SHANGHAI).strftime("%Y-%m")

    def _key(self, kind: Kind, month: str) -> str:
        return f"dingtalk:quota:{self._app_key}:{kind}:{month}"

    async def record(self, kind: Kind, amount: int = 1) -> int:
        """Count ``amount`` calls/pushes; alert once when crossing 80 % and 100 % of the monthly quota."""
        month = self.month()
        used = await self._kv.incr(self._key(kind, month), amount, ttl_seconds=COUNTER_TTL_S)
        limit = self._limits[kind]
        if limit <= 0:
            return used
        before = used - amount
        warn_at = math.ceil(limit * WARN_RATIO)
        # The counter is atomic, so exactly one caller (in any instance) sees each threshold crossed.
        if before < warn_at <= used < limit:
            await self._send(f"dingtalk:quota:{kind}:{month}:80",
                             f"钉钉本月{_LABEL[kind]}已用80%（{used}/{limit}），请注意控制消息数量。")
        if before < limit <= used:
            await self._send(f"dingtalk:quota:{kind}:{month}:100",
                             f"钉钉本月{_LABEL[kind]}已达上限（{used}/{limit}），后续消息可能无法送达，"
                             "请联系管理员扩容或等待下月重置。")
        return used

    def record_later(self, kind: Kind) -> None:
        """Count one without waiting. Counts that arrive while one is being written go together in the
        next write: under load one KV round trip counts many pushes instead of one each."""
        self._pending[kind] += 1
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending(), name="dingtalk-quota-count")

    async def _write_pending(self) -> None:
        try:
            while any(self._pending.values()):
                for kind, amount in list(self._pending.items()):
                    if not amount:
                        continue
                    self._pending[kind] = 0
                    try:
                        await self.record(kind, amount)
                    except StorageUnavailable:
                        pass  # an estimate: a KV outage loses these counts, never a message
                    except Exception:
                        log.exception("counting dingtalk %s usage failed", kind)
        finally:
            self._writer = None

    async def flush(self) -> None:
        """Wait until the counts recorded so far are written."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def exhausted(self, kind: Kind, code: str) -> None:
        """DingTalk said the quota is gone: remember it (fail fast) and tell the admins once."""
        month = self.month()
        if await self._kv.set_if_absent(self._flag(kind, month), code, EXHAUSTED_FLAG_TTL_S):
            await self._send(f"dingtalk:quota:{kind}:{month}:exhausted",
                             f"钉钉返回本月{_LABEL[kind]}已用完（错误码 {code}），消息已暂停发送，"
                             "请在钉钉开放平台扩容或等待下月重置。")

    async def is_exhausted(self, kind: Kind) -> bool:
        return await self._kv.get(self._flag(kind, self.month())) is not None

    def _flag(self, kind: Kind, month: str) -> str:
        return f"dingtalk:quota-exhausted:{self._app_key}:{kind}:{month}"

    async def usage(self) -> dict[str, object]:
        await self.flush()
        month = self.month()
        api = await self._kv.get(self._key("api", month))
        push = await self._kv.get(self._key("push", month))
        return {
            "api_used": int(api or 0),
            "api_quota": self._limits["api"],
            "push_used": int(push or 0),
            "push_quota": self._limits["push"],
            "month": month,
        }

    async def ratio(self, kind: Kind) -> float:
        """Share of this month's quota used so far (0.0 when the quota is unlimited/0)."""
        limit = self._limits[kind]
        if limit <= 0:
            return 0.0
        return int(await self._kv.get(self._key(kind, self.month())) or 0) / limit

    async def low(self) -> bool:
        """At or past the warning line (80 %) for API calls or pushes: time to save calls."""
        return any([await self.ratio("api") >= WARN_RATIO, await self.ratio("push") >= WARN_RATIO])

    async def _send(self, key: str, text: str) -> None:
        await send_alert(self._alert, key, text)


def usage_line(usage: dict[str, object]) -> str:
    """The admins' one-line summary in /stats, e.g. ``钉钉本月用量：API 120/5000，推送 30/3000``."""
    return (f"钉钉本月用量：API {usage['api_used']}/{usage['api_quota']}，"
            f"推送 {usage['push_used']}/{usage['push_quota']}")
