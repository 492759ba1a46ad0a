"""Safe parsing of WeCom's flat XML (`<xml><Tag>text</Tag>…</xml>`).

Policy: any DOCTYPE or ENTITY declaration is rejected outright, before a single entity could be
expanded (billion laughs, XXE); only XML's five predefined entities and character references are
accepted. Input size, nesting depth and element count are capped. We drive expat ourselves rather
than use ElementTree, which would expand internal entities declared in a DTD.
"""

from __future__ import annotations

from typing import NoReturn
from xml.parsers import expat

MAX_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_ELEMENTS = 256


class XMLRejected(ValueError):
    """The XML is malformed, too large, or uses a forbidden construct."""


class UnsafeXML(XMLRejected):
    """The XML declares a DOCTYPE or entities (entity bomb / XXE attempt)."""


class _Collector:
    """Collects the text of the root's direct children; the first occurrence of a tag wins."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self._depth = 0
        self._elements = 0
        self._current: str | None = None
        self._text: list[str] = []

    def start(self, name: str, _attrs: dict[str, str]) -> None:
        self._depth += 1
        self._elements += 1
        if self._depth > MAX_DEPTH or self._elements > MAX_ELEMENTS:
            raise XMLRejected("XML nested too deeply or too many elements")
        if self._depth == 2:
            self._current, self._text = name, []

    def end(self, name: str) -> None:
        if self._depth == 2 and self._current is not None:
            self.fields.setdefault(self._current, "".join(self._text))
            self._current = None
        self._depth -= 1

    def chars(self, data: str) -> None:
        # Nested elements' text is ignored: WeCom's text messages are flat.
        if self._depth == 2:
            self._text.append(data)


def _forbid(*_args: object) -> NoReturn:
    raise UnsafeXML("DOCTYPE/ENTITY declarations are not allowed")


def parse_fields(data: bytes | str, *, max_bytes: int = MAX_BYTES) -> dict[str, str]:
    """Parse ``<root><A>..</A><B>..</B></root>`` into ``{"A": "..", "B": ".."}`` (text unstripped)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise XMLRejected(f"XML larger than {max_bytes} bytes")
    collector = _Collector()
    parser = expat.ParserCreate(encoding="utf-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.chars
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise XMLRejected(f"malformed XML: {exc}") from exc
    return collector.fields
