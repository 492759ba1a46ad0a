"""Dues standards for a whole roster at once (the 党费收缴登记表 of a committee: 20,000 members).

``compute_dues`` (``bot.domain.dues``) is the rule. Called per member it costs ~15 µs of Decimal arithmetic
and bracket-label formatting — a fifth of a second for a committee, where bases are mostly distinct. Inside
one bracket, standards differ only by the rounded amount, so ``compute_dues`` runs once per (category,
bracket) and the other bases of that bracket get the same rate, label, half-up rounding and cap here in
exact integer arithmetic. ``tests/test_reports_standards.py`` checks the result against ``compute_dues``
for random bases and policies.
"""

from __future__ import annotations

from bot.domain.dues import DuesCategory, DuesPolicy, DuesStandard, compute_dues, format_rate
from bot.errors import UserInputError

_SALARIED = (DuesCategory.IN_SERVICE, DuesCategory.RETIRED)


def rate_text(standard: DuesStandard | None) -> str:
    """The 交纳比例 column: ``1.5%``, ``定额`` for the fixed amounts, empty without a standard."""
    if standard is None:
        return ""
    return format_rate(standard.rate) if standard.rate is not None else "定额"


class RosterStandards:
    """Each member's monthly standard (``None``: unknown category or no base on file) and its rate text,
    remembered per (category, base)."""

    def __init__(self, policy: DuesPolicy) -> None:
        self.policy = policy
        self._memo: dict[tuple[str, int | None], tuple[DuesStandard | None, str]] = {}
        self._templates: dict[tuple[DuesCategory, int], tuple[DuesStandard, int, int]] = {}

    def of(self, category: str, base_fen: int | None) -> tuple[DuesStandard | None, str]:
        key = (category, base_fen)
        found = self._memo.get(key)
        if found is None:
            standard = self._standard(category, base_fen)
            found = self._memo[key] = (standard, rate_text(standard))
        return found

    def _standard(self, category: str, base_fen: int | None) -> DuesStandard | None:
        kind = DuesCategory._value2member_map_.get(category)
        if not isinstance(kind, DuesCategory):
            return None
        if kind not in _SALARIED or base_fen is None or base_fen < 0:
            try:
                return compute_dues(base_fen, kind, self.policy)
            except UserInputError:  # salaried without a base
                return None
        policy = self.policy
        brackets = policy.retiree_brackets if kind is DuesCategory.RETIRED else policy.in_service_brackets
        index = next(i for i, (upper, _r) in enumerate(brackets) if upper is None or base_fen <= upper)
        template = self._templates.get((kind, index))
        if template is None:
            first = compute_dues(base_fen, kind, policy)
            assert first.rate is not None  # salaried standards always have one
            self._templates[(kind, index)] = (first, *first.rate.as_integer_ratio())
            return first
        standard, p, q = template
        # base × rate / step rounded half up (exact: rate = p / q), then times step, as compute_dues does.
        step = policy.rounding_fen
        units, rest = divmod(base_fen * p, q * step)
        uncapped = (units + (2 * rest >= q * step)) * step
        cap = policy.monthly_cap_fen
        capped = cap is not None and uncapped > cap
        amount = cap if capped and cap is not None else uncapped
        return DuesStandard(amount, standard.bracket_label, standard.rate, capped, uncapped, base_fen, kind)
