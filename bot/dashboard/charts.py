"""Inline SVG charts drawn in Python: no JavaScript, no CDN, no web fonts (works on an intranet).

Colours and sizes are presentation attributes (the dashboard's CSP allows no inline styles); text is styled by
the dashboard stylesheet through the ``chart`` class. Every figure also carries a ``<title>`` tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.dashboard.html import Html, fmt, join

GOOD, FAIR, POOR, BRAND, TRACK, GRID, INK, MUTED = (
    "#2e7d32", "#ef8f00", "#c62828", "#c8161d", "#f1f1f1", "#e3e3e3", "#333333", "#888888",
)  # fmt: skip


def rate_colour(rate: float) -> str:
    return GOOD if rate >= 0.9 else FAIR if rate >= 0.6 else POOR


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str  # printed after the bar
    colour: str = BRAND
    href: str = ""
    tooltip: str = ""


@dataclass(frozen=True, slots=True)
class TrendPoint:
    label: str  # x-axis label, e.g. "11月"
    amount: float  # bar height (yuan)
    rate: float | None  # line (0..1); None where nothing was collected
    tooltip: str


def _n(value: float) -> str:
    return f"{value:.1f}"


def _short(label: str, limit: int = 9) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _svg(width: int, height: int, title: str, body: Html) -> Html:
    return fmt(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="{title}" font-family="sans-serif">{body}</svg>',
        w=width,
        h=height,
        title=title,
        body=body,
    )


def _link(href: str, inner: Html) -> Html:
    return fmt('<a href="{}">{}</a>', href, inner) if href else inner


def hbar_chart(bars: Sequence[Bar], *, title: str, max_value: float | None = None, width: int = 640) -> Html:
    """One horizontal bar per item (branches, usually), labelled on the left, value text on the right."""
    if not bars:
        return fmt('<p class="empty">{}：暂无数据</p>', title)
    row, left, right = 30, 150, 130
    height = row * len(bars) + 12
    top = max_value if max_value is not None else max((b.value for b in bars), default=0.0)
    scale = (width - left - right) / top if top > 0 else 0.0
    parts: list[Html] = []
    for i, bar in enumerate(bars):
        y = 6 + i * row
        length = max(0.0, min(bar.value, top)) * scale
        tip = bar.tooltip or f"{bar.label}：{bar.text}"
        parts.append(
            _link(
                bar.href,
                fmt(
                    '<g><title>{tip}</title>'
                    '<text x="{lx}" y="{ty}" text-anchor="end" fill="{ink}" font-size="13">{label}</text>'
                    '<rect x="{x}" y="{by}" width="{track}" height="18" rx="3" fill="{trackc}"/>'
                    '<rect x="{x}" y="{by}" width="{length}" height="18" rx="3" fill="{colour}"/>'
                    '<text x="{vx}" y="{ty}" fill="{ink}" font-size="12">{text}</text></g>',
                    tip=tip,
                    lx=left - 8,
                    ty=y + 14,
                    ink=INK,
                    label=_short(bar.label),
                    x=left,
                    by=y + 1,
                    track=width - left - right,
                    trackc=TRACK,
                    length=_n(length),
                    colour=bar.colour,
                    vx=_n(width - right + 8),
                    text=bar.text,
                ),
            )
        )
    return _svg(width, height, title, join(parts))


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^k at or above ``value`` (axis maxima)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if value <= step * power:
            return step * power
    return 10.0 * power


def compact_number(value: float) -> str:
    if value >= 10000:
        return f"{value / 10000:g}万"
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:g}"


def trend_chart(points: Sequence[TrendPoint], *, title: str, width: int = 1080, height: int = 300) -> Html:
    """Bars for the amount (left axis, yuan) and a line for the answer rate (right axis, %)."""
    if not points:
        return fmt('<p class="empty">{}：暂无数据</p>', title)
    left, right, top, bottom = 64, 52, 34, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = nice_ceiling(max(p.amount for p in points))
    slot = plot_w / len(points)
    parts: list[Html] = [
        fmt(
            '<rect x="{x}" y="8" width="12" height="12" fill="{brand}"/>'
            '<text x="{tx}" y="18" font-size="12" fill="{ink}">党费合计（元）</text>'
            '<line x1="{lx1}" y1="14" x2="{lx2}" y2="14" stroke="{blue}" stroke-width="2"/>'
            '<circle cx="{cx}" cy="14" r="3" fill="{blue}"/>'
            '<text x="{tx2}" y="18" font-size="12" fill="{ink}">填报率</text>',
            x=left, brand=BRAND, tx=left + 16, ink=INK, lx1=left + 130, lx2=left + 150,
            blue="#1565c0", cx=left + 140, tx2=left + 156,
        )
    ]  # fmt: skip
    for i in range(5):
        frac = i / 4
        y = top + plot_h * (1 - frac)
        parts.append(
            fmt(
                '<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{grid}" stroke-width="1"/>'
                '<text x="{lx}" y="{ty}" text-anchor="end" font-size="11" fill="{muted}">{amount}</text>'
                '<text x="{rx}" y="{ty}" font-size="11" fill="{muted}">{pct}%</text>',
                x1=left, x2=left + plot_w, y=_n(y), grid=GRID, lx=left - 6, ty=_n(y + 4),
                muted=MUTED, amount=compact_number(y_max * frac), rx=left + plot_w + 6, pct=int(frac * 100),
            )
        )  # fmt: skip
    line: list[list[tuple[float, float]]] = [[]]
    for i, p in enumerate(points):
        cx = left + slot * (i + 0.5)
        bar_h = plot_h * (p.amount / y_max) if y_max else 0.0
        bar_w = slot * 0.56
        parts.append(
            fmt(
                '<g><title>{tip}</title>'
                '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{brand}" opacity="0.85"/>'
                '<text x="{cx}" y="{ly}" text-anchor="middle" font-size="11" fill="{ink}">{label}</text></g>',
                tip=p.tooltip, x=_n(cx - bar_w / 2), y=_n(top + plot_h - bar_h),
                w=_n(bar_w), h=_n(bar_h), brand=BRAND, cx=_n(cx),
                ly=top + plot_h + 18, ink=INK, label=p.label,
            )
        )  # fmt: skip
        if p.rate is None:
            line.append([])
        else:
            line[-1].append((cx, top + plot_h * (1 - max(0.0, min(1.0, p.rate)))))
    for segment in line:
        if len(segment) > 1:
            coords = " ".join(f"{x},{y}" for x, y in segment)
            parts.append(fmt('<polyline points="{}" fill="none" stroke="#1565c0" stroke-width="2"/>', coords))
        for x, y in segment:
            parts.append(fmt('<circle cx="{}" cy="{}" r="3.5" fill="#1565c0"/>', _n(x), _n(y)))
    parts.append(
        fmt(
            '<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="{muted}" stroke-width="1"/>',
            x=left, y=top + plot_h, x2=left + plot_w, muted=MUTED,
        )
    )  # fmt: skip
    return _svg(width, height, title, join(parts))


def rate_text(answered: int, total: int) -> str:
    return f"{answered}/{total}（{answered / total:.0%}）" if total else f"{answered}/0（—）"


