"""Bad input to the local chat API: each gets a clear answer, nothing is half-written, and the bot keeps
serving afterwards."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select

from bot.db.tables import InboundMessage, LocalChatLine, OutboxMessage, Response
from tests.conftest import Running

ZHANG_SAN = "13800000003"
STRANGER = "13999999999"
GROUP1 = "group:第一党支部"
API = "/api/local/messages"
CJK = re.compile(r"[\u4e00-\u9fff]")


async def count(bot: Running, model: Any, *where: Any) -> int:
    async with bot.app.sessions() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int((await session.execute(stmt)).scalar_one())


async def snapshot(bot: Running) -> dict[str, int]:
    return {
        "responses": await count(bot, Response),
        "inbound": await count(bot, InboundMessage),
        "chat": await count(bot, LocalChatLine),
        "outbox": await count(bot, OutboxMessage),
    }


async def still_serving(bot: Running) -> None:
    """A normal message still works (and is stored) after the bad one."""
    data = await bot.say(f"dm:{ZHANG_SAN}", ZHANG_SAN, "党费 50")
    assert any("已登记" in r["text"] for r in data["replies"]), data
    assert await count(bot, Response) == 1


def only_reply(data: dict[str, Any]) -> str:
    assert data["duplicate"] is False
    assert len(data["replies"]) == 1, data
    text = str(data["replies"][0]["text"])
    assert CJK.search(text), text
    return text


# -- senders and texts the bot cannot use ----------------------------------------------------------


async def test_unknown_sender_gets_a_chinese_answer_and_nothing_is_stored(bot: Running) -> None:
    for n, conversation in enumerate((f"dm:{STRANGER}", GROUP1)):
        text = only_reply(await bot.say(conversation, STRANGER, "党费 50", message_id=f"stranger-{n}"))
        assert "名册" in text, (conversation, text)
        assert await count(bot, Response) == 0
        logged = await count(
            bot,
            InboundMessage,
            InboundMessage.message_id == f"stranger-{n}",
            InboundMessage.member_id.is_(None),
        )
        assert logged == 1, conversation
    await still_serving(bot)


BLANK_TEXTS = [
    (f"dm:{ZHANG_SAN}", ""),
    (f"dm:{ZHANG_SAN}", "   "),
    (f"dm:{ZHANG_SAN}", " \n\t \u3000"),
    (GROUP1, ""),
    (GROUP1, " \n "),
    (GROUP1, "@党建助手  "),  # in a group, only the @mention of the bot
]


async def test_empty_or_blank_text_gets_a_chinese_answer(bot: Running) -> None:
    for conversation, text in BLANK_TEXTS:
        answer = only_reply(await bot.say(conversation, ZHANG_SAN, text))
        assert "空" in answer, (conversation, text, answer)
    assert await count(bot, Response) == 0
    await still_serving(bot)


async def test_ten_kilobytes_of_text_is_too_long(bot: Running) -> None:
    for n, text in enumerate(("党费 " + "5" * 10240, "党费 50 " + "好" * 10240)):
        before = await snapshot(bot)
        answer = only_reply(await bot.say(f"dm:{ZHANG_SAN}", ZHANG_SAN, text, message_id=f"long-{n}"))
        assert "太长" in answer, answer
        after = await snapshot(bot)
        assert after["responses"] == 0
        assert after["inbound"] == before["inbound"] + 1
    async with bot.app.sessions() as session:
        logged = (await session.execute(select(InboundMessage.text))).scalars().all()
    assert all(len(t) <= 4000 for t in logged)  # the log keeps a bounded prefix only
    # No form dialogue was started either: a complete answer now is a fresh registration.
    await still_serving(bot)


# -- malformed requests: 4xx JSON with an error message ----------------------------------------------


BAD_BODIES = {
    "malformed json": b'{"conversation_id": "dm:1",',
    "not utf-8": b"\xff\xfe\x00",
    "empty body": b"",
    "json array": b"[]",
    "json string": b'"hello"',
    "json null": b"null",
    "missing text": json.dumps({"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN}).encode(),
    "missing sender": json.dumps({"conversation_id": f"dm:{ZHANG_SAN}", "text": "党费 50"}).encode(),
    "missing conversation": json.dumps({"sender_id": ZHANG_SAN, "text": "党费 50"}).encode(),
    "text is a number": json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": 50}
    ).encode(),
    "sender is a number": json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": 13800000003, "text": "党费 50"}
    ).encode(),
    "text is null": json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": None}
    ).encode(),
    "message_id is a number": json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": "党费 50", "message_id": 7}
    ).encode(),
    "bad conversation id": json.dumps(
        {"conversation_id": "第一党支部", "sender_id": ZHANG_SAN, "text": "党费 50"}
    ).encode(),
    "empty group name": json.dumps(
        {"conversation_id": "group:", "sender_id": ZHANG_SAN, "text": "党费 50"}
    ).encode(),
    "empty conversation id": json.dumps(
        {"conversation_id": "", "sender_id": ZHANG_SAN, "text": "党费 50"}
    ).encode(),
    "dm of another sender": json.dumps(
        {"conversation_id": "dm:13800000004", "sender_id": ZHANG_SAN, "text": "党费 50"}
    ).encode(),
    "blank sender": json.dumps({"conversation_id": GROUP1, "sender_id": "  ", "text": "党费 50"}).encode(),
}


async def test_malformed_request_is_a_4xx_json_error(bot: Running) -> None:
    before = await snapshot(bot)
    for name, body in BAD_BODIES.items():
        resp = await bot.client.post(API, data=body, headers={"Content-Type": "application/json"})
        assert 400 <= resp.status < 500, (name, resp.status)
        assert resp.content_type == "application/json", name
        error = (await resp.json())["error"]
        assert isinstance(error, str) and CJK.search(error), (name, error)
        assert await snapshot(bot) == before, name  # nothing written, not even a transcript line
    assert (await bot.client.get("/healthz")).status == 200
    await still_serving(bot)


async def test_body_over_64_kb_is_413(bot: Running) -> None:
    before = await snapshot(bot)
    body = json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": "5" * (65 * 1024)}
    )
    resp = await bot.client.post(API, data=body.encode(), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert "error" in await resp.json()
    assert await snapshot(bot) == before
    await still_serving(bot)


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)  # let each chunk go out on its own (no delay, just a yield)


async def test_chunked_body_over_64_kb_is_413(bot: Running) -> None:
    """Without a Content-Length (chunked upload) the limit still holds."""
    before = await snapshot(bot)
    body = json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": "5" * (65 * 1024)}
    )
    resp = await bot.client.post(
        API, data=_chunks(body.encode()), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert await snapshot(bot) == before
    await still_serving(bot)


async def test_chunked_body_under_the_limit_is_read_whole(bot: Running) -> None:
    """A valid body that arrives in several chunks is not mistaken for malformed JSON."""
    body = json.dumps(
        {"conversation_id": f"dm:{ZHANG_SAN}", "sender_id": ZHANG_SAN, "text": "党费 50" + " " * 40000},
        ensure_ascii=False,
    )
    resp = await bot.client.post(
        API, data=_chunks(body.encode()), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert any("已登记" in r["text"] for r in data["replies"]), data
    assert await count(bot, Response) == 1


async def test_bad_transcript_query_is_a_4xx_json_error(bot: Running) -> None:
    for params in (
        {},
        {"conversation_id": GROUP1, "after": "abc"},
        {"conversation_id": GROUP1, "wait": "soon"},
    ):
        resp = await bot.client.get(API, params=params)
        assert 400 <= resp.status < 500, (params, resp.status)
        assert "error" in await resp.json()
    assert len(await bot.transcript(GROUP1)) == 1  # the announcement, still served
