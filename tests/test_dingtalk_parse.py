"""Robot message parsing (§2.1 and variants), settings, and payload splitting."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from bot.message import ConversationKind, MessageFormat, OutgoingMessage, Platform, Recipient
from bot.platforms.dingtalk.parse import QuotaPushError, parse_robot_json, parse_robot_message
from bot.platforms.dingtalk.payloads import MSG_PARAM_LIMIT, robot_params, split_text, webhook_bodies
from bot.platforms.dingtalk.settings import DingTalkSettings, missing_for_mode
from tests.fakes.dingtalk_server import sample_bot_message

NOW = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)


def test_group_sample() -> None:
    msg = parse_robot_message(sample_bot_message(), NOW)
    assert msg.platform is Platform.DINGTALK
    assert msg.conversation_kind is ConversationKind.GROUP
    assert msg.conversation_id == "cidXyZ123=="
    assert msg.sender_id == "manager4220"
    assert msg.sender_name == "张三"
    assert msg.text == "明天下午开会收到"
    assert msg.message_id == "msgA1b2C3=="
    assert msg.received_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert msg.is_to_me is True
    assert msg.mentions == ()  # the robot's own staffId is empty
    assert msg.reply_handle == {
        "session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=9f8e7d",
        "session_webhook_expires_ms": "1700005400000",
        "sender_staff_id": "manager4220",
    }


def test_direct_message_uses_stable_dm_id() -> None:
    msg = parse_robot_message(sample_bot_message(conversationType="1", isInAtList=False,
                                                 conversationId="cidOther=="), NOW)
    assert msg.conversation_kind is ConversationKind.DIRECT
    assert msg.conversation_id == "dm:manager4220"
    assert msg.is_to_me is True


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"text": {"content": " @党建助手 /stats 本月"}}, "/stats 本月"),
        ({"text": {"content": "\u2005 党费 50 \n"}}, "党费 50"),
        ({"text": None, "content": " 你好"}, "你好"),  # the HTTP-mode sample's top-level string
        ({"msgtype": "picture", "text": None, "content": {"downloadCode": "x"}}, ""),
        ({"msgtype": "audio", "text": None, "content": {"recognition": "到"}}, ""),
    ],
)
def test_text_variants(overrides: dict[str, object], text: str) -> None:
    assert parse_robot_message(sample_bot_message(**overrides), NOW).text == text


def test_create_at_as_string_and_missing() -> None:
    assert parse_robot_message(sample_bot_message(createAt="1700000000000"), NOW).received_at.year == 2023
    body = sample_bot_message()
    del body["createAt"]
    assert parse_robot_message(body, NOW).received_at == NOW


def test_mentions_and_not_to_me() -> None:
    msg = parse_robot_message(sample_bot_message(
        isInAtList=False, atUsers=[{"dingtalkId": "$a", "staffId": "user002"}, {"dingtalkId": "$b"}]), NOW)
    assert msg.mentions == ("user002",)
    assert msg.is_to_me is False


def test_no_session_webhook_no_handle() -> None:
    body = sample_bot_message()
    del body["sessionWebhook"]
    assert parse_robot_message(body, NOW).reply_handle == {}


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1,2]", json.dumps(sample_bot_message(msgId="")).encode(),
     json.dumps(sample_bot_message(conversationType="3")).encode(),
     json.dumps(sample_bot_message(conversationId=None)).encode(),
     json.dumps(sample_bot_message(senderStaffId="", senderId="")).encode(),
     json.dumps(sample_bot_message(createAt="yesterday")).encode(), b"\xff\xfe"],
)
def test_malformed_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_robot_json(raw, NOW)


def test_quota_push_is_recognised() -> None:
    body = sample_bot_message(text=None, errorCode=20001,
                              errorMessage="受调用量超量影响，当前我的消息服务已经暂停")
    del body["text"]
    with pytest.raises(QuotaPushError) as info:
        parse_robot_message(body, NOW)
    assert info.value.message_id == "msgA1b2C3=="


# --- settings -------------------------------------------------------------------------------------------

def test_settings_defaults_and_robot_code() -> None:
    s = DingTalkSettings(app_key=" dingabc123 ", app_secret="s ")
    assert (s.enabled, s.mode, s.robot_code, s.app_secret) == (False, "stream", "dingabc123", "s")
    assert (s.monthly_api_quota, s.monthly_push_quota, s.qps) == (5000, 3000, 18.0)
    assert DingTalkSettings(app_key="a", robot_code="r").robot_code == "r"
    with pytest.raises(ValidationError):
        DingTalkSettings(app_sekret="typo")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DingTalkSettings(event_aes_key="short")


def test_missing_for_mode() -> None:
    assert len(missing_for_mode(DingTalkSettings())) == 3
    http = DingTalkSettings(mode="http", app_key="a", app_secret="b")
    assert [m for m in missing_for_mode(http) if "public_url" in m]
    assert missing_for_mode(http.model_copy(update={"public_url": "https://bot.example.cn"})) == []


# --- payloads -------------------------------------------------------------------------------------------

def test_split_text_respects_the_byte_limit() -> None:
    text = "\n".join(f"第{i}行：请于周五前完成党费缴纳\"确认\"" for i in range(2000))
    parts = robot_params(OutgoingMessage(Recipient(Platform.DINGTALK, user_id="u"), text))
    assert len(parts) > 1
    for key, param in parts:
        assert key == "sampleText"
        assert len(json.dumps(param, ensure_ascii=False).encode()) <= MSG_PARAM_LIMIT
    assert "\n".join(p["content"] for _, p in parts) == text
    assert "".join(split_text("字" * 20000, 3000)) == "字" * 20000


def test_webhook_bodies_spill_mentions_over_50() -> None:
    msg = OutgoingMessage(Recipient(Platform.DINGTALK, conversation_id="cid"), "请缴纳党费",
                          format=MessageFormat.MARKDOWN, title="提醒")
    ids = [f"u{i}" for i in range(120)]
    bodies = webhook_bodies(msg, ids)
    assert [len(b["at"]["atUserIds"]) for b in bodies] == [50, 50, 20]
    assert bodies[0]["markdown"]["text"].startswith("请缴纳党费\n\n@u0 @u1")
    assert all(f"@{uid}" in b["markdown"]["text"] for b in bodies for uid in b["at"]["atUserIds"])
