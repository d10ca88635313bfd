"""JSON shape (layer L2): unknown elements (with a did-you-mean), arrays vs single values, JSON null,
empty arrays and empty objects (ele-1 and the JSON format rules), and parsing raw input with limits."""

from __future__ import annotations

import difflib
from typing import Any, Iterable

import orjson


def unknown_element_message(key: str, known: Iterable[str], where: str) -> str:
    candidates = [k for k in known if not k.startswith("_")]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown element '{key}' in {where}{hint}"


def parse_json(data: bytes | str) -> tuple[Any, str | None]:
    """(value, None) or (None, reason). orjson refuses invalid escapes, lone surrogates, NaN and
    nesting deeper than 1024 levels without recursing in Python."""
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc}"


def depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative depth check (no recursion), used before walking untrusted input."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return True
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return False
