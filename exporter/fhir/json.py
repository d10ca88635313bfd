"""The one place that decides how FHIR JSON is written to files, and how FHIR JSON is read where
decimals must keep their digits (layer L1; stdlib and orjson only).

Files in igs/ and golden cases are formatted deterministically: two-space indent, keys in the order
the producer wrote them, UTF-8 without escapes, one trailing newline. Two builds of the same input
therefore produce byte-identical files, which the drift check relies on.

Decimals: FHIR decimals are exact (`1.50` is not `1.5`). `loads_exact` reads every JSON number with a
fraction or exponent as a `FhirDecimal` — a float (so every check that wants a JSON number accepts it)
that remembers its text; `dumps_exact` and the XML writer write that text back, never a re-rounded
float. Plain floats (from orjson) are written as orjson writes them: `decimal_text` is that one rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson


class FhirDecimal(float):
    """A JSON/XML decimal that keeps its original text (`FhirDecimal("1.50").text == "1.50"`)."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> "FhirDecimal":
        value = float.__new__(cls, text)
        value.text = text
        return value

    def __repr__(self) -> str:  # str() and repr() give the digits, so Decimal(str(x)) is exact
        return self.text  # type: ignore[no-any-return]

    __str__ = __repr__


def decimal_text(value: float | int) -> str:
    """The text of a JSON number exactly as the JSON output shows it."""
    if type(value) is FhirDecimal:
        return value.text  # type: ignore[attr-defined]
    if type(value) is float:
        return orjson.dumps(value).decode()
    return str(value)


def _fragment(value: Any) -> Any:
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def loads_exact(data: bytes | str) -> Any:
    """Parse JSON keeping the text of every decimal (raises ValueError on malformed JSON)."""
    return json.loads(data, parse_float=FhirDecimal)


def dumps_exact(obj: Any, *, pretty: bool = False) -> bytes:
    """Serialise JSON writing every FhirDecimal with its own digits (pretty: two-space indent + newline)."""
    if pretty:
        return orjson.dumps(obj, default=_fragment, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    return orjson.dumps(obj, default=_fragment)


def dumps_pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_pretty(path: Path, obj: Any) -> None:
    path.write_text(dumps_pretty(obj), encoding="utf-8")


def load_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
