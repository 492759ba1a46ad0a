"""The fixed parts of an XLSX package (SpreadsheetML, ECMA-376), written as strings.

``bot.reports.xlsx`` streams the worksheets; this module holds everything else: content types, package
relationships, the workbook with its sheet list and print titles, document properties and the one shared
``styles.xml``. Only what the ledgers use is declared, so the file stays small and opens in Excel, WPS and
LibreOffice alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
SHEET_NAME_MAX = 31
CELL_TEXT_MAX = 32767  # Excel refuses longer cell text

# Cell style ids (indexes into cellXfs below). Totals-row styles are the body styles + TOTAL_OFFSET.
TITLE, NOTES, HEADER = 1, 2, 3
TEXT, WRAP, INT, MONEY, NUMBER, DATE, DATETIME = 4, 5, 6, 7, 8, 9, 10
TOTAL_OFFSET = 7
MONEY_FORMAT = "0.00"
NUMBER_FORMAT = "0.0#"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"

# Characters XML 1.0 does not allow (they would make Excel report a corrupt file), plus the ones that must
# be escaped; one search decides whether a text needs the slow path.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")


def xml_text(text: str) -> str:
    """Text safe inside an XML element: illegal characters dropped, ``& < >`` escaped, CR kept as ``&#13;``."""
    if _SPECIAL.search(text) is None:
        return text
    return escape(_ILLEGAL.sub("", text), {"\r": "&#13;"})


def xml_attr(text: str) -> str:
    return escape(_ILLEGAL.sub("", text), {'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"})


def column_letter(index: int) -> str:
    """1 → A, 26 → Z, 27 → AA."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def safe_sheet_names(names: Sequence[str]) -> list[str]:
    """Names Excel accepts: no ``[]:*?/\\``, not empty, no leading/trailing apostrophe, at most 31
    characters, unique ignoring case (Excel compares them so), and not the reserved ``History``."""
    taken: set[str] = set()
    out = []
    for raw in names:
        base = _SHEET_NAME_BAD.sub("", _ILLEGAL.sub("", raw)).strip().strip("'")[:SHEET_NAME_MAX] or "Sheet"
        candidate, n = base, 2
        while candidate.casefold() in taken or candidate.casefold() == "history":
            suffix = str(n)
            candidate = base[: SHEET_NAME_MAX - len(suffix)] + suffix
            n += 1
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def _quoted(sheet_name: str) -> str:
    """A sheet name as formulas and defined names write it: ``'第一党支部'!``."""
    return "'" + sheet_name.replace("'", "''") + "'"


def content_types(sheet_count: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, sheet_count + 1)
    )
    return (
        f'{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        f"{sheets}</Types>"
    )


ROOT_RELS = (
    f'{XML_HEAD}<Relationships xmlns="{PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
    'core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{REL_NS}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)


def workbook_rels(sheet_count: int) -> str:
    sheets = "".join(
        f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, sheet_count + 1)
    )
    styles = f'<Relationship Id="rId{sheet_count + 1}" Type="{REL_NS}/styles" Target="styles.xml"/>'
    return f'{XML_HEAD}<Relationships xmlns="{PKG_REL_NS}">{sheets}{styles}</Relationships>'


def workbook(names: Sequence[str], print_title_rows: Sequence[int | None]) -> str:
    """The sheet list; a sheet's header row (if given) repeats on every printed page."""
    sheets = "".join(
        f'<sheet name="{xml_attr(name)}" sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(names, 1)
    )
    titles = "".join(
        f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{xml_text(_quoted(name))}!${row}:${row}'
        "</definedName>"
        for i, (name, row) in enumerate(zip(names, print_title_rows, strict=True))
        if row is not None
    )
    defined = f"<definedNames>{titles}</definedNames>" if titles else ""
    return (
        f'{XML_HEAD}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><workbookPr/>'
        f'<bookViews><workbookView activeTab="0"/></bookViews><sheets>{sheets}</sheets>{defined}'
        '<calcPr calcId="191029"/></workbook>'
    )


def core_properties(title: str, creator: str, created: dt.datetime) -> str:
    stamp = created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{XML_HEAD}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{xml_text(title)}</dc:title><dc:creator>{xml_text(creator)}</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
        "</cp:coreProperties>"
    )


def app_properties(application: str) -> str:
    return (
        f'{XML_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        f"<Application>{xml_text(application)}</Application><DocSecurity>0</DocSecurity></Properties>"
    )


def _xf(font: int, fill: int, border: int, num_fmt: int = 0, align: str = "") -> str:
    attrs = f'numFmtId="{num_fmt}" fontId="{font}" fillId="{fill}" borderId="{border}" xfId="0"'
    attrs += (' applyNumberFormat="1"' if num_fmt else "") + (' applyFont="1"' if font else "")
    attrs += (' applyFill="1"' if fill else "") + (' applyBorder="1"' if border else "")
    if align:
        return f'<xf {attrs} applyAlignment="1"><alignment {align}/></xf>'
    return f"<xf {attrs}/>"


def _styles() -> str:
    # numFmt 1 is the built-in "0"; 164+ are ours.
    formats = {164: MONEY_FORMAT, 165: NUMBER_FORMAT, 166: DATE_FORMAT, 167: DATETIME_FORMAT}
    num_fmts = "".join(f'<numFmt numFmtId="{i}" formatCode="{code}"/>' for i, code in formats.items())
    fonts = (
        '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'  # 0 default
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'  # 1 bold
        '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>'  # 2 title
        '<font><sz val="9"/><color rgb="FF666666"/><name val="Calibri"/><family val="2"/></font>'  # 3 notes
    )
    fills = (
        '<fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFF2DCDB"/><bgColor indexed="64"/></patternFill></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFF2F2F2"/><bgColor indexed="64"/></patternFill></fill>'
    )
    side = '<{0} style="thin"><color rgb="FF999999"/></{0}>'
    borders = "<border><left/><right/><top/><bottom/><diagonal/></border><border>" + "".join(
        side.format(s) for s in ("left", "right", "top", "bottom")
    ) + "<diagonal/></border>"
    wrap = 'wrapText="1" vertical="top"'
    body = [_xf(0, 0, 1), _xf(0, 0, 1, 0, wrap), _xf(0, 0, 1, 1), _xf(0, 0, 1, 164), _xf(0, 0, 1, 165),
            _xf(0, 0, 1, 166), _xf(0, 0, 1, 167)]  # fmt: skip
    totals = [_xf(1, 3, 1), _xf(1, 3, 1, 0, wrap), _xf(1, 3, 1, 1), _xf(1, 3, 1, 164), _xf(1, 3, 1, 165),
              _xf(1, 3, 1, 166), _xf(1, 3, 1, 167)]  # fmt: skip
    xfs = [
        _xf(0, 0, 0),  # 0 default
        _xf(2, 0, 0, 0, 'horizontal="center"'),  # 1 title
        _xf(3, 0, 0),  # 2 notes
        _xf(1, 2, 1, 0, 'horizontal="center" vertical="center" wrapText="1"'),  # 3 header
        *body,  # 4..10
        *totals,  # 11..17
    ]
    assert len(body) == TOTAL_OFFSET and xfs[TEXT] == body[0]  # the ids above match this list
    return (
        f'{XML_HEAD}<styleSheet xmlns="{MAIN_NS}"><numFmts count="{len(formats)}">{num_fmts}</numFmts>'
        f'<fonts count="4">{fonts}</fonts><fills count="4">{fills}</fills><borders count="2">{borders}</borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '<dxfs count="0"/><tableStyles count="0"/></styleSheet>'
    )


STYLES = _styles()
