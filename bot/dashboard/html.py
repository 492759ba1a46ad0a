"""Escaped-by-default HTML: every value passed to ``fmt`` is escaped unless it is already ``Html``.

Templates are string literals in this package; data (member names, titles, anything from the database or
the request) only ever enters through ``fmt``/``esc``, so nothing a member types can become markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from urllib.parse import urlencode


class Html(str):
    """Markup that is already safe to emit as is."""

    __slots__ = ()


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def fmt(template: str, *args: object, **kwargs: object) -> Html:
    """``str.format`` on a trusted template with every argument escaped (``Html`` arguments kept)."""
    return Html(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts: Iterable[Html], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def url(path: str, **params: object) -> str:
    """A same-site URL with a query string (values ``None`` or ``""`` left out). Escape it when emitting."""
    query = {k: str(v) for k, v in params.items() if v is not None and v != ""}
    return f"{path}?{urlencode(query)}" if query else path
