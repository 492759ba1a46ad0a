"""DingTalk (钉钉) app robot: Stream or HTTP mode in, robot API / webhooks out."""

from bot.platforms.dingtalk.adapter import DingTalkAdapter
from bot.platforms.dingtalk.settings import DingTalkSettings, GroupWebhook, missing_for_mode

__all__ = ["DingTalkAdapter", "DingTalkSettings", "GroupWebhook", "missing_for_mode"]
