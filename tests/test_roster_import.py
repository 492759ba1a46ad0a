"""`dangjian members import FILE`: CSV (with or without BOM) and XLSX, Chinese or English headers,
all-or-nothing with row-numbered errors, --dry-run, and re-import that updates instead of duplicating.

These are sync tests driving the real CLI (``bot.cli.main``) against the selected database."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import aliased

from bot.cli import main
from bot.db.tables import Member, Org
from tests.conftest import PG_URL, _reset_postgres

HEADER = ["姓名", "手机", "党支部", "党小组", "角色", "人员类别", "缴费基数", "钉钉UserID", "企业微信UserID"]
ROWS = [
    ["王建国", "13900000001", "机关党委/第一党支部", "第一党小组", "书记", "在职", "8000", "dt-wang", ""],
    [
        "李红梅",
        "13900000002",
        "机关党委/第一党支部",
        "第一党小组",
        "委员、组织委员",
        "在职",
        "6500.50",
        "",
        "LiHongMei",
    ],
    ["陈七", "139 0000 0003", "机关党委/第一党支部", "", "", "离退休", "", "", ""],
    ["孙丽", "", "机关党委/第二党支部", "", "书记、管理员", "", "", "", ""],
]
EXPECTED = {
    "王建国": ("13900000001", "机关党委/第一党支部", ",党员,书记,", "在职", 800000, "dt-wang", None),
    "李红梅": (
        "13900000002",
        "机关党委/第一党支部",
        ",党员,委员,组织委员,",
        "在职",
        650050,
        None,
        "lihongmei",
    ),
    "陈七": ("13900000003", "机关党委/第一党支部", ",党员,", "离退休", None, None, None),
    "孙丽": (None, "机关党委/第二党支部", ",党员,书记,管理员,", "在职", None, None, None),
}


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A clean database on the selected backend and a config file pointing at it."""
    for var in ("DANGJIAN_CONFIG", "DANGJIAN_DATABASE_URL", "DANGJIAN_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    if PG_URL:
        asyncio.run(_reset_postgres(PG_URL))
        url = PG_URL
    else:
        url = f"sqlite+aiosqlite:///{(tmp_path / 'roster.db').as_posix()}"
    config = tmp_path / "dangjian.toml"
    config.write_text(
        f'data_dir = "{(tmp_path / "data").as_posix()}"\n[database]\nurl = "{url}"\n', encoding="utf-8"
    )
    return {"url": url, "config": str(config), "dir": tmp_path}


def write_csv(path: Path, header: list[str], rows: list[list[str]], bom: bool = False) -> Path:
    lines = [",".join(header), *(",".join(r) for r in rows)]
    path.write_bytes(("\ufeff" if bom else "").encode() + ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def run_import(db: dict[str, Any], file: Path, *extra: str) -> int:
    return main(["members", "import", str(file), "--config", db["config"], *extra])


async def _state(url: str) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            has_tables = await conn.run_sync(lambda c: c.dialect.has_table(c, "members"))
            if not has_tables:
                return {"members": {}, "orgs": []}
            branch, group = aliased(Org), aliased(Org)
            rows = await conn.execute(
                select(
                    Member.name, Member.mobile, branch.path, Member.roles, Member.category, Member.dues_base_fen,
                    Member.dingtalk_userid, Member.wecom_userid, group.path,
                )
                .join(branch, branch.id == Member.org_id)
                .outerjoin(group, group.id == Member.group_id)
                .order_by(Member.id)
            )  # fmt: skip
            members: dict[str, Any] = {}
            for name, *rest, group_path in rows.all():
                assert name not in members, f"{name} imported twice"
                members[name] = (*rest, group_path)
            parent = aliased(Org)
            orgs = await conn.execute(
                select(Org.path, Org.name, Org.kind, parent.path)
                .outerjoin(parent, parent.id == Org.parent_id)
                .order_by(Org.path)
            )
            return {"members": members, "orgs": [tuple(r) for r in orgs.all()]}
    finally:
        await engine.dispose()


def state(db: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_state(db["url"]))


def members_without_group(db: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {name: values[:-1] for name, values in state(db)["members"].items()}


def error_rows(stderr: str) -> set[int]:
    """Row numbers the CLI reports problems for (each problem line starts with "第N行")."""
    return {int(n) for n in re.findall(r"^\s*第(\d+)行", stderr, re.M)}


def error_lines(stderr: str, row: int) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip().startswith(f"第{row}行")]


# -- valid imports ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_csv_import_creates_members_and_branch_paths(db: dict[str, Any], capsys: Any, bom: bool) -> None:
    file = write_csv(db["dir"] / "roster.csv", HEADER, ROWS, bom=bom)
    assert run_import(db, file) == 0
    out = capsys.readouterr().out
    assert "新增 created 4" in out and "更新 updated 0" in out

    assert members_without_group(db) == EXPECTED
    current = state(db)
    assert current["members"]["王建国"][-1] == "机关党委/第一党支部/第一党小组"
    assert current["members"]["陈七"][-1] is None
    orgs = {path: (name, kind, parent) for path, name, kind, parent in current["orgs"]}
    assert orgs == {
        "机关党委": ("机关党委", "committee", None),
        "机关党委/第一党支部": ("第一党支部", "branch", "机关党委"),
        "机关党委/第一党支部/第一党小组": ("第一党小组", "group", "机关党委/第一党支部"),
        "机关党委/第二党支部": ("第二党支部", "branch", "机关党委"),
    }


def test_xlsx_import(db: dict[str, Any]) -> None:
    rows: list[list[Any]] = [
        ["王建国", 13900000001, "机关党委/第一党支部", "第一党小组", "书记", "在职", 8000, "dt-wang", None],
        [
            "李红梅",
            "13900000002",
            "机关党委/第一党支部",
            "第一党小组",
            "委员、组织委员",
            "在职",
            6500.5,
            None,
            "LiHongMei",
        ],
        ["陈七", 13900000003.0, "机关党委/第一党支部", None, None, "离退休", None, None, None],
        [None, None, None, None, None, None, None, None, None],  # an empty row in the middle is skipped
        ["孙丽", None, "机关党委/第二党支部", None, "书记、管理员", None, None, None, None],
    ]
    file = write_xlsx(db["dir"] / "roster.xlsx", HEADER, rows)
    assert run_import(db, file) == 0
    assert members_without_group(db) == EXPECTED


def test_english_headers(db: dict[str, Any]) -> None:
    header = [
        "Name",
        "mobile",
        "BRANCH",
        "group",
        "roles",
        "category",
        "dues_base",
        "dingtalk_userid",
        "wecom_userid",
    ]
    file = write_csv(db["dir"] / "roster.csv", header, ROWS)
    assert run_import(db, file) == 0
    assert members_without_group(db) == EXPECTED


def test_only_required_headers_in_any_order(db: dict[str, Any]) -> None:
    file = write_csv(
        db["dir"] / "roster.csv", ["党支部", "姓名"], [["第三党支部", "周强"], ["第三党支部", "吴敏"]]
    )
    assert run_import(db, file) == 0
    members = members_without_group(db)
    assert members == {
        "周强": (None, "第三党支部", ",党员,", "在职", None, None, None),
        "吴敏": (None, "第三党支部", ",党员,", "在职", None, None, None),
    }


def test_reimport_updates_instead_of_duplicating(db: dict[str, Any], capsys: Any) -> None:
    file = write_csv(db["dir"] / "roster.csv", HEADER, ROWS)
    assert run_import(db, file) == 0
    assert run_import(db, file) == 0
    assert "新增 created 0, 更新 updated 4" in capsys.readouterr().out
    assert members_without_group(db) == EXPECTED

    changed = [list(r) for r in ROWS]
    changed[2][4] = "党小组长"  # 陈七 (matched by mobile) gets a role
    changed[2][5] = "在职"
    changed[3][6] = "9000"  # 孙丽 (no mobile: matched by name within the branch) gets a dues base
    changed.append(["刘洋", "13900000008", "机关党委/第一党支部", "", "", "学生", "", "", ""])
    assert run_import(db, write_csv(db["dir"] / "roster2.csv", HEADER, changed)) == 0
    assert "新增 created 1, 更新 updated 4" in capsys.readouterr().out
    members = members_without_group(db)
    assert len(members) == 5
    assert members["陈七"] == (
        "13900000003",
        "机关党委/第一党支部",
        ",党员,党小组长,",
        "在职",
        None,
        None,
        None,
    )
    assert members["孙丽"][4] == 900000
    assert members["刘洋"][3] == "学生"
    assert len(state(db)["orgs"]) == 4  # no duplicate organisations either


def test_dry_run_writes_nothing(db: dict[str, Any], capsys: Any) -> None:
    file = write_csv(db["dir"] / "roster.csv", HEADER, ROWS)
    assert run_import(db, file, "--dry-run") == 0
    assert "新增 created 4" in capsys.readouterr().out
    assert state(db)["members"] == {}
    assert state(db)["orgs"] == []

    assert run_import(db, file) == 0
    before = state(db)
    changed = [list(r) for r in ROWS] + [
        ["新人", "13900000009", "机关党委/第九党支部", "", "", "", "", "", ""]
    ]
    changed[0][4] = "党员"
    assert run_import(db, write_csv(db["dir"] / "roster2.csv", HEADER, changed), "--dry-run") == 0
    assert state(db) == before


# -- rejected files: exit 2, rows named, database unchanged -----------------------------------------


def _good(i: int, **changes: str) -> list[str]:
    row = dict(
        zip(
            HEADER,
            ["成员" + "甲乙丙丁戊己庚辛"[i], f"1390000010{i}", "机关党委/第一党支部", "", "", "", "", "", ""],
        )
    )
    row.update(changes)
    return [row[h] for h in HEADER]


BAD_FILES: dict[str, tuple[list[str], list[list[str]], dict[int, str]]] = {
    # name: (header, rows, {row number: text that must appear on that row's error line})
    "duplicate mobile": (
        HEADER,
        [_good(0), _good(1, 手机="13900000100"), _good(2)],
        {3: "第2行"},
    ),
    "unknown role": (HEADER, [_good(0), _good(1, 角色="党员、主席")], {3: "主席"}),
    "unknown category": (HEADER, [_good(0), _good(1), _good(2, 人员类别="外聘")], {4: "外聘"}),
    "bad mobile": (
        HEADER,
        [_good(0, 手机="1390000"), _good(1, 手机="23900000000")],
        {2: "1390000", 3: "23900000000"},
    ),
    "bad dues base": (
        HEADER,
        [_good(0, 缴费基数="六千"), _good(1, 缴费基数="-100"), _good(2, 缴费基数="6500")],
        {2: "六千", 3: "-100"},
    ),
    "missing name": (HEADER, [_good(0), _good(1, 姓名=""), _good(2)], {3: "姓名"}),
    "missing branch": (HEADER, [_good(0, 党支部=""), _good(1)], {2: "党支部"}),
    "missing required header": (["姓名", "手机"], [["张三", "13900000100"]], {1: "党支部"}),
    "several problems": (
        HEADER,
        [_good(0), _good(1, 角色="神仙"), _good(2, 人员类别="外星", 手机="12"), _good(3)],
        {3: "神仙", 4: "外星"},
    ),
}


def test_bad_roster_is_rejected_with_row_numbers(db: dict[str, Any], capsys: Any) -> None:
    assert run_import(db, write_csv(db["dir"] / "base.csv", HEADER, ROWS)) == 0
    before = state(db)
    capsys.readouterr()

    for name, (header, rows, expected) in BAD_FILES.items():
        file = write_csv(db["dir"] / "bad.csv", header, rows, bom=True)
        assert run_import(db, file) == 2, name
        captured = capsys.readouterr()
        assert "导入完成" not in captured.out, name
        assert error_rows(captured.err) == set(expected), (name, captured.err)
        for row, needle in expected.items():
            lines = error_lines(captured.err, row)
            assert any(needle in ln for ln in lines), (name, needle, lines)
        assert state(db) == before, name  # all or nothing: not even the valid rows were written


def test_duplicate_mobile_names_both_rows(db: dict[str, Any], capsys: Any) -> None:
    rows = [_good(0), _good(1), _good(2, 手机="13900000100"), _good(3)]
    assert run_import(db, write_csv(db["dir"] / "dup.csv", HEADER, rows)) == 2
    err = capsys.readouterr().err
    assert error_rows(err) == {4}
    (line,) = error_lines(err, 4)
    assert "13900000100" in line and "第2行" in line
    assert state(db)["members"] == {}


def test_xlsx_errors_use_spreadsheet_row_numbers(db: dict[str, Any], capsys: Any) -> None:
    rows: list[list[Any]] = [
        ["甲", 13900000101, "第一党支部"],
        ["乙", 13900000102, "第一党支部"],
        ["丙", 13900000101, "第一党支部"],
    ]
    assert run_import(db, write_xlsx(db["dir"] / "dup.xlsx", ["姓名", "手机", "党支部"], rows)) == 2
    assert error_rows(capsys.readouterr().err) == {4}
    assert state(db)["members"] == {}


def test_conflict_with_the_database_rolls_back_everything(db: dict[str, Any], capsys: Any) -> None:
    """A DingTalk user id already held by another member is only found on write: still all or nothing."""
    assert run_import(db, write_csv(db["dir"] / "base.csv", HEADER, ROWS)) == 0
    before = state(db)
    capsys.readouterr()
    rows = [
        _good(0),  # a new member, valid on its own
        ["周强", "13900000012", "机关党委/第二党支部", "", "", "", "", "dt-wang", ""],  # 王建国's DingTalk id
    ]
    assert run_import(db, write_csv(db["dir"] / "clash.csv", HEADER, rows)) == 2
    assert 3 in error_rows(capsys.readouterr().err)
    assert state(db) == before


@pytest.mark.parametrize(
    ("file_name", "content"),
    [
        ("gbk.csv", "姓名,党支部\n张三,第一党支部\n".encode("gbk")),
        ("broken.xlsx", b"this is not a zip archive"),
        ("roster.xls", b"\xd0\xcf\x11\xe0"),
        ("empty.csv", b""),
    ],
    ids=["gbk-csv", "corrupt-xlsx", "old-xls", "empty"],
)
def test_unreadable_file_is_bad_input(
    db: dict[str, Any], capsys: Any, file_name: str, content: bytes
) -> None:
    path = db["dir"] / file_name
    path.write_bytes(content)
    assert run_import(db, path) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(r"第\d+行", err)
    assert state(db)["members"] == {}


def test_missing_file_is_bad_input(db: dict[str, Any], capsys: Any) -> None:
    assert run_import(db, db["dir"] / "nope.csv") == 2
    assert "nope.csv" in capsys.readouterr().err
