"""The streaming XLSX writer (bot.reports.xlsx): a valid package that openpyxl (and LibreOffice, when
installed) reads back with the values, formats, widths, frozen panes and sheet names the ledger asked for."""

from __future__ import annotations

import datetime as dt
import gc
import shutil
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest

from bot.clock import SHANGHAI
from bot.reports import xlsx
from bot.reports.ledger_model import Column, Ledger, Sheet, gc_paused
from bot.reports.periods import parse_period

NOW = dt.datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)
COLUMNS = [
    Column("序号", 6, "int"), Column("姓名", 10), Column("金额（元）", 11, "money"), Column("时长", 11, "number"),
    Column("日期", 12), Column("备注", 42),
]  # fmt: skip


def ledger(*sheets: Sheet) -> Ledger:
    period = parse_period("2026")
    assert period is not None
    return Ledger("党费收缴登记表", "dues", period, "机关党委", list(sheets), NOW)


def sheet(name: str, rows: list[list[object]], **kw: object) -> Sheet:
    totals = kw.pop("totals", ["合计", f"{len(rows)}人", sum(r[2] for r in rows if isinstance(r[2], int)), None, None, ""])
    return Sheet(name, f"{name}党费收缴登记表（2026年度）", list(COLUMNS), rows, totals, ["单位：元。", "导出时间：…"],  # type: ignore[arg-type]
                 branch=name, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_values_formats_and_layout(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "张三", 4500, Decimal("2.5"), dt.date(2026, 11, 20), "11月逾期补交"],
        [2, "=HYPERLINK(\"http://x\",\"y\")", -1234, Decimal("0"), dt.datetime(2026, 11, 20, 9, 30), "a & b <c> \"d\""],
        [3, "  留空格 ", None, None, "", "第一行\n第二行"],
        [4, "bad\x00\x0bchar\ufffe", 5, 1.25, None, "x" * 40000],
        [5, "-2+3", 0, True, None, "-50"],
    ]
    path = xlsx.write_xlsx(ledger(sheet("第一党支部", rows)), tmp_path / "out" / "ledger.xlsx")
    assert path.exists() and not path.with_name("ledger.xlsx.part").exists()
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["第一党支部"]
    assert book.properties.title == "机关党委党费收缴登记表（2026年度）" and "dangjian-bot" in book.properties.creator
    ws = book["第一党支部"]
    assert ws["A1"].value == "第一党支部党费收缴登记表（2026年度）" and ws["A1"].font.b and ws["A1"].font.sz == 14
    assert ws["A2"].value == "单位：元。 导出时间：…"
    assert {str(r) for r in ws.merged_cells.ranges} == {"A1:F1", "A2:F2"}
    assert [c.value for c in ws[3]] == [c.header for c in COLUMNS]
    assert all(c.font.b for c in ws[3]) and ws.row_dimensions[3].height == 30
    assert ws.freeze_panes == "C4" and ws.print_title_rows == "$3:$3"
    assert [ws.column_dimensions[x].width for x in "ABCDEF"] == [6, 10, 11, 11, 12, 42]
    assert ws.page_setup.orientation == "landscape"

    body = [[c.value for c in row] for row in ws.iter_rows(min_row=4, max_row=8)]
    assert body[0] == [1, "张三", 45, 2.5, dt.datetime(2026, 11, 20), "11月逾期补交"]
    assert ws["C4"].number_format == "0.00" and ws["D4"].number_format == "0.0#"
    assert ws["A4"].number_format == "0" and ws["A4"].data_type == "n"
    assert ws["E4"].value == dt.datetime(2026, 11, 20) and ws["E4"].number_format == "yyyy-mm-dd"
    # Chat text is never a formula: stored as text, with the apostrophe the CSV export uses too.
    assert body[1][1] == "'=HYPERLINK(\"http://x\",\"y\")" and ws["B5"].data_type == "s"
    assert body[1][2] == -12.34 and body[1][5] == "a & b <c> \"d\""
    assert ws["E5"].value == dt.datetime(2026, 11, 20, 9, 30) and ws["E5"].number_format == "yyyy-mm-dd hh:mm"
    assert body[2][1] == "  留空格 " and body[2][2] is None and body[2][5] == "第一行\n第二行"
    assert ws["C6"].number_format == "0.00" and ws["C6"].border.left.style == "thin"  # empty, still formatted
    assert ws["F6"].alignment.wrap_text  # wide text columns wrap
    assert body[3][1] == "badchar" and len(body[3][5]) == 32767 and body[3][3] == 1.25
    assert body[4][1] == "'-2+3" and body[4][2] == 0 and body[4][3] is True and body[4][5] == "-50"
    totals = [c.value for c in ws[9]]
    assert totals[:3] == ["合计", "5人", 32.71] and all(c.font.b for c in ws[9])
    assert ws["C9"].fill.fgColor.rgb == "FFF2F2F2" and ws["C9"].number_format == "0.00"


def test_sheet_names_are_valid_and_unique(tmp_path: Path) -> None:
    names = ["a/b[c]:d*e?f\\g", "x" * 40, "x" * 40, "Sheet", "sheet", "History", "'引号'", ""]
    sheets = [sheet(n, [[1, "张三", 100, None, None, ""]]) for n in names]
    book = openpyxl.load_workbook(xlsx.write_xlsx(ledger(*sheets), tmp_path / "names.xlsx"), read_only=True)
    got = book.sheetnames
    assert len(got) == len(names) and len({n.casefold() for n in got}) == len(names)
    assert got[0] == "abcdefg" and got[1] == "x" * 31 and len(got[2]) == 31 and got[2] != got[1]
    assert got[3] == "Sheet" and got[4].casefold() != "sheet" and got[5] != "History" and got[6] == "引号"
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in got)


def test_package_parts_are_well_formed(tmp_path: Path) -> None:
    three = [sheet(f"第{i}党支部", [[1, "张三", 100, None, None, ""]], freeze_columns=0) for i in range(3)]
    path = xlsx.write_xlsx(ledger(*three), tmp_path / "parts.xlsx")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "[Content_Types].xml"
        for part in ("_rels/.rels", "docProps/core.xml", "docProps/app.xml", "xl/workbook.xml",
                     "xl/_rels/workbook.xml.rels", "xl/styles.xml", "xl/worksheets/sheet3.xml"):  # fmt: skip
            assert part in names
        for name in names:
            ElementTree.fromstring(zf.read(name))  # every part is well-formed XML
        types = zf.read("[Content_Types].xml").decode()
        assert all(f"/xl/worksheets/sheet{i}.xml" in types for i in (1, 2, 3))
    book = openpyxl.load_workbook(path)
    assert [ws.freeze_panes for ws in book.worksheets] == ["A4", "A4", "A4"]
    assert [bool(ws.sheet_view.tabSelected) for ws in book.worksheets] == [True, False, False]


def test_empty_ledger(tmp_path: Path) -> None:
    book = openpyxl.load_workbook(xlsx.write_xlsx(ledger(), tmp_path / "empty.xlsx"))
    assert book.sheetnames == ["无数据"] and book["无数据"]["A1"].value == "机关党委党费收缴登记表（2026年度）：没有记录"


def test_a_large_ledger_round_trips(tmp_path: Path) -> None:
    """Many sheets and rows (the shared text and amount caches must not mix columns or types)."""
    sheets = []
    for b in range(30):
        rows: list[list[object]] = [[i, f"党员{b}-{i}", 4500 + i % 3, Decimal(i % 4), None, "在职" if i % 2 else 1]
                                    for i in range(1, 41)]  # fmt: skip
        sheets.append(sheet(f"第{b}党支部", rows))
    path = xlsx.write_xlsx(ledger(*sheets), tmp_path / "big.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    for ws, expected in zip(book.worksheets, sheets, strict=True):
        got = list(ws.iter_rows(min_row=4, values_only=True))
        for row, want in zip(got, expected.rows, strict=False):
            assert row[0] == want[0] and row[1] == want[1] and row[2] == pytest.approx(int(want[2]) / 100)  # type: ignore[call-overload]
            assert row[3] == want[3] and row[5] == want[5]


def test_gc_paused_nests_and_restores() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()


@pytest.mark.skipif(shutil.which("libreoffice") is None and shutil.which("soffice") is None,
                    reason="LibreOffice is not installed")  # fmt: skip
def test_libreoffice_reads_it(tmp_path: Path) -> None:
    path = xlsx.write_xlsx(ledger(sheet("第一党支部", [[1, "张三", 4500, None, None, "备注"]])), tmp_path / "lo.xlsx")
    office = shutil.which("libreoffice") or shutil.which("soffice")
    assert office is not None
    subprocess.run([office, "--headless", "--convert-to", "csv", "--outdir", str(tmp_path), str(path)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    text = (tmp_path / "lo.csv").read_text(encoding="utf-8", errors="replace")
    assert "张三" in text and "45" in text
