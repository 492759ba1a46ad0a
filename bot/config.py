"""One typed settings object, loaded once at start-up and passed down.

TOML file (optional) → pydantic validation → env overrides for secrets and backend URLs. Validation errors
name the offending key (``database.url: …``) and surface as ``ConfigError``.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    max_body_bytes: int = Field(default=65536, ge=1024)
    workers: int = Field(default=1, ge=1, le=32)  # processes sharing the port (SO_REUSEPORT); >1 needs PG + Redis


class DatabaseSettings(_Section):
    url: str = ""  # empty: SQLite under data_dir
    echo: bool = False


class RedisSettings(_Section):
    url: str = ""  # empty: in-process KV


class AdminSettings(_Section):
    token: str = ""


class LocalSettings(_Section):
    enabled: bool = True


class GroupBinding(_Section):
    platform: Literal["dingtalk", "wecom", "local"]
    conversation_id: str
    org: str
    webhook_url: str = ""
    webhook_secret: str = ""


class CalendarSettings(_Section):
    extra_holidays: list[dt.date] = Field(default_factory=list)
    extra_workdays: list[dt.date] = Field(default_factory=list)
    allow_makeup_days: bool = True


class NudgeSettings(_Section):
    max_per_day: int = Field(default=2, ge=0)
    max_per_week: int = Field(default=5, ge=0)
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"


class ArrearsSettings(_Section):
    notice_months: int = Field(default=3, ge=1)  # tell the secretary privately (local practice, configurable)
    warning_months: int = Field(default=5, ge=1)  # before the 6-month line of the Party Constitution


class OutboxSettings(_Section):
    batch_size: int = Field(default=200, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    base_backoff_seconds: float = Field(default=2.0, gt=0)
    max_backoff_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)


class SchedulerSettings(_Section):
    enabled: bool = True
    grace_minutes: int = Field(default=180, ge=0)  # catch up missed occurrences within this window


class ReportsSettings(_Section):
    chart: bool = True  # /stats also sends a PNG chart where the platform takes images
    keep_export_days: float = Field(default=7.0, gt=0)  # ledgers in <data_dir>/exports hold dues: deleted after


class DemoSettings(_Section):
    seed: bool = True  # seed the demo organisation into an EMPTY database
    announce_current: bool = True  # and open + announce this month's dues right away


class Settings(_Section):
    timezone: str = "Asia/Shanghai"
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    admin: AdminSettings = AdminSettings()
    local: LocalSettings = LocalSettings()
    dingtalk: dict[str, Any] = Field(default_factory=dict)
    wecom: dict[str, Any] = Field(default_factory=dict)
    groups: list[GroupBinding] = Field(default_factory=list)
    forms: list[dict[str, Any]] = Field(default_factory=list)
    schedules: list[dict[str, Any]] = Field(default_factory=list)
    calendar: CalendarSettings = CalendarSettings()
    dues: dict[str, Any] = Field(default_factory=dict)
    nudges: NudgeSettings = NudgeSettings()
    arrears: ArrearsSettings = ArrearsSettings()
    outbox: OutboxSettings = OutboxSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    reports: ReportsSettings = ReportsSettings()
    demo: DemoSettings = DemoSettings()
    config_path: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:  # noqa: BLE001 - any lookup failure means a bad key
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _workers_share_state(self) -> Settings:
        # Several processes share one database and one KV: SQLite has a single writer and the in-process
        # KV is not shared, so dedup, locks and counters would split between workers.
        if self.server.workers > 1 and (self.is_sqlite or not self.redis.url):
            raise ValueError("server.workers > 1 needs PostgreSQL (database.url) and Redis (redis.url); "
                             "SQLite and the in-process KV serve one process")
        if self.server.workers > 1 and self.server.port == 0:
            raise ValueError("server.workers > 1 needs a fixed server.port: the workers share it")
        return self

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'dangjian.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


# env var -> (section, key). Secrets never need to live in the file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "DANGJIAN_ADMIN_TOKEN": ("admin", "token"),
    "DANGJIAN_DATABASE_URL": ("database", "url"),
    "DANGJIAN_REDIS_URL": ("redis", "url"),
    "DANGJIAN_DINGTALK_APP_SECRET": ("dingtalk", "app_secret"),
    "DANGJIAN_WECOM_SECRET": ("wecom", "secret"),
    "DANGJIAN_WECOM_ENCODING_AES_KEY": ("wecom", "encoding_aes_key"),
    "DANGJIAN_WECOM_ROBOT_ENCODING_AES_KEY": ("wecom", "robot_encoding_aes_key"),
}


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"{key}: {err['msg']}")
    return "; ".join(lines)


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the TOML file (if any), apply env overrides and CLI overrides, validate everything."""
    env = os.environ if env is None else env
    path = path or env.get("DANGJIAN_CONFIG") or None
    raw: dict[str, Any] = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from exc
        raw["config_path"] = str(file)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            raw.setdefault(section, {})[key] = env[var]
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        target = raw
        *parents, last = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from exc
    return settings
