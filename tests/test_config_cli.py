"""Config loading (defaults, TOML, env overrides, key-naming errors) and the CLI's config/db commands."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot import sections
from bot.app import BotApp
from bot.cli import main
from bot.clock import FakeClock
from bot.config import load_settings
from bot.errors import ConfigError
from tests.conftest import PG_URL, START, _reset_postgres

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No DANGJIAN_* variables leak in from the outside, and the working directory is a scratch one."""
    for var in list(os.environ):
        if var.startswith("DANGJIAN_") and not var.startswith("DANGJIAN_TEST_"):
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


# -- load_settings ---------------------------------------------------------------------------------


def test_no_config_file_gives_the_embedded_defaults() -> None:
    settings = load_settings(None, env={})
    assert settings.config_path is None
    assert settings.timezone == "Asia/Shanghai"
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8080
    assert settings.is_sqlite
    assert settings.database_url == "sqlite+aiosqlite:///data/dangjian.db"
    assert settings.redis.url == ""
    assert settings.local.enabled is True
    assert settings.admin.token == ""
    sections.validate_sections(settings)  # the built-in forms, schedules and dues policy are valid


def test_config_file_values_are_read(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml",
        'timezone = "Asia/Urumqi"\n[server]\nport = 9090\npublic_url = "https://bot.example.cn"\n'
        '[database]\nurl = "postgresql+asyncpg://u@db/x"\n[redis]\nurl = "redis://r:6379/1"\n'
        '[[groups]]\nplatform = "local"\nconversation_id = "group:第一党支部"\norg = "第一党支部"\n',
    )
    settings = load_settings(file, env={})
    assert settings.config_path == file
    assert settings.timezone == "Asia/Urumqi"
    assert settings.server.port == 9090 and settings.server.public_url == "https://bot.example.cn"
    assert settings.database_url == "postgresql+asyncpg://u@db/x" and not settings.is_sqlite
    assert settings.redis.url == "redis://r:6379/1"
    assert [(g.platform, g.org) for g in settings.groups] == [("local", "第一党支部")]


def test_example_config_is_valid() -> None:
    settings = load_settings(REPO / "config.example.toml", env={})
    sections.validate_sections(settings)


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("[server]\nprot = 1\n", "server.prot"),
        ("colour = 'red'\n", "colour"),
        ("[server]\nport = 'eighty'\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[database]\nurl = 5\n", "database.url"),
        ("[local]\nenabled = 'maybe'\n", "local.enabled"),
        ("timezone = 'Mars/Olympus'\n", "timezone"),
        ("[outbox]\nmax_attempts = 0\n", "outbox.max_attempts"),
        ("[[groups]]\nplatform = 'qq'\nconversation_id = 'c'\norg = 'x'\n", "groups.0.platform"),
        ("[[groups]]\nplatform = 'local'\norg = 'x'\n", "groups.0.conversation_id"),
    ],
)
def test_bad_key_raises_config_error_naming_it(tmp_path: Path, content: str, key: str) -> None:
    file = write(tmp_path / "bad.toml", content)
    with pytest.raises(ConfigError) as info:
        load_settings(file, env={})
    assert f"{key}:" in str(info.value)


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path / "broken.toml", "[server\nport = 1\n"), env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", env={})


@pytest.mark.parametrize(
    ("content", "key"),
    [("[dingtalk]\nenabeld = true\n", "dingtalk.enabeld"), ("[wecom]\ncorpid = 'x'\n", "wecom.corpid")],
)
def test_bad_platform_key_is_named_when_the_app_is_built(tmp_path: Path, content: str, key: str) -> None:
    settings = load_settings(write(tmp_path / "c.toml", content), env={})
    with pytest.raises(ConfigError, match=key):
        sections.validate_sections(settings)
    with pytest.raises(ConfigError, match=key):
        BotApp(settings, FakeClock(START), scheduler=False, background_dispatch=False)


def test_env_overrides_apply_over_the_file(tmp_path: Path) -> None:
    file = write(
        tmp_path / "c.toml", '[database]\nurl = "sqlite+aiosqlite:///file.db"\n[admin]\ntoken = "from-file"\n'
    )
    env = {
        "DANGJIAN_ADMIN_TOKEN": "s3cret",
        "DANGJIAN_DATABASE_URL": "postgresql+asyncpg://env@db/dj",
        "DANGJIAN_REDIS_URL": "redis://env:6379/2",
        "DANGJIAN_DINGTALK_APP_SECRET": "dt-secret",
        "DANGJIAN_WECOM_SECRET": "wc-secret",
    }
    settings = load_settings(file, env=env)
    assert settings.admin.token == "s3cret"
    assert settings.database_url == "postgresql+asyncpg://env@db/dj"
    assert settings.redis.url == "redis://env:6379/2"
    assert settings.dingtalk["app_secret"] == "dt-secret"
    assert settings.wecom["secret"] == "wc-secret"
    # Without a file too, and an empty variable does not blank the file's value.
    assert load_settings(None, env={"DANGJIAN_ADMIN_TOKEN": "t"}).admin.token == "t"
    assert load_settings(file, env={"DANGJIAN_ADMIN_TOKEN": ""}).admin.token == "from-file"


def test_config_path_from_env(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[server]\nport = 8181\n")
    assert load_settings(None, env={"DANGJIAN_CONFIG": str(file)}).server.port == 8181
    bad = write(tmp_path / "bad.toml", "[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match="server.prot"):
        load_settings(None, env={"DANGJIAN_CONFIG": str(bad)})


def test_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "[server]\nport = 8181\n")
    settings = load_settings(
        file, env={}, overrides={"server.port": 9999, "server.host": None, "data_dir": "/x"}
    )
    assert settings.server.port == 9999
    assert settings.server.host == "127.0.0.1"
    assert settings.database_url == "sqlite+aiosqlite:////x/dangjian.db"


# -- dangjian check-config -------------------------------------------------------------------------


def test_check_config_defaults_exit_0(clean_env: Path, capsys: Any) -> None:
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out
    assert not (clean_env / "data").exists()  # checking writes nothing


def test_check_config_bad_file_exit_2(clean_env: Path, capsys: Any) -> None:
    bad = write(clean_env / "bad.toml", "[server]\nprot = 1\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "server.prot" in capsys.readouterr().err


def test_check_config_bad_file_from_env_exit_2(clean_env: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DANGJIAN_CONFIG", str(write(clean_env / "bad.toml", "unknown_key = 1\n")))
    assert main(["check-config"]) == 2
    assert "unknown_key" in capsys.readouterr().err


def test_check_config_missing_file_exit_2(clean_env: Path, capsys: Any) -> None:
    assert main(["check-config", "--config", str(clean_env / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


def test_check_config_lists_what_an_enabled_platform_still_needs(clean_env: Path, capsys: Any) -> None:
    file = write(clean_env / "c.toml", "[dingtalk]\nenabled = true\n")
    assert main(["check-config", "--config", str(file)]) == 2
    out = capsys.readouterr().out
    assert "app_key" in out and "app_secret" in out


def test_check_config_bad_platform_key_exit_2(clean_env: Path, capsys: Any) -> None:
    file = write(clean_env / "c.toml", "[wecom]\ncorpid = 'x'\n")
    assert main(["check-config", "--config", str(file)]) == 2
    captured = capsys.readouterr()
    assert "wecom.corpid" in captured.out + captured.err


def test_python_dash_m_bot_is_the_cli(clean_env: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGJIAN_")}
    env["PYTHONPATH"] = str(REPO)
    bad = write(clean_env / "bad.toml", "[server]\nprot = 1\n")
    failed = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--config", str(bad)],
        cwd=clean_env,
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2, failed.stderr
    assert "server.prot" in failed.stderr


# -- dangjian db upgrade ---------------------------------------------------------------------------


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            if "alembic_version" in names:
                versions = (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one()
                assert versions == 1
            return names
    finally:
        await engine.dispose()


def test_db_upgrade_exit_0_and_idempotent(clean_env: Path, capsys: Any) -> None:
    if PG_URL:
        asyncio.run(_reset_postgres(PG_URL))
        url = PG_URL
    else:
        url = f"sqlite+aiosqlite:///{(clean_env / 'nested' / 'dir' / 'dj.db').as_posix()}"
    file = write(clean_env / "c.toml", f'[database]\nurl = "{url}"\n')
    assert main(["db", "upgrade", "--config", str(file)]) == 0
    assert main(["db", "upgrade", "--config", str(file)]) == 0
    out = capsys.readouterr().out
    assert "database upgraded" in out
    assert "postgres@" not in out  # credentials part of the URL is not printed
    assert {"members", "responses", "inbound_log", "outbox", "alembic_version"} <= asyncio.run(_tables(url))


def test_db_upgrade_without_config_uses_data_dir(clean_env: Path) -> None:
    assert main(["db", "upgrade"]) == 0
    assert (clean_env / "data" / "dangjian.db").is_file()


def test_db_upgrade_bad_config_exit_2(clean_env: Path, capsys: Any) -> None:
    bad = write(clean_env / "c.toml", "[database]\nuri = 'x'\n")
    assert main(["db", "upgrade", "--config", str(bad)]) == 2
    assert "database.uri" in capsys.readouterr().err


@pytest.mark.parametrize(("overrides", "says"), [
    ({}, "needs PostgreSQL"),  # SQLite and the in-process KV
    ({"database.url": "postgresql+asyncpg://u@h/db"}, "needs PostgreSQL"),  # no Redis
    ({"database.url": "postgresql+asyncpg://u@h/db", "redis.url": "redis://h", "server.port": 0}, "fixed server.port"),
])
def test_workers_need_shared_state_and_a_fixed_port(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(None, env={}, overrides={"server.workers": 2, **overrides})
    shared = {"database.url": "postgresql+asyncpg://u@h/db", "redis.url": "redis://h"}
    assert load_settings(None, env={}, overrides={"server.workers": 2, **shared}).server.workers == 2
