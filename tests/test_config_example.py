"""config.example.toml stays valid: every documented key loads, with its commented examples uncommented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bot import sections
from bot.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_validates(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "config.example.toml", env={})
    sections.validate_sections(settings)
    assert settings.server.port == 8080


def test_commented_dues_examples_are_valid(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    block = text.split("[dues]", 1)[1].split("\n[", 1)[0]
    lines = [re.sub(r"^# ", "", ln) for ln in block.splitlines() if re.match(r"^# [a-z_]+ = ", ln)]
    table = tomllib.loads("\n".join(lines))
    assert "in_service_brackets" in table
    config = tmp_path / "c.toml"
    config.write_text("[dues]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    sections.dues_policy(load_settings(config, env={}))


def test_demo_roster_copies_are_identical() -> None:
    assert (ROOT / "examples" / "demo_roster.csv").read_bytes() == (ROOT / "bot" / "demo_roster.csv").read_bytes()
