"""The /admin web dashboard over real HTTP (aiohttp TestServer) on the selected backends.

Login with the admin token or a one-time chat link; session cookie; HTML escaping; campaign drill-down with the
missing names; charts; compliance; ledger downloads.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from openpyxl import load_workbook
from sqlalchemy import select

from bot.clock import SHANGHAI, FakeClock
from bot.dashboard.auth import COOKIE
from bot.db.campaigns import open_campaign, save_response
from bot.db.orgs import ensure_path
from bot.db.tables import AuditEntry, Campaign, Member, Org
from tests.conftest import Running, start_bot, stop_bot

TOKEN = "test-admin-token-0123456789"
ADMIN = "13800000014"  # 郑华, 党员、管理员 of 第二党支部
SECRETARY = "13800000001"  # 王建国, 书记 of 第一党支部
ZHANG_SAN = "13800000003"
LI_SI = "13800000004"
BRANCH1 = ["王建国", "李红梅", "张三", "李四", "王五", "赵六", "陈七", "刘洋"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LINK_RE = re.compile(r"(https?://\S+/admin/login\?t=[A-Za-z0-9_\-]+)")


# -- helpers shared with the browser test -----------------------------------------------------------------


async def start(settings_factory: Any, clock: FakeClock, token: str = TOKEN) -> Running:
    settings = await settings_factory(**({"admin.token": token} if token else {}))
    return await start_bot(settings, clock)


async def login(running: Running, token: str = TOKEN) -> None:
    resp = await running.client.post("/admin/login", data={"token": token}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def page(running: Running, path: str) -> str:
    resp = await running.client.get(path, allow_redirects=False)
    assert resp.status == 200, (path, resp.status, await resp.text())
    assert resp.content_type == "text/html"
    return await resp.text()


async def org_by_name(running: Running, name: str) -> Org:
    async with running.app.sessions() as session:
        return (await session.execute(select(Org).where(Org.name == name))).scalar_one()


async def current_dues(running: Running, branch: str) -> Campaign:
    org = await org_by_name(running, branch)
    async with running.app.sessions() as session:
        stmt = select(Campaign).where(Campaign.org_id == org.id, Campaign.form_key == "dues", Campaign.period == "2026-11")
        return (await session.execute(stmt)).scalar_one()


async def seed_dues_history(running: Running, months: range = range(1, 11)) -> None:
    """Dues campaigns for earlier months of 2026 in both branches, most members paid (figures for charts)."""
    async with running.app.sessions() as session, session.begin():
        orgs = (await session.execute(select(Org).where(Org.kind == "branch").order_by(Org.path))).scalars().all()
        for index, org in enumerate(orgs):
            members = (await session.execute(select(Member).where(Member.org_id == org.id).order_by(Member.id))).scalars().all()
            for month in months:
                opened = dt.datetime(2026, month, 2, 9, tzinfo=SHANGHAI)
                campaign, _ = await open_campaign(
                    session, form_key="dues", period=f"2026-{month:02d}", org_id=org.id, title=f"{month}月党费收缴",
                    opened_at=opened, deadline_at=opened + dt.timedelta(days=13), schedule_key="dues",
                )  # fmt: skip
                for n, member in enumerate(members):
                    if (n + month + index) % 5 == 0:  # someone misses each month
                        continue
                    fen = 2000 + 500 * n + 100 * index
                    await save_response(
                        session, campaign=campaign, member=member, values={"amount": fen}, entered_by=member,
                        now=opened + dt.timedelta(days=3), platform="local", amount_fen=fen,
                    )  # fmt: skip


async def one_time_link(running: Running, sender: str = ADMIN) -> str:
    data = await running.say(f"dm:{sender}", sender, "后台")
    texts = [r["text"] for r in data["replies"]]
    match = next((m for m in (LINK_RE.search(t) for t in texts) if m), None)
    assert match is not None, texts
    return match.group(1)


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["t"][0]


def section(html: str, element_id: str) -> str:
    """The element with ``id`` (up to its closing tag), for assertions about one list."""
    start = html.index(f'id="{element_id}"')
    end = html.index("</", start)
    return html[start:end] if "<li>" not in html[start:end] else html[start : html.index("</ul>", start)]


def use_cookie(running: Running, value: str) -> None:
    """Replace whatever session the test client holds by ``value``."""
    jar = running.client.session.cookie_jar
    jar.clear()
    jar.update_cookies({COOKIE: value})


def read_csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]  # BOM: Excel and WPS read it as UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def read_xlsx(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """Sheet name → rows (values), from a real XLSX file."""
    assert body[:2] == b"PK", body[:10]
    book = load_workbook(io.BytesIO(body), read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def member_rows(sheet: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [row for row in sheet if isinstance(row[0], int)]


def paid_in(sheet: list[tuple[Any, ...]], month: str = "11月") -> dict[str, float]:
    """Name → amount paid in ``month`` (yuan) in a 党费收缴登记表 sheet."""
    header = next(row for row in sheet if row[:2] == ("序号", "姓名"))
    col = header.index(month)
    return {row[1]: float(row[col]) for row in member_rows(sheet) if row[col] is not None}


# -- tests ------------------------------------------------------------------------------------------------


async def test_login_required(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        for path in ("/admin", "/admin/compliance", "/admin/exports", "/admin/export?form=dues&period=2026",
                     "/admin/campaigns/1", "/admin/branches/1"):  # fmt: skip
            resp = await running.client.get(path, allow_redirects=False)
            assert resp.status == 302, path
            assert resp.headers["Location"].startswith("/admin/login?next=/admin"), resp.headers["Location"]
        # A forged or tampered cookie is no session either.
        for forged in ("v1.1795000000.token.nonce.AAAA", "token", "v1.x.m1.n.sig", "v1.1795000000.m1.n"):
            use_cookie(running, forged)
            resp = await running.client.get("/admin", allow_redirects=False)
            assert resp.status == 302
        resp = await running.client.get("/admin/login")
        assert resp.status == 200
        text = await resp.text()
        assert 'name="token"' in text and "后台" in text  # the form, and the hint about chat links
        assert "第一党支部" not in text
    finally:
        await stop_bot(running)


async def test_wrong_token_rejected_right_token_works(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        resp = await running.client.post("/admin/login", data={"token": "wrong"}, allow_redirects=False)
        assert resp.status == 401
        assert COOKIE not in resp.cookies
        assert "不正确" in await resp.text()
        resp = await running.client.post("/admin/login", data={"token": TOKEN + "x"}, allow_redirects=False)
        assert resp.status == 401
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302

        resp = await running.client.post(
            "/admin/login", data={"token": TOKEN, "next": "/admin/compliance"}, allow_redirects=False
        )
        assert resp.status == 303
        assert resp.headers["Location"] == "/admin/compliance"
        cookie = resp.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/admin"
        set_cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        html = await page(running, "/admin")
        assert "第一党支部" in html and "第二党支部" in html and "<svg" in html
        resp = await running.client.get("/admin")
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script" not in csp
        assert resp.headers["Cache-Control"] == "no-store"
        assert "<script" not in await resp.text()
        # The stylesheet is served locally (no CDN), also without a session.
        css = await running.client.get("/admin/static/dashboard.css")
        assert css.status == 200 and css.content_type == "text/css"
        async with running.app.sessions() as session:
            actions = (await session.execute(select(AuditEntry.action))).scalars().all()
        assert "admin_login" in actions

        # Tampering with the signed cookie (e.g. turning it into a member session) fails.
        value = cookie.value
        use_cookie(running, value.replace(".token.", ".m1."))
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302
        use_cookie(running, value)
        assert (await running.client.get("/admin", allow_redirects=False)).status == 200

        # Only dashboard paths are followed after login (no open redirect).
        for bad in ("//evil.example/", "https://evil.example/admin", "/admin//evil.example"):
            resp = await running.client.post("/admin/login", data={"token": TOKEN, "next": bad}, allow_redirects=False)
            assert resp.headers["Location"] == "/admin", bad

        # Sessions end: logout (also for a copy of the cookie), and after 12 hours.
        running.client.session.cookie_jar.clear()
        await login(running)
        copy = next(c.value for c in running.client.session.cookie_jar if c.key == COOKIE)
        resp = await running.client.post("/admin/logout", allow_redirects=False)
        assert resp.status == 303
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302
        use_cookie(running, copy)
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302
        running.client.session.cookie_jar.clear()
        await login(running)
        assert (await running.client.get("/admin", allow_redirects=False)).status == 200
        clock.advance(dt.timedelta(hours=12, minutes=1))
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302
    finally:
        await stop_bot(running)


async def test_failed_logins_are_throttled(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        for _ in range(10):
            resp = await running.client.post("/admin/login", data={"token": "guess"}, allow_redirects=False)
            assert resp.status == 401
        resp = await running.client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
        assert resp.status == 429  # even the right token waits until the window passes
        clock.advance(dt.timedelta(minutes=16))
        if not running.app.settings.redis.url:  # Redis expires on its own clock
            await login(running)
    finally:
        await stop_bot(running)


async def test_one_time_link_works_once_then_expires(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        # Only an admin gets a link, and only 1:1.
        data = await running.say(f"dm:{SECRETARY}", SECRETARY, "后台")
        assert "仅管理员" in data["replies"][0]["text"]
        assert not any(LINK_RE.search(r["text"]) for r in data["replies"])
        data = await running.say("group:第二党支部", ADMIN, "/admin")
        public = [r for r in data["replies"] if not r["private"]]
        assert public and not any(LINK_RE.search(r["text"]) for r in public)
        assert any(LINK_RE.search(r["text"]) for r in data["replies"] if r["private"])

        link = await one_time_link(running)
        assert link.startswith("http://127.0.0.1:8080/admin/login?t=")
        token = token_of(link)
        # Opening the link shows a button (link previews must not use it up) ...
        html = await page(running, path_of(link))
        assert "郑华" in html and 'name="t"' in html
        html = await page(running, path_of(link))  # ... so it can be opened twice
        # ... and pressing it logs in once.
        resp = await running.client.post("/admin/login", data={"t": token}, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/admin"
        html = await page(running, "/admin")
        assert "郑华" in html  # who is signed in
        # Used up: a second use is refused, from a fresh browser too.
        running.client.session.cookie_jar.clear()
        resp = await running.client.post("/admin/login", data={"t": token}, allow_redirects=False)
        assert resp.status == 403
        assert "已失效" in await resp.text()
        assert (await running.client.get(path_of(link), allow_redirects=False)).status == 403
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302

        # A fresh link expires after 10 minutes.
        link = await one_time_link(running)
        clock.advance(dt.timedelta(minutes=10, seconds=1))
        resp = await running.client.post("/admin/login", data={"t": token_of(link)}, allow_redirects=False)
        assert resp.status == 403
        # A made-up token is refused.
        resp = await running.client.post("/admin/login", data={"t": "x" * 43}, allow_redirects=False)
        assert resp.status == 403

        # A member session ends when the member is no longer an admin.
        link = await one_time_link(running)
        await running.client.post("/admin/login", data={"t": token_of(link)}, allow_redirects=False)
        assert (await running.client.get("/admin", allow_redirects=False)).status == 200
        async with running.app.sessions() as session, session.begin():
            admin = (await session.execute(select(Member).where(Member.mobile == ADMIN))).scalar_one()
            admin.roles = Member.pack_roles(["党员"])
        assert (await running.client.get("/admin", allow_redirects=False)).status == 302
    finally:
        await stop_bot(running)


async def test_without_token_no_open_dashboard_but_chat_links_work(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock, token="")
    try:
        for path in ("/admin", "/admin/login", "/admin/campaigns/1"):
            resp = await running.client.get(path, allow_redirects=False)
            text = await resp.text()
            assert resp.status == 200, path
            assert "DANGJIAN_ADMIN_TOKEN" in text and "后台" in text, path
            assert "第一党支部" not in text and "<svg" not in text, path
        resp = await running.client.post("/admin/login", data={"token": ""}, allow_redirects=False)
        assert resp.status == 403
        link = await one_time_link(running)
        resp = await running.client.post("/admin/login", data={"t": token_of(link)}, allow_redirects=False)
        assert resp.status == 303
        assert "第一党支部" in await page(running, "/admin")
    finally:
        await stop_bot(running)


async def test_campaign_drilldown_lists_missing_names(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        await running.say("group:第一党支部", ZHANG_SAN, "党费 45")
        await running.say("group:第一党支部", LI_SI, "党费 15")
        await running.say(f"dm:{SECRETARY}", SECRETARY, "设置请假 王五 至 12月20日 出差")
        await login(running)
        campaign = await current_dues(running, "第一党支部")
        html = await page(running, f"/admin/campaigns/{campaign.id}")
        missing = section(html, "missing")
        for name in BRANCH1:
            if name in ("张三", "李四", "王五"):
                assert name not in missing, name
            else:
                assert f"<li>{name}</li>" in missing, name
        assert "王五" in html and "请假中" in html
        assert "2/7" in html and "60.00 元" in html  # 45 + 15, 王五 on leave is not counted
        assert "45.00元" in html and "张三" in html
        # The overview links to it and shows the rate per branch.
        overview = await page(running, "/admin")
        assert f'href="/admin/campaigns/{campaign.id}"' in overview
        assert "2/7（29%）" in overview
        branch = await page(running, f"/admin/branches/{campaign.org_id}")
        assert f'href="/admin/campaigns/{campaign.id}"' in branch
        assert (await running.client.get("/admin/campaigns/999999")).status == 404
    finally:
        await stop_bot(running)


async def test_html_is_escaped(settings_factory: Any, clock: FakeClock) -> None:
    evil_name = '<script>alert("x")</script>'
    evil_branch = '"><img src=x onerror=alert(1)>支部'
    running = await start(settings_factory, clock)
    try:
        campaign = await current_dues(running, "第一党支部")
        async with running.app.sessions() as session, session.begin():
            now = clock.now()
            session.add(Member(name=evil_name, org_id=campaign.org_id, created_at=now))
            branch = await ensure_path(session, f"机关党委/{evil_branch}", now)
            session.add(Member(name="<b>粗体</b>", org_id=branch.id, created_at=now))
            c = await session.get(Campaign, campaign.id)
            assert c is not None
            c.title = "<i>11月</i>党费收缴"
        await login(running)
        for path in (f"/admin/campaigns/{campaign.id}", "/admin", f"/admin/branches/{branch.id}", "/admin/compliance",
                     "/admin/exports"):  # fmt: skip
            html = await page(running, path)
            assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html, path
        html = await page(running, f"/admin/campaigns/{campaign.id}")
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
        assert "&lt;i&gt;11月&lt;/i&gt;党费收缴" in html
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;支部" in await page(running, "/admin")
        # The search box echoes what was typed, escaped.
        html = await page(running, "/admin?period=%22%3E%3Cscript%3E")
        assert "<script" not in html and "&quot;&gt;&lt;script&gt;" in html
    finally:
        await stop_bot(running)


async def test_ledger_download(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        await running.say("group:第一党支部", ZHANG_SAN, "党费 45")
        await running.say("group:第一党支部", LI_SI, "党费 15")
        await login(running)
        # XLSX by default: the ledger of bot.reports (as chat /export and `dangjian export`).
        resp = await running.client.get("/admin/export", params={"form": "dues", "period": "2026-11"})
        assert resp.status == 200
        assert resp.content_type == XLSX
        disposition = resp.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and quote("全部支部党费收缴登记表（2026年11月）.xlsx") in disposition
        sheets = read_xlsx(await resp.read())
        assert list(sheets) == ["汇总", "第一党支部", "第二党支部"]
        assert paid_in(sheets["第一党支部"]) == {"张三": 45, "李四": 15}
        assert paid_in(sheets["第二党支部"]) == {}
        assert len(member_rows(sheets["第一党支部"])) == 8

        # One branch (by id), a year, and CSV.
        org = await org_by_name(running, "第二党支部")
        params = {"form": "党费", "period": "2026", "branch": str(org.id), "format": "csv"}
        resp = await running.client.get("/admin/export", params=params)
        assert resp.status == 200 and resp.content_type == "text/csv"
        assert quote("第二党支部党费收缴登记表（2026年度）.csv") in resp.headers["Content-Disposition"]
        rows = read_csv(await resp.read())
        assert [r["姓名"] for r in rows if r["序号"].isdigit()] == ["孙丽", "周强", "吴敏", "郑华"]

        # Other ledgers download too.
        resp = await running.client.get("/admin/export", params={"form": "theme_day", "period": "2026"})
        assert resp.status == 200 and resp.content_type == XLSX
        read_xlsx(await resp.read())

        for params in ({"form": "dues", "period": "11月"}, {"form": "nope", "period": "2026"}, {"form": "dues"}):
            assert (await running.client.get("/admin/export", params=params)).status == 400, params
        resp = await running.client.get("/admin/export", params={"form": "dues", "period": "2026", "branch": "999999"})
        assert resp.status == 404
        html = await page(running, "/admin/exports")
        assert "/admin/export?form=dues&amp;period=2026" in html
        async with running.app.sessions() as session:
            exports = (await session.execute(select(AuditEntry).where(AuditEntry.action == "admin_export"))).scalars().all()
        assert len(exports) == 3
    finally:
        await stop_bot(running)


async def test_charts_trend_and_compliance(settings_factory: Any, clock: FakeClock) -> None:
    running = await start(settings_factory, clock)
    try:
        await seed_dues_history(running)
        await running.say("group:第一党支部", ZHANG_SAN, "党费 45")
        await login(running)
        html = await page(running, "/admin")
        assert html.count("<svg") == 3
        assert "2025-12 至 2026-11" in html
        # Twelve months on the axis, December 2025 empty.
        trend = html[html.index("近12个月党费收缴") :]
        for month in ("12月", "1月", "10月", "11月"):
            assert f">{month}</text>" in trend, month
        assert "2025年12月：党费合计 0.00 元；未收缴" in trend
        # The rate filter by period.
        html = await page(running, "/admin?form=dues&period=2026-03")
        assert "2026年3月" in html
        html = await page(running, "/admin?period=bogus")
        assert "无法识别" in html

        # Compliance, from bot.reports.compliance: this month by default, any period on request.
        html = await page(running, "/admin/compliance")
        assert "组织生活达标情况（2026年11月）" in html
        html = await page(running, "/admin/compliance?period=2026")
        assert "组织生活达标情况（2026年度）" in html
        branch1, branch2 = await org_by_name(running, "第一党支部"), await org_by_name(running, "第二党支部")
        row1 = html[html.index(f"/admin/branches/{branch1.id}") :].split("</tr>")[0]
        row2 = html[html.index(f"/admin/branches/{branch2.id}") :].split("</tr>")[0]
        for label in ("支部委员会会议", "支部党员大会", "主题党日", "党费收缴"):
            assert label in html, label
        assert "已开展 0/11" in row1 and "已开展 0/11" in row2  # no theme days recorded
        assert "人次" in row1 and "✘" in row1
        assert "党小组会" in html and "第一党小组缺" in row1  # only branch 1 has Party groups
        html = await page(running, "/admin/compliance?period=2027-01")
        assert "还没有开始" in html and "2026年11月" in html
        assert "无法识别" in await page(running, "/admin/compliance?period=x")
    finally:
        await stop_bot(running)
