"""Forms as data: a ``FormSpec`` lists its ``FieldSpec``s; the engine asks them step by step.

Specs come from the built-ins (``bot.forms.builtin``) and from ``[[forms]]`` in the config, and are
validated at load: keys are ASCII identifiers, field keys are unique, choice fields have choices.
Error messages name the offending form or field key. Keywords and choice aliases are stored
normalised (full-width folded) so matching can compare them directly with normalised replies.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.domain.text import normalize


class FieldType(StrEnum):
    MONEY = "money"  # value: int fen
    INTEGER = "integer"  # value: int
    DECIMAL = "decimal"  # value: str, a normalised Decimal such as "2.5"
    DATE = "date"  # value: ISO date "2026-11-15"
    TIME = "time"  # value: "HH:MM"
    CHOICE = "choice"  # value: canonical choice key
    YESNO = "yesno"  # value: bool
    ATTENDANCE = "attendance"  # value: {"status": "present"|"online"|"leave", "reason": str}
    TEXT = "text"  # value: str
    MEMBERS = "members"  # value: [{"member_id": int, "name": str}, ...]


#: Example answers used in default prompts and error messages.
DEFAULT_EXAMPLES: dict[FieldType, str] = {
    FieldType.MONEY: "50 或 50.5",
    FieldType.INTEGER: "3",
    FieldType.DECIMAL: "2.5",
    FieldType.DATE: "11月15日",
    FieldType.TIME: "下午3点",
    FieldType.YESNO: "是 或 否",
    FieldType.ATTENDANCE: "到、线上 或 请假 出差",
    FieldType.TEXT: "",
    FieldType.MEMBERS: "张三、李四（全体参加可回复“全体”）",
}

#: Replies that leave an optional field empty.
SKIP_WORDS = frozenset(
    {"无", "没有", "暂无", "没", "略", "不填", "跳过", "空", "-", "/", "无。", "none", "无无"}
)


def _identifier(value: str, what: str) -> str:
    if not (value.isascii() and value.isidentifier()):
        raise ValueError(f"{what} {value!r} must be an ASCII identifier (letters, digits, _)")
    return value


def _words(values: list[str]) -> list[str]:
    return [w for w in (normalize(v).lower() for v in values) if w]


class FieldSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    label: str = Field(min_length=1)
    type: FieldType
    required: bool = True
    prompt: str = ""  # empty: derived from the label and an example
    example: str = ""  # example answer shown in the prompt and in error messages
    choices: dict[str, list[str]] = Field(default_factory=dict)  # canonical -> aliases (first = display)
    max_length: int = Field(default=200, ge=1, le=10000)
    min_value: Decimal | None = None  # numbers; money in yuan
    max_value: Decimal | None = None
    unit: str = ""  # e.g. "小时": decimal fields then also read 2小时30分 / 半小时
    keywords: list[str] = Field(default_factory=list)  # mark this field in a one-line answer

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not data.get("example"):
            data["example"] = _default_example(data)
        if not data.get("prompt") and data.get("label"):
            data["prompt"] = _default_prompt(data)
        return data

    @field_validator("key")
    @classmethod
    def _key_ok(cls, value: str) -> str:
        return _identifier(value, "field key")

    @field_validator("keywords")
    @classmethod
    def _keywords_ok(cls, value: list[str]) -> list[str]:
        return _words(value)

    @field_validator("choices")
    @classmethod
    def _choices_ok(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {key: [normalize(a) for a in aliases if a.strip()] for key, aliases in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type is FieldType.CHOICE and not self.choices:
            raise ValueError(f"field {self.key!r}: a choice field needs choices")
        if self.type is not FieldType.CHOICE and self.choices:
            raise ValueError(f"field {self.key!r}: only choice fields take choices")
        if any(not k.strip() for k in self.choices):
            raise ValueError(f"field {self.key!r}: choice keys must not be empty")
        lo, hi = self.min_value, self.max_value
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"field {self.key!r}: min_value {lo} is above max_value {hi}")
        return self

    def choice_label(self, canonical: str) -> str:
        """Display text of a choice: its first alias, or the key itself."""
        aliases = self.choices.get(canonical) or [canonical]
        return aliases[0]


def _default_example(data: dict[str, Any]) -> str:
    if data.get("type") == FieldType.CHOICE and isinstance(data.get("choices"), dict):
        first = next(iter(data["choices"].items()), None)
        if first:
            return str(first[1][0] if first[1] else first[0])
    try:
        return DEFAULT_EXAMPLES.get(FieldType(str(data.get("type"))), "")
    except ValueError:
        return ""


def _default_prompt(data: dict[str, Any]) -> str:
    example = data.get("example") or ""
    prompt = f"请输入{data['label']}" + (f"，例如：{example}" if example else "")
    if data.get("required") is False:
        prompt += "（没有请回复“无”）"
    return prompt


class FormSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    name: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)  # select this form in chat
    fields: list[FieldSpec] = Field(min_length=1)
    roles: list[str] = Field(default_factory=list)  # who may answer; empty = any member
    private: bool = False  # amounts never echoed into group chats
    ledger: str = ""  # which ledger it feeds
    description: str = ""

    @field_validator("key")
    @classmethod
    def _key_ok(cls, value: str) -> str:
        return _identifier(value, "form key")

    @field_validator("keywords")
    @classmethod
    def _keywords_ok(cls, value: list[str]) -> list[str]:
        return _words(value)

    @model_validator(mode="after")
    def _unique_fields(self) -> FormSpec:
        seen: set[str] = set()
        for spec in self.fields:
            if spec.key in seen:
                raise ValueError(f"form {self.key!r}: duplicate field key {spec.key!r}")
            seen.add(spec.key)
        return self

    def field(self, key: str) -> FieldSpec:
        """The field with this key; ``KeyError`` if there is none."""
        for spec in self.fields:
            if spec.key == key:
                return spec
        raise KeyError(key)

    @property
    def field_keys(self) -> list[str]:
        return [spec.key for spec in self.fields]
