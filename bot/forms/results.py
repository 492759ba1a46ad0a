"""What a field parser returns, and the context it needs (today's date, the branch roster)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RosterName:
    member_id: int
    name: str


@dataclass(frozen=True, slots=True)
class ParseContext:
    """``today`` resolves relative dates (昨天, 15号); ``roster`` resolves names in member lists."""

    today: dt.date
    roster: Sequence[RosterName] = ()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid answer; ``value`` is JSON-serialisable (int, str, bool, dict, list or None)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Invalid:
    """An unusable answer; ``message`` is one short Chinese sentence with an example.

    ``recognized`` is True when the text clearly was meant for this field type but is wrong
    (2月30日, a negative amount, an unknown name), so one-line parsing reports it instead of
    trying the text against another field.
    """

    message: str
    recognized: bool = False


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A name matched several roster members; ``options`` lists them for the caller to ask.

    Each option is ``{"input": typed text, "member_id": int, "name": str}``.
    """

    message: str
    options: list[dict[str, Any]] = field(default_factory=list)


FieldResult = Parsed | Invalid | Ambiguous
