"""Safe XML, callback parsing, text splitting, routing and settings for WeCom (no network)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from bot.message import ConversationKind, MessageFormat, OutgoingMessage, Platform, Recipient
from bot.platforms.wecom.callbacks import extract_encrypt, parse_app_plaintext
from bot.platforms.wecom.parse import PayloadRejected, parse_robot_message
from bot.platforms.wecom.routing import RouteKind, plan_route
from bot.platforms.wecom.settings import (
    TRUSTED_IP_HINT,
    GroupWebhook,
    WeComSettings,
    groups_from_config,
    missing_config,
)
from bot.platforms.wecom.textsplit import split_utf8, utf8_len
from bot.platforms.wecom.xmlsafe import UnsafeXML, XMLRejected, parse_fields
from tests.fakes.wecom_server import robot_text_json

NOW = dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC)
V3_PLAIN = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779"
    "</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><Encrypt>&lol3;</Encrypt></xml>'
)
XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'


def test_xml_fields_cdata_and_plain() -> None:
    fields = parse_fields(V3_PLAIN)
    assert fields["FromUserName"] == "ChenJiaShun" and fields["Content"] == "你好"
    assert parse_fields("<xml><A><![CDATA[a < b & <!DOCTYPE>]]></A><B>1 &amp; 2</B></xml>") == {
        "A": "a < b & <!DOCTYPE>",
        "B": "1 & 2",
    }


@pytest.mark.parametrize("doc", [BOMB, XXE, '<!DOCTYPE xml SYSTEM "http://evil/x.dtd"><xml/>'])
def test_xml_rejects_doctype_and_entities(doc: str) -> None:
    with pytest.raises(UnsafeXML):
        parse_fields(doc)


@pytest.mark.parametrize(
    "doc", ["<xml><A>&undefined;</A></xml>", "<xml><A>", "not xml", "<a>" * 20 + "</a>" * 20]
)
def test_xml_rejects_malformed(doc: str) -> None:
    with pytest.raises(XMLRejected):
        parse_fields(doc)


def test_xml_size_limit() -> None:
    with pytest.raises(XMLRejected):
        parse_fields("<xml><A>" + "x" * 70_000 + "</A></xml>")


def test_envelope_xml_and_json() -> None:
    assert (
        extract_encrypt(b"<xml><ToUserName>c</ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>")
        == "abc+/="
    )
    assert extract_encrypt(b'{"encrypt": "xyz"}') == "xyz"
    assert extract_encrypt(b'{"ToUserName": "c", "Encrypt": "XYZ", "AgentID": 218}') == "XYZ"
    for bad in (b"<xml><ToUserName>c</ToUserName></xml>", b"{broken", b"[1]"):
        with pytest.raises(XMLRejected):
            extract_encrypt(bad)


def test_app_text_message() -> None:
    msg = parse_app_plaintext(V3_PLAIN, NOW)
    assert msg is not None
    assert msg.platform is Platform.WECOM and msg.conversation_kind is ConversationKind.DIRECT
    assert msg.sender_id == msg.conversation_id == "ChenJiaShun"
    assert msg.text == "你好" and msg.message_id == "1000002:1456453720"
    assert msg.received_at == dt.datetime.fromtimestamp(1476422779, tz=dt.UTC)


@pytest.mark.parametrize("event", ["enter_agent", "subscribe", "click", "template_card_event"])
def test_app_events_are_ignored(event: str) -> None:
    xml = (
        "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        "<EventKey><![CDATA[]]></EventKey><AgentID>1000002</AgentID></xml>"
    )
    assert parse_app_plaintext(xml, NOW) is None


def test_app_image_ignored_and_voice_recognition_used() -> None:
    base = "<xml><FromUserName>u1</FromUserName><CreateTime>1700000000</CreateTime><MsgId>9</MsgId><AgentID>5</AgentID>"
    assert parse_app_plaintext(base + "<MsgType>image</MsgType><PicUrl>http://x</PicUrl></xml>", NOW) is None
    voice = parse_app_plaintext(base + "<MsgType>voice</MsgType><Recognition>已完成</Recognition></xml>", NOW)
    assert voice is not None and voice.text == "已完成" and voice.message_id == "5:9"
    with pytest.raises(PayloadRejected):
        parse_app_plaintext("<xml><MsgType>text</MsgType><Content>x</Content></xml>", NOW)


def test_robot_group_message_strips_mention() -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC"
    msg = parse_robot_message(
        robot_text_json("MSGID1", "zhangsan", "@党建助手\u2005已学习", url, "CHATID"), NOW
    )
    assert msg is not None
    assert msg.conversation_kind is ConversationKind.GROUP and msg.conversation_id == "CHATID"
    assert msg.text == "已学习" and msg.message_id == "MSGID1" and msg.sender_id == "zhangsan"
    assert msg.reply_handle["response_url"] == url and msg.reply_handle["chattype"] == "group"
    assert int(msg.reply_handle["response_url_expires"]) > NOW.timestamp() + 3000


def test_robot_single_chat_and_ignored_kinds() -> None:
    msg = parse_robot_message(robot_text_json("M2", "lisi", "@notamention 到", "https://x/r"), NOW)
    assert msg is not None and msg.conversation_kind is ConversationKind.DIRECT
    assert msg.conversation_id == "lisi" and msg.text == "@notamention 到"  # no stripping in 1:1
    stream = '{"msgid":"M3","chattype":"single","from":{"userid":"u"},"msgtype":"stream","stream":{"id":"S"}}'
    event = '{"msgid":"M4","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}}'
    assert parse_robot_message(stream, NOW) is None and parse_robot_message(event, NOW) is None
    mixed = (
        '{"msgid":"M5","chattype":"single","from":{"userid":"u"},"msgtype":"mixed","mixed":{"msg_item":'
        '[{"msgtype":"text","text":{"content":"请假"}},{"msgtype":"image","image":{"url":"x"}}]}}'
    )
    mixed_msg = parse_robot_message(mixed, NOW)
    assert mixed_msg is not None and mixed_msg.text == "请假"
    for bad in ("[]", "nope", '{"msgtype":"text","text":{"content":"x"}}'):
        with pytest.raises(PayloadRejected):
            parse_robot_message(bad, NOW)


def test_split_utf8_respects_bytes_and_lines() -> None:
    text = "\n".join(f"第{i}行：请于周五前提交学习心得" for i in range(200))
    parts = split_utf8(text, 2048)
    assert len(parts) > 1 and all(utf8_len(p) <= 2048 for p in parts)
    assert "\n".join(parts) == text
    long_line = "党" * 1000  # 3000 bytes, no newline: cut between characters
    assert "".join(split_utf8(long_line, 2048)) == long_line
    assert split_utf8("短", 2048) == ["短"]


def _out(**kw: object) -> OutgoingMessage:
    recipient = Recipient(Platform.WECOM, **kw)  # type: ignore[arg-type]
    return OutgoingMessage(recipient=recipient, text="hi")


def test_routing_rules() -> None:
    groups = {
        "g1": GroupWebhook(
            conversation_id="g1", webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
        )
    }
    assert plan_route(_out(user_id="u"), groups, NOW, app_ready=True).kind is RouteKind.DIRECT
    assert plan_route(_out(conversation_id="u"), groups, NOW, app_ready=True).target == "u"
    assert plan_route(_out(conversation_id="g1"), groups, NOW, app_ready=True).kind is RouteKind.WEBHOOK
    assert plan_route(_out(user_id="u"), groups, NOW, app_ready=False).kind is RouteKind.NONE
    handle = {
        "response_url": "https://r",
        "response_url_expires": str(int(NOW.timestamp()) + 60),
        "chattype": "group",
    }
    fresh = OutgoingMessage(Recipient(Platform.WECOM, conversation_id="chat9"), "ok", reply_handle=handle)
    assert plan_route(fresh, groups, NOW, app_ready=True).kind is RouteKind.RESPONSE_URL
    later = NOW + dt.timedelta(minutes=2)
    assert plan_route(fresh, groups, later, app_ready=True).kind is RouteKind.NONE  # group, no webhook
    other = OutgoingMessage(Recipient(Platform.DINGTALK, user_id="u"), "x")
    assert plan_route(other, groups, NOW, app_ready=True).kind is RouteKind.NONE
    file_msg = OutgoingMessage(
        Recipient(Platform.WECOM, user_id="u"), "", MessageFormat.FILE, reply_handle=handle
    )
    assert (
        plan_route(file_msg, groups, NOW, app_ready=True).kind is RouteKind.DIRECT
    )  # response_url can't carry files


def test_settings_and_missing_config() -> None:
    empty = WeComSettings()
    missing = missing_config(empty)
    assert any("corp_id" in m for m in missing) and any("企业ID" in m for m in missing)
    assert any("AgentId" in m for m in missing) and any("Secret" in m for m in missing)
    assert any("Token" in m for m in missing) and any("EncodingAESKey" in m for m in missing)
    assert missing[-1] == TRUSTED_IP_HINT and "企业可信IP" in TRUSTED_IP_HINT and "2022" in TRUSTED_IP_HINT
    full = WeComSettings(
        enabled=True,
        corp_id="ww1",
        agent_id="1000002",
        secret="s",
        token="t",
        encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        api_base="http://x/",
    )
    assert missing_config(full) == [] and full.api_base == "http://x"
    assert "secret=" not in repr(full) and "encoding_aes_key=" not in repr(full)
    assert "robot" in missing_config(full.model_copy(update={"robot_token": "rt"}))[0]
    with pytest.raises(ValidationError):
        WeComSettings(encoding_aes_key="too-short")
    with pytest.raises(ValidationError):
        WeComSettings(agent_id="abc")
    rows = [
        {"platform": "wecom", "conversation_id": "c1", "webhook_url": "u"},
        {"platform": "dingtalk", "conversation_id": "d"},
    ]
    assert groups_from_config(rows) == [GroupWebhook(conversation_id="c1", webhook_url="u")]
