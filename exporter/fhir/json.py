"""The one place that decides how FHIR JSON is written to files, how FHIR JSON is read where
decimals must keep their digits, and how every input document is read (layer L1; stdlib, orjson
and fhir/positions.py's scanner).

Input documents — a file given to `fhir-export validate` or `map`, a request body, a patient's
domain document from a source — are read by `read_json` and nothing else, so every door has the
same verdict: RFC 8259 in UTF-8 as orjson reads it (no byte order mark, NaN or Infinity, lone
surrogates, numbers beyond double range), nested at most `max_depth` levels, and no member name
twice in one object (FHIR JSON forbids it, and a reader that keeps the last value while another
keeps the first is how a document says two things). A problem is a `JsonInputError` with the
message id, text and line:column of the first offending token — the same three wherever it is
reported (READER_MESSAGES is their table):

    value = read_json(raw, max_depth=settings.max_json_depth)   # JsonInputError: .issue(file) → Issue

The clean path is orjson plus one walk over the parsed value (depth and the number of members) and
one count over the bytes (an upper bound of the members written); only when the two counts differ
— a duplicate, or a string that contains `\\":` — does the position-tracking scanner read the
document to decide. On the 4.7 MB export Bundle: orjson ~35 ms, walk ~14 ms, count ~12 ms (stdlib
`json` with an `object_pairs_hook` that refuses duplicates: ~74 ms, and it accepts NaN and lone
surrogates).

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

from exporter.fhir.positions import MAX_DEPTH, first_problem
from exporter.issues import Issue, IssueCode, Severity, SourceLocation


class FhirDecimal(float):
    """A JSON/XML decimal that keeps its original text (`FhirDecimal("1.50").text == "1.50"`)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> FhirDecimal:
        value = float.__new__(cls, text)
        value.text = text
        return value

    def __repr__(self) -> str:  # str() and repr() give the digits, so Decimal(str(x)) is exact
        return self.text

    __str__ = __repr__


def decimal_text(value: float | int) -> str:
    """The text of a JSON number exactly as the JSON output shows it."""
    if type(value) is FhirDecimal:
        return value.text
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


# ----------------------------------------------------------------------------- reading input documents

READER_MESSAGES: dict[str, tuple[IssueCode, str]] = {
    "JSON_SYNTAX": (IssueCode.STRUCTURE, "not well-formed JSON: {reason}"),
    "JSON_TOO_DEEP": (IssueCode.TOO_COSTLY, "nested deeper than {limit} levels"),
    "JSON_DUPLICATE_KEY": (IssueCode.STRUCTURE, "{reason} in one object (JSON member names must be unique)"),
}
"""The reader's message table: id → (FHIR issue code, text). Texts name the rule, never a value of the
document (a duplicate member name is schema vocabulary, shown cut to 64 characters)."""

_KINDS = {"syntax": "JSON_SYNTAX", "depth": "JSON_TOO_DEEP", "duplicate": "JSON_DUPLICATE_KEY"}


class JsonInputError(ValueError):
    """The input is not a JSON document the exporter reads: `message_id` (READER_MESSAGES), `text`,
    and `position` (line, column) of the first offending token when known."""

    def __init__(self, message_id: str, text: str, position: tuple[int, int] | None):
        super().__init__(text)
        self.message_id, self.text, self.position = message_id, text, position

    @property
    def code(self) -> IssueCode:
        return READER_MESSAGES[self.message_id][0]

    def issue(self, file: str = "") -> Issue:
        """The problem as an Issue located at its line:column in `file` ("" for a request body)."""
        where = SourceLocation(file, *self.position) if self.position else SourceLocation(file) if file else None
        return Issue(Severity.FATAL, self.code, self.text, self.message_id, position=where)


def _error(kind: str, position: tuple[int, int] | None, reason: str, limit: int) -> JsonInputError:
    mid = _KINDS[kind]
    return JsonInputError(mid, READER_MESSAGES[mid][1].format(reason=reason, limit=limit), position)


def _shape(value: Any, limit: int) -> tuple[bool, int]:
    """(nested deeper than `limit`, number of object members): one level at a time, without recursion."""
    level, depth, members = [value], 1, 0
    while level:
        if depth > limit:
            return True, members
        children: list[Any] = []
        for v in level:
            if type(v) is dict:
                members += len(v)
                children.extend(v.values())
            elif type(v) is list:
                children.extend(v)
        level = [c for c in children if type(c) is dict or type(c) is list]
        depth += 1
    return False, members


_BLANKS = b" \t\n\r"


def read_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of an input document, or JsonInputError (see the module docstring)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        found = first_problem(data, max_depth=max_depth)
        if found is None:  # the scanner is built to agree with orjson; if it does not, still refuse
            raise JsonInputError("JSON_SYNTAX", "not well-formed JSON", None) from None
        raise _error(*found, max_depth) from None
    too_deep, members = _shape(value, max_depth)
    # every member is written `"name"<blanks>:`; without blanks, each is one `":` (a string value can
    # add more, never fewer), so fewer members parsed than that count is a duplicate or such a string
    written = data.translate(None, _BLANKS).count(b'":') if members else 0
    if too_deep or written != members:
        found = first_problem(data, max_depth=max_depth, unique_keys=True)
        if found is not None:
            raise _error(*found, max_depth)
        if too_deep:
            raise JsonInputError("JSON_TOO_DEEP", READER_MESSAGES["JSON_TOO_DEEP"][1].format(limit=max_depth), None)
    return value
