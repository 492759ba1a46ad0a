"""Async DingTalk OpenAPI client over one aiohttp ClientSession.

- Access token (fact sheet §1.2) cached in the shared KV, refreshed 5 minutes before expiry, fetched under
  a KV lock so several instances never stampede the rate-limited token endpoint; an in-process copy saves
  a KV read per call. On an invalid-token answer the token is dropped, refetched and the call retried once.
- Every app API call passes a per-process token bucket (``qps``) and is counted in the monthly quota
  (token, Stream gateway and contacts APIs are exempt, §4.1). Webhook sends count as pushes.
- All answers go through ``errors.check_response``; repeated flow control backs off exponentially.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.errors import PlatformAPIError
from bot.kv.base import KV
from bot.platforms.base import AdminAlert
from bot.platforms.dingtalk.errors import PLATFORM, check_response, classify, is_flow_control
from bot.platforms.dingtalk.limits import NowFn, RobotThrottle, SleepFn, TokenBucket
from bot.platforms.dingtalk.quota import Kind, QuotaMeter
from bot.platforms.dingtalk.runtime import SessionHolder, send_alert
from bot.platforms.dingtalk.settings import DingTalkSettings

log = logging.getLogger("bot.platforms.dingtalk")

REFRESH_MARGIN_S = 300.0  # refresh 5 min before expiry, like the Stream SDK
MAX_FLOW_BACKOFF_S = 60.0
BATCH_MAX_USERS = 20  # oToMessages/batchSend parameter table (§3.3)
DOCUMENTED_QPS = 20.0  # per app and API (§4.5); [dingtalk] qps stays below it


@dataclass(frozen=True, slots=True)
class BatchResult:
    invalid: frozenset[str]
    flow_controlled: frozenset[str]
    process_query_key: str = ""


def process_rate(qps: float, processes: int) -> tuple[float, float]:
    """(rate, burst) of one process's token bucket when ``processes`` send for the same app.

    The buckets are per process, so the app's second is shared out: ``processes × (rate + burst)`` never
    exceeds DOCUMENTED_QPS. Alone: the configured ``qps`` and what the limit leaves over it (2 at qps 18)."""
    ceiling = max(DOCUMENTED_QPS, qps + 1.0)  # a qps above DingTalk's limit (a fake server's) is taken as given
    share = ceiling / processes
    rate = qps if processes == 1 else min(qps / processes, share - 1.0)
    return rate, max(1.0, share - rate)


class DingTalkClient:
    def __init__(
        self, settings: DingTalkSettings, sessions: SessionHolder, kv: KV, clock: Clock,
        admin_alert: AdminAlert, *, sleep: SleepFn = asyncio.sleep, monotonic: NowFn = time.monotonic,
        timeout_s: float = 10.0, processes: int = 1,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._kv = kv
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        limits: dict[Kind, int] = {"api": settings.monthly_api_quota, "push": settings.monthly_push_quota}
        self._admin_alert = admin_alert
        self.quota = QuotaMeter(kv, clock, settings.app_key, limits, admin_alert)
        # DingTalk counts calls per second: a bucket of ``qps`` tokens would let a saved-up burst of ``qps`` and
        # the steady ``qps`` land in the same second (36 calls at qps 18: QPS errors and retries in every large
        # send). The burst is what the documented limit leaves over the rate (2 at qps 18), so no second ever
        # sees more than DOCUMENTED_QPS calls, while short pauses between batches are still made up.
        rate, burst = process_rate(settings.qps, processes)
        self._bucket = TokenBucket(rate, capacity=burst, now=monotonic, sleep=sleep)
        self.robots = RobotThrottle(now=self.now_s, sleep=sleep)
        self._token: tuple[str, float] | None = None
        self._flow_strikes = 0

    def now_s(self) -> float:
        return self._clock.now().timestamp()

    # --- access token -------------------------------------------------------------------------------

    @property
    def _token_key(self) -> str:
        return f"dingtalk:token:{self.settings.app_key}"

    def _fresh(self, item: tuple[str, float] | None) -> str | None:
        if item is not None and item[1] - REFRESH_MARGIN_S > self.now_s():
            return item[0]
        return None

    async def _from_kv(self) -> str | None:
        raw = await self._kv.get(self._token_key)
        if raw is None:
            return None
        data = json.loads(raw)
        self._token = (str(data["token"]), float(data["expires_at"]))
        return self._fresh(self._token)

    async def access_token(self) -> str:
        token = self._fresh(self._token) or await self._from_kv()
        if token:
            return token
        async with self._kv.lock(f"dingtalk:token-lock:{self.settings.app_key}", timeout_seconds=30):
            # Another instance may have refreshed while we waited for the lock.
            return await self._from_kv() or await self._fetch_token()

    async def _fetch_token(self) -> str:
        try:
            body = await self.post_json(
                f"{self.settings.api_base}/v1.0/oauth2/accessToken",
                {"appKey": self.settings.app_key, "appSecret": self.settings.app_secret},
            )
        except PlatformAPIError as exc:
            if not exc.retryable:
                # Wrong credentials: nothing can be sent until an admin fixes them; keep messages for later.
                exc.token_invalid = True
                await self.credentials_rejected(exc.code)
            raise
        token, expire_in = str(body["accessToken"]), float(body.get("expireIn", 7200))
        self._token = (token, self.now_s() + expire_in)
        value = json.dumps({"token": token, "expires_at": self._token[1]})
        await self._kv.set(self._token_key, value, ttl_seconds=max(1.0, expire_in - REFRESH_MARGIN_S))
        log.info("dingtalk access token refreshed (expires in %.0f s)", expire_in)
        return token

    async def _invalidate(self, bad: str) -> None:
        if self._token is not None and self._token[0] == bad:
            self._token = None
        raw = await self._kv.get(self._token_key)
        # Only drop the shared copy if it is the bad one: another instance may already have replaced it.
        if raw is not None and json.loads(raw).get("token") == bad:
            await self._kv.delete(self._token_key)

    async def credentials_rejected(self, code: str) -> None:
        await send_alert(self._admin_alert, f"dingtalk:credentials:{code}",
                         f"钉钉应用凭证被拒绝（{code}），机器人无法收发消息。请检查配置中的 app_key / app_secret"
                         "（注意不要有多余的空格或换行）。")

    # --- transport ----------------------------------------------------------------------------------

    async def request(
        self, method: str, url: str, *, json_body: Any = None, data: Any = None,
        headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One HTTP exchange mapped through ``check_response``; network trouble becomes retryable."""
        try:
            async with self._sessions.get().request(
                method, url, json=json_body, data=data, headers=headers, params=params, timeout=self._timeout
            ) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except TimeoutError as exc:
            raise classify("timeout", "request timed out") from exc
        except aiohttp.ClientError as exc:
            raise classify("network", f"{type(exc).__name__}: {exc}") from exc
        return check_response(status, body)

    async def post_json(self, url: str, body: Any) -> dict[str, Any]:
        return await self.request("POST", url, json_body=body)

    async def _call(
        self, url: str, *, kind: Kind | None, oapi: bool, json_body: Any = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        if kind is not None and await self.quota.is_exhausted(kind):
            raise PlatformAPIError(PLATFORM, "quota.exhausted", "monthly quota exhausted", quota=True)
        for attempt in (0, 1):
            token = await self.access_token()
            await self._bucket.acquire()
            # v1.0 APIs take the token as a header, oapi ones as a query parameter (§1.2, §1.3).
            params = {"access_token": token} if oapi else None
            headers = None if oapi else {"x-acs-dingtalk-access-token": token}
            try:
                body = await self.request("POST", url, json_body=json_body, data=form() if form else None,
                                          headers=headers, params=params)
            except PlatformAPIError as exc:
                if exc.token_invalid and attempt == 0:
                    await self._invalidate(token)
                    continue
                await self._after_error(exc, kind)
                raise
            self._flow_strikes = 0
            if kind is not None:
                await self.quota.record(kind)
            return body
        raise AssertionError("unreachable")

    async def _after_error(self, exc: PlatformAPIError, kind: Kind | None) -> None:
        if exc.quota and kind is not None:
            await self.quota.exhausted(kind, exc.code)
        elif is_flow_control(exc):
            # QPS windows reset each second; repeated hits back off 1 s, 2 s, 4 s … (§4.5).
            self._flow_strikes += 1
            exc.retry_after = min(MAX_FLOW_BACKOFF_S, (exc.retry_after or 1.0) * 2 ** (self._flow_strikes - 1))
        elif kind is not None and not exc.retryable and not exc.token_invalid:
            await self.quota.record(kind)  # rejected calls were still answered, hence counted by DingTalk

    async def api_post(self, path: str, body: Any, kind: Kind | None = "api") -> dict[str, Any]:
        return await self._call(f"{self.settings.api_base}{path}", kind=kind, oapi=False, json_body=body)

    async def oapi_post(self, path: str, body: Any, kind: Kind | None = "api") -> dict[str, Any]:
        return await self._call(f"{self.settings.oapi_base}{path}", kind=kind, oapi=True, json_body=body)

    # --- robot messages -----------------------------------------------------------------------------

    def _robot_body(self, msg_key: str, msg_param: dict[str, Any]) -> dict[str, Any]:
        return {"robotCode": self.settings.robot_code, "msgKey": msg_key,
                "msgParam": json.dumps(msg_param, ensure_ascii=False)}

    async def send_group(self, conversation_id: str, msg_key: str, msg_param: dict[str, Any]) -> str:
        body = self._robot_body(msg_key, msg_param) | {"openConversationId": conversation_id}
        answer = await self.api_post("/v1.0/robot/groupMessages/send", body)
        return str(answer.get("processQueryKey", ""))

    async def batch_send(self, user_ids: list[str], msg_key: str, msg_param: dict[str, Any]) -> BatchResult:
        if not 0 < len(user_ids) <= BATCH_MAX_USERS:
            raise ValueError(f"batchSend takes 1..{BATCH_MAX_USERS} users, got {len(user_ids)}")
        body = self._robot_body(msg_key, msg_param) | {"userIds": user_ids}
        answer = await self.api_post("/v1.0/robot/oToMessages/batchSend", body)
        return BatchResult(
            invalid=frozenset(map(str, answer.get("invalidStaffIdList") or ())),
            flow_controlled=frozenset(map(str, answer.get("flowControlledStaffIdList") or ())),
            process_query_key=str(answer.get("processQueryKey", "")),
        )

    async def post_webhook(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """Session webhook or custom-robot webhook: no token, no app QPS bucket; counted as a push."""
        if await self.quota.is_exhausted("push"):
            raise PlatformAPIError(PLATFORM, "quota.exhausted", "monthly push quota exhausted", quota=True)
        try:
            answer = await self.post_json(url, body)
        except PlatformAPIError as exc:
            if exc.quota:
                await self.quota.exhausted("push", exc.code)
            raise
        self.quota.record_later("push")
        return answer

    async def upload_media(self, path: str, media_type: str, file_name: str) -> str:
        """``media/upload`` (multipart field ``media`` + ``type``) → reusable media_id (§6)."""
        content = await asyncio.to_thread(Path(path).read_bytes)  # file I/O off the loop
        # aiohttp percent-encodes non-ASCII multipart filenames; DingTalk only needs the extension here
        # (the name people see is msgParam.fileName), so upload under an ASCII name.
        upload_name = file_name if file_name.isascii() else f"file{PurePath(file_name).suffix}"

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("type", media_type)
            data.add_field("media", content, filename=upload_name, content_type="application/octet-stream")
            return data

        answer = await self._call(f"{self.settings.oapi_base}/media/upload", kind="api", oapi=True, form=form)
        return str(answer["media_id"])
