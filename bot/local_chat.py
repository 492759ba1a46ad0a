"""The database-backed LocalBackend for the built-in chat (the platform itself has no DB code)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.db import journal
from bot.db.members import local_id
from bot.db.tables import ChatBinding, Member, Org
from bot.errors import StorageUnavailable
from bot.platforms.local.adapter import BOT_SENDER
from bot.platforms.local.backend import ChatLine, LocalPerson
from bot.services import Services


class DatabaseLocalBackend:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def append_member_line(self, conversation_id: str, sender_id: str, text: str, message_id: str) -> bool:
        # PostgreSQL text cannot hold NUL: drop it (the pipeline does the same) instead of failing every retry.
        conversation_id, sender_id, text, message_id = (
            v.replace("\x00", "") for v in (conversation_id, sender_id, text, message_id)
        )
        try:
            async with self.services.sessions() as session, session.begin():
                await journal.append_chat_line(
                    session, conversation_id, sender_id, text, self.services.now(), message_id=message_id
                )
        except IntegrityError:
            return False
        except (DBAPIError, OSError) as exc:  # database unreachable: the API answers 503, the client retries
            raise StorageUnavailable(f"database: {exc}") from exc
        return True

    async def append_bot_lines(self, lines: list[tuple[str, str]]) -> None:
        async with self.services.sessions() as session, session.begin():
            now = self.services.now()
            for conversation_id, text in lines:
                await journal.append_chat_line(session, conversation_id, BOT_SENDER, text, now)

    async def lines_after(self, conversation_id: str, after: int) -> list[ChatLine]:
        async with self.services.sessions() as session:
            rows = await journal.chat_lines_after(session, conversation_id, after)
        return [ChatLine(r.seq, r.conversation_id, r.sender_id, r.text, r.at.isoformat()) for r in rows]

    async def people(self) -> list[LocalPerson]:
        async with self.services.sessions() as session:
            rows = await session.execute(
                select(Member, Org.name).join(Org, Org.id == Member.org_id).where(Member.active.is_(True)).order_by(Member.id)
            )
            return [LocalPerson(local_id(m), m.name, org, tuple(m.role_list)) for m, org in rows.all()]

    async def group_chats(self) -> list[tuple[str, str]]:
        async with self.services.sessions() as session:
            rows = await session.execute(
                select(ChatBinding.conversation_id, Org.name)
                .join(Org, Org.id == ChatBinding.org_id)
                .where(ChatBinding.platform == "local")
                .order_by(Org.path)
            )
            return [(conv, f"{name}群") for conv, name in rows.all()]
