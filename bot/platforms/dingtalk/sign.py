"""HMAC signatures: HTTP-mode robot callbacks (verify) and custom-robot 加签 (produce).

Both use ``Base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}"))`` (fact sheet §2.2, §3.5); the
callback ``sign`` header is plain Base64, the custom-robot query parameter is URL-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

from bot.errors import SignatureError


def compute_sign(timestamp: str, secret: str) -> str:
    string_to_sign = f"{timestamp}\n{secret}"
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_callback(
    timestamp: str, sign: str, app_secret: str, now_ms: int, window_ms: int = 3_600_000
) -> None:
    """Raise ``SignatureError`` unless ``sign`` is valid for ``timestamp`` and the timestamp is fresh."""
    if not app_secret:
        # With an empty key anyone could compute a valid sign: refuse rather than accept everything.
        raise SignatureError("app_secret is not configured")
    if not timestamp or not sign:
        raise SignatureError("missing timestamp or sign header")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SignatureError("timestamp is not an integer") from exc
    if abs(now_ms - ts) > window_ms:
        raise SignatureError("timestamp outside the allowed window")
    expected = compute_sign(timestamp, app_secret)
    # Compare bytes: compare_digest rejects non-ASCII str, and a forged header may contain anything.
    if not hmac.compare_digest(expected.encode(), sign.encode("utf-8", "replace")):
        raise SignatureError("sign mismatch")


def custom_robot_sign(secret: str, timestamp_ms: int) -> str:
    """The URL-encoded ``sign`` query value for a custom robot with 加签 enabled."""
    return quote_plus(compute_sign(str(timestamp_ms), secret))


def signed_webhook_url(webhook_url: str, secret: str, timestamp_ms: int) -> str:
    """Append ``&timestamp=…&sign=…`` when the robot has a secret; keyword/IP-only robots need nothing."""
    if not secret:
        return webhook_url
    sep = "&" if "?" in webhook_url else "?"
    return f"{webhook_url}{sep}timestamp={timestamp_ms}&sign={custom_robot_sign(secret, timestamp_ms)}"
