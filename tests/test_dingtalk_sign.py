"""Signatures and event crypto against the fact sheet's vectors (§10.1–§10.3)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import SignatureError
from bot.platforms.dingtalk.events import EventCrypto, event_signature, parse_http_event, parse_stream_event
from bot.platforms.dingtalk.sign import compute_sign, custom_robot_sign, signed_webhook_url, verify_callback

TS = 1577262236757


def test_callback_sign_vector() -> None:
    assert compute_sign(str(TS), "this is a secret") == "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
    verify_callback(str(TS), "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=", "this is a secret", now_ms=TS)


@pytest.mark.parametrize(
    ("timestamp", "sign", "secret", "now_ms"),
    [
        (str(TS), "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=", "other secret", TS),  # forged
        (str(TS), "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=", "this is a secret", TS + 3_600_001),  # stale
        (str(TS), "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=", "this is a secret", TS - 3_600_001),  # future
        ("", "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=", "this is a secret", TS),  # missing ts
        (str(TS), "", "this is a secret", TS),  # missing sign
        ("abc", "x", "this is a secret", TS),  # garbage ts
        (str(TS), "签名", "this is a secret", TS),  # non-ASCII header
        (str(TS), compute_sign(str(TS), ""), "", TS),  # no secret configured: never accept
    ],
)
def test_callback_rejects(timestamp: str, sign: str, secret: str, now_ms: int) -> None:
    with pytest.raises(SignatureError):
        verify_callback(timestamp, sign, secret, now_ms=now_ms)


def test_callback_window_edge_is_inclusive() -> None:
    sign = compute_sign(str(TS), "s")
    verify_callback(str(TS), sign, "s", now_ms=TS + 3_600_000)
    with pytest.raises(SignatureError):
        verify_callback(str(TS), sign, "s", now_ms=TS + 1001, window_ms=1000)


def test_custom_robot_sign_vector() -> None:
    assert custom_robot_sign("this is secret", TS) == "hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"


def test_signed_webhook_url() -> None:
    url = signed_webhook_url("https://oapi.dingtalk.com/robot/send?access_token=abc", "this is secret", TS)
    query = parse_qs(urlsplit(url).query)
    assert query == {"access_token": ["abc"], "timestamp": [str(TS)],
                     "sign": ["hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="]}
    assert signed_webhook_url("https://x/robot/send?access_token=abc", "", TS).endswith("access_token=abc")


@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=2**45))
def test_sign_roundtrip(secret: str, ts: int) -> None:
    verify_callback(str(ts), compute_sign(str(ts), secret), secret, now_ms=ts)


# --- event crypto (§10.1, the published vector) ---------------------------------------------------------

TOKEN, AES_KEY, OWNER = "123456", "1234567890123456789012345678901234567890123", "dingsnotzck6pm5veliw"
SIG, EV_TS, NONCE = "9a95a004dd16f5c307e849b994173f76aa26e5eb", "1614767836", "A7Co0cJLMzIDtMMI"
ENCRYPT = "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA=="


def test_event_signature_vector() -> None:
    assert event_signature(TOKEN, EV_TS, NONCE, ENCRYPT) == SIG


async def test_event_decrypt_vector() -> None:
    payload = await EventCrypto(TOKEN, AES_KEY, OWNER).decrypt(SIG, EV_TS, NONCE, ENCRYPT)
    assert payload == {"plain": "success"}


@pytest.mark.parametrize(
    ("sig", "encrypt", "owner"),
    [("0" * 40, ENCRYPT, OWNER), (SIG, ENCRYPT, "dingsomeoneelse"),
     (event_signature(TOKEN, EV_TS, NONCE, "bm90IGJsb2Nrcw=="), "bm90IGJsb2Nrcw==", OWNER)],
)
async def test_event_decrypt_rejects(sig: str, encrypt: str, owner: str) -> None:
    with pytest.raises(SignatureError):
        await EventCrypto(TOKEN, AES_KEY, owner).decrypt(sig, EV_TS, NONCE, encrypt)


async def test_success_response_roundtrip() -> None:
    crypto = EventCrypto(TOKEN, AES_KEY, OWNER)
    answer = await crypto.success(1685501863357)
    assert set(answer) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert answer["timeStamp"] == "1685501863357"
    assert answer["msg_signature"] == event_signature(TOKEN, answer["timeStamp"], answer["nonce"], answer["encrypt"])
    decrypted = await crypto.decrypt(answer["msg_signature"], answer["timeStamp"], answer["nonce"], answer["encrypt"])
    assert decrypted == {"plain": "success"}


async def test_check_url_and_leave_event() -> None:
    crypto = EventCrypto(TOKEN, AES_KEY, OWNER)
    for body, expected in [
        ({"EventType": "check_url"}, None),
        ({"EventType": "user_leave_org", "CorpId": "dingcorp01", "eventId": "c7c7120f2c07",
          "timeStamp": "1685501863357", "userId": ["015xxxx227"]}, ("user_leave_org", ("015xxxx227",))),
        ({"EventType": "user_add_org", "TimeStamp": "1", "UserId": ["a", "b"], "eventId": "e2"},
         ("user_add_org", ("a", "b"))),
    ]:
        enc = await crypto.encrypt_text(json.dumps(body), 1685501863357)
        payload = await crypto.decrypt(enc["msg_signature"], enc["timeStamp"], enc["nonce"], enc["encrypt"])
        event = parse_http_event(payload)
        assert (event.event_type, event.user_ids) == expected if event else expected is None


def test_parse_stream_event() -> None:
    headers = {"eventType": "user_leave_org", "eventId": "ev1", "eventCorpId": "dingcorp01", "messageId": "m1"}
    event = parse_stream_event(headers, {"timeStamp": "1685501863357", "userId": ["015xxxx227"]})
    assert event is not None
    assert (event.event_id, event.user_ids, event.time_ms) == ("ev1", ("015xxxx227",), 1685501863357)
    assert parse_stream_event({"eventType": "chat_update_title"}, {}) is None
