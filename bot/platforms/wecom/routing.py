"""Which WeCom surface carries an outgoing message (pure; no I/O).

Order: a fresh smart-robot ``response_url`` (replies land where the member typed) → a member's userid
via the app's ``message/send`` → a group's robot webhook. A conversation id that is not a known group
is a member's 1:1 chat, whose id is their userid (see ``parse``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from bot.message import MessageFormat, OutgoingMessage, Platform
from bot.platforms.wecom.settings import GroupWebhook

NO_APP = "未配置企业微信自建应用（corp_id / agent_id / secret），无法给成员单独发消息"
NO_GROUP_ROUTE = (
    "该群没有配置群机器人webhook，也没有可用的智能机器人回复地址（response_url一小时内只能用一次）"
)
NOT_WECOM = "不是企业微信的消息"


class RouteKind(enum.StrEnum):
    DIRECT = "direct"
    WEBHOOK = "webhook"
    RESPONSE_URL = "response_url"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    target: str = ""  # userid (DIRECT) or response_url (RESPONSE_URL)
    group: GroupWebhook | None = None
    reason: str = ""  # why there is no route (NONE)


def fresh_response_url(msg: OutgoingMessage, now: dt.datetime) -> str:
    handle = msg.reply_handle
    url = handle.get("response_url", "")
    try:
        expires = float(handle.get("response_url_expires", "0"))
    except ValueError:
        return ""
    return url if url and expires > now.timestamp() else ""


def plan_route(
    msg: OutgoingMessage,
    groups: Mapping[str, GroupWebhook],
    now: dt.datetime,
    *,
    app_ready: bool,
    use_response_url: bool = True,
) -> Route:
    recipient = msg.recipient
    if recipient.platform is not Platform.WECOM:
        return Route(RouteKind.NONE, reason=NOT_WECOM)
    if use_response_url and msg.format in (MessageFormat.TEXT, MessageFormat.MARKDOWN):
        url = fresh_response_url(msg, now)
        if url:
            return Route(RouteKind.RESPONSE_URL, target=url)
    if recipient.user_id:
        return (
            Route(RouteKind.DIRECT, target=recipient.user_id)
            if app_ready
            else Route(RouteKind.NONE, reason=NO_APP)
        )
    group = groups.get(recipient.conversation_id)
    if group is not None and group.webhook_url:
        return Route(RouteKind.WEBHOOK, group=group)
    if group is not None or msg.reply_handle.get("chattype") == "group":
        return Route(RouteKind.NONE, reason=NO_GROUP_ROUTE)
    if not app_ready:
        return Route(RouteKind.NONE, reason=NO_APP)
    return Route(RouteKind.DIRECT, target=recipient.conversation_id)
