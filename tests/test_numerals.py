"""Chinese/Arabic numerals and money amounts as members type them."""

from decimal import Decimal

import pytest

from bot.domain.numerals import MAX_MONEY_FEN, MoneyProblem, parse_money, parse_money_fen, parse_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50", "50"),
        ("０", "0"),
        ("５０．５", "50.5"),
        ("1,000", "1000"),
        ("1，000.50", "1000.50"),
        ("十", "10"),
        ("十五", "15"),
        ("二十", "20"),
        ("一百二十五", "125"),
        ("一百零五", "105"),
        ("一百一十", "110"),
        ("一千零五十", "1050"),
        ("三千五", "3500"),
        ("两百五", "250"),
        ("一百二", "120"),
        ("1万2", "12000"),
        ("1万2千", "12000"),
        ("2万5千3百", "25300"),
        ("1.5万", "15000"),
        ("一万零五", "10005"),
        ("二十五万三", "253000"),
        ("一亿二千万", "120000000"),
        ("壹佰贰拾伍", "125"),
        ("伍拾", "50"),
        ("叁仟伍佰", "3500"),
        ("五十点五", "50.5"),
        ("三点一四", "3.14"),
        ("50点5", "50.5"),
        ("二〇二六", "2026"),
        ("一二五", "125"),
        ("零", "0"),
        ("〇", "0"),
        ("三千 五百", "3500"),
        ("负五", "-5"),
        ("-3.5", "-3.5"),
        ("+7", "7"),
    ],
)
def test_parse_number(text: str, expected: str) -> None:
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    ["", " ", "abc", "百", "万", "十百", "五百三千", "一二百", "50 60", "1,00", "点", "5点", ".", "1e5", "NaN",
     "Infinity", "五十块", "9" * 41, "一万万"],
)  # fmt: skip
def test_parse_number_rejects(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("50", 5000),
        ("50元", 5000),
        ("￥50", 5000),
        ("¥50", 5000),
        ("¥ 50", 5000),
        ("50.5", 5050),
        ("50.50元", 5050),
        ("50.00元", 5000),
        ("五十", 5000),
        ("五十元", 5000),
        ("五十元整", 5000),
        ("伍拾元", 5000),
        ("壹佰贰拾伍元伍角", 12550),
        ("一百二十五元五角", 12550),
        ("125块5", 12550),
        ("125块5毛", 12550),
        ("12块50", 1250),
        ("两块五", 250),
        ("十元零五分", 1005),
        ("50元5角3分", 5053),
        ("5角", 50),
        ("5毛", 50),
        ("五毛五", 55),
        ("3分", 3),
        ("0.2", 20),
        ("RMB50", 5000),
        ("rmb 50", 5000),
        ("CNY50", 5000),
        ("人民币50元", 5000),
        ("50元人民币", 5000),
        ("50块钱", 5000),
        ("交了50", 5000),
        ("已交50元", 5000),
        ("已缴50", 5000),
        ("缴纳50元", 5000),
        ("交50", 5000),
        ("付了50", 5000),
        ("转了50", 5000),
        ("已交党费50元", 5000),
        ("我交了50元党费", 5000),
        ("党费50", 5000),
        ("交了五十元", 5000),
        ("已交¥50", 5000),
        ("1万", 1000000),
        ("1,000元", 100000),
        ("50元。", 5000),
        ("50元👍", 5000),
        ("0", 0),
        ("1000000", MAX_MONEY_FEN),
    ],
)
def test_parse_money(text: str, fen: int) -> None:
    assert parse_money_fen(text) == fen


def test_more_than_two_decimals_round_half_up() -> None:
    assert parse_money_fen("50.555") == 5056
    assert parse_money_fen("50.554") == 5055
    assert parse_money_fen("0.005") == 1
    assert parse_money_fen("0.004") == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-50", MoneyProblem.NEGATIVE),
        ("负50", MoneyProblem.NEGATIVE),
        ("¥-50", MoneyProblem.NEGATIVE),
        ("1000000.01", MoneyProblem.TOO_LARGE),
        ("1000001", MoneyProblem.TOO_LARGE),
        ("一亿", MoneyProblem.TOO_LARGE),
        ("交了", MoneyProblem.NOT_MONEY),
        ("abc", MoneyProblem.NOT_MONEY),
        ("50 60", MoneyProblem.NOT_MONEY),
        ("50.5元5角", MoneyProblem.NOT_MONEY),
        ("元5角", MoneyProblem.NOT_MONEY),
        ("50分", MoneyProblem.NOT_MONEY),
        ("", MoneyProblem.NOT_MONEY),
        ("5" * 500, MoneyProblem.NOT_MONEY),
    ],
)
def test_parse_money_problems(text: str, problem: MoneyProblem) -> None:
    assert parse_money(text) is problem
    assert parse_money_fen(text) is None
