"""Group-robot webhooks (send-only, ≤20/min per key) and smart-robot ``response_url`` replies.

Neither uses an access token: the webhook key and the response_code in the URL are the credentials.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.message import MessageFormat, OutgoingMessage
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.settings import DEFAULT_API_BASE
from bot.platforms.wecom.textsplit import split_utf8

WEBHOOK_TEXT_LIMIT = 2048
WEBHOOK_MARKDOWN_LIMIT = 4096
RESPONSE_URL_LIMIT = 20480


def rebase(url: str, api_base: str) -> str:
    """Point WeCom's own absolute URLs at ``api_base`` (a proxy, or the fake server in tests)."""
    if url.startswith(DEFAULT_API_BASE + "/"):
        return api_base + url[len(DEFAULT_API_BASE) :]
    return url


def webhook_key(webhook_url: str) -> str:
    """The robot key from a webhook URL (or a bare key)."""
    if "://" not in webhook_url:
        return webhook_url.strip()
    keys = parse_qs(urlsplit(webhook_url).query).get("key", [])
    return keys[0] if keys else ""


def webhook_upload_url(webhook_url: str) -> str:
    """``…/webhook/send?key=K`` → ``…/webhook/upload_media?key=K`` (same host)."""
    parts = urlsplit(webhook_url)
    return f"{parts.scheme}://{parts.netloc}/cgi-bin/webhook/upload_media?key={webhook_key(webhook_url)}"


def webhook_bodies(msg: OutgoingMessage) -> list[dict[str, Any]]:
    """Webhook payloads for a text/markdown message; @-mentions ride on the last part."""
    mentions = list(dict.fromkeys(msg.mention_user_ids))
    title = f"**{msg.title}**\n" if msg.title else ""
    if msg.format is MessageFormat.MARKDOWN:
        # Webhook markdown ignores mentioned_list; only <@userid> in the content mentions anyone.
        tail = ("\n" + " ".join(f"<@{u}>" for u in mentions)) if mentions else ""
        parts = split_utf8(title + msg.text, WEBHOOK_MARKDOWN_LIMIT - len(tail.encode()))
        parts[-1] += tail
        return [{"msgtype": "markdown", "markdown": {"content": p}} for p in parts]
    text = f"【{msg.title}】\n{msg.text}" if msg.title else msg.text
    bodies: list[dict[str, Any]] = [
        {"msgtype": "text", "text": {"content": p}} for p in split_utf8(text, WEBHOOK_TEXT_LIMIT)
    ]
    if mentions:
        bodies[-1]["text"]["mentioned_list"] = mentions
    return bodies


def webhook_image_body(data: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    return {"msgtype": "image", "image": {"base64": encoded, "md5": hashlib.md5(data).hexdigest()}}


async def post_webhook(client: WeComClient, url: str, body: dict[str, Any]) -> None:
    await client.call("POST", url, json_body=body, auth=False)


async def reply_via_response_url(client: WeComClient, response_url: str, content: str) -> None:
    """The smart robot's active reply: one markdown POST, once per response_url, within an hour."""
    body = {"msgtype": "markdown", "markdown": {"content": split_utf8(content, RESPONSE_URL_LIMIT)[0]}}
    await client.call("POST", rebase(response_url, client.settings.api_base), json_body=body, auth=False)
