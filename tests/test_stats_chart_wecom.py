"""/stats charts over WeCom (the fake server over real HTTP): 1:1 through the self-built app (one upload,
one image message), in the group through its robot webhook (the picture inline, rates only), and no
picture at all for a group the bot can only answer through the smart robot's text reply URL."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from bot.db.tables import OutboxMessage
from bot.reports.charts import PALE_RED, RED
from tests.test_stats_chart import TEXT, read_png
from tests.test_wecom_e2e import (  # noqa: F401 - make_env is a fixture
    DEC_OPEN,
    HOOK_KEY,
    MONEY_RE,
    Env,
    MakeEnv,
    _text,
    make_env,
)


async def two_collections(env: Env) -> None:
    """November's dues (opened now, 27 Nov; 张三 pays) and December's (李四 pays): a trend of two for 第一党支部."""
    await env.bot.app.runner.start_current("dues", env.clock.now())
    await env.bot.app.flush_outbox()
    await env.dm("ZhangSan", "党费 50", msg_id="20001")
    await env.run_due(DEC_OPEN)
    await env.dm("lisi", "党费 60", msg_id="20011")  # both months open: the bot asks which one
    await env.dm("lisi", "1", msg_id="20012")  # 12月党费收缴
    assert [(name, fen) for name, fen, _ in await env.responses()] == [("张三", 5000), ("李四", 6000)]


async def image_rows(env: Env) -> list[OutboxMessage]:
    return [r for r in await env.outbox() if r.payload.get("format") == "image"]


async def test_stats_1to1_one_upload_one_image(make_env: MakeEnv) -> None:  # noqa: F811 - the imported fixture
    env = await make_env()
    await two_collections(env)
    before = env.fake.calls.copy()
    await env.dm("member01", "/stats", msg_id="20002")
    sent = env.sends_to("member01")
    [text] = [b for b in sent if "统计" in _text(b)]
    assert "附图：最近2次党费的完成率及金额（红色为本次）。" in _text(text)
    [image] = [b for b in sent if b["msgtype"] == "image"]
    assert (env.fake.calls - before)["media/upload"] == 1
    filename, data = env.fake.media[image["image"]["media_id"]]
    assert filename.endswith(".png")
    png = read_png(data)
    assert {RED, PALE_RED} <= png.colours() and png.has_glyph("¥", TEXT)  # 1:1: the amounts too


async def test_group_chart_through_the_robot_webhook_has_no_money(make_env: MakeEnv) -> None:  # noqa: F811
    env = await make_env()
    await two_collections(env)
    hooked = len(env.hook())
    code = await env.at_robot("member01", "/stats", msgid="robot-20003")
    [reply] = env.fake.to(code)  # the text through the smart robot's reply URL
    assert "1/8" in reply.content and not MONEY_RE.search(reply.content) and "附图" in reply.content
    [image] = env.hook()[hooked:]  # the picture through the group's robot webhook, inline (no upload)
    assert image.msgtype == "image"
    data = base64.b64decode(image.body["image"]["base64"])
    assert hashlib.md5(data).hexdigest() == image.body["image"]["md5"]
    png = read_png(data)
    assert png.has_glyph("%", TEXT) and not png.has_glyph("¥", TEXT)


async def test_no_chart_where_the_group_has_no_webhook(make_env: MakeEnv) -> None:  # noqa: F811
    env = await make_env(group=False)
    await two_collections(env)
    env.clock.advance(dt.timedelta(minutes=1))
    code = await env.at_robot("member01", "/stats", msgid="robot-20004")
    [reply] = env.fake.to(code)
    assert "1/8" in reply.content and "附图" not in reply.content
    assert await image_rows(env) == []  # nothing queued that could only fail
