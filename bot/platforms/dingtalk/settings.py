"""Typed settings for the DingTalk app robot (``[dingtalk]``) and the per-group webhooks (``[[groups]]``).

The core loader reads the TOML, applies the env override for ``app_secret``
(``DANGJIAN_DINGTALK_APP_SECRET``) and builds these models; nothing here reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class DingTalkSettings(BaseModel):
    # Stray spaces in a pasted secret are the usual cause of Stream ``authFailed`` (fact sheet §11),
    # so every string is stripped. Unknown keys are rejected to surface typos at start-up.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    enabled: bool = False
    mode: Literal["stream", "http"] = "stream"
    app_key: str = ""
    app_secret: str = ""
    robot_code: str = ""  # empty: an internal app robot's code equals its AppKey (fact sheet §1.1)
    agent_id: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    monthly_api_quota: int = Field(default=5000, ge=0)
    monthly_push_quota: int = Field(default=3000, ge=0)
    # Tunables.
    qps: float = Field(default=18.0, gt=0, le=1000)  # token bucket below the documented 20 QPS per API
    stream_ping_timeout_s: float = Field(default=60.0, gt=0)
    callback_window_s: float = Field(default=3600.0, gt=0)  # HTTP-mode timestamp skew allowed
    # HTTP mode: answer a message's first reply to its chat in the callback's response (no API call, no
    # session-webhook POST); off: every reply goes out through the outbox.
    inline_replies: bool = True
    event_token: str = ""  # HTTP event subscription (事件订阅) token, optional
    event_aes_key: str = ""  # its 43-character aes_key
    public_url: str = ""  # how DingTalk reaches us in HTTP mode (the core may copy [server].public_url)

    @field_validator("api_base", "oapi_base", "public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("event_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if value and (len(value) != 43 or not value.isalnum()):
            raise ValueError("event_aes_key must be 43 letters/digits (the console's aes_key)")
        return value

    @model_validator(mode="after")
    def _default_robot_code(self) -> DingTalkSettings:
        if not self.robot_code:
            self.robot_code = self.app_key
        return self


class GroupWebhook(BaseModel):
    """One ``[[groups]]`` entry with platform = dingtalk; other keys (org, platform) are ignored here."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    conversation_id: str
    webhook_url: str = ""  # custom robot or the app robot's own group webhook, for @-mentions
    webhook_secret: str = ""  # 加签 secret (starts with SEC); empty when the robot uses keywords/IP only


def missing_for_mode(s: DingTalkSettings) -> list[str]:
    """What ``check-config`` must report as still missing for the configured mode (Chinese + key)."""
    missing: list[str] = []
    if not s.app_key:
        missing.append("应用 AppKey / Client ID（app_key）")
    if not s.app_secret:
        missing.append("应用 AppSecret / Client Secret（app_secret，或环境变量 DANGJIAN_DINGTALK_APP_SECRET）")
    if not s.robot_code:
        missing.append("机器人编码（robot_code，留空时使用 app_key）")
    if s.mode == "http" and not s.public_url:
        missing.append("公网访问地址（public_url，HTTP 模式下钉钉回调 {public_url}/dingtalk/callback）")
    if bool(s.event_token) != bool(s.event_aes_key):
        missing.append("事件订阅需同时配置 event_token 与 event_aes_key")
    return missing
