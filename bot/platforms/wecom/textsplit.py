"""Split text into parts that fit WeCom's byte limits (UTF-8), preferring line breaks.

WeCom truncates text beyond the limit (2048 bytes for app text/markdown, 4096 for webhook markdown);
splitting keeps the whole reminder. A character is never cut in half.
"""

from __future__ import annotations


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _hard_split(line: str, limit: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = utf8_len(char)
        if size + width > limit and current:
            parts.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        parts.append("".join(current))
    return parts


def split_utf8(text: str, limit: int) -> list[str]:
    """Parts of at most ``limit`` bytes each; joining them with newlines restores ``text``'s lines."""
    if limit < 4:
        raise ValueError("limit must fit one UTF-8 character")
    if utf8_len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = _hard_split(line, limit) if utf8_len(line) > limit else [line]
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if current and utf8_len(candidate) > limit:
                parts.append(current)
                candidate = piece
            current = candidate
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()] or [text[:1]]
