"""/export's signed, expiring download link (used when a platform cannot deliver the file message)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from typing import Any

from bot.clock import FakeClock
from tests.conftest import start_bot, stop_bot

SECRETARY = "13800000001"


async def test_export_link_downloads_once_signed_and_expires(settings_factory: Any, clock: FakeClock) -> None:
    settings = await settings_factory(**{"server.public_url": "https://dj.example.cn"})
    bot = await start_bot(settings, clock)
    try:
        await bot.say("group:第一党支部", "13800000003", "党费 45")
        data = await bot.say(f"dm:{SECRETARY}", SECRETARY, "导出 党费 2026-11")
        text = "\n".join(r["text"] for r in data["replies"])
        match = re.search(r"https://dj\.example\.cn(/download/[^\s]+)", text)
        assert match, text
        path = match.group(1)
        resp = await bot.client.get(path)
        assert resp.status == 200 and (await resp.read())[:2] == b"PK"  # an xlsx (zip) file
        forged = re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 40, path)
        assert (await bot.client.get(forged)).status == 403
        assert (await bot.client.get(path.replace(".xlsx", ".csv"))).status == 403
        assert (await bot.client.get("/download/..%2F..%2Fetc%2Fpasswd?exp=9999999999&sig=x")).status in (403, 404)
        clock.advance(dt.timedelta(hours=25))
        assert (await bot.client.get(path)).status == 410
    finally:
        await stop_bot(bot)


async def test_chat_export_deletes_ledgers_older_than_keep_export_days(settings_factory: Any, clock: FakeClock) -> None:
    """Ledgers hold members' dues: a chat export first clears the exports folder of old ones."""
    settings = await settings_factory(**{"reports.keep_export_days": 7})
    exports = settings.data_dir / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    week_ago = time.time() - 7 * 86400 - 60
    old_xlsx, old_csv, recent, other = (exports / n for n in ("old.xlsx", "old.csv", "recent.xlsx", "notes.txt"))
    for path in (old_xlsx, old_csv, recent, other):
        path.write_bytes(b"x")
    for path in (old_xlsx, old_csv, other):
        os.utime(path, (week_ago, week_ago))
    bot = await start_bot(settings, clock)
    try:
        data = await bot.say(f"dm:{SECRETARY}", SECRETARY, "导出 党费 2026-11")
        assert "已生成" in "\n".join(r["text"] for r in data["replies"])
    finally:
        await stop_bot(bot)
    left = {p.name for p in exports.iterdir()}
    assert "old.xlsx" not in left and "old.csv" not in left
    assert {"recent.xlsx", "notes.txt"} <= left  # recent ledgers and other files stay
    assert any(name.endswith(".xlsx") and name != "recent.xlsx" for name in left)  # the new export
