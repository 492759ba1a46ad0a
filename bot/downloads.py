"""Signed, expiring download links for exported ledgers (for platforms or people that cannot take a file
message, e.g. a DingTalk session without robot file rights). Links go 1:1 only; they carry no session."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from bot.errors import StorageUnavailable
from bot.services import Services

LINK_TTL_SECONDS = 24 * 3600
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_KEY = "download:key"


async def _key(services: Services) -> bytes:
    """One random key shared by every instance through the KV (falls back to the admin token)."""
    try:
        await services.kv.set_if_absent(_KEY, secrets.token_hex(32), 10 * 365 * 86400)
        stored = await services.kv.get(_KEY)
    except StorageUnavailable:
        stored = None
    return (stored or services.settings.admin.token or "dangjian-download").encode()


def _sign(key: bytes, name: str, expires: int) -> str:
    return hmac.new(key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]


async def download_link(services: Services, path: Path) -> str:
    """An absolute link to ``path`` (inside data_dir/exports) valid for 24 hours, or "" without public_url."""
    base = services.settings.server.public_url.rstrip("/")
    if not base or not _NAME.match(path.name):
        return ""
    expires = int(services.now().timestamp()) + LINK_TTL_SECONDS
    sig = _sign(await _key(services), path.name, expires)
    return f"{base}/download/{quote(path.name)}?exp={expires}&sig={sig}"


def download_routes(services: Services) -> list[web.RouteDef]:
    async def download(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            expires = int(request.query.get("exp", ""))
        except ValueError:
            raise web.HTTPForbidden(text="链接无效 invalid link") from None
        sig = request.query.get("sig", "")
        if not _NAME.match(name) or not hmac.compare_digest(sig, _sign(await _key(services), name, expires)):
            raise web.HTTPForbidden(text="链接无效 invalid link")
        if expires < services.now().timestamp():
            raise web.HTTPGone(text="链接已过期，请在聊天中重新发送“导出”。 link expired")
        path = (services.settings.data_dir / "exports" / name).resolve()
        if not path.is_file():  # noqa: ASYNC240 - a stat, negligible
            raise web.HTTPNotFound(text="文件不存在 file not found")
        return web.FileResponse(path, headers={"Content-Disposition": f"attachment; filename={name}"})

    return [web.get("/download/{name}", download)]
