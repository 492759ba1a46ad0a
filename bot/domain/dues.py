"""The Party dues standard (党费标准): 2008 regulation (中组发〔2008〕3号) + 2017 notice (组电明字〔2017〕5号).

Rules (see shared/domain/party-branch-work.md §1):
- in-service members: whole-base progression (全额累进) — one rate applies to the entire monthly base;
  bracket upper bounds are inclusive (含3000元): ≤3000 0.5%, ≤5000 1%, ≤10000 1.5%, above 2%;
- retirees: ≤5000 0.5%, above 1%;
- students, the unemployed / 低保 / relief (其他): a fixed 0.20 yuan; farmers 0.20–1.00 (the province
  sets it, default 0.20);
- the 2017 monthly cap: generally no more than 1000 yuan (the member may choose to pay more);
- a voluntary one-off payment of 1000 yuan or more is a separate 大额党费 entry.

Everything UNCONFIRMED (rounding, farmer rate, the cap) is a ``DuesPolicy`` setting. Money is integer
fen; rounding is half-up to ``rounding_fen`` (1 = 0.01 yuan, 10 = 0.1 yuan).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import UserInputError

# (inclusive upper bound in fen, or None = no bound; rate as a fraction: 0.005 = 0.5%).
# From TOML (no null): [[300000, 0.005], [500000, 0.01], [1000000, 0.015], [0.02]].
Bracket = tuple[int | None, Decimal]


class DuesCategory(StrEnum):
    IN_SERVICE = "在职"
    RETIRED = "离退休"
    STUDENT = "学生"
    FARMER = "农民"
    OTHER = "其他"  # laid-off / unemployed, 低保, living on relief: fixed 0.20 yuan


_CATEGORY_ALIASES: dict[str, DuesCategory] = {
    "在职": DuesCategory.IN_SERVICE, "在岗": DuesCategory.IN_SERVICE, "职工": DuesCategory.IN_SERVICE,
    "离退休": DuesCategory.RETIRED, "退休": DuesCategory.RETIRED, "离休": DuesCategory.RETIRED,
    "学生": DuesCategory.STUDENT, "研究生": DuesCategory.STUDENT, "农民": DuesCategory.FARMER,
    "其他": DuesCategory.OTHER, "下岗": DuesCategory.OTHER, "失业": DuesCategory.OTHER,
    "低保": DuesCategory.OTHER, "困难": DuesCategory.OTHER,
}  # fmt: skip


def parse_category(text: str) -> DuesCategory | None:
    """Roster category text (在职 / 退休 / 学生 / 农民 / 低保 …) → category; ``None`` if unknown."""
    return _CATEGORY_ALIASES.get(text.strip())


def _open_bracket(item: Any) -> Any:
    if isinstance(item, list | tuple) and len(item) == 1:
        return (None, item[0])
    if (
        isinstance(item, list | tuple)
        and len(item) == 2
        and str(item[0]).strip().lower() in ("", "none", "inf")
    ):
        return (None, item[1])
    return item


def _check_brackets(brackets: list[Bracket]) -> list[Bracket]:
    if not brackets:
        raise ValueError("brackets: at least one bracket is required")
    bounds = [b for b, _r in brackets]
    if bounds[-1] is not None or None in bounds[:-1]:
        raise ValueError("brackets: only the last bracket may (and must) have no upper bound")
    numeric = [b for b in bounds if b is not None]
    if any(b <= 0 for b in numeric) or numeric != sorted(set(numeric)):
        raise ValueError("brackets: upper bounds must be positive and strictly increasing")
    if any(not Decimal(0) <= r < 1 for _b, r in brackets):
        raise ValueError("brackets: rates must be fractions between 0 and 1, e.g. 0.005 for 0.5%")
    return brackets


class DuesPolicy(BaseModel):
    """Configurable dues rules; defaults follow the national 2008/2017 texts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_service_brackets: list[Bracket] = Field(
        default_factory=lambda: [
            (300000, Decimal("0.005")),
            (500000, Decimal("0.01")),
            (1000000, Decimal("0.015")),
            (None, Decimal("0.02")),
        ]
    )
    retiree_brackets: list[Bracket] = Field(
        default_factory=lambda: [(500000, Decimal("0.005")), (None, Decimal("0.01"))]
    )
    student_fen: int = Field(default=20, ge=0)
    other_fen: int = Field(default=20, ge=0)
    farmer_fen: int = Field(default=20, ge=20, le=100)  # the province sets 0.20–1.00 yuan
    monthly_cap_fen: int | None = Field(default=100000, gt=0)  # None: no cap
    rounding_fen: int = 1
    large_payment_threshold_fen: int = Field(default=100000, gt=0)

    @field_validator("in_service_brackets", "retiree_brackets", mode="before")
    @classmethod
    def _open_bound(cls, value: Any) -> Any:
        """TOML has no null: ``[rate]`` or a bound of "" / "none" / "inf" means "no upper bound"."""
        if not isinstance(value, list):
            return value
        return [_open_bracket(item) for item in value]

    @field_validator("in_service_brackets", "retiree_brackets")
    @classmethod
    def _brackets_ok(cls, value: list[Bracket]) -> list[Bracket]:
        return _check_brackets(value)

    @field_validator("rounding_fen")
    @classmethod
    def _rounding_ok(cls, value: int) -> int:
        if value not in (1, 10, 100):
            raise ValueError("rounding_fen must be 1 (0.01 yuan), 10 (0.1 yuan) or 100 (1 yuan)")
        return value


@dataclass(frozen=True, slots=True)
class DuesStandard:
    """A member's monthly dues and how it was worked out."""

    amount_fen: int
    bracket_label: str
    rate: Decimal | None  # None for the fixed-amount categories
    capped: bool
    uncapped_amount_fen: int
    base_fen: int | None
    category: DuesCategory


def format_yuan(fen: int) -> str:
    """Integer fen → yuan with two decimals: 5000 → "50.00", 20 → "0.20"."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"


def _bound_text(fen: int) -> str:
    return str(fen // 100) if fen % 100 == 0 else format_yuan(fen)


def format_rate(rate: Decimal) -> str:
    """0.005 → "0.5%", 0.02 → "2%"."""
    return f"{format((rate * 100).normalize(), 'f')}%"


def bracket_label(brackets: list[Bracket], index: int, retired: bool) -> str:
    """Chinese label of one bracket, e.g. "3000元以上至5000元（含）按1%"."""
    upper, rate = brackets[index]
    lower = brackets[index - 1][0] if index > 0 else None
    prefix = "离退休" if retired else ""
    if upper is not None and lower is None:
        incl = "（含）" if retired else f"（含{_bound_text(upper)}元）"
        span = f"{_bound_text(upper)}元以下{incl}"
    elif upper is not None and lower is not None:
        span = f"{_bound_text(lower)}元以上至{_bound_text(upper)}元（含）"
    elif lower is not None:
        span = f"{_bound_text(lower)}元以上"
    else:
        span = "全部收入"
    return f"{prefix}{span}按{format_rate(rate)}"


def _round_fen(value: Decimal, step: int) -> int:
    return int((value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * step


_FIXED_LABELS = {
    DuesCategory.STUDENT: "学生党员",
    DuesCategory.FARMER: "农民党员",
    DuesCategory.OTHER: "下岗失业、低保等党员",
}


def _fixed(category: DuesCategory, policy: DuesPolicy) -> DuesStandard:
    fen = {
        DuesCategory.STUDENT: policy.student_fen,
        DuesCategory.FARMER: policy.farmer_fen,
        DuesCategory.OTHER: policy.other_fen,
    }[category]
    label = f"{_FIXED_LABELS[category]}每月{format_yuan(fen)}元"
    return DuesStandard(fen, label, None, False, fen, None, category)


DEFAULT_POLICY = DuesPolicy()


_COMPUTED: dict[tuple[int, int | None, DuesCategory], tuple[DuesPolicy, DuesStandard]] = {}
_COMPUTED_MAX = 50_000


def compute_dues(
    base_fen: int | None, category: DuesCategory, policy: DuesPolicy = DEFAULT_POLICY
) -> DuesStandard:
    """Monthly dues for a member; raises ``UserInputError`` if a salaried member has no base.

    Remembered per (policy, base, category): every dues answer asks, and the same few bases recur."""
    key = (id(policy), base_fen, category)
    if (known := _COMPUTED.get(key)) is not None and known[0] is policy:  # ``is``: an id can be reused
        return known[1]
    standard = _compute_dues(base_fen, category, policy)
    if len(_COMPUTED) >= _COMPUTED_MAX:
        _COMPUTED.clear()
    _COMPUTED[key] = (policy, standard)
    return standard


def _compute_dues(base_fen: int | None, category: DuesCategory, policy: DuesPolicy) -> DuesStandard:
    if category not in (DuesCategory.IN_SERVICE, DuesCategory.RETIRED):
        return _fixed(category, policy)
    if base_fen is None:
        raise UserInputError("未登记月缴费基数，无法计算党费标准。请先登记税后月收入，例如：6500")
    if base_fen < 0:
        raise UserInputError("月缴费基数不能为负数，请重新登记，例如：6500")
    retired = category is DuesCategory.RETIRED
    brackets = policy.retiree_brackets if retired else policy.in_service_brackets
    index = next(i for i, (upper, _r) in enumerate(brackets) if upper is None or base_fen <= upper)
    rate = brackets[index][1]
    uncapped = _round_fen(Decimal(base_fen) * rate, policy.rounding_fen)
    cap = policy.monthly_cap_fen
    capped = cap is not None and uncapped > cap
    amount = cap if capped and cap is not None else uncapped
    label = bracket_label(brackets, index, retired)
    return DuesStandard(amount, label, rate, capped, uncapped, base_fen, category)


def dues_explanation(std: DuesStandard) -> str:
    """One Chinese sentence, e.g. "月缴费基数6500.00元，适用“…按1.5%”，每月应交党费97.50元。"."""
    if std.base_fen is None:
        return f"适用“{std.bracket_label}”，每月应交党费{format_yuan(std.amount_fen)}元。"
    head = f"月缴费基数{format_yuan(std.base_fen)}元，适用“{std.bracket_label}”，"
    if not std.capped:
        return f"{head}每月应交党费{format_yuan(std.amount_fen)}元。"
    cap_text = _bound_text(std.amount_fen)
    return (
        f"{head}按比例计算为{format_yuan(std.uncapped_amount_fen)}元，按每月一般不超过{cap_text}元的规定，"
        f"每月应交党费{format_yuan(std.amount_fen)}元（本人自愿可多交）。"
    )


def is_large_payment(amount_fen: int, policy: DuesPolicy = DEFAULT_POLICY) -> bool:
    """A voluntary one-off payment at or above the threshold (1000 yuan) is a separate 大额党费 entry."""
    return amount_fen >= policy.large_payment_threshold_fen
