"""``deliver``: a batch of OutgoingMessage → the fewest DingTalk calls, one Delivery per message.

Routes, in order of preference:
1. a reply with a live session webhook (text/markdown) → ``sessionWebhook`` (@ the asker in groups);
   expired by time, ``300001``/``session.*`` or push quota gone → silently the API path below;
2. a group message with mentions and a configured ``[[groups]]`` webhook → custom robot with @
   (20/min queue); a misconfigured robot falls back to the API without @;
3. group → ``groupMessages/send``; direct (user id or ``dm:<userid>``) → ``oToMessages/batchSend``,
   identical payloads batched 20 users per call; FILE/IMAGE → one upload per file, then sampleFile/Image.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from bot.errors import PlatformAPIError
from bot.message import MessageFormat, OutgoingMessage, Platform
from bot.platforms.base import Delivery, DeliveryStatus
from bot.platforms.dingtalk.client import BATCH_MAX_USERS, DingTalkClient
from bot.platforms.dingtalk.errors import ROBOT_FLOW_CODES, is_session_gone
from bot.platforms.dingtalk.parse import user_from_direct_conversation
from bot.platforms.dingtalk.payloads import robot_params, webhook_bodies
from bot.platforms.dingtalk.settings import GroupWebhook
from bot.platforms.dingtalk.sign import signed_webhook_url

log = logging.getLogger("bot.platforms.dingtalk")

SENT, RETRY, FAILED = DeliveryStatus.SENT, DeliveryStatus.RETRY, DeliveryStatus.FAILED
_RANK = {SENT: 0, RETRY: 1, FAILED: 2}
SESSION_MARGIN_MS = 10_000  # do not start a reply on a webhook that dies within seconds
USER_FLOW_RETRY_S = 60.0
TOKEN_RETRY_S = 60.0  # flowControlledStaffIdList: per-user flow control, not a per-second window
_TEXTUAL = (MessageFormat.TEXT, MessageFormat.MARKDOWN)
_MEDIA_TYPE = {MessageFormat.FILE: "file", MessageFormat.IMAGE: "image"}


@dataclass
class _Outcome:
    status: DeliveryStatus = SENT
    detail: str = ""
    retry_after: float | None = None
    calls: int = 0

    def worsen(self, status: DeliveryStatus, detail: str, retry_after: float | None = None) -> None:
        if _RANK[status] > _RANK[self.status]:
            self.status, self.detail, self.retry_after = status, detail, retry_after
        elif status is RETRY and self.status is RETRY:
            self.retry_after = max(self.retry_after or 0.0, retry_after or 0.0)

    def error(self, exc: PlatformAPIError) -> None:
        if exc.quota:
            self.worsen(FAILED, f"quota exhausted ({exc.code})")
        elif exc.token_invalid:  # still invalid after a fresh token: credentials being changed, try later
            self.worsen(RETRY, exc.code, TOKEN_RETRY_S)
        elif exc.retryable:
            self.worsen(RETRY, exc.code, exc.retry_after or 1.0)
        else:
            self.worsen(FAILED, f"{exc.code}: {exc.message}")

    def delivery(self) -> Delivery:
        retry_after = self.retry_after if self.status is RETRY else None
        return Delivery(self.status, self.detail, retry_after, self.calls)


def direct_user(message: OutgoingMessage) -> str:
    return message.recipient.user_id or user_from_direct_conversation(message.recipient.conversation_id)


class Deliverer:
    def __init__(self, client: DingTalkClient, groups: Sequence[GroupWebhook]) -> None:
        self._client = client
        self._robots = {g.conversation_id: g for g in groups if g.webhook_url}

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        out = [_Outcome() for _ in messages]
        todo = [i for i, m in enumerate(messages) if self._acceptable(m, out[i])]
        replies = [i for i in todo if self._session_url(messages[i])]
        async with asyncio.TaskGroup() as tg:
            reply_tasks = {i: tg.create_task(self._via_session(messages[i], out[i])) for i in replies}
        rest = [i for i in todo if i not in reply_tasks or reply_tasks[i].result()]
        media = await self._upload(messages, rest, out)
        rest = [i for i in rest if out[i].status is SENT]
        direct = [i for i in rest if direct_user(messages[i])]
        group = [i for i in rest if not direct_user(messages[i])]
        async with asyncio.TaskGroup() as tg:
            for i in group:
                tg.create_task(self._to_group(messages[i], out[i], media.get(i, "")))
            for job in self._batches(messages, direct, out, media):
                tg.create_task(job)
        return [o.delivery() for o in out]

    @staticmethod
    def _acceptable(m: OutgoingMessage, o: _Outcome) -> bool:
        if m.recipient.platform is not Platform.DINGTALK:
            o.worsen(FAILED, f"not a DingTalk recipient ({m.recipient.platform})")
        elif m.format in _MEDIA_TYPE and not m.file_path:
            o.worsen(FAILED, "file message without file_path")
        return o.status is SENT

    # --- session webhook ------------------------------------------------------------------------------

    def _session_url(self, m: OutgoingMessage) -> str:
        url = m.reply_handle.get("session_webhook", "")
        # Only DingTalk's own host: a stored handle must never make us POST anywhere else.
        if not url or m.format not in _TEXTUAL or not url.startswith(self._client.settings.oapi_base + "/"):
            return ""
        try:
            expires_ms = int(m.reply_handle.get("session_webhook_expires_ms") or 0)
        except ValueError:
            return ""
        return url if expires_ms - SESSION_MARGIN_MS > self._client.now_s() * 1000 else ""

    async def _via_session(self, m: OutgoingMessage, o: _Outcome) -> bool:
        """Reply through the session webhook; True means "use the API path instead"."""
        url = m.reply_handle["session_webhook"]
        at_ids = list(m.mention_user_ids)
        asker = m.reply_handle.get("sender_staff_id", "")
        if asker and not direct_user(m) and asker not in at_ids:
            at_ids.insert(0, asker)
        for body in webhook_bodies(m, at_ids):
            o.calls += 1
            try:
                await self._client.post_webhook(url, body)
            except PlatformAPIError as exc:
                if is_session_gone(exc) or exc.quota:
                    log.info("session webhook unusable (%s), falling back to the robot API", exc.code)
                    return True
                o.error(exc)
                return False
        return False

    # --- media ----------------------------------------------------------------------------------------

    async def _upload(self, messages: Sequence[OutgoingMessage], idxs: list[int], out: list[_Outcome]) -> dict[int, str]:
        files: dict[tuple[str, str], list[int]] = {}
        for i in idxs:
            if (kind := _MEDIA_TYPE.get(messages[i].format)) is not None:
                files.setdefault((messages[i].file_path, kind), []).append(i)
        media: dict[int, str] = {}

        async def one(path: str, kind: str, members: list[int]) -> None:
            name = messages[members[0]].file_name or PurePath(path).name
            for i in members:
                out[i].calls += 1
            try:
                media_id = await self._client.upload_media(path, kind, name)
            except PlatformAPIError as exc:
                for i in members:
                    out[i].error(exc)
                return
            except OSError as exc:
                for i in members:
                    out[i].worsen(FAILED, f"file unreadable: {exc}")
                return
            media.update(dict.fromkeys(members, media_id))

        async with asyncio.TaskGroup() as tg:
            for (path, kind), members in files.items():
                tg.create_task(one(path, kind, members))
        return media

    # --- groups -----------------------------------------------------------------------------------------

    async def _to_group(self, m: OutgoingMessage, o: _Outcome, media_id: str) -> None:
        robot = self._robots.get(m.recipient.conversation_id)
        if (robot is not None and m.mention_user_ids and m.format in _TEXTUAL
                and not await self._via_robot(m, o, robot)):
            return
        for msg_key, param in robot_params(m, media_id):
            o.calls += 1
            try:
                await self._client.send_group(m.recipient.conversation_id, msg_key, param)
            except PlatformAPIError as exc:
                o.error(exc)
                return

    async def _via_robot(self, m: OutgoingMessage, o: _Outcome, robot: GroupWebhook) -> bool:
        """Send with @ through the group's custom robot; True means "use groupMessages/send instead"."""
        for body in webhook_bodies(m, list(m.mention_user_ids)):
            try:
                async with self._client.robots.slot(robot.webhook_url):  # waits, never drops (20/min)
                    # Sign after the wait: the timestamp must be fresh when DingTalk checks it.
                    now_ms = int(self._client.now_s() * 1000)
                    url = signed_webhook_url(robot.webhook_url, robot.webhook_secret, now_ms)
                    o.calls += 1
                    await self._client.post_webhook(url, body)
            except PlatformAPIError as exc:
                if exc.code in ROBOT_FLOW_CODES:
                    self._client.robots.back_off(robot.webhook_url)
                if exc.retryable:
                    o.error(exc)
                    return False
                log.warning("group robot for %s failed (%s); sending without @", m.recipient.conversation_id, exc)
                return True
        return False

    # --- direct ---------------------------------------------------------------------------------------

    def _batches(
        self, messages: Sequence[OutgoingMessage], idxs: list[int], out: list[_Outcome], media: dict[int, str]
    ) -> list[Coroutine[Any, Any, None]]:
        """Group identical payloads; one batchSend per 20 distinct users per message part."""
        groups: dict[str, tuple[list[tuple[str, dict[str, Any]]], dict[str, list[int]]]] = {}
        for i in idxs:
            parts = robot_params(messages[i], media.get(i, ""))
            key = json.dumps(parts, ensure_ascii=False, sort_keys=True)
            groups.setdefault(key, (parts, {}))[1].setdefault(direct_user(messages[i]), []).append(i)
        jobs: list[Coroutine[Any, Any, None]] = []
        for parts, users in groups.values():
            ids = list(users)
            for start in range(0, len(ids), BATCH_MAX_USERS):
                jobs.append(self._batch(parts, ids[start : start + BATCH_MAX_USERS], users, out))
        return jobs

    async def _batch(
        self, parts: list[tuple[str, dict[str, Any]]], chunk: list[str], users: dict[str, list[int]],
        out: list[_Outcome],
    ) -> None:
        for msg_key, param in parts:
            for u in chunk:
                for i in users[u]:
                    out[i].calls += 1
            try:
                result = await self._client.batch_send(chunk, msg_key, param)
            except PlatformAPIError as exc:
                for u in chunk:
                    for i in users[u]:
                        out[i].error(exc)
                return
            for u in result.invalid:
                for i in users.get(u, ()):
                    out[i].worsen(FAILED, f"invalid user id {u}")
            for u in result.flow_controlled:
                for i in users.get(u, ()):
                    out[i].worsen(RETRY, "flow controlled", USER_FLOW_RETRY_S)
            # Later parts only go to users who got this one.
            chunk = [u for u in chunk if u not in result.invalid and u not in result.flow_controlled]
            if not chunk:
                return
