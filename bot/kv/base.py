"""The KV protocol. Two implementations (memory, redis) pass one contract suite."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class KV(Protocol):
    async def set_if_absent(self, key: str, value: str, ttl_seconds: float) -> bool:
        """Store ``value`` only if ``key`` is absent; True if stored (the claim succeeded)."""
        ...

    async def get(self, key: str) -> str | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Several values in one round trip, in the order of ``keys`` (None: absent)."""
        ...

    async def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        """Add to a counter; the TTL is set when the counter is created (fixed window)."""
        ...

    def lock(self, key: str, timeout_seconds: float = 30.0) -> AbstractAsyncContextManager[None]:
        """A mutual-exclusion lock across instances; released on exit or after the timeout."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...

