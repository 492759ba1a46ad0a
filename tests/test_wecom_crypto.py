"""WeCom callback crypto: the published vectors V1–V5, an independent implementation, and hypothesis."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ConfigError, SignatureError
from bot.platforms.wecom.crypto import (
    DecryptFailed,
    InvalidReceiveId,
    InvalidSignature,
    WeComCrypto,
    pkcs7_pad,
    pkcs7_unpad,
    sign,
)

# V1/V2: official docs and Tencent sample.
V1_TOKEN, V1_KEY, V1_CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
V1_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwG"
    "c2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9"
    "EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0"
    "lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
V1_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)
V2_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="

# V3: Tencent Python sample (ww corp, non-CDATA, Chinese).
V3_TOKEN, V3_KEY, V3_CORP = (
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)
V3_ECHO = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
V3_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kk"
    "YcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4K"
    "a7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f4"
    "9HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
V3_PLAIN = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779"
    "</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)
V3_JSON_ENCRYPT = (
    "cjhLUX7UU4yCSelv1vz7T0zT8huF51bAMVWriNvO1FMegHrQZNrtvRxbwf0fUPsFvwqR0U0fgiJNEA5Y30F2MoI2S7vv3EjVQ68C0cjw9frBoUE2"
    "Hj0BvFp9h3u6Vbsg4lc1C8AtHdaN8orKuNKkLRLuYEL52R1J3v8olJGZRLnRdVKIivixmX/eQpzgeExtp20jI1HxRP1AAZ6xZoILdqDPO549LO4W"
    "eG+685JRUTdiwcY5fjZlqeMxuT4PpMn1X9OWsS7NRj06Wa5E3Tvg4twjWp39KPfOdRte6P1T4JU="
)

# V4: wechatpy's suite, including a deterministic encrypt.
V4_TOKEN, V4_KEY, V4_CORP = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
V4_ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
V4_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6y"
    "dJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/T"
    "ywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5"
    "t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
V4_REPLY_PLAIN = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)
V4_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesE"
    "l5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsD"
    "f03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nT"
    "YjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)

# V5: locally generated smart-robot vector (receive id "").
V5_PLAIN = (
    '{"msgid":"MSGID1","aibotid":"AIBOTID","chatid":"CHATID","chattype":"group","from":{"userid":"zhangsan"},'
    '"response_url":"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC","msgtype":"text",'
    '"text":{"content":"@bot 已学习"}}'
)
V5_ENCRYPT = (
    "y514aRT8yYkYNee3kPvkrFsupdi2bEfnoi8MoTT13LwZAUkS2W7AaWF0bJ09p1tOhjc9W7Q3WTDm07k2vmPbm3FyL8tL1xs+zf2qhKzxKrqEo7QV"
    "9z4exYnhMYg2o9RFmrIx7tPKYq5q/NA1oUBxqU0MEgxVHJAJz02hmwm8xJfPqMv+i9RdFQj602jK/Po8ymaNmu23tnlREOOuma/j9cRZTMhHCufS"
    "e6mvvDXdgAJ6ihMDpIQC062JVNJ59EDLiLdWNjThQfeEh01mRQqlwmgNvRTFWlPgV8RjQeOEzF5EMFrsq6lnQl2qxmUMOHCv6WnqGXtxh1b5qvVP"
    "l90dD+R8LE2RssQjd/z6LSb3tPcnfm0WQVjWaDdE2LsVoFdT"
)


def test_v1_post_decrypts_and_pads_with_30() -> None:
    crypto = WeComCrypto(V1_TOKEN, V1_KEY, V1_CORP)
    plain = crypto.decrypt_message(
        "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", V1_ENCRYPT
    )
    assert plain == V1_PLAIN
    assert len(plain.encode()) == 284
    # pad = 30 > 16: a 16-byte PKCS#7 unpadder would reject this real message.
    raw = _independent_raw_decrypt(V1_KEY, V1_ENCRYPT)
    assert raw[-30:] == bytes([30]) * 30


def test_v2_url_verification() -> None:
    crypto = WeComCrypto(V1_TOKEN, V1_KEY, V1_CORP)
    echo = crypto.verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", V2_ECHO)
    assert echo == "1616140317555161061"


def test_v3_get_post_and_json_variant() -> None:
    crypto = WeComCrypto(V3_TOKEN, V3_KEY, V3_CORP)
    assert (
        crypto.verify_url("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", V3_ECHO)
        == "1288432023552776189"
    )
    plain = crypto.decrypt_message(
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", V3_ENCRYPT
    )
    assert plain == V3_PLAIN and len(plain.encode()) == 228
    json_plain = crypto.decrypt_message(
        "e3647471e395139e2308c1fa963f2d648a00b90e", "1409659813", "1372623149", V3_JSON_ENCRYPT
    )
    assert '"Content": "hello"' in json_plain  # published plaintext is invalid JSON: crypto only


def test_v4_decrypt_and_deterministic_encrypt() -> None:
    crypto = WeComCrypto(V4_TOKEN, V4_KEY, V4_CORP)
    assert (
        crypto.verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", V4_ECHO)
        == "5927782489442352469"
    )
    with pytest.raises(InvalidSignature):
        crypto.verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", V4_ECHO)
    plain = crypto.decrypt_message(
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", V4_ENCRYPT
    )
    assert (
        "<Content><![CDATA[test]]></Content>" in plain
        and "messense" in plain
        and "4363689963896700987" in plain
    )
    reply = crypto.encrypt_reply(V4_REPLY_PLAIN, "461056294", "1411525903", prefix=b"1234567890123456")
    assert reply.encrypt == V4_REPLY_ENCRYPT
    assert reply.signature == "407518b7649e86ef23978113f92d27afa9296533"
    assert reply.to_xml().startswith("<xml><Encrypt><![CDATA[9s4gMv99")


def test_v5_smart_robot_empty_receive_id() -> None:
    crypto = WeComCrypto(V1_TOKEN, V1_KEY, "")
    assert sign(V1_TOKEN, "1700000000", "abc123", V5_ENCRYPT) == "56929c5840342639092f10eb432a3d8ec3fa3f3c"
    assert (
        crypto.decrypt_message("56929c5840342639092f10eb432a3d8ec3fa3f3c", "1700000000", "abc123", V5_ENCRYPT)
        == V5_PLAIN
    )
    assert crypto.encrypt(V5_PLAIN, prefix=b"1234567890123456") == V5_ENCRYPT
    with pytest.raises(InvalidReceiveId):  # the app's corp id is not the robot's ""
        WeComCrypto(V1_TOKEN, V1_KEY, V1_CORP).decrypt(V5_ENCRYPT)


def test_error_codes_are_signature_errors() -> None:
    crypto = WeComCrypto(V1_TOKEN, V1_KEY, V1_CORP)
    with pytest.raises(InvalidSignature) as sig:
        crypto.decrypt_message("0" * 40, "1409659813", "1372623149", V1_ENCRYPT)
    assert sig.value.code == -40001 and isinstance(sig.value, SignatureError)
    with pytest.raises(InvalidReceiveId) as rid:
        WeComCrypto(V1_TOKEN, V1_KEY, "wwsomeoneelse").decrypt(V1_ENCRYPT)
    assert rid.value.code == -40005
    for bad in ("not base64!!", base64.b64encode(b"x" * 15).decode(), V1_ENCRYPT[:-24] + "=="):
        with pytest.raises(DecryptFailed) as dec:
            crypto.decrypt(bad)
        assert dec.value.code == -40007


def test_bad_padding_is_rejected() -> None:
    crypto = WeComCrypto(V1_TOKEN, V1_KEY, V1_CORP)
    key = base64.b64decode(V1_KEY + "=")
    for tail in (b"\x00", b"\x21", b"\x05\x05\x05\x04\x05"):  # 0, 33 (>32), inconsistent bytes
        raw = (b"A" * 64)[: 64 - len(tail)] + tail
        enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        bogus = base64.b64encode(enc.update(raw) + enc.finalize()).decode()
        with pytest.raises(DecryptFailed):
            crypto.decrypt(bogus)
    assert pkcs7_unpad(pkcs7_pad(b"x" * 32)) == b"x" * 32
    assert len(pkcs7_pad(b"x" * 32)) == 64  # aligned input gets a whole 32-byte pad block


def test_bad_aes_key_is_config_error() -> None:
    with pytest.raises(ConfigError):
        WeComCrypto("t", "short", "corp")


# --- an independent implementation written from the spec -----------------------------------------


def _independent_raw_decrypt(encoding_aes_key: str, encrypt: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return dec.update(base64.b64decode(encrypt)) + dec.finalize()


def _independent_encrypt(encoding_aes_key: str, receive_id: str, msg: str, prefix: bytes) -> str:
    key = base64.b64decode(encoding_aes_key + "=")
    body = msg.encode()
    padder = padding.PKCS7(256).padder()
    padded = (
        padder.update(prefix + struct.pack("!I", len(body)) + body + receive_id.encode()) + padder.finalize()
    )
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode()


def _independent_decrypt(encoding_aes_key: str, encrypt: str) -> tuple[str, str]:
    unpadder = padding.PKCS7(256).unpadder()
    plain = unpadder.update(_independent_raw_decrypt(encoding_aes_key, encrypt)) + unpadder.finalize()
    (length,) = struct.unpack("!I", plain[16:20])
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def _independent_sign(*values: str) -> str:
    return hashlib.sha1(b"".join(sorted(v.encode() for v in values))).hexdigest()


def test_round_trip_against_independent_implementation() -> None:
    crypto = WeComCrypto(V3_TOKEN, V3_KEY, V3_CORP)
    ours = crypto.encrypt(V3_PLAIN, prefix=b"0123456789abcdef")
    assert ours == _independent_encrypt(V3_KEY, V3_CORP, V3_PLAIN, b"0123456789abcdef")
    assert _independent_decrypt(V3_KEY, ours) == (V3_PLAIN, V3_CORP)
    theirs = _independent_encrypt(V3_KEY, V3_CORP, "党费 50", b"zzzzzzzzzzzzzzzz")
    signature = _independent_sign(V3_TOKEN, "1700000000", "n1", theirs)
    assert crypto.decrypt_message(signature, "1700000000", "n1", theirs) == "党费 50"


_ids = st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122), max_size=40)


@settings(max_examples=60, deadline=None)
@given(msg=st.text(max_size=600), receive_id=_ids, prefix=st.binary(min_size=16, max_size=16))
def test_hypothesis_round_trip(msg: str, receive_id: str, prefix: bytes) -> None:
    crypto = WeComCrypto(V4_TOKEN, V4_KEY, receive_id)
    encrypted = crypto.encrypt(msg, prefix=prefix)
    assert crypto.decrypt(encrypted) == msg
    assert _independent_decrypt(V4_KEY, encrypted) == (msg, receive_id)
    reply = crypto.encrypt_reply(msg, nonce="42", timestamp="1700000000", prefix=prefix)
    assert crypto.decrypt_message(reply.signature, reply.timestamp, reply.nonce, reply.encrypt) == msg
