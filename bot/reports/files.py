"""Generated files (charts, ledgers) on disk: they hold members' data, so old ones are deleted."""

from __future__ import annotations

from pathlib import Path


def prune(directory: Path, pattern: str, keep_seconds: float, now: float) -> int:
    """Delete the files matching ``pattern`` in ``directory`` not modified for ``keep_seconds``; how many."""
    removed = 0
    for old in directory.glob(pattern):
        try:
            if now - old.stat().st_mtime > keep_seconds:
                old.unlink()
                removed += 1
        except OSError:  # another instance removed it first
            continue
    return removed
