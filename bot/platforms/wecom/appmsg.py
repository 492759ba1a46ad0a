"""Self-built app endpoints: ``message/send``, ``media/upload`` and the directory.

Payload building lives here; errcode handling lives in ``client.check_response``.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.message import MessageFormat, OutgoingMessage
from bot.platforms.base import DirectoryUser
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.textsplit import split_utf8, utf8_len

APP_TEXT_LIMIT = 2048
CARD_TITLE_LIMIT = 128
CARD_DESCRIPTION_LIMIT = 512
_INACTIVE_STATUS = {2, 5}  # 2 = disabled, 5 = left the company


@dataclass(frozen=True, slots=True)
class SendResult:
    """Users WeCom refused (lower-cased, as WeCom returns them)."""

    invalid: frozenset[str] = frozenset()


def _titled(msg: OutgoingMessage) -> str:
    if msg.title and not msg.text.lstrip().startswith(msg.title):
        return f"【{msg.title}】\n{msg.text}"
    return msg.text


def app_bodies(msg: OutgoingMessage, card_url: str) -> list[dict[str, Any]]:
    """The message/send bodies (without touser/agentid) one outgoing text needs, in order."""
    if msg.format is MessageFormat.MARKDOWN:
        return [
            {"msgtype": "markdown", "markdown": {"content": p}} for p in split_utf8(msg.text, APP_TEXT_LIMIT)
        ]
    fits_card = utf8_len(msg.title) <= CARD_TITLE_LIMIT and utf8_len(msg.text) <= CARD_DESCRIPTION_LIMIT
    if msg.title and card_url and fits_card:
        # A card reads better for a titled reminder, but WeCom insists on a link behind it.
        card = {"title": msg.title, "description": msg.text, "url": card_url, "btntxt": "详情"}
        return [{"msgtype": "textcard", "textcard": card}]
    return [{"msgtype": "text", "text": {"content": p}} for p in split_utf8(_titled(msg), APP_TEXT_LIMIT)]


async def send_app_message(client: WeComClient, users: Sequence[str], body: dict[str, Any]) -> SendResult:
    """One ``message/send`` to ≤1000 users. 81013 (all invalid) raises; a partial failure does not."""
    s = client.settings
    payload = {
        **body,
        "touser": "|".join(users),
        "agentid": int(s.agent_id),
        "safe": 0,
        "enable_duplicate_check": 1 if s.duplicate_check_seconds else 0,
        "duplicate_check_interval": s.duplicate_check_seconds or 1800,
    }
    result = await client.call("POST", "/cgi-bin/message/send", json_body=payload)
    refused = "|".join(str(result.get(k) or "") for k in ("invaliduser", "unlicenseduser"))
    return SendResult(frozenset(u.lower() for u in refused.split("|") if u))


async def read_file(path: str) -> bytes:
    return await asyncio.to_thread(Path(path).read_bytes)  # files may be MBs: keep the loop free


def media_form(data: bytes, filename: str) -> aiohttp.FormData:
    # Unquoted: WeCom shows the filename as given, and a quoted one would read "2024%E5%B9%B4…".
    form = aiohttp.FormData(quote_fields=False)
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    form.add_field("media", data, filename=filename, content_type=content_type)
    return form


async def upload_media(client: WeComClient, data: bytes, filename: str, kind: str = "file") -> str:
    result = await client.call(
        "POST", "/cgi-bin/media/upload", params={"type": kind}, form=lambda: media_form(data, filename)
    )
    return str(result["media_id"])


def media_body(kind: str, media_id: str) -> dict[str, Any]:
    return {"msgtype": kind, kind: {"media_id": media_id}}


async def fetch_directory(client: WeComClient) -> list[DirectoryUser]:
    """Everyone visible to the app, department names resolved; one ``user/list`` per department."""
    listing = await client.call("GET", "/cgi-bin/department/list")
    departments = {int(d["id"]): str(d.get("name", "")) for d in listing.get("department", [])}
    users: dict[str, dict[str, Any]] = {}
    for dept_id in sorted(departments):  # sequential on purpose: parallel fan-out trips 45033
        page = await client.call("GET", "/cgi-bin/user/list", params={"department_id": str(dept_id)})
        for row in page.get("userlist", []):
            entry = users.setdefault(str(row["userid"]), {"row": row, "depts": []})
            entry["depts"].extend(int(d) for d in row.get("department", []))
    return [_directory_user(uid, e["row"], e["depts"], departments) for uid, e in users.items()]


def _directory_user(
    user_id: str, row: dict[str, Any], dept_ids: list[int], departments: dict[int, str]
) -> DirectoryUser:
    names = tuple(dict.fromkeys(departments[d] for d in dept_ids if d in departments))
    return DirectoryUser(
        user_id=user_id,
        name=str(row.get("name") or user_id),
        mobile=str(row.get("mobile") or ""),  # empty for apps created after 2022-06-20
        departments=names,
        active=row.get("status", 1) not in _INACTIVE_STATUS,
    )
