"""The app's access_token, shared through the KV by every worker and instance.

WeCom rate-limits ``gettoken`` and may revoke a token early, so: one cached token per app (key has
corp id + agent id), refreshed ~60 s before expiry by the KV TTL, fetched under a lock so N workers
do not stampede, and dropped only if it is still the token that was rejected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.kv.base import KV

REFRESH_MARGIN = 60.0
Fetch = Callable[[], Awaitable[tuple[str, float]]]  # -> (token, expires_in seconds)


class TokenCache:
    def __init__(self, kv: KV, corp_id: str, agent_id: str, fetch: Fetch) -> None:
        self._kv = kv
        self._key = f"wecom:token:{corp_id}:{agent_id}"
        self._fetch = fetch

    async def get(self) -> str:
        token = await self._kv.get(self._key)
        if token:
            return token
        async with self._kv.lock(self._key + ":lock", timeout_seconds=30.0):
            token = await self._kv.get(self._key)  # another worker may have just fetched it
            if token:
                return token
            token, expires_in = await self._fetch()
            ttl = max(expires_in - REFRESH_MARGIN, 1.0)
            await self._kv.set(self._key, token, ttl_seconds=ttl)
            return token

    async def invalidate(self, rejected: str) -> None:
        async with self._kv.lock(self._key + ":lock", timeout_seconds=30.0):
            if await self._kv.get(self._key) == rejected:
                await self._kv.delete(self._key)

    async def cached(self) -> bool:
        return bool(await self._kv.get(self._key))
