"""Write a ``Ledger`` as XLSX (openpyxl, in a worker thread) or CSV (UTF-8 with BOM, opens in Excel/WPS).

XLSX layout per sheet: a title row, a notes row, the header row (bold, frozen with the first columns),
the records, then a bold totals row. Money cells are yuan numbers formatted ``0.00``.
"""

from __future__ import annotations

import asyncio
import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from bot.domain.dues import format_yuan
from bot.reports.ledgers import Column, Ledger, Sheet

SUFFIXES = (".xlsx", ".csv")
MONEY_FORMAT = "0.00"
NUMBER_FORMAT = "0.0#"
_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="F2DCDB")
_TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
HEADER_ROW = 3  # title, notes, header


_FORMULA_LEADS = ("=", "+", "@", "\t", "\r")


def _is_formula_like(text: str) -> bool:
    if text.startswith(_FORMULA_LEADS):
        return True
    return text.startswith("-") and len(text) > 1 and not text[1:].replace(".", "", 1).isdigit()


def _inert(text: str) -> str:
    """Text a spreadsheet must not run as a formula (names and answers come from chat)."""
    return "'" + text if _is_formula_like(text) else text


def _xlsx_value(column: Column, value: Any) -> Any:
    if isinstance(value, str) and _is_formula_like(value):
        return _inert(value)
    if value is None or value == "":
        return None
    if column.kind == "money" and isinstance(value, int):
        return Decimal(value) / 100
    if column.kind == "number" and isinstance(value, Decimal):
        return value
    return value


def _csv_value(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if column.kind == "money" and isinstance(value, int):
        return format_yuan(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return _inert(str(value))


def _write_sheet(ws: Any, sheet: Sheet) -> None:
    width = max(len(sheet.columns), 1)
    ws.cell(row=1, column=1, value=sheet.title).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center")
    ws.cell(row=2, column=1, value=" ".join(sheet.notes)).font = Font(size=9, color="666666")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    for index, column in enumerate(sheet.columns, 1):
        cell = ws.cell(row=HEADER_ROW, column=index, value=column.header)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(index)].width = column.width
    rows = list(sheet.rows)
    if sheet.totals is not None:
        rows.append(sheet.totals)
    for r, values in enumerate(rows, HEADER_ROW + 1):
        is_total = sheet.totals is not None and r == HEADER_ROW + len(rows)
        for index, column in enumerate(sheet.columns, 1):
            value = values[index - 1] if index - 1 < len(values) else None
            cell = ws.cell(row=r, column=index, value=_xlsx_value(column, value))
            cell.border = _BORDER
            if column.kind == "money":
                cell.number_format = MONEY_FORMAT
            elif column.kind == "number":
                cell.number_format = NUMBER_FORMAT
            if column.kind == "text" and column.width >= 20:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            if is_total:
                cell.font = Font(bold=True)
                cell.fill = _TOTAL_FILL
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=min(sheet.freeze_columns, width) + 1)
    ws.row_dimensions[HEADER_ROW].height = 30
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.page_setup.orientation = "landscape"


def write_xlsx(ledger: Ledger, path: Path) -> Path:
    """Blocking: call through :func:`save_ledger` (a worker thread) from async code."""
    wb = Workbook()
    first = wb.active
    for i, sheet in enumerate(ledger.sheets):
        ws = first if i == 0 and first is not None else wb.create_sheet()
        ws.title = sheet.name
        _write_sheet(ws, sheet)
    if not ledger.sheets and first is not None:
        first.title = "无数据"
        first.cell(row=1, column=1, value=f"{ledger.display_name}：没有记录")
    wb.properties.title = ledger.display_name
    wb.properties.creator = "党建助手 dangjian-bot"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)
    return path


def write_csv(ledger: Ledger, path: Path) -> Path:
    """One table: several sheets (branches) are stacked with a leading 党支部 column; summary sheets
    (no branch) are left out, their figures being the totals rows."""
    sheets = [s for s in ledger.sheets if s.branch] or ledger.sheets
    several = len({s.branch for s in sheets}) > 1 or any(s.name.endswith("个人合计") for s in sheets)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        for n, sheet in enumerate(sheets):
            prefix = [sheet.branch] if several else []
            if n == 0 or several and sheet.columns != sheets[n - 1].columns:
                if n:
                    writer.writerow([])
                writer.writerow((["党支部"] if several else []) + [c.header for c in sheet.columns])
            rows = list(sheet.rows) + ([sheet.totals] if sheet.totals is not None else [])
            for values in rows:
                writer.writerow(prefix + [_csv_value(c, v) for c, v in zip(sheet.columns, values, strict=False)])
    tmp.replace(path)
    return path


def write_ledger(ledger: Ledger, path: Path) -> Path:
    if path.suffix.lower() == ".csv":
        return write_csv(ledger, path)
    return write_xlsx(ledger, path)


async def save_ledger(ledger: Ledger, path: Path) -> Path:
    """Write the file in a worker thread so the event loop keeps serving chats."""
    return await asyncio.to_thread(write_ledger, ledger, path)


def export_path(data_dir: Path, ledger: Ledger, org_hint: str = "", suffix: str = ".xlsx") -> Path:
    """Where chat exports go: ``<data_dir>/exports/<form>-<period>-<org>-<timestamp>.xlsx`` (absolute)."""
    return (data_dir / "exports" / f"{ledger.file_stem(org_hint)}{suffix}").resolve()
