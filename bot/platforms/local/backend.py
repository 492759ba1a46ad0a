"""What the local chat needs from the core (transcript and directory), as a protocol.

The platform stays free of database code; the composition root passes an implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ChatLine:
    seq: int
    conversation_id: str
    sender_id: str
    text: str
    at: str  # ISO 8601


@dataclass(frozen=True, slots=True)
class LocalPerson:
    sender_id: str
    name: str
    org: str
    roles: tuple[str, ...]


class LocalBackend(Protocol):
    async def append_member_line(self, conversation_id: str, sender_id: str, text: str, message_id: str) -> bool:
        """Record what a member typed; False if this message id was recorded before."""
        ...

    async def append_bot_lines(self, lines: list[tuple[str, str]]) -> None:
        """Record the bot's messages: (conversation_id, text) pairs."""
        ...

    async def lines_after(self, conversation_id: str, after: int) -> list[ChatLine]: ...

    async def people(self) -> list[LocalPerson]: ...

    async def group_chats(self) -> list[tuple[str, str]]:
        """(conversation_id, title) of every local group chat."""
        ...
