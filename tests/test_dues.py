"""The dues standard against the worked table in shared/domain/party-branch-work.md §1.9."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from bot.domain.dues import (
    DuesCategory,
    DuesPolicy,
    compute_dues,
    dues_explanation,
    format_rate,
    format_yuan,
    is_large_payment,
    parse_category,
)
from bot.errors import UserInputError

IN = DuesCategory.IN_SERVICE
RET = DuesCategory.RETIRED


@pytest.mark.parametrize(
    ("category", "base_fen", "amount_fen", "rate", "label"),
    [
        (IN, 280000, 1400, "0.005", "3000元以下（含3000元）按0.5%"),
        (IN, 300000, 1500, "0.005", "3000元以下（含3000元）按0.5%"),
        (IN, 300001, 3000, "0.01", "3000元以上至5000元（含）按1%"),
        (IN, 450000, 4500, "0.01", "3000元以上至5000元（含）按1%"),
        (IN, 500000, 5000, "0.01", "3000元以上至5000元（含）按1%"),
        (IN, 800000, 12000, "0.015", "5000元以上至10000元（含）按1.5%"),
        (IN, 1000000, 15000, "0.015", "5000元以上至10000元（含）按1.5%"),
        (IN, 1200000, 24000, "0.02", "10000元以上按2%"),
        (RET, 400000, 2000, "0.005", "离退休5000元以下（含）按0.5%"),
        (RET, 500000, 2500, "0.005", "离退休5000元以下（含）按0.5%"),
        (RET, 600000, 6000, "0.01", "离退休5000元以上按1%"),
    ],
)
def test_worked_table(category: DuesCategory, base_fen: int, amount_fen: int, rate: str, label: str) -> None:
    std = compute_dues(base_fen, category)
    assert std.amount_fen == amount_fen
    assert std.uncapped_amount_fen == amount_fen
    assert std.rate == Decimal(rate)
    assert std.bracket_label == label
    assert not std.capped


def test_worked_table_cap_60000() -> None:
    std = compute_dues(6000000, IN)
    assert (std.amount_fen, std.uncapped_amount_fen, std.capped) == (100000, 120000, True)
    assert "1000.00元" in dues_explanation(std) and "1200.00元" in dues_explanation(std)


@pytest.mark.parametrize("category", [DuesCategory.STUDENT, DuesCategory.OTHER, DuesCategory.FARMER])
def test_fixed_categories_pay_020(category: DuesCategory) -> None:
    std = compute_dues(None, category)
    assert std.amount_fen == 20 and std.rate is None and not std.capped
    assert compute_dues(5000000, category).amount_fen == 20  # the base is irrelevant


def test_fixed_labels() -> None:
    assert compute_dues(None, DuesCategory.STUDENT).bracket_label == "学生党员每月0.20元"
    assert (
        format_yuan(compute_dues(None, DuesCategory.FARMER, DuesPolicy(farmer_fen=100)).amount_fen) == "1.00"
    )


def test_3000_cliff_is_intended() -> None:
    assert compute_dues(300000, IN).amount_fen == 1500
    assert compute_dues(300001, IN).amount_fen == 3000


@pytest.mark.parametrize(
    ("base_fen", "amount_fen"),
    [(499999, 5000), (500000, 5000), (500001, 7500), (999999, 15000), (1000000, 15000), (1000001, 20000)],
)
def test_both_sides_of_5000_and_10000(base_fen: int, amount_fen: int) -> None:
    assert compute_dues(base_fen, IN).amount_fen == amount_fen


def test_retiree_both_sides_of_5000() -> None:
    assert compute_dues(500000, RET).amount_fen == 2500
    assert compute_dues(500001, RET).amount_fen == 5000


def test_whole_base_not_slice_by_slice() -> None:
    # 组织局 Q&A [D3]: 5100 × 1.5% = 76.5 and 4900 × 1% = 49
    assert compute_dues(510000, IN).amount_fen == 7650
    assert compute_dues(490000, IN).amount_fen == 4900


def test_half_up_rounding_in_fen() -> None:
    assert compute_dues(123450, IN).amount_fen == 617  # 6.1725 → 6.17
    assert compute_dues(123500, IN).amount_fen == 618  # 6.175 → 6.18 (half up)
    assert compute_dues(333333, IN).amount_fen == 3333  # 33.3333 → 33.33


def test_rounding_to_a_tenth_of_a_yuan() -> None:
    policy = DuesPolicy(rounding_fen=10)
    assert compute_dues(333333, IN, policy).amount_fen == 3330
    assert compute_dues(335000, IN, policy).amount_fen == 3350
    assert compute_dues(123500, IN, policy).amount_fen == 620  # 6.175 → 6.2
    assert compute_dues(650000, IN, policy).amount_fen == 9750


def test_cap_is_configurable() -> None:
    assert compute_dues(6000000, IN, DuesPolicy(monthly_cap_fen=None)).amount_fen == 120000
    std = compute_dues(6000000, IN, DuesPolicy(monthly_cap_fen=50000))
    assert (std.amount_fen, std.capped) == (50000, True)
    assert not compute_dues(5000000, IN).capped  # exactly 1000 is not capped


def test_brackets_configurable_from_config_values() -> None:
    policy = DuesPolicy.model_validate({"in_service_brackets": [[200000, 0.005], [None, 0.01]]})
    toml_style = DuesPolicy.model_validate({"in_service_brackets": [[200000, 0.005], [0.01]]})
    assert toml_style == policy
    assert (
        DuesPolicy.model_validate({"retiree_brackets": [[500000, "0.005"], ["inf", "0.01"]]}) == DuesPolicy()
    )
    assert compute_dues(200000, IN, policy).amount_fen == 1000
    assert compute_dues(200001, IN, policy).bracket_label == "2000元以上按1%"


@pytest.mark.parametrize(
    "config",
    [
        {"in_service_brackets": []},
        {"in_service_brackets": [[300000, 0.005]]},
        {"in_service_brackets": [[500000, 0.005], [300000, 0.01], [None, 0.02]]},
        {"retiree_brackets": [[None, 0.01], [None, 0.02]]},
        {"retiree_brackets": [[None, 2]]},
        {"rounding_fen": 3},
        {"farmer_fen": 150},
        {"unknown_key": 1},
    ],
)
def test_bad_policy_rejected(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DuesPolicy.model_validate(config)


def test_explanation_matches_example() -> None:
    std = compute_dues(650000, IN)
    assert (
        dues_explanation(std)
        == "月缴费基数6500.00元，适用“5000元以上至10000元（含）按1.5%”，每月应交党费97.50元。"
    )


def test_missing_or_negative_base() -> None:
    with pytest.raises(UserInputError, match="缴费基数"):
        compute_dues(None, IN)
    with pytest.raises(UserInputError):
        compute_dues(-1, RET)


def test_zero_base() -> None:
    assert compute_dues(0, IN).amount_fen == 0


def test_helpers() -> None:
    assert format_yuan(5000) == "50.00"
    assert format_yuan(20) == "0.20"
    assert format_yuan(0) == "0.00"
    assert format_yuan(-150) == "-1.50"
    assert format_rate(Decimal("0.015")) == "1.5%"
    assert is_large_payment(100000) and not is_large_payment(99999)
    assert parse_category("退休") is RET
    assert parse_category("低保") is DuesCategory.OTHER
    assert parse_category("火星人") is None
    assert DuesCategory("在职") is IN
