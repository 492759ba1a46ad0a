"""/stats charts over DingTalk (the fake open platform over real HTTP, both receive modes): one image
upload and one image message per /stats, to where the text went; rates only in the group; none while the
monthly budget is low."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.db.tables import OutboxMessage
from bot.reports.charts import RED, TRACK
from tests.test_dingtalk_e2e import (  # noqa: F401 - make_env is a fixture
    ADMIN,
    DEC1_0900,
    G1,
    MODES,
    ZHANG,
    Env,
    MakeEnv,
    make_env,
    sends_since,
    uid,
)
from tests.test_stats_chart import TEXT, read_png


async def image_rows(env: Env) -> list[OutboxMessage]:
    rows = await env.rows(select(OutboxMessage).order_by(OutboxMessage.id))
    return [r for r in rows if r.payload.get("format") == "image"]


def session_text(env: Env, ask: dict[str, Any]) -> str:
    [body] = env.said_in_chat(ask)
    return str(body["text"]["content"])


def text_reply(mode: str) -> dict[str, int]:
    """The call the text reply costs: none over HTTP (it rides in the callback's response), else one
    session-webhook POST."""
    return {} if mode == "http" else {"sendBySession": 1}


@MODES
async def test_admin_stats_1to1_one_upload_one_image(make_env: MakeEnv, mode: str) -> None:  # noqa: F811 - the imported fixture
    env = await make_env(mode)
    await env.run_at(DEC1_0900)  # December's dues open in both branches: a ranking of two
    await env.receive(env.message(ZHANG, "党费 50", "msgChartPay1=="))
    await env.bot.app.flush_outbox()
    ask = env.message(ADMIN, "/stats", "msgChartDm==", group=False)
    before, uploads = env.fake.calls.copy(), len(env.fake.uploads)
    await env.receive(ask)
    await env.bot.app.flush_outbox()

    assert "附图：各支部完成率" in session_text(env, ask)  # the text: free, in the response or the session webhook
    assert sends_since(env.fake, before) == text_reply(mode) | {"upload": 1, "batchSend": 1}
    [upload] = env.fake.uploads[uploads:]
    assert upload["type"] == "image" and upload["filename"].endswith(".png") and upload["size"] > 100
    [image] = [m for m in env.fake.oto_messages if m["msg_key"] == "sampleImageMsg"]
    assert image["user_ids"] == [uid(ADMIN)] and image["param"] == {"photoURL": upload["media_id"]}
    [row] = await image_rows(env)
    assert row.status == "sent"
    png = read_png(Path(row.payload["file_path"]).read_bytes())
    assert len(png.bands({RED, TRACK})) == 2


@MODES
async def test_group_stats_chart_goes_to_the_group_rates_only(make_env: MakeEnv, mode: str) -> None:  # noqa: F811 - the imported fixture
    env = await make_env(mode)
    await env.run_at(DEC1_0900)
    await env.receive(env.message(ZHANG, "党费 50", "msgChartPay2=="))
    await env.bot.app.flush_outbox()
    before, uploads = env.fake.calls.copy(), len(env.fake.uploads)
    await env.receive(env.message(ADMIN, "统计", "msgChartGroup=="))
    await env.bot.app.flush_outbox()

    assert sends_since(env.fake, before) == text_reply(mode) | {"upload": 1, "groupMessages": 1}
    [upload] = env.fake.uploads[uploads:]
    [image] = [m for m in env.fake.group_messages if m["msg_key"] == "sampleImageMsg"]
    assert image["conversation_id"] == G1 and image["param"] == {"photoURL": upload["media_id"]}
    [row] = await image_rows(env)
    png = read_png(Path(row.payload["file_path"]).read_bytes())
    assert png.has_glyph("%", TEXT) and not png.has_glyph("¥", TEXT)  # no money in a group, not even drawn


@MODES
async def test_low_budget_sends_the_text_without_the_chart(make_env: MakeEnv, mode: str) -> None:  # noqa: F811 - the imported fixture
    env = await make_env(mode, monthly_api_quota=100)
    await env.run_at(DEC1_0900)
    await env.receive(env.message(ZHANG, "党费 50", "msgChartPay3=="))  # something to chart
    await env.bot.app.flush_outbox()
    usage = await env.adapter.quota_usage()
    await env.adapter.client.quota.record("api", 80 - int(str(usage["api_used"])))  # other apps used the rest
    assert await env.adapter.budget_low()
    ask = env.message(ADMIN, "/stats", "msgChartLow==", group=False)
    before = env.fake.calls.copy()
    await env.receive(ask)
    await env.bot.app.flush_outbox()
    assert sends_since(env.fake, before) == text_reply(mode)
    assert "各支部填报统计" in session_text(env, ask) and "附图" not in session_text(env, ask)
    assert await image_rows(env) == []
