"""dangjian-bot (党建助手): a Party-branch assistant for DingTalk, WeCom and a local chat."""

__version__ = "0.1.0"
