"""WeCom callback crypto (WXBizMsgCrypt) on top of ``cryptography``.

Signature: sha1 over the sorted (token, timestamp, nonce, encrypt) byte strings. Payload: AES-256-CBC
with IV = key[:16], PKCS#7 padded to 32-byte blocks (not 16: real messages carry pads up to 32), over
``random16 ‖ len(msg) as 4 bytes big-endian ‖ msg ‖ receive_id``. The receive id is the corp id for
app callbacks and "" for the smart robot. Error codes follow Tencent's ``ierror.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.errors import ConfigError, SignatureError

BLOCK = 32  # WeCom's PKCS#7 block size, deliberately not AES's 16
_PREFIX_ALPHABET = string.ascii_letters + string.digits


class WeComCryptoError(SignatureError):
    code = -40000

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")


class InvalidSignature(WeComCryptoError):
    code = -40001


class InvalidReceiveId(WeComCryptoError):
    code = -40005


class DecryptFailed(WeComCryptoError):
    code = -40007


@dataclass(frozen=True, slots=True)
class EncryptedReply:
    encrypt: str
    signature: str
    timestamp: str
    nonce: str

    def to_xml(self) -> str:
        return (
            f"<xml><Encrypt><![CDATA[{self.encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{self.signature}]]></MsgSignature>"
            f"<TimeStamp>{self.timestamp}</TimeStamp><Nonce><![CDATA[{self.nonce}]]></Nonce></xml>"
        )

    def to_json(self) -> dict[str, object]:
        # The smart robot's passive reply spells it ``msgsignature`` and wants an int timestamp.
        return {
            "encrypt": self.encrypt,
            "msgsignature": self.signature,
            "timestamp": int(self.timestamp),
            "nonce": self.nonce,
        }


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    parts = sorted(p.encode() for p in (token, timestamp, nonce, encrypt))
    return hashlib.sha1(b"".join(parts)).hexdigest()


def random_prefix() -> bytes:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(16)).encode()


def pkcs7_pad(data: bytes) -> bytes:
    pad = BLOCK - len(data) % BLOCK
    return data + bytes([pad]) * pad


def pkcs7_unpad(data: bytes) -> bytes:
    if not data or len(data) % BLOCK:
        raise DecryptFailed("plaintext is not a whole number of 32-byte blocks")
    pad = data[-1]
    if not 1 <= pad <= BLOCK or data[-pad:] != bytes([pad]) * pad:
        raise DecryptFailed("bad PKCS#7 padding")
    return data[:-pad]


def decode_aes_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ConfigError("EncodingAESKey is not valid Base64") from exc
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise ConfigError("EncodingAESKey must be 43 characters (a 32-byte AES key)")
    return key


class WeComCrypto:
    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        prefix: Callable[[], bytes] = random_prefix,
    ) -> None:
        self._token = token
        self._key = decode_aes_key(encoding_aes_key)
        self._receive_id = receive_id.encode()
        self._prefix = prefix

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = sign(self._token, timestamp, nonce, encrypt).encode()
        given = msg_signature.strip().lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected, given):
            raise InvalidSignature("msg_signature mismatch")

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET verification: returns the plaintext to answer with (bare, no newline)."""
        return self.decrypt_message(msg_signature, timestamp, nonce, echostr)

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Check the signature first, then decrypt; returns the inner plaintext (XML or JSON)."""
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def decrypt(self, encrypt: str) -> str:
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptFailed("Encrypt is not valid Base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptFailed("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        plain = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
        if len(plain) < 20:
            raise DecryptFailed("plaintext shorter than its header")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise DecryptFailed("message length field exceeds the plaintext")
        msg, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise InvalidReceiveId("receive id (corp id) mismatch")
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptFailed("message is not UTF-8") from exc

    def encrypt(self, msg: str, *, prefix: bytes | None = None) -> str:
        body = msg.encode("utf-8")
        head = prefix if prefix is not None else self._prefix()
        if len(head) != 16:
            raise ValueError("random prefix must be 16 bytes")
        plain = pkcs7_pad(head + struct.pack(">I", len(body)) + body + self._receive_id)
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def encrypt_reply(
        self,
        msg: str,
        nonce: str,
        timestamp: str | None = None,
        *,
        prefix: bytes | None = None,
    ) -> EncryptedReply:
        """A passive reply: our ciphertext signed with our (or the request's) timestamp and nonce."""
        ts = timestamp if timestamp is not None else str(int(time.time()))
        encrypted = self.encrypt(msg, prefix=prefix)
        return EncryptedReply(encrypted, sign(self._token, ts, nonce, encrypted), ts, nonce)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))
