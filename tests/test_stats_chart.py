"""/stats charts: the PNG itself (read back with a small independent decoder) and the local chat end to end
(the image reply, the picture served to the page, money only 1:1, the switch, nothing to chart)."""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.db.tables import Campaign, OutboxMessage
from bot.reports.charts import (
    INK,
    KEEP_SECONDS,
    MUTED,
    PALE_RED,
    RED,
    TRACK,
    WHITE,
    Bar,
    Chart,
    ranking_chart,
    render,
    write_chart,
)
from bot.reports.png import GLYPHS
from bot.reports.stats import CampaignSummary
from tests.conftest import Running, start_bot, stop_bot

GROUP1 = "group:第一党支部"
SECRETARY, ADMIN = "13800000001", "13800000014"  # 王建国 (第一党支部书记), 郑华 (管理员, 第二党支部)
ZHANG_SAN, ZHOU_QIANG = "13800000003", "13800000012"
Pixel = tuple[int, int, int]


# ---- an independent PNG reader --------------------------------------------------------------------


@dataclass
class Png:
    width: int
    height: int
    rows: list[bytes]

    def px(self, x: int, y: int) -> Pixel:
        r, g, b = self.rows[y][3 * x : 3 * x + 3]
        return r, g, b

    def colours(self) -> set[Pixel]:
        return {self.px(x, y) for y in range(self.height) for x in range(self.width)}

    def count(self, colour: Pixel, y: int) -> int:
        return sum(1 for x in range(self.width) if self.px(x, y) == colour)

    def bands(self, colours: set[Pixel]) -> list[tuple[int, int]]:
        """Runs of rows (first, last) that contain any of ``colours``: the bars of a ranking chart."""
        runs: list[tuple[int, int]] = []
        for y in range(self.height):
            if any(self.px(x, y) in colours for x in range(self.width)):
                if runs and runs[-1][1] == y - 1:
                    runs[-1] = (runs[-1][0], y)
                else:
                    runs.append((y, y))
        return runs

    def has_glyph(self, char: str, colours: set[Pixel], scale: int = 2) -> bool:
        """Whether ``char`` of the 5×7 font is drawn anywhere, exactly (ink and gaps), at ``scale``."""
        rows = GLYPHS[char]
        ink = [(x, y) for y, row in enumerate(rows) for x, c in enumerate(row) if c == "#"]
        blank = [(x, y) for y, row in enumerate(rows) for x, c in enumerate(row) if c == "."]
        fx, fy = ink[0]
        for y in range(self.height - 7 * scale + 1):
            for x in range(self.width - 5 * scale + 1):
                colour = self.px(x + fx * scale, y + fy * scale)
                if colour not in colours:
                    continue
                if all(self.px(x + gx * scale, y + gy * scale) == colour for gx, gy in ink) and all(
                    self.px(x + gx * scale, y + gy * scale) == WHITE for gx, gy in blank
                ):
                    return True
        return False


def read_png(data: bytes) -> Png:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"CRC of {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour_type, compression, filtering, interlace) == (8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 3 * width + 1
    assert len(raw) == height * stride
    assert all(raw[y * stride] == 0 for y in range(height))  # filter type None on every row
    return Png(width, height, [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)])


TEXT = {INK, MUTED}


# ---- the picture ---------------------------------------------------------------------------------


def test_ranking_png_is_valid_and_bars_follow_the_rates() -> None:
    chart = Chart("ranking", (Bar("1", 1.0, 150_000), Bar("2", 0.5, 7_500), Bar("3", 0.25, 0)))
    png = read_png(render(chart))
    assert png.width == 720 and 150 < png.height < 200
    bars = png.bands({RED, TRACK})
    assert len(bars) == 3
    full = png.count(RED, bars[0][0])
    assert full > 300
    assert abs(png.count(RED, bars[1][0]) / full - 0.5) < 0.01
    assert abs(png.count(RED, bars[2][0]) / full - 0.25) < 0.01
    assert png.count(TRACK, bars[0][0]) == 0 and png.count(TRACK, bars[2][0]) > 0  # the unfilled rest
    for char in "123%¥":
        assert png.has_glyph(char, TEXT), char


def test_rates_only_chart_has_no_money_sign() -> None:
    chart = Chart("ranking", (Bar("1", 0.75), Bar("2", 0.2)))
    png = read_png(render(chart))
    assert png.has_glyph("%", TEXT) and not png.has_glyph("¥", TEXT)


def test_trend_png_highlights_the_latest_period() -> None:
    labels = ["2025-12", *(f"2026-{m:02d}" for m in range(1, 12))]
    chart = Chart("trend", tuple(Bar(label, 0.3 + 0.05 * i, 10_000 * i) for i, label in enumerate(labels)))
    png = read_png(render(chart))
    assert png.width >= 720
    base = next(y for y in range(png.height - 1, 0, -1) if png.count(MUTED, y) > png.width // 2)  # the zero line
    above = base - 1
    colours = [png.px(x, above) for x in range(png.width)]
    runs = [c for i, c in enumerate(colours) if c in (RED, PALE_RED) and (i == 0 or colours[i - 1] != c)]
    assert runs == [PALE_RED] * 11 + [RED]  # twelve bars, the newest in full red
    heights = []
    for x in (colours.index(PALE_RED), len(colours) - 1 - colours[::-1].index(RED)):
        heights.append(sum(1 for y in range(base) if png.px(x, y) in (RED, PALE_RED)))
    assert heights[1] > heights[0] * 2  # 85 % against 30 %
    assert png.has_glyph("¥", TEXT)


def test_big_rankings_keep_the_best_and_the_worst() -> None:
    summaries = [
        CampaignSummary(Campaign(), f"第{i}党支部", 100, 100 - i, 0, 0, 0) for i in range(1, 81)
    ]
    chart = ranking_chart(summaries, with_money=False)
    assert chart.truncated and [b.label for b in chart.bars] == [*map(str, range(1, 16)), *map(str, range(66, 81))]
    assert all(b.amount_fen is None for b in chart.bars)
    png = read_png(render(chart))
    assert len(png.bands({RED, TRACK})) == 30 and png.height < 1100
    assert png.has_glyph("8", TEXT)  # rank 80 is labelled as in the text list


def test_write_chart_is_atomic_and_prunes_old_files(tmp_path: Path) -> None:
    old = tmp_path / "stats-20200101-000000-0123456789abcdef.png"
    old.write_bytes(b"old")
    stale = time.time() - KEEP_SECONDS - 60
    os.utime(old, (stale, stale))
    path = write_chart(Chart("ranking", (Bar("1", 1.0), Bar("2", 0.0))), tmp_path, "20261127-100000")
    assert re.fullmatch(r"stats-20261127-100000-[0-9a-f]{16}\.png", path.name)
    assert not old.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]  # no ".part" left behind
    read_png(path.read_bytes())


# ---- /stats over the local chat ---------------------------------------------------------------------


def image_replies(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data["replies"] if r.get("format") == "image"]


def text_of(data: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in data["replies"] if r.get("format") != "image")


async def fetch_png(bot: Running, url: str) -> Png:
    resp = await bot.client.get(url)
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
    return read_png(await resp.read())


async def image_rows(bot: Running) -> list[OutboxMessage]:
    async with bot.app.sessions() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all()
    return [r for r in rows if r.payload.get("format") == "image"]


async def test_admin_stats_1to1_gets_the_ranking_chart_with_money(bot: Running) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    await bot.say(f"dm:{ZHOU_QIANG}", ZHOU_QIANG, "党费 78")
    data = await bot.say(f"dm:{ADMIN}", ADMIN, "/stats")
    text = text_of(data)
    assert "1. 第二党支部" in text and "附图：各支部完成率，图中数字即上面的序号。" in text
    [image] = image_replies(data)
    assert image["conversation_id"] == f"dm:{ADMIN}" and re.fullmatch(r"/chat/images/stats-[\w-]+\.png", image["image_url"])

    png = await fetch_png(bot, image["image_url"])
    assert len(png.bands({RED, TRACK})) == 2  # two branches, ranked
    assert png.has_glyph("¥", TEXT)  # 1:1: the amounts as in the text

    # The transcript carries the picture too: a "[图片] name" line with its URL, after the text.
    lines = [m for m in await bot.transcript(f"dm:{ADMIN}") if m["sender_id"] == "bot"]
    assert "附图" in lines[-2]["text"] and lines[-1]["image_url"] == image["image_url"]
    assert lines[-1]["text"] == "[图片] " + image["image_url"].rsplit("/", 1)[1]
    [row] = await image_rows(bot)
    assert (row.status, row.payload["user_id"], row.payload["text"]) == ("sent", ADMIN, "")
    assert Path(row.payload["file_path"]).parent == bot.app.settings.data_dir.resolve() / "charts"


async def test_group_stats_chart_goes_to_the_group_without_money(bot: Running) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    data = await bot.say(GROUP1, ADMIN, "统计")
    [image] = image_replies(data)
    assert image["conversation_id"] == GROUP1 and not image["private"]  # where the text went
    assert all(r["conversation_id"] == GROUP1 for r in data["replies"])
    png = await fetch_png(bot, image["image_url"])
    assert png.has_glyph("%", TEXT) and not png.has_glyph("¥", TEXT)  # rates only in a group
    [row] = await image_rows(bot)
    assert row.payload["conversation_id"] == GROUP1 and row.payload["mention_user_ids"] == []


async def test_single_branch_gets_its_trend(bot: Running, clock: FakeClock) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    assert image_replies(await bot.say(f"dm:{SECRETARY}", SECRETARY, "统计")) == []  # one collection: no chart
    clock.advance(dt.timedelta(minutes=5))
    assert "已为第一党支部发起" in text_of(await bot.say(f"dm:{SECRETARY}", SECRETARY, "发起 党费"))
    data = await bot.say(f"dm:{SECRETARY}", SECRETARY, "统计 党费")
    assert "附图：最近2次党费的完成率及金额（红色为本次）。" in text_of(data)
    [image] = image_replies(data)
    png = await fetch_png(bot, image["image_url"])
    colours = png.colours()
    assert PALE_RED in colours  # November, 1 of 8 paid; the new collection has no answers yet (0 %, no bar)
    assert png.has_glyph("¥", TEXT) and png.has_glyph("%", TEXT)


async def test_the_switch_turns_charts_off(settings_factory: Any, clock: FakeClock) -> None:
    running = await start_bot(await settings_factory(**{"reports.chart": False}), clock)
    try:
        await running.say(GROUP1, ZHANG_SAN, "党费 45")
        data = await running.say(f"dm:{ADMIN}", ADMIN, "统计")
        assert "各支部填报统计" in text_of(data) and "附图" not in text_of(data)
        assert image_replies(data) == [] and await image_rows(running) == []
    finally:
        await stop_bot(running)


async def test_nothing_to_chart_no_picture(bot: Running) -> None:
    data = await bot.say(f"dm:{ADMIN}", ADMIN, "统计 党费 2026-10")  # no collection
    assert "暂无党费的收集记录" in text_of(data) and image_replies(data) == []
    data = await bot.say(f"dm:{ADMIN}", ADMIN, "统计")  # two branches, nobody has answered yet
    assert "各支部填报统计" in text_of(data) and "附图" not in text_of(data) and image_replies(data) == []
    assert await image_rows(bot) == []


def test_worth_sending() -> None:
    assert not Chart("ranking", (Bar("1", 1.0),)).worth_sending  # one bar: the text says it all
    assert not Chart("ranking", (Bar("1", 0.0), Bar("2", 0.0))).worth_sending  # only empty bars
    assert Chart("trend", (Bar("2026-10", 0.0), Bar("2026-11", 0.1))).worth_sending


async def test_image_route_serves_only_chart_files(bot: Running) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    data = await bot.say(f"dm:{ADMIN}", ADMIN, "统计")
    [image] = image_replies(data)
    charts = bot.app.settings.data_dir.resolve() / "charts"
    (charts / "notes.txt").write_text("secret")
    for url in ("/chat/images/notes.txt", "/chat/images/..%2Fdangjian.db", "/chat/images/missing.png",
                "/chat/images/%2E%2E%2Fstats.png"):
        resp = await bot.client.get(url)
        assert resp.status == 404, url
    assert (await bot.client.get(image["image_url"])).status == 200
    # A member cannot make the page show a picture by typing the mark: only bot lines carry image_url.
    await bot.say(GROUP1, ZHANG_SAN, "[图片] " + image["image_url"].rsplit("/", 1)[1])
    assert not [m for m in await bot.transcript(GROUP1) if m["sender_id"] != "bot" and "image_url" in m]


async def test_unwritable_chart_dir_still_answers_with_text(bot: Running) -> None:
    await bot.say(GROUP1, ZHANG_SAN, "党费 45")
    charts = bot.app.settings.data_dir.resolve() / "charts"
    charts.parent.mkdir(parents=True, exist_ok=True)
    charts.write_text("not a directory")  # the chart cannot be written: the text must still go out
    data = await bot.say(f"dm:{ADMIN}", ADMIN, "统计")
    assert "1. 第一党支部" in text_of(data) and "附图" not in text_of(data)
    assert image_replies(data) == [] and await image_rows(bot) == []
