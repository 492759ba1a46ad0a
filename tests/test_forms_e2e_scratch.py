import datetime as dt
from typing import Any
from bot.clock import SHANGHAI
from bot.db.campaigns import open_campaign
from bot.db.orgs import find_org
from tests.conftest import start_bot, stop_bot

G = "group:第一党支部"
SEC, LHM, ZS, LS, WW, ZL, CQ, LY = [f"138000000{i:02d}" for i in range(1, 9)]

async def openc(bot, form_key, title, period="2026-11", roles=None, deadline=None):
    async with bot.app.sessions() as s, s.begin():
        org = await find_org(s, "第一党支部")
        c, _ = await open_campaign(s, form_key=form_key, period=period, org_id=org.id, title=title,
            opened_at=dt.datetime(2026,11,27,9,0,tzinfo=SHANGHAI), deadline_at=deadline or dt.datetime(2026,11,30,18,0,tzinfo=SHANGHAI),
            audience={"roles": roles} if roles else None)
        return c.id

async def show(bot, conv, who, text):
    d = await bot.say(conv, who, text)
    print(f"[{conv}] {who}: {text}")
    for r in d["replies"]:
        print(f"    -> ({r['conversation_id']}) {r['text']!r}")

async def test_explore(settings_factory, clock):
    settings = await settings_factory()
    bot = await start_bot(settings, clock)
    try:
        print()
        for t in ["已交", "交了50", "已交50元", "党费 五十元", "取消"]:
            await show(bot, G, ZS, t)
        await openc(bot, "theme_day", "11月主题党日")
        for t in ["到", "请假", "出差", "党费 50", "2", "同上", "取消"]:
            await show(bot, G, LS, t)
        for t in ["50", "1"]:
            await show(bot, G, LS, t)
        await openc(bot, "meeting", "11月支委会纪实", roles=["书记","副书记","委员"])
        for t in ["会议记录", "支委会", "明天", "三楼会议室", "王建国", "学习党章", "张三、李四", "无", "无"]:
            await show(bot, f"dm:{SEC}", SEC, t)
        await show(bot, f"dm:{ZS}", ZS, "会议记录 支委会")
        await openc(bot, "work_log", "11月27日工作日志", period="2026-11-27")
        for t in ["工作日志", "今天", "某某科技", "督导复工", "无", "无"]:
            await show(bot, f"dm:{ZL}", ZL, t)
        await openc(bot, "volunteer", "11月志愿服务")
        for t in ["志愿服务 11月20日 社区环境整治 2小时", "志愿", "昨天", "打扫卫生", "一个半小时"]:
            await show(bot, f"dm:{ZS}", ZS, t)
        for t in ["代 张三 党费 50", "我的"]:
            await show(bot, G, SEC, t)
        for t in ["代 李四 党费 30", "代 陈七 党费 30", "代 张三 党费 30"]:
            await show(bot, G, WW, t)
        await show(bot, G, LY, "代 张三 党费 30")
        await show(bot, G, ZS, "我的")
    finally:
        await stop_bot(bot)
