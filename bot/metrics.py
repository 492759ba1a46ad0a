"""A tiny Prometheus text-format registry (counters and gauges), no extra dependency."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

LabelKey = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[LabelKey, float]] = defaultdict(lambda: defaultdict(float))
        self._help: dict[str, str] = {}
        self._gauges: dict[str, Callable[[], Awaitable[dict[LabelKey, float]]]] = {}

    def describe(self, name: str, help_text: str) -> None:
        self._help[name] = help_text

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def gauge(self, name: str, help_text: str, read: Callable[[], Awaitable[dict[LabelKey, float]]]) -> None:
        self._help[name] = help_text
        self._gauges[name] = read

    @staticmethod
    def _fmt(name: str, labels: LabelKey, value: float) -> str:
        if labels:
            inner = ",".join(f'{k}="{v}"' for k, v in labels)
            return f"{name}{{{inner}}} {value:g}"
        return f"{name} {value:g}"

    async def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self._counters.items()):
            lines.append(f"# HELP {name} {self._help.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            lines.extend(self._fmt(name, labels, v) for labels, v in sorted(series.items()))
        for name, read in sorted(self._gauges.items()):
            try:
                series = await read()
            except Exception:  # noqa: BLE001 - a failing gauge must not break /metrics
                continue
            lines.append(f"# HELP {name} {self._help.get(name, name)}")
            lines.append(f"# TYPE {name} gauge")
            lines.extend(self._fmt(name, labels, v) for labels, v in sorted(series.items()))
        return "\n".join(lines) + "\n"
