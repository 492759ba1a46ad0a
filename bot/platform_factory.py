"""Builds the DingTalk and WeCom adapters from settings (composition root helper)."""

from __future__ import annotations

import aiohttp

from bot.message import Platform
from bot.platforms.base import AdminAlert, PlatformAdapter
from bot.services import Services


def build_adapters(services: Services, http: aiohttp.ClientSession, alert: AdminAlert) -> dict[Platform, PlatformAdapter]:
    adapters: dict[Platform, PlatformAdapter] = {}
    return adapters
