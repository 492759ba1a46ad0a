"""Builds the DingTalk and WeCom adapters from settings (composition root helper)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot import sections
from bot.message import Platform
from bot.platforms.base import AdminAlert, PlatformAdapter
from bot.services import Services


def build_adapters(
    services: Services,
    http: aiohttp.ClientSession,
    alert: AdminAlert,
    on_contact_event: Callable[[Any], Awaitable[None]] | None = None,
    stream_consumer: bool = True,
) -> dict[Platform, PlatformAdapter]:
    settings = services.settings
    groups = [g.model_dump() for g in settings.groups]
    adapters: dict[Platform, PlatformAdapter] = {}
    wecom = sections.wecom_settings(settings)
    if wecom.enabled:
        from bot.platforms.wecom import WeComAdapter, groups_from_config

        adapters[Platform.WECOM] = WeComAdapter(wecom, groups_from_config(groups), services.kv, services.clock, http, alert)
    dingtalk = sections.dingtalk_settings(settings)
    if dingtalk.enabled:
        from bot.platforms.dingtalk.adapter import DingTalkAdapter
        from bot.platforms.dingtalk.settings import GroupWebhook

        if not dingtalk.public_url and settings.server.public_url:
            dingtalk = dingtalk.model_copy(update={"public_url": settings.server.public_url})
        dt_groups = [GroupWebhook.model_validate(g) for g in groups if g["platform"] == "dingtalk"]
        adapters[Platform.DINGTALK] = DingTalkAdapter(
            dingtalk, dt_groups, services.kv, services.clock, http, alert, on_contact_event=on_contact_event,
            processes=settings.server.workers,  # `run --workers N`: the app's QPS is shared out
            stream_consumer=stream_consumer,
        )
    return adapters
