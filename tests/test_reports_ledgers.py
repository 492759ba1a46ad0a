"""Ledgers from answers driven through the local chat HTTP API, opened with openpyxl.

The dues register's standards, monthly cells, totals and arrears must equal what is stored: the
standards recomputed from the roster with compute_dues, the amounts summed from the response rows.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select

from bot.clock import SHANGHAI, FakeClock
from bot.config import Settings
from bot.db.tables import AuditEntry, Campaign, Member, Org, Response
from bot.domain.dues import DuesCategory, compute_dues
from tests.conftest import Running, start_bot, stop_bot

GROUP1 = "group:第一党支部"
SECRETARY = "13800000001"  # 王建国
ZHANG_SAN, LI_SI, WANG_WU, ZHAO_LIU, LIU_YANG = "13800000003", "13800000004", "13800000005", "13800000006", "13800000008"
BRANCH1 = ["王建国", "李红梅", "张三", "李四", "王五", "赵六", "陈七", "刘洋"]
HEADER_ROW = 3


def dm(sender: str) -> str:
    return f"dm:{sender}"


def yuan(fen: int) -> Decimal:
    return Decimal(fen) / 100


def num(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else Decimal(0)


def sheet_table(ws: Any) -> tuple[list[str], list[list[Any]], list[Any]]:
    rows = [list(r) for r in ws.iter_rows(min_row=HEADER_ROW, values_only=True)]
    header, body = [str(h) for h in rows[0]], rows[1:]
    return header, body[:-1], body[-1]


def only_file(data_dir: Path, suffix: str) -> Path:
    files = sorted((data_dir / "exports").glob(f"*{suffix}"))
    assert len(files) == 1, files
    return files[0]


async def two_months_of_dues(settings: Settings) -> tuple[Running, FakeClock]:
    """October: four answers (one by proxy); November: three more, one of them after the deadline."""
    clock = FakeClock(dt.datetime(2026, 10, 12, 10, 0, tzinfo=SHANGHAI))
    running = await start_bot(settings, clock)  # announces October's dues
    await running.say(GROUP1, ZHANG_SAN, "党费 45")
    await running.say(GROUP1, LI_SI, "已交")
    await running.say(dm(WANG_WU), WANG_WU, "党费 240")
    await running.say(dm(SECRETARY), SECRETARY, "代 陈七 党费 20")
    clock.set(dt.datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI))
    await running.app.runner.start_current("dues", clock.now())
    await running.app.flush_outbox()
    await running.say(GROUP1, ZHANG_SAN, "党费 50")  # not his standard (45): flagged
    await running.say(GROUP1, WANG_WU, "党费 240")
    await running.say(dm(LIU_YANG), LIU_YANG, "已交")  # student: 0.20
    clock.set(dt.datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI))  # after November's deadline
    await running.say(GROUP1, ZHAO_LIU, "党费 50")
    return running, clock


async def stored(running: Running) -> dict[str, dict[int, tuple[int, bool, bool, bool]]]:
    """name → month → (amount_fen, late, flagged, proxy) as stored in the responses table."""
    async with running.app.sessions() as session:
        rows = await session.execute(
            select(Member.name, Campaign.period, Response)
            .join(Response, Response.member_id == Member.id)
            .join(Campaign, Campaign.id == Response.campaign_id)
            .where(Campaign.form_key == "dues")
        )
        out: dict[str, dict[int, tuple[int, bool, bool, bool]]] = {}
        for name, period, r in rows.tuples():
            out.setdefault(name, {})[int(period[5:7])] = (
                int(r.amount_fen or 0), r.late, r.flagged, r.entered_by != r.member_id,
            )  # fmt: skip
        return out


async def roster_standards(running: Running) -> dict[str, int]:
    async with running.app.sessions() as session:
        org = (await session.execute(select(Org).where(Org.name == "第一党支部"))).scalar_one()
        members = (await session.execute(select(Member).where(Member.org_id == org.id))).scalars().all()
        return {
            m.name: compute_dues(m.dues_base_fen, DuesCategory(m.category), running.app.services.dues_policy).amount_fen
            for m in members
        }


async def test_dues_register_matches_the_stored_answers(settings: Settings) -> None:
    running, _clock = await two_months_of_dues(settings)
    try:
        reply = await running.say(dm(SECRETARY), SECRETARY, "导出 党费 2026")
        answers = await stored(running)
        standards = await roster_standards(running)
        file_replies = [r for r in reply["replies"] if "[文件]" in r["text"] or "请查收" in r["text"]]
        assert file_replies and all(r["conversation_id"] == dm(SECRETARY) for r in reply["replies"])
        path = only_file(settings.data_dir, ".xlsx")
        assert str(path) in "\n".join(r["text"] for r in reply["replies"])  # says where it is
        transcript = [ln["text"] for ln in await running.transcript(dm(SECRETARY))]
        assert any("[文件] 第一党支部党费收缴登记表（2026年度）.xlsx" in t for t in transcript)
        async with running.app.sessions() as session:
            audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "export"))).scalars().all()
        assert len(audit) == 1 and audit[0].detail["form"] == "dues" and audit[0].detail["period"] == "2026"
    finally:
        await stop_bot(running)

    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["第一党支部"]
    ws = wb["第一党支部"]
    assert ws["A1"].value == "第一党支部党费收缴登记表（2026年度）"
    assert ws.freeze_panes == "C4"
    header, body, totals = sheet_table(ws)
    col = {h: i for i, h in enumerate(header)}
    assert header[:6] == ["序号", "姓名", "人员类别", "缴费基数（元/月）", "交纳比例", "月交纳标准（元）"]
    assert [f"{m}月" for m in range(1, 13)] == header[6:18]
    assert header[18:] == ["应交（元）", "实交（元）", "欠交（元）", "未交月数", "备注"]
    assert [r[col["姓名"]] for r in body] == BRANCH1
    assert ws.cell(row=HEADER_ROW + 1, column=col["11月"] + 1).number_format == "0.00"
    assert ws.column_dimensions["W"].width >= 30

    collected = [10, 11]
    totals_expected = {"standard": 0, "due": 0, "paid": 0, "arrears": 0, 10: 0, 11: 0}
    for row in body:
        name = row[col["姓名"]]
        mine = answers.get(name, {})
        standard = standards[name]
        paid = sum(a for a, *_ in mine.values())
        due = standard * len(collected)
        arrears = max(0, due - paid)
        assert num(row[col["月交纳标准（元）"]]) == yuan(standard), name
        for m in range(1, 13):
            cell = row[col[f"{m}月"]]
            assert (num(cell) if cell is not None else None) == (yuan(mine[m][0]) if m in mine else None), (name, m)
        assert num(row[col["应交（元）"]]) == yuan(due), name
        assert num(row[col["实交（元）"]]) == yuan(paid), name
        assert num(row[col["欠交（元）"]]) == yuan(arrears), name
        assert row[col["未交月数"]] == len([m for m in collected if m not in mine]), name
        remarks = row[col["备注"]] or ""
        for m, (_amount, late, flagged, proxy) in mine.items():
            assert (f"{m}月逾期补交" in remarks) == late, (name, remarks)
            assert (f"{m}月金额待核对" in remarks) == flagged, (name, remarks)
            assert (f"{m}月由王建国代登记" in remarks) == proxy, (name, remarks)
        totals_expected["standard"] += standard
        totals_expected["due"] += due
        totals_expected["paid"] += paid
        totals_expected["arrears"] += arrears
        for m in collected:
            totals_expected[m] += mine[m][0] if m in mine else 0

    # The figures by hand, so the checks above cannot agree with a wrong reading of the data.
    assert totals_expected == {"standard": 58770, "due": 117540, "paid": 66020, "arrears": 52020, 10: 32000, 11: 34020}
    assert totals[0] == "合计"
    assert num(totals[col["月交纳标准（元）"]]) == yuan(58770)
    assert num(totals[col["10月"]]) == yuan(32000) and num(totals[col["11月"]]) == yuan(34020)
    assert totals[col["9月"]] is None  # no collection that month
    assert num(totals[col["应交（元）"]]) == yuan(117540)
    assert num(totals[col["实交（元）"]]) == yuan(66020)
    assert num(totals[col["欠交（元）"]]) == yuan(52020)
    by_name = {r[col["姓名"]]: r for r in body}
    assert "11月金额待核对" in by_name["张三"][col["备注"]]
    assert "11月逾期补交" in by_name["赵六"][col["备注"]] and "未交：10月" in by_name["赵六"][col["备注"]]
    assert "10月由王建国代登记" in by_name["陈七"][col["备注"]]
    assert by_name["刘洋"][col["交纳比例"]] == "定额" and num(by_name["刘洋"][col["月交纳标准（元）"]]) == Decimal("0.20")
    assert by_name["王五"][col["交纳比例"]] == "2%"
    assert num(by_name["王建国"][col["缴费基数（元/月）"]]) == Decimal("8000.00")


async def test_month_csv_and_other_ledgers(settings: Settings) -> None:
    running, clock = await two_months_of_dues(settings)
    try:
        clock.set(dt.datetime(2026, 11, 27, 11, 0, tzinfo=SHANGHAI))
        await running.say(dm(SECRETARY), SECRETARY, "导出 党费 2026-11 csv")
        csv_path = only_file(settings.data_dir, ".csv")
        # theme day, 三会一课 and volunteer service: the same answers feed their ledgers
        await running.say(dm(SECRETARY), SECRETARY, "发起 主题党日")
        await running.say(GROUP1, ZHANG_SAN, "到")
        await running.say(GROUP1, LI_SI, "请假 出差")
        await running.say(GROUP1, WANG_WU, "线上")
        await running.say(dm(SECRETARY), SECRETARY, "发起 三会一课")
        await running.say(
            dm(SECRETARY), SECRETARY, "三会一课 支委会，11月20日，三楼会议室，王建国，学习党章，王建国、李红梅"
        )
        await running.say(dm(SECRETARY), SECRETARY, "发起 志愿服务")
        await running.say(GROUP1, ZHANG_SAN, "志愿服务 11月21日 社区环境整治 2.5小时")
        await running.say(GROUP1, LI_SI, "志愿服务 11月22日 敬老院慰问 3小时")
        clock.set(dt.datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI))  # one answer per campaign: a second one
        await running.say(dm(SECRETARY), SECRETARY, "发起 志愿服务")
        await running.say(GROUP1, ZHANG_SAN, "志愿服务 11月25日 交通劝导 1.5小时")
        for command in ("导出 主题党日 2026", "导出 三会一课 2026-11", "导出 志愿服务 2026-11"):
            reply = await running.say(dm(SECRETARY), SECRETARY, command)
            assert any("已生成" in r["text"] for r in reply["replies"]), reply
        async with running.app.sessions() as session:
            hours = [
                Decimal(str(v["hours"]))
                for (v,) in (
                    await session.execute(
                        select(Response.values)
                        .join(Campaign, Campaign.id == Response.campaign_id)
                        .where(Campaign.form_key == "volunteer")
                    )
                ).all()
            ]
    finally:
        await stop_bot(running)

    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM for Excel/WPS
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:2] == ["序号", "姓名"] and "11月" in rows[0] and "10月" not in rows[0]
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["张三"][rows[0].index("11月")] == "50.00"
    total_row = next(r for r in rows if r[0] == "合计")
    assert total_row[rows[0].index("实交（元）")] == "340.20"

    exports = settings.data_dir / "exports"
    theme = openpyxl.load_workbook(next(exports.glob("theme_day-*.xlsx")))["第一党支部"]
    header, body, totals = sheet_table(theme)
    nov = header.index("11月")
    marks = {r[1]: r[nov] for r in body}
    assert marks["张三"] == "到" and marks["王五"] == "线上" and marks["李四"] == "请假（出差）"
    assert marks["王建国"] == "未到" and body[0][header.index("10月")] is None
    assert totals[nov] == "参加2/8"

    meeting = openpyxl.load_workbook(next(exports.glob("meeting-*.xlsx")))["第一党支部"]
    header, body, totals = sheet_table(meeting)
    assert header[:8] == ["序号", "会议类型", "会议日期", "会议地点", "主持人", "会议议题", "参会人员", "人数"]
    assert body == [[1, "支委会", "2026-11-20", "三楼会议室", "王建国", "学习党章", "王建国、李红梅", 2, None, None,
                     "王建国", "2026-11-27 11:00", None]]  # fmt: skip
    assert totals[:2] == ["合计", "共1条"]

    volunteer = openpyxl.load_workbook(next(exports.glob("volunteer-*.xlsx")))
    assert volunteer.sheetnames == ["第一党支部", "第一党支部个人合计"]
    header, body, totals = sheet_table(volunteer["第一党支部"])
    h = header.index("服务时长（小时）")
    assert [Decimal(str(r[h])) for r in body] == [Decimal("2.5"), Decimal("3"), Decimal("1.5")]
    assert Decimal(str(totals[h])) == sum(hours) == Decimal("7")
    header, body, totals = sheet_table(volunteer["第一党支部个人合计"])
    assert [(r[1], r[2], Decimal(str(r[3]))) for r in body] == [("张三", 2, Decimal("4")), ("李四", 1, Decimal("3"))]
    assert Decimal(str(totals[3])) == Decimal("7")
