"""Text normalisation shared by the parsers: what people type on phones, in one canonical form.

``normalize`` folds full-width characters (NFKC: ０-９ → 0-9, ：→ :, ，→ ,, ￥ → ¥, the ideographic
space → space), drops zero-width characters, unifies line breaks and squeezes runs of horizontal
whitespace into one space. Newlines are kept because multi-line answers use them as separators.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"), None)
_HSPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")

#: Characters treated as separators between answer parts (after normalisation).
SEPARATORS = " ,;:。、!?~/|\n-—()[]【】「」《》\"'“”‘’"


def normalize(text: str) -> str:
    """NFKC-fold, drop zero-width characters, keep single newlines, squeeze spaces, strip."""
    folded = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    folded = folded.replace("\r\n", "\n").replace("\r", "\n")
    folded = _HSPACE.sub(" ", folded)
    return _NEWLINES.sub("\n", folded).strip()


def one_line(text: str) -> str:
    """``normalize`` and also turn newlines into spaces."""
    return normalize(text).replace("\n", " ")


def is_decor(char: str) -> bool:
    """Punctuation, symbols (emoji included) and spaces: decoration around a short answer."""
    return unicodedata.category(char)[0] in "PSZC"


def strip_decor(text: str, keep: str = "") -> str:
    """Strip punctuation, emoji and spaces from both ends, except characters listed in ``keep``."""
    start, end = 0, len(text)
    while start < end and is_decor(text[start]) and text[start] not in keep:
        start += 1
    while end > start and is_decor(text[end - 1]) and text[end - 1] not in keep:
        end -= 1
    return text[start:end]


def has_content(text: str) -> bool:
    """True if the text has at least one letter, digit or CJK character."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


_CJK = r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]"
_HALF_TO_FULL = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"}
_AFTER_CJK = re.compile(rf"(?<={_CJK})[,;:?!()]|[,;:?!(](?={_CJK})|(?<={_CJK}\S)\)")


def cjk_punctuation(text: str) -> str:
    """Restore full-width punctuation next to Chinese characters after ``normalize``.

    "学习党章,讨论发展对象" → "学习党章，讨论发展对象"; "Hello, world" and "15:00" stay as they are.
    """
    return _AFTER_CJK.sub(lambda m: _HALF_TO_FULL[m.group()], text)
