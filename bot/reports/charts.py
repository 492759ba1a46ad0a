"""Bar charts for /stats as PNG files: branches ranked by answer rate, or one branch's recent trend.

Labels are digits only (rank numbers that match the numbered list in the text reply, period labels,
rates, amounts), drawn with the built-in pixel font of ``bot.reports.png``: the picture looks the
same on a server without any CJK font. Money appears only when the caller says so (1:1 replies).

Rendering is CPU work and writing is file I/O: ``save_chart`` runs both in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.tables import Campaign
from bot.reports.files import prune
from bot.reports.png import GLYPH_H, Canvas, Color, dotted, text_width, widest
from bot.reports.stats import CampaignSummary, campaign_counts

TREND_POINTS = 12  # about a year of monthly collections
MAX_ROWS = 30  # more branches: the best and the worst 15, with a "left out" row between
KEEP_SECONDS = 7 * 86400  # the outbox may retry a send for a while; older charts are deleted

WIDTH = 720
PAD = 20
WHITE: Color = (255, 255, 255)
RED: Color = (200, 16, 46)  # Party red: the bars
PALE_RED: Color = (236, 160, 170)  # earlier periods in a trend
TRACK: Color = (238, 238, 238)  # the unfilled rest of a ranking bar
GRID: Color = (200, 200, 200)
INK: Color = (51, 51, 51)
MUTED: Color = (120, 120, 120)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # a rank ("3") or a period label ("2026-11")
    rate: float  # 0..1
    amount_fen: int | None = None  # None: money not shown


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str  # "ranking" (horizontal, best first) or "trend" (vertical, oldest first)
    bars: tuple[Bar, ...]
    truncated: bool = False  # ranking: only the best and worst MAX_ROWS // 2 are drawn

    @property
    def worth_sending(self) -> bool:
        """One bar, or only empty ones, says nothing the text does not: no picture (no platform calls) then."""
        return len(self.bars) >= 2 and any(b.rate > 0 for b in self.bars)


# ---- what to draw ---------------------------------------------------------------------------------


def ranking_chart(summaries: Sequence[CampaignSummary], with_money: bool) -> Chart:
    """Branches in the order of the text reply, labelled by their number in it."""
    # Amounts as in the text: only where there is one.
    bars = [
        Bar(str(i), s.rate, s.amount_fen if with_money and s.amount_fen else None)
        for i, s in enumerate(summaries, 1)
    ]
    if len(bars) <= MAX_ROWS:
        return Chart("ranking", tuple(bars))
    half = MAX_ROWS // 2
    return Chart("ranking", tuple(bars[:half] + bars[-half:]), truncated=True)


async def trend_chart(session: AsyncSession, campaign: Campaign, day: dt.date, with_money: bool) -> Chart:
    """The branch's last ``TREND_POINTS`` collections of the same form, up to ``campaign``, oldest first."""
    earlier = or_(
        Campaign.opened_at < campaign.opened_at,
        and_(Campaign.opened_at == campaign.opened_at, Campaign.id <= campaign.id),
    )
    stmt = (
        select(Campaign)
        .where(Campaign.org_id == campaign.org_id, Campaign.form_key == campaign.form_key, earlier)
        .order_by(Campaign.opened_at.desc(), Campaign.id.desc())
        .limit(TREND_POINTS)
    )
    campaigns = list(reversed((await session.execute(stmt)).scalars().all()))
    counts = await campaign_counts(session, campaigns, day)
    bars = [
        Bar(c.period, counts[c.id].rate, counts[c.id].amount_fen if with_money else None) for c in campaigns
    ]
    return Chart("trend", tuple(bars))


# ---- drawing --------------------------------------------------------------------------------------


def _percent(rate: float) -> str:
    return f"{rate:.0%}"  # rounded exactly as in the text reply


def _yuan(fen: int) -> str:
    return f"¥{(fen + 50) // 100:,}"  # whole yuan: the exact figure is in the text


def render(chart: Chart) -> bytes:
    canvas = _render_ranking(chart) if chart.kind == "ranking" else _render_trend(chart)
    return canvas.png()


def _render_ranking(chart: Chart) -> Canvas:
    row_h, bar_h, gap_h, head_h = 30, 18, 22, 28
    values = [_percent(b.rate) + (f" {_yuan(b.amount_fen)}" if b.amount_fen is not None else "") for b in chart.bars]
    label_w = widest([b.label for b in chart.bars], 2) + 12
    value_w = widest(values, 2) + 12
    plot_x = PAD + label_w
    plot_w = WIDTH - 2 * PAD - label_w - value_w
    half = MAX_ROWS // 2
    height = 2 * PAD + head_h + row_h * len(chart.bars) + (gap_h if chart.truncated else 0)
    canvas = Canvas(WIDTH, height, WHITE)
    top = PAD + head_h
    rows_h = height - PAD - top
    for tick in (0.0, 0.5, 1.0):  # axis labels above, light dotted lines down through the rows
        x = plot_x + round(tick * (plot_w - 1))
        label = _percent(tick)
        left = min(max(PAD, x - text_width(label, 2) // 2), WIDTH - PAD - text_width(label, 2))
        canvas.text(left, PAD, label, MUTED)
        for y in range(top - 6, top + rows_h, 4):
            canvas.rect(x, y, 1, 2, GRID)
    y = top
    for i, (bar, value) in enumerate(zip(chart.bars, values, strict=True)):
        if chart.truncated and i == half:  # the ranks left out
            canvas.text(PAD + label_w - 12 - text_width("...", 2), y + 2, "...", MUTED)
            dotted(canvas, plot_x, y + gap_h // 2, plot_w, GRID)
            y += gap_h
        middle = y + (row_h - bar_h) // 2
        canvas.text(PAD + label_w - 12 - text_width(bar.label, 2), middle + (bar_h - 2 * GLYPH_H) // 2, bar.label, INK)
        canvas.rect(plot_x, middle, plot_w, bar_h, TRACK)
        filled = round(max(0.0, min(1.0, bar.rate)) * plot_w)
        canvas.rect(plot_x, middle, max(filled, 2 if bar.rate > 0 else 0), bar_h, RED)
        canvas.text(plot_x + plot_w + 12, middle + (bar_h - 2 * GLYPH_H) // 2, value, INK)
        y += row_h
    return canvas


def _split_period(label: str) -> tuple[str, str]:
    """``2026-11`` → (``11``, ``2026``); ``2026`` → (``2026``, ``""``); anything else as it is."""
    match = re.fullmatch(r"(\d{4})-(.+)", label)
    return (match.group(2), match.group(1)) if match else (label, "")


def _render_trend(chart: Chart) -> Canvas:
    n = len(chart.bars)
    money = any(b.amount_fen is not None for b in chart.bars)
    rates = [_percent(b.rate) for b in chart.bars]
    amounts = [_yuan(b.amount_fen) if b.amount_fen is not None else "" for b in chart.bars]
    heads = [_split_period(b.label)[0] for b in chart.bars]
    axis_w = text_width("100%", 2) + 10
    plot_x = PAD + axis_w
    slot = max(widest([*rates, *amounts, *heads], 2) + 10, (WIDTH - PAD - plot_x) // n)  # labels never overlap
    plot_w, plot_h = slot * n, 220
    width = plot_x + plot_w + PAD
    top = PAD + 2 * GLYPH_H + 6 + (2 * GLYPH_H + 4 if money else 0)  # room for the labels over a full bar
    base = top + plot_h  # the zero line
    height = base + 8 + 2 * GLYPH_H + 6 + 2 * GLYPH_H + PAD
    canvas = Canvas(width, height, WHITE)
    for tick in (0.0, 0.5, 1.0):
        y = base - round(tick * plot_h)
        dotted(canvas, plot_x, y, plot_w, GRID)
        label = _percent(tick)
        canvas.text(plot_x - 10 - text_width(label, 2), y - GLYPH_H, label, MUTED)
    canvas.rect(plot_x, base, plot_w, 1, MUTED)
    bar_w = max(4, min(44, slot * 3 // 5))
    last_year = ""
    for i, bar in enumerate(chart.bars):
        center = plot_x + i * slot + slot // 2
        h = round(max(0.0, min(1.0, bar.rate)) * plot_h)
        canvas.rect(center - bar_w // 2, base - h, bar_w, h, RED if i == n - 1 else PALE_RED)
        y = base - h - 4 - 2 * GLYPH_H
        canvas.text(center - text_width(rates[i], 2) // 2, y, rates[i], INK)
        if amounts[i]:
            canvas.text(center - text_width(amounts[i], 2) // 2, y - 2 * GLYPH_H - 4, amounts[i], MUTED)
        year = _split_period(bar.label)[1]
        canvas.text(center - text_width(heads[i], 2) // 2, base + 8, heads[i], INK)
        if year and year != last_year:  # the year under its first period only
            canvas.text(center - text_width(year, 2) // 2, base + 8 + 2 * GLYPH_H + 6, year, MUTED)
            last_year = year
    return canvas


# ---- files ----------------------------------------------------------------------------------------


def charts_dir(data_dir: Path) -> Path:
    """Where chart files live: ``<data_dir>/charts`` (absolute)."""
    return (data_dir / "charts").resolve()


def write_chart(chart: Chart, directory: Path, stamp: str) -> Path:
    """Render and write ``stats-<stamp>-<random>.png``; the random part keeps names unguessable."""
    directory.mkdir(parents=True, exist_ok=True)
    prune(directory, "stats-*.png", KEEP_SECONDS, time.time())
    path = directory / f"stats-{stamp}-{secrets.token_hex(8)}.png"
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(render(chart))
    partial.replace(path)  # never a half-written picture for the uploader to pick up
    return path


async def save_chart(chart: Chart, data_dir: Path, now: dt.datetime) -> Path:
    """``write_chart`` in a worker thread, so the event loop keeps serving chats."""
    return await asyncio.to_thread(write_chart, chart, charts_dir(data_dir), now.strftime("%Y%m%d-%H%M%S"))
