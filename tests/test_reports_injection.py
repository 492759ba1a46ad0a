"""Names and answers typed in chat never become live spreadsheet formulas in exported ledgers."""

from __future__ import annotations

from decimal import Decimal

from bot.reports import xlsx
from bot.reports.ledgers import Column


def test_formula_like_text_is_inert() -> None:
    for text in ("=HYPERLINK(\"http://x\",\"y\")", "+1+1", "@SUM(A1)", "-2+3", "\t=1"):
        assert xlsx._inert(text).startswith("'")
    for text in ("张三", "-", "-50", "-1.5", "50.00", ""):
        assert xlsx._inert(text) == text


def test_xlsx_value_never_starts_with_equals() -> None:
    column = Column("姓名")
    assert xlsx._xlsx_value(column, "=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert xlsx._xlsx_value(column, Decimal("1.5")) == Decimal("1.5")
