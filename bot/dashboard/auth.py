"""Dashboard authentication: the admin token, one-time chat links and the signed session cookie.

* The admin token (``[admin] token`` / ``DANGJIAN_ADMIN_TOKEN``) is compared in constant time (over SHA-256
  digests, so its length does not leak either).
* A one-time link is a random token an admin gets 1:1 from the bot (``/admin``, ``后台``). The KV keeps only its
  SHA-256 (10 minutes), together with the admin's member id and an expiry checked against the bot's clock. It is
  used up atomically (``set_if_absent`` on a "used" key), so two clicks, or two instances, cannot both log in.
* The session cookie is ``v1.<issued>.<subject>.<nonce>.<hmac>``: HMAC-SHA256 under a secret derived from a
  random key kept in the KV (shared by every instance) and the admin token, so changing the token ends every
  session. HttpOnly, SameSite=Strict, Path=/admin, Secure behind https; valid for ``SESSION_HOURS``; logging
  out records the cookie as revoked in the KV until it would have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from bot.services import Services

COOKIE = "dangjian_admin"
SESSION_HOURS = 12
LINK_TTL_SECONDS = 600
MAX_FAILED_LOGINS = 10  # per client address and FAILED_WINDOW_SECONDS
FAILED_WINDOW_SECONDS = 900
_KEY = "admin:session-key"
_KEY_TTL_SECONDS = 10 * 365 * 86400


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def token_matches(configured: str, given: str) -> bool:
    """Constant-time comparison; an empty configured token never matches."""
    if not configured:
        return False
    return hmac.compare_digest(_digest(configured), _digest(given))


# -- one-time links ------------------------------------------------------------------------------


def _link_key(token: str) -> str:
    return "admin:link:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def base_url(services: Services) -> str:
    server = services.settings.server
    if server.public_url:
        return server.public_url.rstrip("/")
    host = "127.0.0.1" if server.host in ("", "0.0.0.0", "::") else server.host
    return f"http://{host}:{server.port}"


async def issue_login_link(services: Services, member_id: int) -> str:
    """A fresh one-time login URL for an admin (the caller checks the role)."""
    token = secrets.token_urlsafe(32)
    expires = services.now().timestamp() + LINK_TTL_SECONDS
    value = json.dumps({"member_id": member_id, "exp": expires})
    await services.kv.set(_link_key(token), value, LINK_TTL_SECONDS)
    return f"{base_url(services)}/admin/login?t={token}"


async def _link_member(services: Services, token: str) -> int | None:
    if not token or len(token) > 200:
        return None
    raw = await services.kv.get(_link_key(token))
    if raw is None:
        return None
    data = json.loads(raw)
    if float(data["exp"]) <= services.now().timestamp():
        return None
    if await services.kv.get(_link_key(token) + ":used") is not None:
        return None
    return int(data["member_id"])


async def peek_login_link(services: Services, token: str) -> int | None:
    """The admin's member id if the link is still usable; does not use it up."""
    return await _link_member(services, token)


async def consume_login_link(services: Services, token: str) -> int | None:
    """Use the link up (once, across instances); the admin's member id, or None if invalid, used or expired."""
    member_id = await _link_member(services, token)
    if member_id is None:
        return None
    if not await services.kv.set_if_absent(_link_key(token) + ":used", "1", LINK_TTL_SECONDS):
        return None
    await services.kv.delete(_link_key(token))
    return member_id


# -- failed-login throttle -----------------------------------------------------------------------


async def too_many_failures(services: Services, client: str) -> bool:
    count = await services.kv.get(f"admin:failed:{client}")
    return count is not None and int(count) >= MAX_FAILED_LOGINS


async def record_failure(services: Services, client: str) -> None:
    await services.kv.incr(f"admin:failed:{client}", 1, FAILED_WINDOW_SECONDS)


# -- session cookie ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    subject: str  # "token" (logged in with the admin token) or "m<member id>" (one-time link)
    issued: int

    @property
    def member_id(self) -> int | None:
        return int(self.subject[1:]) if self.subject.startswith("m") else None


async def _secret(services: Services) -> bytes:
    key = await services.kv.get(_KEY)
    if key is None:
        await services.kv.set_if_absent(_KEY, secrets.token_hex(32), _KEY_TTL_SECONDS)
        key = await services.kv.get(_KEY)
        assert key is not None
    return hmac.new(bytes.fromhex(key), b"dashboard-session|" + services.settings.admin.token.encode(), "sha256").digest()


def _sign(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, payload.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


async def make_cookie(services: Services, subject: str) -> str:
    payload = f"v1.{int(services.now().timestamp())}.{subject}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(await _secret(services), payload)}"


def _revoked_key(value: str) -> str:
    return "admin:logout:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


async def revoke_cookie(services: Services, value: str | None) -> None:
    """Logout: the cookie stops working here even if a copy of it survives somewhere."""
    session = await read_cookie(services, value)
    if session is not None and value:
        remaining = session.issued + SESSION_HOURS * 3600 - services.now().timestamp()
        await services.kv.set(_revoked_key(value), "1", max(60.0, remaining + 60))


async def read_cookie(services: Services, value: str | None) -> Session | None:
    """The session if the cookie is well-formed, correctly signed, not expired and not logged out."""
    if not value or len(value) > 200 or not value.isascii():
        return None
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != "v1" or not parts[1].isdigit():
        return None
    subject = parts[2]
    if subject != "token" and not (subject.startswith("m") and subject[1:].isdigit()):
        return None
    payload = ".".join(parts[:4])
    if not hmac.compare_digest(_sign(await _secret(services), payload).encode(), parts[4].encode("utf-8", "replace")):
        return None
    issued, now = int(parts[1]), services.now().timestamp()
    if not (issued - 60 <= now < issued + SESSION_HOURS * 3600):
        return None
    if await services.kv.get(_revoked_key(value)) is not None:
        return None
    return Session(subject, issued)
