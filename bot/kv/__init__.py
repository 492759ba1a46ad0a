"""Key-value state shared by bot instances: dedup, sessions, locks, counters."""

from bot.kv.base import KV

__all__ = ["KV"]
