"""Checks of FHIR R4 primitive values in their JSON form (layer L2; stdlib only).

`PRIMITIVE_CHECKS[type_code](value)` returns None when the value is valid, else a short reason.
The regular expressions are those of the R4 specification (datatypes.html), anchored and with
non-capturing groups (nothing reads a group; capturing costs a third of a dateTime's match); dates are
also checked for real calendar dates, integers for the 32-bit range, and JSON types are strict
(a number given as a string is an error, a boolean is not an integer).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
from collections.abc import Callable
from typing import Any

_YEAR = r"(?:[0-9](?:[0-9](?:[0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(?:Z|(?:\+|-)(?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
DATE_RE = re.compile(rf"{_YEAR}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[1-2][0-9]|3[0-1]))?)?\Z")
DATETIME_RE = re.compile(rf"{_YEAR}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[1-2][0-9]|3[0-1])(?:T{_TIME}{_TZ})?)?)?\Z")
INSTANT_RE = re.compile(rf"{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[1-2][0-9]|3[0-1])T{_TIME}{_TZ}\Z")
TIME_RE = re.compile(rf"{_TIME}\Z")
CODE_RE = re.compile(r"[^\s]+(?: [^\s]+)*\Z")
ID_RE = re.compile(r"[A-Za-z0-9\-\.]{1,64}\Z")
OID_RE = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+\Z")
UUID_RE = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
URI_RE = re.compile(r"\S+\Z")
STRING_RE = re.compile(r"[ \r\n\t\S]+\Z")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAX_STRING = 1024 * 1024
INT32 = (-2_147_483_648, 2_147_483_647)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_string(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"must be a JSON string, not {_json_kind(v)}"
    if not v:
        return "must not be empty"
    if not v.strip():
        return "must contain non-whitespace content"
    if len(v) > MAX_STRING:
        return "exceeds 1 MB"
    if _CTRL.search(v):
        return "contains illegal control characters"
    return None


def _regex_string(rx: re.Pattern[str], what: str) -> Callable[[Any], str | None]:
    match = rx.match

    def check(v: Any) -> str | None:
        if type(v) is str and match(v):
            return None
        if not isinstance(v, str):
            return f"must be a JSON string, not {_json_kind(v)}"
        if not match(v):
            return f"is not a valid {what}"
        return None
    return check


def _valid_calendar(v: str) -> bool:
    if len(v) >= 10 and v[8:10] <= "28":
        return True  # every month has a 28th (the regex has checked the digits)
    parts = v[:10].split("-")
    if len(parts) == 3:
        y, m, d = int(parts[0]), int(parts[1]), int(parts[2])
        return d <= calendar.monthrange(y, m)[1]
    return True


def _date_like(rx: re.Pattern[str], what: str) -> Callable[[Any], str | None]:
    base = _regex_string(rx, what)

    def check(v: Any) -> str | None:
        reason = base(v)
        if reason is None and (len(v) < 10 or v[8:10] > "28") and not _valid_calendar(v):
            return f"is not a valid {what} (no such calendar date)"
        if reason and isinstance(v, str) and what == "dateTime" and "T" in v and not re.search(_TZ + r"\Z", v):
            return "is not a valid dateTime: a time must carry a timezone (Z or ±hh:mm)"
        return reason
    return check


def _check_boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be a JSON boolean, not {_json_kind(v)}"


def _int_check(lo: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return "must be a JSON integer without a decimal point"
            return f"must be a JSON integer, not {_json_kind(v)}"
        if v < max(lo, INT32[0]) or v > INT32[1]:
            return f"is out of range ({max(lo, INT32[0])}..{INT32[1]})"
        return None
    return check


def _check_decimal(v: Any) -> str | None:
    if not _is_number(v):
        return f"must be a JSON number, not {_json_kind(v)}"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return "must be a finite number"
    return None


def _check_base64(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"must be a JSON string, not {_json_kind(v)}"
    try:
        base64.b64decode("".join(v.split()), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    return None


def _check_xhtml(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"must be a JSON string, not {_json_kind(v)}"
    if not v.lstrip().startswith("<div"):
        return "must be an XHTML <div> element"
    return None


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


_uri = _regex_string(URI_RE, "uri")

PRIMITIVE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "boolean": _check_boolean,
    "integer": _int_check(INT32[0]),
    "unsignedInt": _int_check(0),
    "positiveInt": _int_check(1),
    "decimal": _check_decimal,
    "string": _check_string,
    "markdown": _check_string,
    "code": _regex_string(CODE_RE, "code (no leading, trailing or double whitespace)"),
    "id": _regex_string(ID_RE, "id (1-64 of A-Z a-z 0-9 - .)"),
    "uri": _uri,
    "url": _uri,
    "canonical": _uri,
    "oid": _regex_string(OID_RE, "oid (urn:oid:…)"),
    "uuid": _regex_string(UUID_RE, "uuid (urn:uuid:… lower case)"),
    "date": _date_like(DATE_RE, "date"),
    "dateTime": _date_like(DATETIME_RE, "dateTime"),
    "instant": _date_like(INSTANT_RE, "instant (full date, time and timezone)"),
    "time": _regex_string(TIME_RE, "time (hh:mm:ss)"),
    "base64Binary": _check_base64,
    "xhtml": _check_xhtml,
    # FHIRPath system types used for Element.id / Extension.url in snapshots
    "http://hl7.org/fhirpath/System.String": _check_string,
}

PRIMITIVE_TYPES = frozenset(PRIMITIVE_CHECKS) - {"http://hl7.org/fhirpath/System.String"}


def json_kind(v: Any) -> str:
    return _json_kind(v)
