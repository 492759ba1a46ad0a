"""The WeCom HTTP client: access token, one ``check_response``, and the retry policy.

Every call, with or without a token, goes through ``WeComClient.call`` so errcode handling lives in one
place: 40014/42001 → drop the token, refetch once, retry once; -1 and 5xx/timeouts → up to 3 attempts
with backoff; 45033 → short jittered retries; 45009 → surfaced as retryable after ≥60 s (never waited
out in-process); 60020 and 40001 → not retryable, admins are told once in plain Chinese.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from bot.errors import PlatformAPIError
from bot.kv.base import KV
from bot.platforms.base import AdminAlert
from bot.platforms.wecom.settings import WeComSettings
from bot.platforms.wecom.token import TokenCache

log = logging.getLogger("bot.platforms.wecom")

Sleep = Callable[[float], Awaitable[None]]
FormFactory = Callable[[], aiohttp.FormData]
MAX_ATTEMPTS = 3
ALERT_TTL = 6 * 3600.0
_FROM_IP = re.compile(r"from ip:\s*([0-9A-Fa-f.:]+)")


class ErrorKind(enum.StrEnum):
    TOKEN = "token"  # 40014 / 42001: the token was revoked or expired
    BUSY = "busy"  # -1: system busy
    TRANSPORT = "transport"  # 5xx, timeout, connection error, non-JSON body
    RATE = "rate"  # 45009: frequency ban (per-minute bans last 60 s)
    CONCURRENCY = "concurrency"  # 45033
    IP_DENIED = "ip_denied"  # 60020: egress IP not in 企业可信IP
    NO_RECIPIENT = "no_recipient"  # 81013: every recipient invalid
    CONFIG = "config"  # 40001 wrong secret, 301002 wrong agentid, HTTP 4xx
    OTHER = "other"


_KINDS: dict[int, ErrorKind] = {
    40014: ErrorKind.TOKEN,
    42001: ErrorKind.TOKEN,
    -1: ErrorKind.BUSY,
    45009: ErrorKind.RATE,
    45033: ErrorKind.CONCURRENCY,
    60020: ErrorKind.IP_DENIED,
    81013: ErrorKind.NO_RECIPIENT,
    40001: ErrorKind.CONFIG,
    301002: ErrorKind.CONFIG,
}
_RETRY_AFTER: dict[ErrorKind, float] = {
    ErrorKind.TOKEN: 60.0,
    ErrorKind.BUSY: 30.0,
    ErrorKind.TRANSPORT: 30.0,
    ErrorKind.RATE: 60.0,
    ErrorKind.CONCURRENCY: 5.0,
}


class WeComAPIError(PlatformAPIError):
    def __init__(self, errcode: int, message: str, kind: ErrorKind, payload: Mapping[str, Any] | None = None):
        retry_after = _RETRY_AFTER.get(kind)
        super().__init__(
            "wecom",
            str(errcode),
            message,
            retryable=retry_after is not None,
            retry_after=retry_after,
            token_invalid=kind is ErrorKind.TOKEN,
        )
        self.errcode = errcode
        self.kind = kind
        self.payload = dict(payload or {})


def check_response(payload: object, *, status: int = 200) -> dict[str, Any]:
    """The one place where HTTP status and errcode become success or a typed ``WeComAPIError``."""
    if status >= 500 or status == 429:
        raise WeComAPIError(-status, f"HTTP {status}", ErrorKind.TRANSPORT)
    if status != 200:
        raise WeComAPIError(-status, f"HTTP {status} (check api_base / webhook_url)", ErrorKind.CONFIG)
    if not isinstance(payload, dict):
        raise WeComAPIError(-status, "response is not a JSON object", ErrorKind.TRANSPORT)
    errcode = payload.get("errcode", 0)
    if errcode in (0, None, "0"):
        return payload
    try:
        code = int(errcode)
    except (TypeError, ValueError):
        code = -2
    message = str(payload.get("errmsg", ""))
    raise WeComAPIError(code, message, _KINDS.get(code, ErrorKind.OTHER), payload)


_STATIC_ALERTS: dict[int, str] = {
    40001: "企业微信应用Secret不正确（错误码40001），请检查配置 [wecom] secret 是否为该应用的Secret。",
    93000: "企业微信群机器人的webhook地址无效，或机器人已被移出群聊（错误码93000），请检查 [[groups]] 的 webhook_url。",
    301002: "企业微信应用AgentId与Secret不属于同一个应用（错误码301002），请检查 [wecom] agent_id。",
}


def _alert_text(exc: WeComAPIError) -> tuple[str, str] | None:
    """(dedup key, plain-Chinese fix) for errors only an admin can fix; None for the rest."""
    if exc.kind is ErrorKind.IP_DENIED:
        match = _FROM_IP.search(exc.message)
        ip = match.group(1) if match else "未知"
        text = f"企业微信拒绝了本机IP（from ip: {ip}），请在应用的“企业可信IP”中加入本服务器的出口IP。"
        return f"wecom:60020:{ip}", text
    fix = _STATIC_ALERTS.get(exc.errcode)
    return (f"wecom:{exc.errcode}", fix) if fix else None


class WeComClient:
    def __init__(
        self,
        settings: WeComSettings,
        kv: KV,
        session: aiohttp.ClientSession,
        admin_alert: AdminAlert | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._kv = kv
        self._session = session
        self._admin_alert = admin_alert
        self._sleep = sleep
        self._rng = rng
        self._timeout = aiohttp.ClientTimeout(total=settings.http_timeout_seconds)
        self.tokens = TokenCache(kv, settings.corp_id, settings.agent_id, self._fetch_token)
        self.last_error: WeComAPIError | None = None

    def url(self, path_or_url: str) -> URL:
        if path_or_url.startswith(("http://", "https://")):
            return URL(path_or_url, encoded=True)  # WeCom-issued URLs are used byte for byte
        return URL(self.settings.api_base + path_or_url)

    async def call(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: object = None,
        form: FormFactory | None = None,
        auth: bool = True,
    ) -> dict[str, Any]:
        """One API call with the retry policy; raises ``WeComAPIError`` when it finally fails."""
        token_retried = False
        attempt = 0
        while True:
            attempt += 1
            query = dict(params or {})
            token = await self.tokens.get() if auth else ""
            if auth:
                query["access_token"] = token
            try:
                payload = await self._once(method, self.url(path_or_url), query, json_body, form)
            except WeComAPIError as exc:
                if exc.kind is ErrorKind.TOKEN and auth and not token_retried:
                    token_retried = True
                    await self.tokens.invalidate(token)
                    continue
                delay = self._retry_delay(exc.kind, attempt)
                if delay is None:
                    await self._failed(exc)
                    raise
                log.warning(
                    "wecom %s: errcode %s, retry %d in %.1fs",
                    self.url(path_or_url).path,
                    exc.code,
                    attempt,
                    delay,
                )
                await self._sleep(delay)
                continue
            self.last_error = None
            return payload

    def _retry_delay(self, kind: ErrorKind, attempt: int) -> float | None:
        if attempt >= MAX_ATTEMPTS:
            return None
        if kind in (ErrorKind.BUSY, ErrorKind.TRANSPORT):
            return 0.5 * 2.0 ** (attempt - 1) + self._rng() * 0.25
        if kind is ErrorKind.CONCURRENCY:
            return 0.2 + self._rng() * 0.8
        return None

    async def _once(
        self,
        method: str,
        url: URL,
        query: Mapping[str, str],
        json_body: object,
        form: FormFactory | None,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method,
                url.update_query(query) if query else url,
                json=json_body,
                data=form() if form is not None else None,
                timeout=self._timeout,
            ) as resp:
                status = resp.status
                try:
                    payload = await resp.json(content_type=None)
                except ValueError:
                    payload = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeComAPIError(-599, f"{type(exc).__name__}: {exc}", ErrorKind.TRANSPORT) from exc
        return check_response(payload, status=status)

    async def _fetch_token(self) -> tuple[str, float]:
        s = self.settings
        payload = await self.call(
            "GET", "/cgi-bin/gettoken", params={"corpid": s.corp_id, "corpsecret": s.secret}, auth=False
        )
        token = payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComAPIError(-3, "gettoken returned no access_token", ErrorKind.TRANSPORT, payload)
        return token, float(payload.get("expires_in") or 7200)

    async def _failed(self, exc: WeComAPIError) -> None:
        self.last_error = exc
        alert = _alert_text(exc)
        if alert is None or self._admin_alert is None:
            return
        key, text = alert
        # The core's AdminAlert dedupes too; claiming the key here keeps a flood of sends to one alert.
        if not await self._kv.set_if_absent(f"wecom:alert:{key}", "1", ALERT_TTL):
            return
        try:
            await self._admin_alert(key, text)
        except Exception:  # an alert channel failure must not turn into a send failure
            log.exception("admin alert %s could not be delivered", key)
