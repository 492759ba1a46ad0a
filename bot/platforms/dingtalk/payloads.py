"""Message bodies: robot-API ``msgKey``/``msgParam`` and webhook JSON, split to fit DingTalk's size limits.

``msgParam`` must stay within 15000 bytes (fact sheet §4.2). JSON escaping is per character, so the
encoded size of a chunk is the sum of its characters' costs, which makes exact greedy splitting easy.
Webhook bodies (session/custom robot) have no documented limit; the same budget is used for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from bot.message import MessageFormat, OutgoingMessage

MSG_PARAM_LIMIT = 15000
MAX_AT_PER_MESSAGE = 50  # custom robot / webhook at.atUserIds (§3.5)


def _cost(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def _hard_split(line: str, budget: int) -> list[str]:
    chunks: list[str] = []
    start, size = 0, 0
    for i, ch in enumerate(line):
        c = _cost(ch)
        if size + c > budget:
            chunks.append(line[start:i])
            start, size = i, 0
        size += c
    chunks.append(line[start:])
    return chunks


def split_text(text: str, budget: int) -> list[str]:
    """Chunks whose JSON-escaped UTF-8 size is ≤ budget, cut at line breaks where possible."""
    if _cost(text) <= budget:
        return [text]
    chunks: list[str] = []
    current, size = "", 0
    for line in text.splitlines(keepends=True):
        c = _cost(line)
        if size + c > budget and current:
            chunks.append(current)
            current, size = "", 0
        if c > budget:
            chunks.extend(_hard_split(line, budget))
            continue
        current, size = current + line, size + c
    if current:
        chunks.append(current)
    return [chunk.rstrip("\n") for chunk in chunks if chunk.strip()] or [""]


def _fit(text: str, wrap: Callable[[str], Any]) -> list[str]:
    overhead = len(json.dumps(wrap(""), ensure_ascii=False).encode())
    return split_text(text, MSG_PARAM_LIMIT - overhead)


def title_of(message: OutgoingMessage) -> str:
    if message.title:
        return message.title
    first = next((line.strip("# ").strip() for line in message.text.splitlines() if line.strip()), "")
    return first[:20] or "通知"


def file_type(name: str) -> str:
    return PurePath(name).suffix.lstrip(".").lower()


def robot_params(message: OutgoingMessage, media_id: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(msgKey, msgParam) parts for groupMessages/send and oToMessages/batchSend."""
    if message.format is MessageFormat.FILE:
        name = message.file_name or PurePath(message.file_path).name
        return [("sampleFile", {"mediaId": media_id, "fileName": name, "fileType": file_type(name)})]
    if message.format is MessageFormat.IMAGE:
        return [("sampleImageMsg", {"photoURL": media_id})]
    if message.format is MessageFormat.MARKDOWN:
        title = title_of(message)
        parts = _fit(message.text, lambda t: {"title": title, "text": t})
        return [("sampleMarkdown", {"title": title, "text": part}) for part in parts]
    return [("sampleText", {"content": part}) for part in _fit(message.text, lambda t: {"content": t})]


def _webhook_body(message: OutgoingMessage, text: str, at_ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any]
    if message.format is MessageFormat.MARKDOWN:
        body = {"msgtype": "markdown", "markdown": {"title": title_of(message), "text": text}}
    else:
        body = {"msgtype": "text", "text": {"content": text}}
    if at_ids:
        body["at"] = {"atUserIds": at_ids, "isAtAll": False}
    return body


def webhook_bodies(message: OutgoingMessage, at_user_ids: list[str]) -> list[dict[str, Any]]:
    """Webhook JSON (session webhook or custom robot) with @-mentions.

    An @ only notifies when the id is in ``at.atUserIds`` AND ``@userid`` is in the text (§3.5/§11); at
    most 50 ids per message, so more mentions spill into follow-up messages that carry only the @ line.
    """
    at_chunks = [at_user_ids[i : i + MAX_AT_PER_MESSAGE] for i in range(0, len(at_user_ids), MAX_AT_PER_MESSAGE)]
    at_lines = [" ".join(f"@{uid}" for uid in chunk) for chunk in at_chunks]
    sep = "\n\n" if message.format is MessageFormat.MARKDOWN else "\n"
    reserve = max((_cost(sep + line) for line in at_lines), default=0)
    parts = split_text(message.text, MSG_PARAM_LIMIT - 200 - reserve)
    bodies = [_webhook_body(message, part, []) for part in parts[:-1]]
    if not at_chunks:
        return bodies + [_webhook_body(message, parts[-1], [])]
    bodies.append(_webhook_body(message, f"{parts[-1]}{sep}{at_lines[0]}", at_chunks[0]))
    bodies.extend(_webhook_body(message, line, chunk) for line, chunk in zip(at_lines[1:], at_chunks[1:], strict=True))
    return bodies
