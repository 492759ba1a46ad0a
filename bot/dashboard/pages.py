"""Server-rendered pages: pure functions from figures to HTML (no queries, no request objects)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.dashboard.charts import Bar, TrendPoint, hbar_chart, rate_colour, rate_text, trend_chart
from bot.dashboard.html import Html, fmt, join, url
from bot.dashboard.queries import Answer, MonthFigures
from bot.db.tables import Campaign, Org
from bot.domain.dues import format_yuan
from bot.forms.render import summarize
from bot.reports.compliance import BranchCompliance, ComplianceItem
from bot.reports.ledgers import ledger_name
from bot.reports.periods import ReportPeriod
from bot.reports.stats import CampaignCounts, CampaignSummary

if TYPE_CHECKING:
    from bot.forms.spec import FormSpec

NAV = (("overview", "/admin", "概览"), ("compliance", "/admin/compliance", "达标情况"), ("exports", "/admin/exports", "台账下载"))
CHAT_LINK_HINT = "管理员也可以在聊天中向机器人发送“后台”（或 /admin），机器人会私信一个一次性登录链接（10分钟内有效，只能使用一次）。"


def layout(title: str, body: Html, *, active: str = "", signed_in: bool = True, who: str = "") -> Html:
    nav = Html("")
    if signed_in:
        links = join(fmt('<a href="{}"{}>{}</a>', href, Html(' class="active"') if key == active else Html(""), label)
                     for key, href, label in NAV)  # fmt: skip
        nav = fmt(
            '<nav>{links}</nav><span class="who">{who}</span>'
            '<form method="post" action="/admin/logout"><button type="submit">退出</button></form>',
            links=links,
            who=who,
        )
    return fmt(
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        '<title>{title} · 党建助手管理后台</title><link rel="stylesheet" href="/admin/static/dashboard.css"></head>'
        '<body><header class="top"><h1>党建助手 · 管理后台</h1>{nav}</header><main>{body}</main>'
        "<footer>党建助手 dangjian-bot · 数据仅供本单位党务工作使用</footer></body></html>",
        title=title,
        nav=nav,
        body=body,
    )


def yuan(fen: int) -> str:
    return f"{format_yuan(fen)} 元"


def local_time(at: dt.datetime, tz: dt.tzinfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M}"


def rate_cell(answered: int, total: int) -> Html:
    if not total:
        return fmt('<td class="num muted">{}</td>', rate_text(answered, total))
    rate = answered / total
    cls = "ok" if rate >= 0.9 else "warn" if rate >= 0.6 else "bad"
    return fmt('<td class="num {}">{}</td>', cls, rate_text(answered, total))


def card(label: str, value: str, note: str = "") -> Html:
    return fmt(
        '<div class="card"><div class="label">{}</div><div class="value">{}</div><div class="label">{}</div></div>',
        label,
        value,
        note,
    )


def table(headers: Sequence[str | tuple[str, str]], rows: Sequence[Html], empty: str = "暂无数据") -> Html:
    """``headers``: text, or (text, css class); ``rows``: ready ``<tr>`` markup."""
    head = join(fmt('<th class="{}">{}</th>', h[1], h[0]) if isinstance(h, tuple) else fmt("<th>{}</th>", h)
                for h in headers)  # fmt: skip
    if not rows:
        return fmt('<p class="empty">{}</p>', empty)
    return fmt("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, join(rows))


def _campaign_status(campaign: Campaign, now: dt.datetime) -> str:
    if now < campaign.opened_at:
        return "未开始"
    return "进行中" if now <= campaign.deadline_at else "已截止"


# -- login ---------------------------------------------------------------------------------------------


def setup_page() -> Html:
    body = fmt(
        '<div class="login"><h2>管理后台尚未设置登录令牌</h2>'
        "<p>为保护党员信息，管理后台不对外开放。请管理员设置登录令牌（admin token）后再登录：</p>"
        "<ul><li>环境变量：<code>DANGJIAN_ADMIN_TOKEN=一串足够长的随机字符</code>，或</li>"
        "<li>配置文件：<pre>[admin]\ntoken = \"一串足够长的随机字符\"</pre></li></ul>"
        "<p>设置后重启机器人，打开 <code>/admin</code> 输入令牌即可登录。</p>"
        '<p class="notice">{hint}</p></div>',
        hint=CHAT_LINK_HINT,
    )
    return layout("设置登录令牌", body, signed_in=False)


def login_page(next_path: str, error: str = "") -> Html:
    body = fmt(
        '<div class="login"><h2>管理员登录</h2>{error}'
        '<form method="post" action="/admin/login">'
        '<input type="hidden" name="next" value="{next}">'
        '<label for="token">登录令牌（admin token）</label>'
        '<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>'
        '<button class="primary" type="submit" id="login">登录</button></form>'
        '<p class="sub">{hint}</p></div>',
        error=fmt('<p class="error">{}</p>', error) if error else Html(""),
        next=next_path,
        hint=CHAT_LINK_HINT,
    )
    return layout("登录", body, signed_in=False)


def link_confirm_page(token: str, next_path: str, name: str) -> Html:
    body = fmt(
        '<div class="login"><h2>一次性登录链接</h2><p>{name}，点击下方按钮进入管理后台。</p>'
        '<form method="post" action="/admin/login"><input type="hidden" name="t" value="{token}">'
        '<input type="hidden" name="next" value="{next}">'
        '<button class="primary" type="submit" id="enter">进入管理后台</button></form>'
        '<p class="sub">此链接只能使用一次，10分钟内有效；请勿转发。</p></div>',
        name=name,
        token=token,
        next=next_path,
    )
    return layout("一次性登录", body, signed_in=False)


def message_page(title: str, message: str, *, signed_in: bool = False, extra: str = "") -> Html:
    body = fmt('<div class="login"><h2>{}</h2><p class="error">{}</p><p class="sub">{}</p>'
               '<p><a href="/admin/login">返回登录</a></p></div>', title, message, extra)  # fmt: skip
    return layout(title, body, signed_in=signed_in)


# -- overview ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BranchLine:
    org: Org
    members: int
    on_leave: int
    campaign: Campaign | None
    counts: CampaignCounts | None
    money_fen: int


def _form_options(forms: dict[str, FormSpec], selected: str) -> Html:
    return join(fmt('<option value="{}"{}>{}</option>', f.key, Html(" selected") if f.key == selected else Html(""),
                    f.name) for f in forms.values())  # fmt: skip


def trend_points(months: Sequence[MonthFigures]) -> list[TrendPoint]:
    points = []
    for m in months:
        rate = m.rate
        tip = f"{m.period.title}：党费合计 {yuan(m.amount_fen)}；" + (
            f"已交 {m.answered}/{m.total}（{rate:.0%}）" if rate is not None else "未收缴"
        )
        points.append(TrendPoint(f"{m.period.first.month}月", m.amount_fen / 100, rate, tip))
    return points


def overview_page(
    *,
    lines: Sequence[BranchLine],
    forms: dict[str, FormSpec],
    form_key: str,
    period_text: str,
    year: int,
    trend: Sequence[MonthFigures],
    notice: str = "",
    who: str = "",
) -> Html:
    form = forms[form_key]
    members = sum(line.members for line in lines)
    leave = sum(line.on_leave for line in lines)
    answered = sum(line.counts.answered for line in lines if line.counts)
    total = sum(line.counts.total for line in lines if line.counts)
    money = sum(line.money_fen for line in lines)
    cards = join([
        card("支部", str(len(lines))),
        card("党员", str(members), f"请假中 {leave} 人" if leave else ""),
        card(f"{form.name}填报", rate_text(answered, total) if total else "—", period_text or "各支部最近一次收集"),
        card(f"{year}年党费合计", yuan(money)),
    ])  # fmt: skip
    rate_bars = [
        Bar(line.org.name, line.counts.rate if line.counts.total else 0.0, rate_text(line.counts.answered, line.counts.total),
            rate_colour(line.counts.rate), url(f"/admin/campaigns/{line.campaign.id}"),
            f"{line.org.name} · {line.campaign.title}：{rate_text(line.counts.answered, line.counts.total)}")
        for line in lines if line.campaign is not None and line.counts is not None
    ]  # fmt: skip
    money_top = max((line.money_fen for line in lines), default=0)
    money_bars = [Bar(line.org.name, line.money_fen / 100, yuan(line.money_fen), href=f"/admin/branches/{line.org.id}")
                  for line in lines]  # fmt: skip
    rows = []
    for line in lines:
        if line.campaign is not None and line.counts is not None:
            latest = fmt('<td><a href="/admin/campaigns/{}">{}</a></td>', line.campaign.id, line.campaign.title)
            rate = rate_cell(line.counts.answered, line.counts.total)
        else:
            latest, rate = Html('<td class="muted">暂无收集</td>'), Html('<td class="num muted">—</td>')
        rows.append(
            fmt(
                '<tr><td><a href="/admin/branches/{id}">{name}</a><div class="sub">{path}</div></td>'
                '<td class="num">{members}</td>{latest}{rate}<td class="num">{money}</td></tr>',
                id=line.org.id, name=line.org.name, path=line.org.path, members=line.members,
                latest=latest, rate=rate, money=yuan(line.money_fen),
            )
        )  # fmt: skip
    filters = fmt(
        '<form class="filters" method="get" action="/admin"><label>收集表单 <select name="form">{options}</select></label>'
        '<label>期间 <input type="text" name="period" value="{period}" placeholder="最近一次，或 2026-11 / 2026-Q4 / 2026" size="22"></label>'
        '<button class="primary" type="submit">查看</button></form>',
        options=_form_options(forms, form_key),
        period=period_text,
    )
    first, last = (trend[0].period, trend[-1].period) if trend else (None, None)
    trend_title = f"近12个月党费收缴（{first.label} 至 {last.label}，全部支部）" if first and last else "近12个月党费收缴"
    body = fmt(
        "<h2>概览</h2>{notice}{filters}<div class=\"cards\">{cards}</div>"
        '<div class="grid2"><div class="panel"><h3>{rate_title}</h3>{rates}</div>'
        '<div class="panel"><h3>{money_title}</h3>{money}</div></div>'
        '<div class="panel"><h3>{trend_title}</h3>{trend}</div>'
        '<div class="panel"><h3>各支部</h3>{table}</div>',
        notice=fmt('<p class="error">{}</p>', notice) if notice else Html(""),
        filters=filters,
        cards=cards,
        rate_title=f"各支部{form.name}填报率" + (f"（{period_text}）" if period_text else "（最近一次收集）"),
        rates=hbar_chart(rate_bars, title=f"各支部{form.name}填报率", max_value=1.0, width=560),
        money_title=f"各支部{year}年党费合计",
        money=hbar_chart(money_bars, title=f"各支部{year}年党费合计", max_value=money_top / 100 or 1.0, width=560),
        trend_title=trend_title,
        trend=trend_chart(trend_points(trend), title=trend_title),
        table=table(["支部", ("党员", "num"), f"最近一次{form.name}收集", ("已填/应填", "num"), (f"{year}年党费", "num")], rows,
                    "还没有支部。请用 dangjian members import 导入名册。"),
    )  # fmt: skip
    return layout("概览", body, active="overview", who=who)


# -- branch --------------------------------------------------------------------------------------------


def branch_page(
    *,
    org: Org,
    members: int,
    on_leave: int,
    money_fen: int,
    year: int,
    trend: Sequence[MonthFigures],
    campaigns: Sequence[tuple[Campaign, CampaignCounts]],
    forms: dict[str, FormSpec],
    now: dt.datetime,
    tz: dt.tzinfo,
    who: str = "",
) -> Html:
    rows = []
    for campaign, counts in campaigns:
        form = forms.get(campaign.form_key)
        rows.append(
            fmt(
                '<tr><td><a href="/admin/campaigns/{id}">{title}</a></td><td>{form}</td><td>{period}</td>'
                "<td>{deadline}</td><td>{status}</td>{rate}<td class=\"num\">{money}</td></tr>",
                id=campaign.id, title=campaign.title, form=form.name if form else campaign.form_key,
                period=campaign.period, deadline=local_time(campaign.deadline_at, tz),
                status=_campaign_status(campaign, now), rate=rate_cell(counts.answered, counts.total),
                money=yuan(counts.amount_fen) if counts.amount_fen else "",
            )
        )  # fmt: skip
    title = f"{org.name}近12个月党费收缴"
    body = fmt(
        '<p class="sub"><a href="/admin">概览</a> › {name}</p><h2>{name}</h2><p class="sub">{path}</p>'
        '<div class="cards">{cards}</div><div class="panel"><h3>{title}</h3>{trend}</div>'
        '<div class="panel"><h3>收集记录</h3>{table}</div>',
        name=org.name,
        path=org.path,
        cards=join([card("党员", str(members)), card("请假中", str(on_leave)), card(f"{year}年党费合计", yuan(money_fen))]),
        title=title,
        trend=trend_chart(trend_points(trend), title=title),
        table=table(["收集", "表单", "期间", "截止时间", "状态", ("已填/应填", "num"), ("金额", "num")], rows, "暂无收集记录"),
    )
    return layout(org.name, body, active="overview", who=who)


# -- campaign ------------------------------------------------------------------------------------------


def _answer_text(form: FormSpec | None, values: dict[str, Any]) -> str:
    return summarize(form, values, limit=200) if form is not None else "；".join(f"{k}：{v}" for k, v in values.items())


def campaign_page(
    *,
    summary: CampaignSummary,
    org: Org,
    answers: Sequence[Answer],
    form: FormSpec | None,
    now: dt.datetime,
    tz: dt.tzinfo,
    who: str = "",
) -> Html:
    c = summary.campaign
    rows = []
    for a in answers:
        marks = join([fmt('<span class="tag">{}</span>', m) for m in
                      (["逾期"] if a.late else []) + ([f"待核对：{a.flag_note}" if a.flag_note else "待核对"] if a.flagged else [])])  # fmt: skip
        rows.append(
            fmt(
                "<tr><td>{name}</td><td>{text}{marks}</td><td>{at}</td><td>{proxy}</td></tr>",
                name=a.name, text=_answer_text(form, a.values), marks=marks,
                at=local_time(a.updated_at, tz), proxy=f"{a.entered_by} 代填" if a.entered_by else "本人",
            )
        )  # fmt: skip
    missing = (fmt('<ul class="names" id="missing">{}</ul>', join(fmt("<li>{}</li>", n) for n in summary.missing))
               if summary.missing else Html('<p class="ok" id="missing">全部完成 ✔</p>'))  # fmt: skip
    leave = (fmt('<h3>请假中（不计入应填）</h3><ul class="names leave">{}</ul>', join(fmt("<li>{}</li>", n) for n in summary.on_leave))
             if summary.on_leave else Html(""))  # fmt: skip
    money_card = card("合计金额", yuan(summary.amount_fen)) if summary.amount_fen else Html("")
    export = url("/admin/export", form=c.form_key, period=c.period, branch=org.id)
    body = fmt(
        '<p class="sub"><a href="/admin">概览</a> › <a href="/admin/branches/{org_id}">{org}</a> › {title}</p>'
        '<h2>{title}</h2><p class="sub">{org_path} · {form} · 期间 {period} · 截止 {deadline} · {status}</p>'
        '<div class="cards">{c1}{c2}{money}{c3}</div>'
        '<div class="panel"><h3>未填报（{n_missing}人）</h3>{missing}{leave}</div>'
        '<div class="panel"><h3>已填报（{n_answered}人）</h3>{table}</div>'
        '<p><a class="button" id="export" href="{export}">下载本次台账</a></p>',
        org_id=org.id, org=org.name, org_path=org.path, title=c.title,
        form=form.name if form else c.form_key, period=c.period, deadline=local_time(c.deadline_at, tz),
        status=_campaign_status(c, now),
        c1=card("已填报", rate_text(summary.answered, summary.total)),
        c2=card("逾期补交", f"{summary.late} 人"), money=money_card, c3=card("待核对", f"{summary.flagged} 人"),
        n_missing=len(summary.missing), missing=missing, leave=leave, n_answered=len(answers),
        table=table(["姓名", "填报内容", "填报时间", "登记人"], rows, "还没有人填报"), export=export,
    )  # fmt: skip
    return layout(c.title, body, active="overview", who=who)


# -- compliance ----------------------------------------------------------------------------------------


def _mark(item: ComplianceItem) -> tuple[str, str]:
    return ("ok", "✔") if item.ok else ("warn", "…") if item.pending else ("bad", "✘")


def _compliance_cell(item: ComplianceItem | None) -> Html:
    if item is None:
        return Html('<td class="num muted" title="不适用">—</td>')
    css, mark = _mark(item)
    return fmt('<td class="num {}" title="{}">{}</td>', css, item.detail, mark)


def _failures(result: BranchCompliance) -> Html:
    lines = []
    for item in result.failed:
        css, mark = _mark(item)
        people = fmt('<div class="people">{}</div>', "、".join(item.people)) if item.people else Html("")
        lines.append(fmt('<li><span class="{}">{}</span> <strong>{}</strong>：{}{}</li>', css, mark, item.label, item.detail, people))
    return fmt('<div class="failures"><h3><a href="/admin/branches/{}">{}</a>（达标 {}/{} 项）</h3><ul>{}</ul></div>',
               result.org.id, result.org.name, result.passed, len(result.items), join(lines))  # fmt: skip


def compliance_page(
    *, period: ReportPeriod, results: Sequence[BranchCompliance], period_text: str, notice: str = "", who: str = ""
) -> Html:
    labels: dict[str, str] = {}
    for result in results:
        for item in result.items:
            labels.setdefault(item.key, item.label)
    ordered = sorted(results, key=lambda x: x.org.path)
    rows = []
    for r in ordered:
        items = {i.key: i for i in r.items}
        cells = join(_compliance_cell(items.get(key)) for key in labels)
        rate_css = "ok" if r.passed == len(r.items) else "bad"
        rows.append(fmt('<tr><td class="nowrap"><a href="/admin/branches/{}">{}</a></td>'
                        '<td class="num {}">{}/{}</td>{}</tr>', r.org.id, r.org.name, rate_css, r.passed, len(r.items), cells))  # fmt: skip
    headers: list[str | tuple[str, str]] = ["支部", ("达标项", "num")]
    headers += [(fmt('{}<br><span class="cadence">{}</span>', *_split_label(label)), "num") for label in labels.values()]
    failures = join(_failures(r) for r in ordered if r.failed)
    body = fmt(
        "<h2>组织生活达标情况（{title}）</h2>{notice}"
        '<form class="filters" method="get" action="/admin/compliance"><label>期间 <input type="text" name="period" '
        'value="{period}" size="14" placeholder="2026-11 / 2026-Q4 / 2026"></label>'
        '<button class="primary" type="submit">查看</button></form>'
        '<p class="sub">“三会一课”、主题党日、党费收缴、连续欠交、会议记录完整性，按已收集的数据核对。'
        "✔ 达标　✘ 未达标　… 本期尚未结束（期末前完成即可）　— 不适用。</p>"
        '<div class="panel">{table}</div>{details}',
        title=period.title, notice=fmt('<p class="error">{}</p>', notice) if notice else Html(""),
        period=period_text, table=table(headers, rows, "暂无支部"),
        details=fmt('<div class="panel"><h3>未达标明细</h3>{}</div>', failures) if failures else Html(""),
    )  # fmt: skip
    return layout("达标情况", body, active="compliance", who=who)


def _split_label(label: str) -> tuple[str, str]:
    """"支部委员会会议（每月）" → ("支部委员会会议", "每月")."""
    name, _, rest = label.partition("（")
    return name, rest.rstrip("）")


# -- exports -------------------------------------------------------------------------------------------


def exports_page(*, forms: dict[str, FormSpec], branches: Sequence[Org], today: dt.date, who: str = "") -> Html:
    month, year = f"{today:%Y-%m}", str(today.year)
    rows = [
        fmt(
            '<tr><td>{ledger}</td><td>{name}</td><td><a href="{mx}">{month}</a>（<a href="{mc}">CSV</a>）</td>'
            '<td><a href="{yx}">{year}年</a>（<a href="{yc}">CSV</a>）</td></tr>',
            ledger=ledger_name(f), name=f.name, month=month, year=year,
            mx=url("/admin/export", form=f.key, period=month), mc=url("/admin/export", form=f.key, period=month, format="csv"),
            yx=url("/admin/export", form=f.key, period=year), yc=url("/admin/export", form=f.key, period=year, format="csv"),
        )
        for f in forms.values()
    ]  # fmt: skip
    branch_options = join([Html('<option value="">全部支部</option>')]
                          + [fmt('<option value="{}">{}</option>', b.id, b.path) for b in branches])  # fmt: skip
    body = fmt(
        "<h2>台账下载</h2>"
        '<p class="sub">与聊天中“导出”、命令行 dangjian export 生成的台账相同：Excel（XLSX）每个支部一个工作表，'
        "多个支部另附汇总表；CSV 为一张表（UTF-8，可用 Excel 或 WPS 打开）。</p>"
        '<div class="panel"><h3>按条件下载</h3><form class="filters" method="get" action="/admin/export">'
        '<label>台账 <select name="form">{forms}</select></label>'
        '<label>期间 <input type="text" name="period" value="{year}" size="12" placeholder="2026 / 2026-11 / 2026-Q4"></label>'
        '<label>支部 <select name="branch">{branches}</select></label>'
        '<label>格式 <select name="format"><option value="xlsx">Excel（XLSX）</option><option value="csv">CSV</option></select></label>'
        '<button class="primary" type="submit">下载</button></form></div>'
        '<div class="panel"><h3>快捷下载（全部支部）</h3>{table}</div>',
        forms=_form_options(forms, "dues"), year=year, branches=branch_options,
        table=table(["台账", "表单", "本月", "本年"], rows),
    )  # fmt: skip
    return layout("台账下载", body, active="exports", who=who)
