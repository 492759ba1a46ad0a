"""The dues register's standards (bot.reports.standards) equal compute_dues for every base and policy."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.dues import DEFAULT_POLICY, DuesCategory, DuesPolicy, DuesStandard, compute_dues
from bot.errors import UserInputError
from bot.reports.standards import RosterStandards, rate_text

POLICIES = [
    DEFAULT_POLICY,
    DuesPolicy(rounding_fen=10, monthly_cap_fen=None, farmer_fen=50),
    DuesPolicy(rounding_fen=100, monthly_cap_fen=20000),
    DuesPolicy(in_service_brackets=[(123457, Decimal("0.0075")), (None, Decimal("0.0333"))],
               retiree_brackets=[(None, Decimal("0.001"))], rounding_fen=1),
]  # fmt: skip
CATEGORIES = [c.value for c in DuesCategory] + ["退休", "", "未知"]


def expected(category: str, base: int | None, policy: DuesPolicy) -> DuesStandard | None:
    if category not in DuesCategory._value2member_map_:
        return None
    try:
        return compute_dues(base, DuesCategory(category), policy)
    except UserInputError:
        return None


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(range(len(POLICIES))),
    st.lists(
        st.tuples(
            st.sampled_from(CATEGORIES),
            st.one_of(st.none(), st.integers(-5, 5), st.integers(0, 3_000_000), st.sampled_from([300000, 300001,
                      500000, 500050, 1000000, 1000001, 123457, 123458, 5_000_000, 6_666_650, 6_666_750])),
        ),
        min_size=1, max_size=80,
    ),
)  # fmt: skip
def test_roster_standards_equal_compute_dues(policy_index: int, members: list[tuple[str, int | None]]) -> None:
    policy = POLICIES[policy_index]
    standards = RosterStandards(policy)  # one per ledger: later bases of a bracket take the fast path
    for category, base in members * 2:
        standard, rate = standards.of(category, base)
        assert standard == expected(category, base, policy), (category, base)
        assert rate == rate_text(standard)


def test_rate_text() -> None:
    std = compute_dues(650000, DuesCategory.IN_SERVICE)
    assert rate_text(std) == "1.5%" and rate_text(compute_dues(None, DuesCategory.STUDENT)) == "定额"
    assert rate_text(None) == ""


def test_half_way_amounts_and_bracket_bounds() -> None:
    """Every base step of 0.50 yuan up to 200 yuan (half-fen ties at 0.5 %), and around each bound."""
    for policy in POLICIES:
        bounds = [b for b, _r in policy.in_service_brackets + policy.retiree_brackets if b is not None]
        bases = list(range(0, 20001, 50)) + [b + d for b in bounds for d in (-100, -1, 0, 1, 50, 100)]
        standards = RosterStandards(policy)
        for category in (DuesCategory.IN_SERVICE.value, DuesCategory.RETIRED.value):
            for base in bases:
                assert standards.of(category, base)[0] == expected(category, base, policy), (category, base)
