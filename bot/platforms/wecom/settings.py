"""Typed settings for WeCom: the `[wecom]` table plus the WeCom rows of `[[groups]]`.

Secrets are plain strings (the core's config loader fills them from env vars) but are kept out of
``repr`` so they never land in logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
_AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")

TRUSTED_IP_HINT = (
    "提示：2022年6月20日之后创建的自建应用，只能从“企业可信IP”中列出的IP调用接口；"
    "请在企业微信管理后台 → 应用 → 企业可信IP 中加入本服务器的出口IP，否则发送会失败（错误码60020）。"
)


class WeComSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    corp_id: str = ""
    agent_id: str = ""
    secret: str = Field(default="", repr=False)
    token: str = Field(default="", repr=False)
    encoding_aes_key: str = Field(default="", repr=False)
    api_base: str = DEFAULT_API_BASE
    robot_token: str = Field(default="", repr=False)
    robot_encoding_aes_key: str = Field(default="", repr=False)

    # Tunables. WeCom silently drops app messages beyond 30/min and 1000/h per member, so we pace.
    member_per_minute: int = Field(default=30, ge=1)
    member_per_hour: int = Field(default=1000, ge=1)
    webhook_per_minute: int = Field(default=20, ge=1)
    # Queue for a webhook slot at most this long per message; beyond it the message is a RETRY.
    webhook_max_wait_seconds: float = Field(default=120.0, ge=0)
    # How long a callback waits for the core before answering 200 (WeCom waits 5 s): storage trouble within
    # it becomes a 503, which WeCom redelivers; slower handling continues after the 200.
    ack_wait_seconds: float = Field(default=3.0, ge=0, le=4.5)
    send_batch_size: int = Field(default=1000, ge=1, le=1000)
    # WeCom drops a byte-identical message/send inside this window, which makes our own retries safe.
    duplicate_check_seconds: int = Field(default=600, ge=0, le=14400)
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    callback_body_limit: int = Field(default=64 * 1024, ge=1024)
    # Link behind a textcard's button (e.g. the server's public_url); empty → titled messages are text.
    card_url: str = ""

    @field_validator("agent_id", mode="before")
    @classmethod
    def _agent_id_digits(cls, value: object) -> str:
        text = str(value).strip()
        if text and not text.isdigit():
            raise ValueError("agent_id must be the numeric AgentId of the self-built app")
        return text

    @field_validator("encoding_aes_key", "robot_encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: str) -> str:
        if value and not _AES_KEY_RE.match(value):
            raise ValueError("EncodingAESKey must be exactly 43 letters/digits")
        return value

    @field_validator("api_base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def app_configured(self) -> bool:
        """Enough to call the server API (send, directory)."""
        return bool(self.corp_id and self.agent_id and self.secret)

    @property
    def callback_configured(self) -> bool:
        return bool(self.corp_id and self.token and self.encoding_aes_key)

    @property
    def robot_configured(self) -> bool:
        return bool(self.robot_token and self.robot_encoding_aes_key)


class GroupWebhook(BaseModel):
    """A WeCom group: its conversation id and, optionally, a group-robot webhook for pushes.

    ``conversation_id`` should be the smart robot's ``chatid`` of that group when a smart robot is in
    it too, so inbound (robot) and outbound (webhook) meet in one conversation.
    """

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    webhook_url: str = Field(default="", repr=False)


def groups_from_config(rows: Iterable[Mapping[str, object]]) -> list[GroupWebhook]:
    """The WeCom rows of ``[[groups]]`` (other platforms are skipped)."""
    return [
        GroupWebhook(
            conversation_id=str(row.get("conversation_id") or ""),
            webhook_url=str(row.get("webhook_url") or ""),
        )
        for row in rows
        if str(row.get("platform") or "") == "wecom" and row.get("conversation_id")
    ]


def missing_config(s: WeComSettings) -> list[str]:
    """What an operator still has to fill in, in Chinese; empty when the app is fully configured."""
    missing = [
        label
        for present, label in (
            (s.corp_id, "企业ID（corp_id，管理后台 → 我的企业 → 企业ID）"),
            (s.agent_id, "应用AgentId（agent_id，应用详情页）"),
            (s.secret, "应用Secret（secret，或环境变量 DANGJIAN_WECOM_SECRET）"),
            (s.token, "接收消息的Token（token，应用 → 接收消息 → 设置API接收）"),
            (
                s.encoding_aes_key,
                "接收消息的EncodingAESKey（encoding_aes_key，或环境变量 DANGJIAN_WECOM_ENCODING_AES_KEY）",
            ),
        )
        if not present
    ]
    if bool(s.robot_token) != bool(s.robot_encoding_aes_key):
        missing.append(
            "智能机器人的Token和EncodingAESKey需要同时填写（robot_token / robot_encoding_aes_key）"
        )
    if missing:
        missing.append(TRUSTED_IP_HINT)
    return missing
