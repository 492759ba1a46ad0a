"""Step-by-step form state, kept in the KV with a TTL (survives restarts with Redis, shared by instances)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.kv.base import KV
from bot.message import IncomingMessage

SESSION_TTL_SECONDS = 30 * 60


@dataclass
class FormSession:
    form_key: str = ""
    campaign_id: int = 0
    member_id: int = 0  # whose answer it is
    entered_by: int = 0  # who is typing (differs for proxy answers)
    values: dict[str, Any] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # field keys still to ask; pending[0] is asked now
    options: list[dict[str, Any]] = field(default_factory=list)  # ambiguity options for pending[0]
    choose: list[int] = field(default_factory=list)  # campaign ids, while asking "which form?"
    original: str = ""  # the message that led to the "which form?" question

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> FormSession:
        data = json.loads(raw)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def session_key(msg: IncomingMessage) -> str:
    return f"form:{msg.platform.value}:{msg.conversation_id}:{msg.sender_id}"


class FormSessionStore:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    async def load(self, msg: IncomingMessage) -> FormSession | None:
        raw = await self.kv.get(session_key(msg))
        if raw is None:
            return None
        try:
            return FormSession.from_json(raw)
        except (ValueError, TypeError):
            await self.clear(msg)
            return None

    async def save(self, msg: IncomingMessage, state: FormSession) -> None:
        await self.kv.set(session_key(msg), state.to_json(), SESSION_TTL_SECONDS)

    async def clear(self, msg: IncomingMessage) -> None:
        await self.kv.delete(session_key(msg))
