"""WeCom (企业微信): self-built app callbacks and message/send, group-robot webhooks, the smart robot."""

from bot.platforms.wecom.adapter import WeComAdapter
from bot.platforms.wecom.settings import GroupWebhook, WeComSettings, groups_from_config, missing_config

__all__ = ["GroupWebhook", "WeComAdapter", "WeComSettings", "groups_from_config", "missing_config"]
