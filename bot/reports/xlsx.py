"""Write a ``Ledger`` as XLSX (our own streaming writer, in a worker thread) or CSV (UTF-8 with BOM).

XLSX layout per sheet: a title row, a notes row, the header row (bold, frozen with the first columns),
the records, then a bold totals row. Money cells are yuan numbers formatted ``0.00``.

The worksheets are SpreadsheetML written as strings straight into the zip (``bot.reports.spreadsheetml``
has the fixed package parts and the shared styles): a committee's year ledger is 500,000 styled cells,
which openpyxl took ~20 s to write, holding the GIL; this takes about a second. Repeated texts and
amounts are rendered once per file. Text goes in as inline strings, so no shared-string table is kept in
memory; a text is never a formula, and text that looks like one also gets a leading apostrophe (as in the
CSV) so that editing the cell in Excel cannot turn it into one. ``_xlsx_value`` states what each cell
holds; the tests read files back against it.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import math
import time
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.dues import format_yuan
from bot.reports import spreadsheetml as sml
from bot.reports.files import prune
from bot.reports.ledger_model import Column, Ledger, Sheet

SUFFIXES = (".xlsx", ".csv")
MONEY_FORMAT = sml.MONEY_FORMAT
NUMBER_FORMAT = sml.NUMBER_FORMAT
HEADER_ROW = 3  # title, notes, header
HEADER_HEIGHT = 30
CREATOR = "党建助手 dangjian-bot"
# zlib level 1: the sheets are repetitive XML, so the file is only ~17 % larger than at the default level 6
# (4.1 MB against 3.5 MB for a committee's year) and compresses in 40 % of the time.
COMPRESS_LEVEL = 1
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # noqa: DTZ001 - serial dates are local wall-clock time


_FORMULA_LEADS = ("=", "+", "@", "\t", "\r")


def _is_formula_like(text: str) -> bool:
    if text.startswith(_FORMULA_LEADS):
        return True
    return text.startswith("-") and len(text) > 1 and not text[1:].replace(".", "", 1).isdigit()


def _inert(text: str) -> str:
    """Text a spreadsheet must not run as a formula (names and answers come from chat)."""
    return "'" + text if _is_formula_like(text) else text


def _xlsx_value(column: Column, value: Any) -> Any:
    """The value a cell holds: ``None`` (empty), inert text, yuan for money kept in fen, or the value."""
    if isinstance(value, str) and _is_formula_like(value):
        return _inert(value)
    if value is None or value == "":
        return None
    if column.kind == "money" and isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value) / 100
    return value


def _csv_value(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if column.kind == "money" and isinstance(value, int):
        return format_yuan(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return _inert(str(value))


# ---- worksheets -------------------------------------------------------------------------------------


def _inline(value: str) -> str:
    """The ``<is>`` element of an inline-string cell: inert, escaped, within Excel's cell limit, spaces
    at either end kept."""
    if value.startswith(_FORMULA_LEADS) or value.startswith("-"):
        value = _inert(value)
    if len(value) > sml.CELL_TEXT_MAX:
        value = value[: sml.CELL_TEXT_MAX]
    if value[:1].isspace() or value[-1:].isspace():
        return f'<is><t xml:space="preserve">{sml.xml_text(value)}</t></is>'
    return f"<is><t>{sml.xml_text(value)}</t></is>"


def _fen(fen: int) -> str:
    """Integer fen as a yuan number literal: 5000 → 50.00."""
    if fen >= 0:
        yuan, cents = divmod(fen, 100)
        return f"{yuan}.{cents:02d}"
    return format_yuan(fen)


def _serial(value: dt.date) -> str:
    """Excel's day number (1900 date system) of a date or a local date and time."""
    if isinstance(value, dt.datetime):
        delta = value.replace(tzinfo=None) - _EXCEL_EPOCH
        return repr(delta / dt.timedelta(days=1))
    return str((value - _EXCEL_EPOCH.date()).days)


def _other_cell(ref: str, style: int, money: bool, value: Any) -> str:
    """Cells that are not text, ``int`` or empty (rare: the loop in ``_sheet_xml`` handles those)."""
    total = style >= sml.TEXT + sml.TOTAL_OFFSET
    if isinstance(value, bool):
        return f'<c r="{ref}" s="{style}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int):
        return f'<c r="{ref}" s="{style}"><v>{_fen(value) if money else value}</v></c>'
    if isinstance(value, Decimal) and value.is_finite() or isinstance(value, float) and math.isfinite(value):
        return f'<c r="{ref}" s="{style}"><v>{format(value, "f") if isinstance(value, Decimal) else repr(value)}</v></c>'
    if isinstance(value, dt.date):
        kind = sml.DATETIME if isinstance(value, dt.datetime) else sml.DATE
        return f'<c r="{ref}" s="{kind + (sml.TOTAL_OFFSET if total else 0)}"><v>{_serial(value)}</v></c>'
    return f'<c r="{ref}" s="{style}" t="inlineStr">{_inline(str(value))}</c>'


def _body_style(column: Column) -> int:
    if column.kind == "money":
        return sml.MONEY
    if column.kind == "number":
        return sml.NUMBER
    if column.kind == "int":
        return sml.INT
    return sml.WRAP if column.width >= 20 else sml.TEXT


def _sheet_view(freeze: int, selected: bool) -> str:
    tab = ' tabSelected="1"' if selected else ""
    top_left = f"{sml.column_letter(freeze + 1)}{HEADER_ROW + 1}"
    if freeze:
        pane = (f'<pane xSplit="{freeze}" ySplit="{HEADER_ROW}" topLeftCell="{top_left}" activePane="bottomRight" '
                'state="frozen"/><selection pane="topRight"/><selection pane="bottomLeft"/>'
                f'<selection pane="bottomRight" activeCell="{top_left}" sqref="{top_left}"/>')  # fmt: skip
    else:
        pane = (f'<pane ySplit="{HEADER_ROW}" topLeftCell="{top_left}" activePane="bottomLeft" state="frozen"/>'
                f'<selection pane="bottomLeft" activeCell="{top_left}" sqref="{top_left}"/>')  # fmt: skip
    return f'<sheetViews><sheetView workbookViewId="0"{tab}>{pane}</sheetView></sheetViews>'


def _text_cell(ref: str, style: int, text: str) -> str:
    return f'<c r="{ref}" s="{style}" t="inlineStr">{_inline(text)}</c>'


class _Rendered:
    """Cell texts rendered once per file: amounts, categories, rates and most remarks repeat on thousands
    of rows. Keyed by exact ``int`` / ``str`` (the hot loop checks the type first), so ``1``, ``True`` and
    ``Decimal(1)`` never share an entry."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # text → its <is> element
        self.yuan: dict[int, str] = {}  # fen → yuan literal


def _sheet_xml(sheet: Sheet, selected: bool, rendered: _Rendered | None = None) -> str:
    """One worksheet; ``rendered`` is shared by the sheets of a file."""
    rendered = _Rendered() if rendered is None else rendered
    texts, yuan = rendered.texts, rendered.yuan
    columns = sheet.columns
    width = max(len(columns), 1)
    refs = [sml.column_letter(i) for i in range(1, width + 1)]
    body_styles = [_body_style(c) for c in columns] or [sml.TEXT]
    total_styles = [s + sml.TOTAL_OFFSET for s in body_styles]
    money = [c.kind == "money" for c in columns] or [False]
    rows = sheet.rows
    last_row = HEADER_ROW + len(rows) + (sheet.totals is not None)
    freeze = min(sheet.freeze_columns, width)
    cols = "".join(f'<col min="{i}" max="{i}" width="{c.width:g}" customWidth="1"/>' for i, c in enumerate(columns, 1))
    out = [
        f'{sml.XML_HEAD}<worksheet xmlns="{sml.MAIN_NS}" xmlns:r="{sml.REL_NS}">',
        f'<dimension ref="A1:{refs[-1]}{last_row}"/>',
        _sheet_view(freeze, selected),
        '<sheetFormatPr defaultRowHeight="15"/>',
        f"<cols>{cols}</cols>" if cols else "",
        "<sheetData>",
        f'<row r="1">{_text_cell("A1", sml.TITLE, sheet.title)}</row>',
        f'<row r="2">{_text_cell("A2", sml.NOTES, " ".join(sheet.notes))}</row>',
        f'<row r="{HEADER_ROW}" ht="{HEADER_HEIGHT}" customHeight="1">',
        *[_text_cell(f"{ref}{HEADER_ROW}", sml.HEADER, c.header) for ref, c in zip(refs, columns, strict=False)],
        "</row>",
    ]
    append = out.append
    padding = [None] * width
    all_rows = rows if sheet.totals is None else [*rows, sheet.totals]
    for r, values in enumerate(all_rows, HEADER_ROW + 1):
        rs = str(r)
        styles = total_styles if r == last_row and sheet.totals is not None else body_styles
        if len(values) < width:
            values = [*values, *padding[len(values) :]]
        append(f'<row r="{rs}">')
        # The hot loop (500,000 cells for a committee's year): int, text and empty cells inline.
        for ref, style, is_money, value in zip(refs, styles, money, values, strict=False):
            kind = type(value)
            if kind is int:
                if is_money:
                    text = yuan.get(value)
                    if text is None:
                        text = yuan[value] = _fen(value)
                    append(f'<c r="{ref}{rs}" s="{style}"><v>{text}</v></c>')
                else:
                    append(f'<c r="{ref}{rs}" s="{style}"><v>{value}</v></c>')
            elif kind is str and value:
                inline = texts.get(value)
                if inline is None:
                    inline = texts[value] = _inline(value)
                append(f'<c r="{ref}{rs}" s="{style}" t="inlineStr">{inline}</c>')
            elif value is None or kind is str:
                append(f'<c r="{ref}{rs}" s="{style}"/>')  # still bordered, and formatted for typing in
            else:
                append(_other_cell(f"{ref}{rs}", style, is_money, value))
        append("</row>")
    append("</sheetData>")
    if width > 1:
        append(f'<mergeCells count="2"><mergeCell ref="A1:{refs[-1]}1"/><mergeCell ref="A2:{refs[-1]}2"/></mergeCells>')
    append('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
           '<pageSetup paperSize="9" orientation="landscape"/></worksheet>')  # fmt: skip
    return "".join(out)


def _empty_sheet_xml(text: str) -> str:
    return (
        f'{sml.XML_HEAD}<worksheet xmlns="{sml.MAIN_NS}" xmlns:r="{sml.REL_NS}"><dimension ref="A1"/>'
        '<sheetViews><sheetView workbookViewId="0" tabSelected="1"/></sheetViews>'
        f'<sheetData><row r="1">{_text_cell("A1", 0, text)}</row></sheetData></worksheet>'
    )


def write_xlsx(ledger: Ledger, path: Path) -> Path:
    """Blocking: call through :func:`save_ledger` (a worker thread) from async code."""
    names = sml.safe_sheet_names([s.name for s in ledger.sheets]) if ledger.sheets else ["无数据"]
    print_titles: list[int | None] = [HEADER_ROW if s.columns else None for s in ledger.sheets] or [None]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as zf:
        zf.writestr("[Content_Types].xml", sml.content_types(len(names)))
        zf.writestr("_rels/.rels", sml.ROOT_RELS)
        zf.writestr("docProps/core.xml", sml.core_properties(ledger.display_name, CREATOR, ledger.generated_at))
        zf.writestr("docProps/app.xml", sml.app_properties(CREATOR))
        zf.writestr("xl/workbook.xml", sml.workbook(names, print_titles))
        zf.writestr("xl/_rels/workbook.xml.rels", sml.workbook_rels(len(names)))
        zf.writestr("xl/styles.xml", sml.STYLES)
        if not ledger.sheets:
            zf.writestr("xl/worksheets/sheet1.xml", _empty_sheet_xml(f"{ledger.display_name}：没有记录"))
        # Sheet by sheet: only one sheet's XML is in memory at a time. (Compressing on a second thread
        # while the next sheet renders was measured too: zlib lets go of the GIL, but handing it back
        # and forth cost more than it saved on a busy two-core machine.)
        rendered = _Rendered()
        for i, sheet in enumerate(ledger.sheets, 1):
            zf.writestr(f"xl/worksheets/sheet{i}.xml", _sheet_xml(sheet, i == 1, rendered).encode())
    tmp.replace(path)
    return path


# ---- CSV --------------------------------------------------------------------------------------------


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


async def save_ledger(ledger: Ledger, path: Path, keep_days: float | None = None) -> Path:
    """Write the file in a worker thread so the event loop keeps serving chats.

    ``keep_days``: first delete the ledgers in the same folder older than that (the exports folder)."""

    def write() -> Path:
        if keep_days is not None and path.parent.is_dir():
            for pattern in (f"*{s}" for s in SUFFIXES):
                prune(path.parent, pattern, keep_days * 86400, time.time())
        return write_ledger(ledger, path)

    return await asyncio.to_thread(write)


def export_path(data_dir: Path, ledger: Ledger, org_hint: str = "", suffix: str = ".xlsx") -> Path:
    """Where chat exports go: ``<data_dir>/exports/<form>-<period>-<org>-<timestamp>.xlsx`` (absolute)."""
    return (data_dir / "exports" / f"{ledger.file_stem(org_hint)}{suffix}").resolve()
