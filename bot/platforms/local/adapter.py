"""Local chat platform: JSON API (interface.md) plus the static chat page."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.clock import Clock
from bot.errors import StorageUnavailable
from bot.message import ConversationKind, IncomingMessage, MessageFormat, OutgoingMessage, Platform
from bot.platforms.base import Delivery, DeliveryStatus, DirectoryUser, InboundSink, PlatformHealth
from bot.platforms.local.backend import LocalBackend

STATIC = Path(__file__).parent / "static"
BOT_SENDER = "bot"
MAX_BODY = 64 * 1024
LONG_POLL_SLICE_S = 1.0  # other workers deliver too: the transcript is re-read at least this often
IMAGE_MARK = "[图片] "  # the transcript keeps text only: a picture is this mark + its file name
_IMAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,120}\.png$")
_IMAGE_LINE = re.compile(r"^\[图片\] ([A-Za-z0-9_-]{1,120}\.png)$", re.MULTILINE)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class LocalAdapter:
    platform = Platform.LOCAL

    def __init__(
        self, backend: LocalBackend, clock: Clock, public_url: str = "", images_dir: Path | None = None
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.public_url = public_url
        self.images_dir = images_dir.resolve() if images_dir is not None else None  # served at /chat/images/
        self._sink: InboundSink | None = None
        self._new_lines = asyncio.Condition()

    # -- PlatformAdapter -------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/chat", self._page),
            web.get("/chat/{name:app\\.js|style\\.css}", self._static),
            web.get("/chat/images/{name}", self._image),
            web.post("/api/local/messages", self._post_message),
            web.get("/api/local/messages", self._get_messages),
            web.get("/api/local/directory", self._directory),
        ]

    async def start(self, sink: InboundSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    async def health(self) -> PlatformHealth:
        return PlatformHealth(ok=True)

    async def directory(self) -> list[DirectoryUser]:
        return [DirectoryUser(p.sender_id, p.name, departments=(p.org,)) for p in await self.backend.people()]

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        lines = [(self._conversation_of(m), self._render(m)) for m in messages]
        await self.backend.append_bot_lines(lines)
        async with self._new_lines:
            self._new_lines.notify_all()
        return [Delivery(DeliveryStatus.SENT, platform_calls=1) for _ in messages]

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _conversation_of(message: OutgoingMessage) -> str:
        r = message.recipient
        return r.conversation_id or f"dm:{r.user_id}"

    @staticmethod
    def _render(message: OutgoingMessage) -> str:
        text = message.text
        if message.format is MessageFormat.IMAGE and _IMAGE_NAME.match(Path(message.file_path).name):
            text = f"{text}\n{IMAGE_MARK}{Path(message.file_path).name}".strip()
        elif message.format in (MessageFormat.FILE, MessageFormat.IMAGE) and message.file_name:
            text = f"{text}\n[文件] {message.file_name}".strip()
        if message.mention_user_ids and message.recipient.conversation_id:
            text = " ".join(f"@{m}" for m in message.mention_user_ids) + " " + text
        return text

    @staticmethod
    def _image_url(sender_id: str, text: str) -> str:
        """``/chat/images/<name>`` for a bot line that carries a picture, else ""."""
        match = _IMAGE_LINE.search(text) if sender_id == BOT_SENDER else None
        return f"/chat/images/{match.group(1)}" if match else ""

    def _reply_json(self, reply: OutgoingMessage, kind: ConversationKind) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": reply.text,
            "conversation_id": self._conversation_of(reply),
            "private": reply.recipient.is_direct and kind is ConversationKind.GROUP,
            "format": reply.format.value,
        }
        if url := self._image_url(BOT_SENDER, self._render(reply)):
            out["image_url"] = url
        return out

    async def _image(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if self.images_dir is None or not _IMAGE_NAME.match(name):
            raise web.HTTPNotFound(text="图片不存在 image not found")
        path = self.images_dir / name
        if not path.is_file():  # noqa: ASYNC240 - a stat, negligible
            raise web.HTTPNotFound(text="图片已清理或不存在 image not found")
        return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=86400"})

    async def _page(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "chat.html")

    async def _static(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / request.match_info["name"])

    async def _directory(self, _: web.Request) -> web.Response:
        people = await self.backend.people()
        groups = await self.backend.group_chats()
        return web.json_response(
            {
                "people": [
                    {"sender_id": p.sender_id, "name": p.name, "org": p.org, "roles": list(p.roles)} for p in people
                ],
                "groups": [{"conversation_id": c, "title": t} for c, t in groups],
            }
        )

    async def _read_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "请求体过大 (body too large)")
        # read() returns what has arrived so far; a chunked upload needs reading until EOF.
        raw = b""
        while len(raw) <= MAX_BODY:
            chunk = await request.content.read(MAX_BODY + 1 - len(raw))
            if not chunk:
                break
            raw += chunk
        if len(raw) > MAX_BODY:
            return _error(413, "请求体过大 (body too large)")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: [[[[…
            return _error(400, "请求不是有效的JSON (malformed JSON)")
        if not isinstance(body, dict):
            return _error(400, "请求体必须是JSON对象 (body must be an object)")
        for key in ("conversation_id", "sender_id", "text"):
            if not isinstance(body.get(key), str):
                return _error(400, f"缺少字段或类型错误：{key} (missing or non-string field: {key})")
        return body

    async def _post_message(self, request: web.Request) -> web.Response:
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        conversation_id, sender_id, text = body["conversation_id"], body["sender_id"], body["text"]
        message_id = body.get("message_id") or uuid.uuid4().hex
        if not isinstance(message_id, str) or len(message_id) > 200:
            return _error(400, "message_id 必须是不超过200字符的字符串 (bad message_id)")
        if not sender_id.strip():
            return _error(400, "sender_id 不能为空 (empty sender_id)")
        if len(conversation_id) > 200 or len(sender_id) > 100:  # the transcript's column sizes
            return _error(400, "会话ID或发送人ID过长 (conversation_id or sender_id too long)")
        if conversation_id.startswith("dm:"):
            if conversation_id != f"dm:{sender_id}":
                return _error(400, "单聊会话只能由本人发送 (dm conversation belongs to another sender)")
            kind = ConversationKind.DIRECT
        elif conversation_id.startswith("group:") and len(conversation_id) > len("group:"):
            kind = ConversationKind.GROUP
        else:
            return _error(400, "会话ID应为 group:<组织名> 或 dm:<发送人> (bad conversation_id)")
        if self._sink is None:
            return _error(503, "机器人尚未就绪 (bot not started)")
        now = self.clock.now()
        msg = IncomingMessage(
            platform=Platform.LOCAL,
            conversation_id=conversation_id,
            conversation_kind=kind,
            sender_id=sender_id,
            text=text,
            message_id=message_id,
            received_at=now,
            is_to_me=True,
        )
        try:
            # The transcript keeps one line per message id; whether the message is handled is the bot's
            # dedup, not the transcript's: a retry after a 503 (line stored, message not) is still handled.
            await self.backend.append_member_line(conversation_id, sender_id, text[:4000], message_id)
            result = await self._sink(msg)
        except StorageUnavailable:
            return _error(503, "存储暂时不可用，请稍后重试 (storage unavailable)")
        replies = [self._reply_json(r, kind) for r in result.replies]
        return web.json_response({"replies": replies, "duplicate": result.duplicate})

    async def _get_messages(self, request: web.Request) -> web.Response:
        conversation_id = request.query.get("conversation_id", "")
        if not conversation_id:
            return _error(400, "缺少参数 conversation_id (missing conversation_id)")
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _error(400, "after 必须是整数 (after must be an integer)")
        try:
            wait = min(float(request.query.get("wait", "0") or 0), 25.0)
        except ValueError:
            return _error(400, "wait 必须是秒数 (wait must be a number of seconds)")
        lines = await self.backend.lines_after(conversation_id, after)
        deadline = asyncio.get_running_loop().time() + wait
        while not lines and (left := deadline - asyncio.get_running_loop().time()) > 0:
            # Long poll: wake when this process's dispatcher delivers something, and look at the
            # transcript at least every second for lines another worker or instance delivered.
            async with self._new_lines:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_lines.wait(), timeout=min(left, LONG_POLL_SLICE_S))
            lines = await self.backend.lines_after(conversation_id, after)
        messages: list[dict[str, Any]] = []
        for ln in lines:
            message: dict[str, Any] = {"seq": ln.seq, "sender_id": ln.sender_id, "text": ln.text, "at": ln.at}
            if url := self._image_url(ln.sender_id, ln.text):
                message["image_url"] = url
            messages.append(message)
        return web.json_response({"messages": messages})


def iso(at: dt.datetime) -> str:
    return at.isoformat()
