"""One KV contract, two implementations: the in-process MemoryKV and RedisKV on a real Redis.

MemoryKV runs on a FakeClock (time only moves when the test says so); RedisKV uses short real TTLs,
the only sleeps in this suite. Every Redis test works under its own key prefix, so parallel runs and
other suites sharing the database do not disturb it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.kv.memory import MemoryKV
from bot.kv.redis import RedisKV
from tests.conftest import REQUIRE, START, redis_url_for_tests

TTL = 0.2  # seconds; short enough to wait out for real on Redis
PAST_TTL = 0.35  # comfortably after TTL has elapsed


@dataclass
class KVCase:
    name: str
    kv: MemoryKV | RedisKV
    clock: FakeClock | None

    async def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass for this backend: move the fake clock, or really wait (Redis)."""
        if self.clock is not None:
            self.clock.advance(dt.timedelta(seconds=seconds))
        else:
            await asyncio.sleep(seconds)


async def _redis_case() -> KVCase:
    explicit = os.environ.get("DANGJIAN_TEST_REDIS_URL", "")
    url = redis_url_for_tests()
    if not url:
        if REQUIRE:
            pytest.fail("DANGJIAN_TEST_REQUIRE_SERVICES=1 but no Redis is configured or reachable")
        pytest.skip("no Redis: set DANGJIAN_TEST_REDIS_URL or run one on 127.0.0.1:6379")
    kv = RedisKV(url, prefix=f"djtest:{uuid.uuid4().hex}:")
    if not await kv.ping():
        await kv.close()
        if REQUIRE or explicit:
            pytest.fail(f"Redis at {url} does not answer PING")
        pytest.skip(f"Redis at {url} does not answer PING")
    return KVCase("redis", kv, None)


@pytest.fixture(params=["memory", "redis"])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[KVCase]:
    if request.param == "memory":
        clock = FakeClock(START)
        made = KVCase("memory", MemoryKV(clock), clock)
    else:
        made = await _redis_case()
    try:
        yield made
    finally:
        await made.kv.close()


class TestKVContract:
    # -- set_if_absent -------------------------------------------------------------------------
    async def test_set_if_absent_claims_once(self, case: KVCase) -> None:
        kv = case.kv
        assert await kv.set_if_absent("claim", "first", 60) is True
        assert await kv.set_if_absent("claim", "second", 60) is False
        assert await kv.get("claim") == "first"

    async def test_set_if_absent_concurrent_claims_have_one_winner(self, case: KVCase) -> None:
        results = await asyncio.gather(*(case.kv.set_if_absent("race", str(i), 60) for i in range(10)))
        assert sorted(results) == [False] * 9 + [True]

    async def test_set_if_absent_claim_expires_after_ttl(self, case: KVCase) -> None:
        kv = case.kv
        assert await kv.set_if_absent("dedup", "1", TTL)
        await case.elapse(PAST_TTL)
        assert await kv.get("dedup") is None
        assert await kv.set_if_absent("dedup", "2", TTL) is True
        assert await kv.get("dedup") == "2"

    # -- get / set / delete --------------------------------------------------------------------
    async def test_get_missing_is_none(self, case: KVCase) -> None:
        assert await case.kv.get("never-set") is None

    async def test_set_get_overwrite_delete(self, case: KVCase) -> None:
        kv = case.kv
        await kv.set("k", "v1")
        assert await kv.get("k") == "v1"
        await kv.set("k", "值2")  # unicode round-trips
        assert await kv.get("k") == "值2"
        await kv.delete("k")
        assert await kv.get("k") is None
        await kv.delete("k")  # deleting a missing key is fine
        assert await kv.set_if_absent("k", "again", 60) is True

    async def test_get_many_reads_in_order_with_none_for_absent(self, case: KVCase) -> None:
        kv = case.kv
        await kv.set("m1", "一")
        await kv.set("m3", "three", TTL)
        assert await kv.get_many(["m1", "m2", "m3", "m1"]) == ["一", None, "three", "一"]
        assert await kv.get_many([]) == []
        await case.elapse(PAST_TTL)
        assert await kv.get_many(["m3", "m1"]) == [None, "一"]

    async def test_commands_issued_together_each_get_their_own_reply(self, case: KVCase) -> None:
        """Commands of one event-loop turn (Redis: one pipeline) answer each caller with its own result."""
        kv = case.kv
        await kv.set("t-taken", "x")
        results = await asyncio.gather(
            kv.set_if_absent("t-taken", "y", 60), kv.set_if_absent("t-free", "y", 60), kv.get("t-taken"),
            kv.incr("t-count", 5), kv.get_many(["t-free", "t-none"]), kv.delete("t-taken"), kv.get("t-taken"),
        )
        assert results == [False, True, "x", 5, ["y", None], None, None]

    async def test_set_without_ttl_persists(self, case: KVCase) -> None:
        await case.kv.set("forever", "x")
        await case.elapse(PAST_TTL)
        assert await case.kv.get("forever") == "x"

    async def test_set_with_ttl_expires(self, case: KVCase) -> None:
        kv = case.kv
        await kv.set("session", "state", TTL)
        assert await kv.get("session") == "state"
        await case.elapse(PAST_TTL)
        assert await kv.get("session") is None

    async def test_set_replaces_ttl(self, case: KVCase) -> None:
        kv = case.kv
        await kv.set("k", "short", TTL)
        await kv.set("k", "long", 3600)
        await case.elapse(PAST_TTL)
        assert await kv.get("k") == "long"
        await kv.set("k", "no-ttl")
        await case.elapse(PAST_TTL)
        assert await kv.get("k") == "no-ttl"

    # -- incr ----------------------------------------------------------------------------------
    async def test_incr_creates_and_adds_amounts(self, case: KVCase) -> None:
        kv = case.kv
        assert await kv.incr("n") == 1
        assert await kv.incr("n") == 2
        assert await kv.incr("n", 5) == 7
        assert await kv.incr("n", -3) == 4
        assert await kv.get("n") == "4"
        assert await kv.incr("m", 10) == 10

    async def test_incr_ttl_is_a_fixed_window(self, case: KVCase) -> None:
        kv = case.kv
        window = 0.4
        assert await kv.incr("window", 1, window) == 1  # t=0: the window ends at 0.4
        await case.elapse(0.2)
        # A later increment must not push the window's end out (fixed window, not sliding to 0.6).
        assert await kv.incr("window", 2, window) == 3
        assert await kv.get("window") == "3"
        await case.elapse(0.3)  # t=0.5: after the fixed end, before a sliding one
        assert await kv.get("window") is None
        assert await kv.incr("window", 1, window) == 1  # a fresh window starts from the amount

    async def test_incr_without_ttl_keeps_counting(self, case: KVCase) -> None:
        kv = case.kv
        await kv.incr("c")
        await case.elapse(PAST_TTL)
        assert await kv.incr("c") == 2

    # -- lock ----------------------------------------------------------------------------------
    async def test_lock_is_mutually_exclusive(self, case: KVCase) -> None:
        kv = case.kv
        inside: list[str] = []
        overlap: list[tuple[str, ...]] = []
        order: list[str] = []

        async def worker(name: str) -> None:
            async with kv.lock("section", timeout_seconds=5):
                inside.append(name)
                if len(inside) > 1:
                    overlap.append(tuple(inside))
                order.append(f"{name}:in")
                for _ in range(5):
                    await asyncio.sleep(0)  # yield: the other task must not get in meanwhile
                await kv.get("section-probe")  # a real round trip on Redis
                order.append(f"{name}:out")
                inside.remove(name)

        await asyncio.gather(worker("a"), worker("b"))
        assert overlap == []
        assert len(order) == 4
        first = order[0].split(":")[0]
        assert order[:2] == [f"{first}:in", f"{first}:out"]

    async def test_lock_released_after_exit_even_on_error(self, case: KVCase) -> None:
        kv = case.kv
        async with kv.lock("res", timeout_seconds=2):
            pass
        with pytest.raises(RuntimeError):
            async with kv.lock("res", timeout_seconds=2):
                raise RuntimeError("boom")
        # Free again: acquiring must be immediate.
        async with asyncio.timeout(1.5):
            async with kv.lock("res", timeout_seconds=2):
                pass

    async def test_lock_timeout_raises_timeout_error(self, case: KVCase) -> None:
        kv = case.kv
        held = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with kv.lock("busy", timeout_seconds=5):
                held.set()
                await release.wait()

        task = asyncio.create_task(holder())
        try:
            await held.wait()
            with pytest.raises(TimeoutError):
                async with kv.lock("busy", timeout_seconds=0.2):
                    pytest.fail("acquired a lock that is held by another task")
        finally:
            release.set()
            await task
        async with kv.lock("busy", timeout_seconds=1):
            pass

    async def test_locks_on_different_keys_are_independent(self, case: KVCase) -> None:
        kv = case.kv
        async with kv.lock("one", timeout_seconds=1):
            async with asyncio.timeout(1.5):
                async with kv.lock("two", timeout_seconds=1):
                    pass

    # -- ping / isolation ----------------------------------------------------------------------
    async def test_ping(self, case: KVCase) -> None:
        assert await case.kv.ping() is True

    async def test_keys_are_isolated(self, case: KVCase) -> None:
        kv = case.kv
        await kv.set("a", "1")
        await kv.set("b", "2", TTL)
        assert await kv.set_if_absent("c", "3", 60)
        await kv.incr("d", 7)
        await kv.delete("a")
        assert await kv.get("a") is None
        assert await kv.get("b") == "2"
        assert await kv.get("c") == "3"
        assert await kv.get("d") == "7"
        await case.elapse(PAST_TTL)
        assert await kv.get("b") is None
        assert await kv.get("c") == "3"
        # A lock on a key does not touch the value stored under the same name.
        async with kv.lock("c", timeout_seconds=1):
            assert await kv.get("c") == "3"
        assert await kv.get("c") == "3"


async def test_redis_prefixes_isolate_instances() -> None:
    """Two RedisKV on one database with different prefixes never see each other's keys."""
    case_a = await _redis_case()
    case_b = await _redis_case()
    try:
        await case_a.kv.set("shared-name", "a")
        assert await case_b.kv.get("shared-name") is None
        assert await case_b.kv.set_if_absent("shared-name", "b", 60) is True
        assert await case_a.kv.get("shared-name") == "a"
    finally:
        await case_a.kv.close()
        await case_b.kv.close()


async def test_redis_scripts_survive_a_script_cache_flush() -> None:
    """incr and lock release run Lua scripts by SHA; after SCRIPT FLUSH (as after a Redis restart)
    they are loaded again on the first NOSCRIPT answer."""
    case = await _redis_case()
    try:
        kv: Any = case.kv
        assert await kv.incr("flushed", 2, ttl_seconds=60) == 2
        await kv._redis.script_flush()
        assert await kv.incr("flushed", 3, ttl_seconds=60) == 5
        await kv._redis.script_flush()
        async with kv.lock("flushed-lock", timeout_seconds=1):
            await kv._redis.script_flush()
        async with kv.lock("flushed-lock", timeout_seconds=1):  # released despite the flush
            pass
    finally:
        await case.kv.close()


async def test_redis_unreachable_reports_unhealthy_and_storage_unavailable() -> None:
    """A RedisKV pointing nowhere: ping says False, operations raise StorageUnavailable (not hang)."""
    from bot.errors import StorageUnavailable

    kv = RedisKV("redis://127.0.0.1:1/0")
    try:
        assert await kv.ping() is False
        with pytest.raises(StorageUnavailable):
            await kv.set_if_absent("x", "1", 1)
        with pytest.raises(StorageUnavailable):
            await kv.get("x")
        with pytest.raises(StorageUnavailable):
            await kv.get_many(["x", "y"])
        # Issued together (one pipeline): every caller gets the error, none waits for ever.
        outcomes = await asyncio.gather(kv.get("a"), kv.set("b", "1"), kv.incr("c"), return_exceptions=True)
        assert all(isinstance(o, StorageUnavailable) for o in outcomes)
    finally:
        await kv.close()
