"""``python -m bench`` / ``make bench``: run every benchmark in turn; the exit code is the worst one."""

from __future__ import annotations

import importlib
import sys

# Each module has ``main(argv) -> int``; add new benchmarks here.
BENCHES = [
    "bench.dingtalk_month_calls",
    "bench.ingest",
    "bench.footprint",
    "bench.stats_20k",
    "bench.broadcast",
]


def main() -> int:
    worst = 0
    for name in BENCHES:
        print(f"=== {name} ===", flush=True)
        worst = max(worst, importlib.import_module(name).main([]))
        print(flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
