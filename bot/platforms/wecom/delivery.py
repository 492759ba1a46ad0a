"""``deliver``: fewest platform calls, one ``Delivery`` per message, same order out as in.

Direct messages with identical content share one ``message/send`` per ≤1000 members; group messages
go one by one through their webhook (queued at ≤20/min per key); smart-robot replies to the same
``response_url`` are merged into its single allowed call.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.clock import Clock
from bot.kv.base import KV
from bot.message import MessageFormat, OutgoingMessage
from bot.platforms.base import Delivery, DeliveryStatus
from bot.platforms.wecom import appmsg, robots
from bot.platforms.wecom.client import ErrorKind, WeComAPIError, WeComClient
from bot.platforms.wecom.pacing import MemberPacer, WebhookLimiter
from bot.platforms.wecom.routing import Route, RouteKind, plan_route
from bot.platforms.wecom.settings import GroupWebhook

log = logging.getLogger("bot.platforms.wecom")

WEBHOOK_IMAGE_LIMIT = 2 * 1024 * 1024
RESPONSE_URL_CLAIM_TTL = 3600.0
PACED = "超过企业微信每人每分钟30条/每小时1000条的限制，稍后再发"
BACKLOG = "群机器人每分钟最多发送20条，排队已满，稍后再发"
INVALID_USER = "企业微信用户ID无效、未授权或不在应用可见范围内"
ContentKey = tuple[str, str, str, str, str]


def failure(exc: WeComAPIError, calls: int) -> Delivery:
    detail = f"企业微信错误 {exc.code}：{exc.message}"
    if exc.kind is ErrorKind.IP_DENIED:
        detail += "（请在应用的“企业可信IP”中加入本服务器的出口IP）"
    if exc.retryable:
        return Delivery(DeliveryStatus.RETRY, detail, retry_after=exc.retry_after, platform_calls=calls)
    return Delivery(DeliveryStatus.FAILED, detail, platform_calls=calls)


def _content_key(msg: OutgoingMessage) -> ContentKey:
    return (msg.format.value, msg.text, msg.title, msg.file_path, msg.file_name)


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Deliverer:
    def __init__(
        self,
        client: WeComClient,
        kv: KV,
        clock: Clock,
        groups: Mapping[str, GroupWebhook],
        pacer: MemberPacer,
        limiter: WebhookLimiter,
    ) -> None:
        self._client = client
        self._kv = kv
        self._clock = clock
        self._groups = groups
        self._pacer = pacer
        self._limiter = limiter
        self._settings = client.settings

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        routes = [self._plan(m) for m in messages]
        out: dict[int, Delivery] = {}
        await self._replies(messages, routes, out)
        direct = [(i, r.target) for i, r in enumerate(routes) if r.kind is RouteKind.DIRECT and i not in out]
        hooks = [(i, r.group) for i, r in enumerate(routes) if r.kind is RouteKind.WEBHOOK and i not in out]
        for i, r in enumerate(routes):
            if r.kind is RouteKind.NONE and i not in out:
                out[i] = Delivery(DeliveryStatus.FAILED, r.reason)
        direct_out, hook_out = await asyncio.gather(
            self._direct(messages, direct), self._webhooks(messages, [(i, g) for i, g in hooks if g])
        )
        out.update(direct_out)
        out.update(hook_out)
        return [out[i] for i in range(len(messages))]

    def _plan(self, msg: OutgoingMessage, *, use_response_url: bool = True) -> Route:
        now = self._clock.now()
        ready = self._settings.app_configured
        return plan_route(msg, self._groups, now, app_ready=ready, use_response_url=use_response_url)

    # --- smart-robot response_url -------------------------------------------------------------

    async def _replies(
        self, messages: Sequence[OutgoingMessage], routes: list[Route], out: dict[int, Delivery]
    ) -> None:
        by_url: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(routes):
            if r.kind is RouteKind.RESPONSE_URL:
                by_url[r.target].append(i)
        for url, indexes in by_url.items():
            error = await self._reply(url, [messages[i] for i in indexes])
            if error is None:
                out.update({i: Delivery(DeliveryStatus.SENT, platform_calls=1) for i in indexes})
                continue
            for i in indexes:  # fall back to webhook / message/send
                routes[i] = self._plan(messages[i], use_response_url=False)
                if routes[i].kind is RouteKind.NONE and isinstance(error, WeComAPIError):
                    out[i] = failure(error, 1)

    async def _reply(self, url: str, messages: list[OutgoingMessage]) -> WeComAPIError | str | None:
        """None when sent; otherwise why not (the caller falls back)."""
        claim = "wecom:respurl:" + hashlib.sha256(url.encode()).hexdigest()[:32]
        if not await self._kv.set_if_absent(claim, "1", RESPONSE_URL_CLAIM_TTL):
            return "response_url already used"
        content = "\n\n".join(f"**{m.title}**\n{m.text}" if m.title else m.text for m in messages)
        try:
            await robots.reply_via_response_url(self._client, url, content)
        except WeComAPIError as exc:
            if exc.retryable:
                await self._kv.delete(claim)  # it may still be unused: let a retry have it
            return exc
        return None

    # --- app message/send -----------------------------------------------------------------------

    async def _direct(
        self, messages: Sequence[OutgoingMessage], items: list[tuple[int, str]]
    ) -> dict[int, Delivery]:
        by_content: dict[ContentKey, list[tuple[int, str]]] = defaultdict(list)
        for i, user in items:
            by_content[_content_key(messages[i])].append((i, user))
        out: dict[int, Delivery] = {}
        for members in by_content.values():
            out.update(await self._direct_same(messages[members[0][0]], members))
        return out

    async def _app_bodies(self, msg: OutgoingMessage) -> tuple[list[dict[str, Any]], int]:
        """The bodies for one content and how many upload calls that took."""
        if msg.format not in (MessageFormat.FILE, MessageFormat.IMAGE):
            return appmsg.app_bodies(msg, self._settings.card_url), 0
        kind = "file" if msg.format is MessageFormat.FILE else "image"
        data = await appmsg.read_file(msg.file_path)
        name = msg.file_name or os.path.basename(msg.file_path)
        media_id = await appmsg.upload_media(self._client, data, name, kind)
        caption = appmsg.app_bodies(msg, "") if msg.text.strip() else []
        return [*caption, appmsg.media_body(kind, media_id)], 1

    async def _direct_same(self, msg: OutgoingMessage, members: list[tuple[int, str]]) -> dict[int, Delivery]:
        try:
            bodies, uploads = await self._app_bodies(msg)
        except WeComAPIError as exc:
            return {i: failure(exc, 1) for i, _ in members}
        except OSError as exc:
            return {i: Delivery(DeliveryStatus.FAILED, f"无法读取文件：{exc}") for i, _ in members}
        deferred = await self._pacer.admit((u for _, u in members), len(bodies))
        out = {
            i: Delivery(DeliveryStatus.RETRY, PACED, retry_after=deferred[u])
            for i, u in members
            if u in deferred
        }
        allowed = list(dict.fromkeys(u for _, u in members if u not in deferred))
        for chunk in _chunks(allowed, self._settings.send_batch_size):
            statuses = await self._send_chunk(chunk, bodies, uploads)
            out.update({i: statuses[u] for i, u in members if u in statuses})
        return out

    async def _send_chunk(
        self, chunk: list[str], bodies: list[dict[str, Any]], uploads: int
    ) -> dict[str, Delivery]:
        calls = uploads + len(bodies)
        invalid: set[str] = set()
        try:
            for body in bodies:
                invalid |= (await appmsg.send_app_message(self._client, chunk, body)).invalid
        except WeComAPIError as exc:
            return dict.fromkeys(chunk, failure(exc, calls))
        sent = Delivery(DeliveryStatus.SENT, platform_calls=calls)
        refused = Delivery(DeliveryStatus.FAILED, INVALID_USER, platform_calls=calls)
        return {u: refused if u.lower() in invalid else sent for u in chunk}

    # --- group robot webhooks -------------------------------------------------------------------

    async def _webhooks(
        self, messages: Sequence[OutgoingMessage], items: list[tuple[int, GroupWebhook]]
    ) -> dict[int, Delivery]:
        by_key: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, group in items:
            url = self._webhook_url(group.webhook_url)
            by_key[robots.webhook_key(url)].append((i, url))

        async def one_key(key: str, entries: list[tuple[int, str]]) -> dict[int, Delivery]:
            return {i: await self._webhook_one(messages[i], key, url) for i, url in entries}

        results = await asyncio.gather(*(one_key(k, e) for k, e in by_key.items()))
        return {i: d for part in results for i, d in part.items()}

    def _webhook_url(self, configured: str) -> str:
        base = self._settings.api_base
        if "://" not in configured:  # a bare key
            return f"{base}/cgi-bin/webhook/send?key={configured.strip()}"
        return robots.rebase(configured, base)

    async def _webhook_one(self, msg: OutgoingMessage, key: str, url: str) -> Delivery:
        calls = 0
        try:
            bodies = robots.webhook_bodies(msg) if msg.text.strip() else []
            if msg.format in (MessageFormat.FILE, MessageFormat.IMAGE):
                body, uploads = await self._webhook_media(msg, url)
                bodies.append(body)
                calls += uploads
            for body in bodies:
                backlog = await self._limiter.acquire(key, self._settings.webhook_max_wait_seconds)
                if backlog is not None:
                    return Delivery(DeliveryStatus.RETRY, BACKLOG, retry_after=backlog, platform_calls=calls)
                await robots.post_webhook(self._client, url, body)
                calls += 1
        except WeComAPIError as exc:
            return failure(exc, calls)
        except OSError as exc:
            return Delivery(DeliveryStatus.FAILED, f"无法读取文件：{exc}", platform_calls=calls)
        return Delivery(DeliveryStatus.SENT, platform_calls=calls)

    async def _webhook_media(self, msg: OutgoingMessage, url: str) -> tuple[dict[str, Any], int]:
        data = await appmsg.read_file(msg.file_path)
        if msg.format is MessageFormat.IMAGE and len(data) <= WEBHOOK_IMAGE_LIMIT:
            return robots.webhook_image_body(data), 0
        name = msg.file_name or os.path.basename(msg.file_path)
        result = await self._client.call(
            "POST",
            robots.webhook_upload_url(url),
            params={"type": "file"},
            form=lambda: appmsg.media_form(data, name),
            auth=False,
        )
        return {"msgtype": "file", "file": {"media_id": str(result["media_id"])}}, 1
