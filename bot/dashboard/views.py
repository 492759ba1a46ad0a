"""The /admin routes: login (admin token or one-time chat link), overview, branch, campaign, compliance, downloads.

Every page but the login pages and the stylesheet needs a valid session cookie; without one the browser is
sent to ``/admin/login`` (or, with no admin token configured, shown how to set one). Responses carry a strict
CSP (no scripts at all, styles only from /admin/static) and are never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from bot.dashboard import auth, pages
from bot.dashboard.html import Html
from bot.dashboard.queries import (
    Headcount,
    campaign_answers,
    headcounts,
    money_by_org,
    monthly_trend,
    recent_campaigns,
)
from bot.db import journal
from bot.db.members import is_admin
from bot.db.tables import Campaign, Member, Org
from bot.errors import StorageUnavailable
from bot.logs import app_log, log_event
from bot.reports.compliance import branch_compliance, cadences_from
from bot.reports.ledgers import Ledger, build_ledger, find_form
from bot.reports.periods import current_period, parse_period, year_period
from bot.reports.scope import ReportScope, scoped_branches
from bot.reports.stats import campaign_counts, campaign_summary, latest_campaigns
from bot.reports.xlsx import write_ledger
from bot.services import Services

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CONTENT_TYPES = {".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None),
                 ".csv": ("text/csv", "utf-8")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Viewer:
    name: str
    member_id: int | None


View = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def html_response(page: Html, status: int = 200) -> web.Response:
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)


def redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={**SECURITY_HEADERS, "Location": location})


def safe_next(value: object) -> str:
    """Only paths inside the dashboard are followed after login (no open redirect)."""
    if not isinstance(value, str) or not value.startswith("/admin") or value.startswith("/admin/login"):
        return "/admin"
    if "//" in value or "\\" in value or any(ch in value for ch in "\r\n\t"):
        return "/admin"
    return value


def _is_https(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


class Dashboard:
    def __init__(self, services: Services) -> None:
        self.services = services

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin", self._guarded(self.overview)),
            web.get("/admin/", self._to_overview),
            web.get("/admin/login", self.login_page),
            web.post("/admin/login", self.login),
            web.post("/admin/logout", self.logout),
            web.get(r"/admin/branches/{org_id:\d+}", self._guarded(self.branch)),
            web.get(r"/admin/campaigns/{campaign_id:\d+}", self._guarded(self.campaign)),
            web.get("/admin/compliance", self._guarded(self.compliance)),
            web.get("/admin/exports", self._guarded(self.exports)),
            web.get("/admin/export", self._guarded(self.export)),
            web.get("/admin/static/dashboard.css", self.stylesheet),
        ]

    # -- sessions -------------------------------------------------------------------------------------

    @property
    def _token(self) -> str:
        return self.services.settings.admin.token

    async def _viewer(self, request: web.Request) -> Viewer | None:
        session = await auth.read_cookie(self.services, request.cookies.get(auth.COOKIE))
        if session is None:
            return None
        if session.member_id is None:
            return Viewer("管理员（令牌登录）", None) if self._token else None
        async with self.services.sessions() as db:
            member = await db.get(Member, session.member_id)
        if member is None or not member.active or not is_admin(member):
            return None
        return Viewer(member.name, member.id)

    def _guarded(self, view: View) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                viewer = await self._viewer(request)
            except StorageUnavailable:
                return html_response(pages.message_page("暂时无法登录", "存储暂时不可用，请稍后重试。"), 503)
            if viewer is None:
                if not self._token:
                    return html_response(pages.setup_page())
                return redirect("/admin/login?next=" + quote(safe_next(request.path_qs), safe="/"))
            return await view(request, viewer)

        return handler

    async def _to_overview(self, _: web.Request) -> web.Response:
        return redirect("/admin")

    async def _signed_in(self, request: web.Request, subject: str, next_path: str, method: str, actor: int | None) -> web.Response:
        response = redirect(next_path, 303)
        response.set_cookie(
            auth.COOKIE, await auth.make_cookie(self.services, subject), max_age=auth.SESSION_HOURS * 3600,
            path="/admin", httponly=True, samesite="Strict", secure=_is_https(request),
        )  # fmt: skip
        async with self.services.sessions() as db, db.begin():
            journal.audit(db, self.services.now(), actor, "admin_login", method=method, ip=request.remote or "")
        log_event(app_log, "admin_login", method=method, member_id=actor, ip=request.remote or "")
        return response

    # -- login ----------------------------------------------------------------------------------------

    async def _link_admin(self, token: str, consume: bool) -> Member | None:
        member_id = await (auth.consume_login_link if consume else auth.peek_login_link)(self.services, token)
        if member_id is None:
            return None
        async with self.services.sessions() as db:
            member = await db.get(Member, member_id)
        return member if member is not None and member.active and is_admin(member) else None

    async def login_page(self, request: web.Request) -> web.Response:
        next_path = safe_next(request.query.get("next"))
        try:
            token = request.query.get("t", "")
            if token:
                member = await self._link_admin(token, consume=False)
                if member is None:
                    return html_response(self._link_invalid(), 403)
                # A button, not an automatic login: link previews in chat apps must not use the link up,
                # and a same-site POST lets the SameSite=Strict cookie work after the redirect.
                return html_response(pages.link_confirm_page(token, next_path, member.name))
            if await self._viewer(request) is not None:
                return redirect(next_path)
        except StorageUnavailable:
            return html_response(pages.message_page("暂时无法登录", "存储暂时不可用，请稍后重试。"), 503)
        if not self._token:
            return html_response(pages.setup_page())
        return html_response(pages.login_page(next_path))

    @staticmethod
    def _link_invalid() -> Html:
        return pages.message_page(
            "登录链接已失效", "此登录链接无效、已被使用或已过期（一次性链接10分钟内有效，只能使用一次）。",
            extra="请在聊天中向机器人重新发送“后台”获取新链接。",
        )  # fmt: skip

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        next_path = safe_next(form.get("next"))
        link, given = form.get("t"), form.get("token")
        client = request.remote or "unknown"
        try:
            if isinstance(link, str) and link:
                member = await self._link_admin(link, consume=True)
                if member is None:
                    return html_response(self._link_invalid(), 403)
                return await self._signed_in(request, f"m{member.id}", next_path, "link", member.id)
            if not self._token:
                return html_response(pages.setup_page(), 403)
            if await auth.too_many_failures(self.services, client):
                page = pages.login_page(next_path, "登录失败次数过多，请15分钟后再试。")
                return html_response(page, 429)
            if isinstance(given, str) and auth.token_matches(self._token, given):
                return await self._signed_in(request, "token", next_path, "token", None)
            await auth.record_failure(self.services, client)
        except StorageUnavailable:
            return html_response(pages.message_page("暂时无法登录", "存储暂时不可用，请稍后重试。"), 503)
        log_event(app_log, "admin_login_failed", ip=client)
        return html_response(pages.login_page(next_path, "登录令牌不正确，请重新输入。"), 401)

    async def logout(self, request: web.Request) -> web.Response:
        with contextlib.suppress(StorageUnavailable):  # the browser forgets the cookie all the same
            await auth.revoke_cookie(self.services, request.cookies.get(auth.COOKIE))
        response = redirect("/admin/login", 303)
        response.del_cookie(auth.COOKIE, path="/admin")
        return response

    async def stylesheet(self, _: web.Request) -> web.Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "max-age=3600"}
        return web.Response(body=(STATIC / "dashboard.css").read_bytes(), content_type="text/css", charset="utf-8",
                            headers=headers)  # fmt: skip

    # -- pages ----------------------------------------------------------------------------------------

    def _today(self) -> dt.date:
        return self.services.local_now().date()

    async def overview(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        s = self.services
        now, today = s.now(), self._today()
        form_key = request.query.get("form", "dues")
        notice = ""
        if form_key not in s.forms:
            notice, form_key = f"没有名为“{form_key[:30]}”的收集表单。", "dues" if "dues" in s.forms else next(iter(s.forms))
        period_text = request.query.get("period", "").strip()[:20]
        period = parse_period(period_text) if period_text else None
        if period_text and period is None:
            notice, period_text = f"无法识别的期间“{period_text}”，请写成 2026-11、2026-Q4 或 2026。", ""
        async with s.sessions() as db:
            branches = (await scoped_branches(db, ReportScope.superuser())).branches
            ids = [b.id for b in branches]
            heads = await headcounts(db, today)
            latest = await latest_campaigns(db, ids, form_key, now, period)
            counts = await campaign_counts(db, latest, today)
            money = await money_by_org(db, "dues", year_period(today.year), today)
            trend = await monthly_trend(db, "dues", ids, today)
        newest = {c.org_id: c for c in latest}
        lines = []
        for b in branches:
            head, campaign = heads.get(b.id, Headcount()), newest.get(b.id)
            lines.append(pages.BranchLine(b, head.members, head.on_leave, campaign,
                                          counts[campaign.id] if campaign else None, money.get(b.id, 0)))  # fmt: skip
        page = pages.overview_page(
            lines=lines, forms=s.forms, form_key=form_key, period_text=period.title if period else "",
            year=today.year, trend=trend, notice=notice, who=viewer.name,
        )  # fmt: skip
        return html_response(page)

    async def branch(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        s = self.services
        now, today = s.now(), self._today()
        async with s.sessions() as db:
            org = await db.get(Org, int(request.match_info["org_id"]))
            if org is None or org.kind != "branch":
                return html_response(pages.message_page("没有这个支部", "没有找到这个支部。", signed_in=True), 404)
            head = (await headcounts(db, today)).get(org.id, Headcount())
            money = (await money_by_org(db, "dues", year_period(today.year), today)).get(org.id, 0)
            trend = await monthly_trend(db, "dues", [org.id], today)
            campaigns = await recent_campaigns(db, org.id, now, today)
        page = pages.branch_page(
            org=org, members=head.members, on_leave=head.on_leave, money_fen=money, year=today.year, trend=trend,
            campaigns=campaigns, forms=s.forms, now=now, tz=s.tz, who=viewer.name,
        )  # fmt: skip
        return html_response(page)

    async def campaign(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        s = self.services
        async with s.sessions() as db:
            campaign = await db.get(Campaign, int(request.match_info["campaign_id"]))
            org = await db.get(Org, campaign.org_id) if campaign is not None else None
            if campaign is None or org is None:
                return html_response(pages.message_page("没有这次收集", "没有找到这次收集。", signed_in=True), 404)
            summary = await campaign_summary(db, campaign, self._today())
            answers = await campaign_answers(db, campaign.id)
        page = pages.campaign_page(summary=summary, org=org, answers=answers, form=s.forms.get(campaign.form_key),
                                   now=s.now(), tz=s.tz, who=viewer.name)  # fmt: skip
        return html_response(page)

    async def compliance(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        today = self._today()
        period_text = request.query.get("period", "").strip()[:20]
        period = parse_period(period_text) if period_text else None
        notice = ""
        if period_text and period is None:
            notice = f"无法识别的期间“{period_text}”，请写成 2026-11、2026-Q4 或 2026。"
        elif period is not None and period.first > today:
            notice, period = f"{period.title}还没有开始，下面是本月的情况。", None
        period = period or current_period("month", today)
        cadences = cadences_from((x.key, x.period) for x in self.services.schedules if x.enabled)
        async with self.services.sessions() as db:
            branches = (await scoped_branches(db, ReportScope.superuser())).branches
            results = await branch_compliance(db, branches, period, today, cadences)
        page = pages.compliance_page(period=period, results=results, period_text=period.label, notice=notice,
                                     who=viewer.name)  # fmt: skip
        return html_response(page)

    async def exports(self, _: web.Request, viewer: Viewer) -> web.StreamResponse:
        async with self.services.sessions() as db:
            branches = (await scoped_branches(db, ReportScope.superuser())).branches
        page = pages.exports_page(forms=self.services.forms, branches=branches, today=self._today(), who=viewer.name)
        return html_response(page)

    async def export(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """The ledger of bot.reports.ledgers (the same as chat /export and `dangjian export`), as XLSX or CSV."""
        s = self.services
        form = find_form(s.forms, request.query.get("form", ""))
        period = parse_period(request.query.get("period", ""))
        suffix = ".csv" if request.query.get("format", "xlsx").lower() == "csv" else ".xlsx"
        if form is None or period is None:
            message = "请选择台账（form），并写明期间（period），例如 2026、2026-11 或 2026-Q4。"
            return html_response(pages.message_page("无法下载", message, signed_in=True), 400)
        branch = request.query.get("branch", "").strip()[:200]
        async with s.sessions() as db:
            org = await db.get(Org, int(branch)) if branch.isdigit() else None
            scoped = await scoped_branches(db, ReportScope.superuser(), org.path if org else branch or None)
            if not scoped.ok or (branch.isdigit() and org is None):
                return html_response(pages.message_page("无法下载", "没有找到这个支部。", signed_in=True), 404)
            ledger = await build_ledger(
                db, form, period, scoped.branches, now=s.now(), tz=s.tz,
                scope_name=scoped.named.name if scoped.named else "全部支部", policy=s.dues_policy,
            )  # fmt: skip
            journal.audit(db, s.now(), viewer.member_id, "admin_export", form=form.key, period=period.label,
                          orgs=[b.id for b in scoped.branches], format=suffix[1:])  # fmt: skip
            await db.commit()
        body = await asyncio.to_thread(_ledger_bytes, ledger, suffix)
        hint = f"org{scoped.named.id}" if scoped.named else "all"
        disposition = content_disposition(f"{ledger.display_name}{suffix}", f"{ledger.file_stem(hint)}{suffix}")
        content_type, charset = CONTENT_TYPES[suffix]
        return web.Response(body=body, content_type=content_type, charset=charset,
                            headers={**SECURITY_HEADERS, "Content-Disposition": disposition})  # fmt: skip


def _ledger_bytes(ledger: Ledger, suffix: str) -> bytes:
    """The file bot.reports.xlsx writes, read back (blocking: run in a worker thread)."""
    with tempfile.TemporaryDirectory(prefix="dangjian-export-") as tmp:
        return write_ledger(ledger, Path(tmp) / f"ledger{suffix}").read_bytes()


def content_disposition(filename: str, ascii_fallback: str) -> str:
    return f"attachment; filename=\"{ascii_fallback}\"; filename*=UTF-8''{quote(filename)}"


def dashboard_routes(services: Services) -> list[web.RouteDef]:
    return Dashboard(services).routes()
