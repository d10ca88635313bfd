"""FHIR media types (layer L2): which format a caller asks for, how a resource is written in it and how
a document in it is read. Used alike by the service (Accept, `_format`, Content-Type) and the CLI.

    fmt = requested_format(accept_header, format_param)     # "json" (default) or "xml"
    body = render(resource_or_json_bytes, fmt)               # bytes
    value, issues = parse(raw, fmt, source="body")           # JSON-shaped dict or None + issues

`_format` wins over Accept (https://hl7.org/fhir/R4/http.html#mime); a missing, `*/*` or unknown
preference gets JSON, as before XML existed. Decimals keep their digits both ways.
"""

from __future__ import annotations

import re
from typing import Any

from exporter.fhir.json import dumps_exact, loads_exact
from exporter.formats.xml import DEFAULT_MAX_DEPTH, default_codec
from exporter.issues import Issue, IssueCode, Severity, SourceLocation

JSON, XML = "json", "xml"
MEDIA_TYPES = {JSON: "application/fhir+json", XML: "application/fhir+xml"}
FILE_SUFFIXES = {JSON: ".fhir.json", XML: ".fhir.xml"}
# every spelling of the two formats in `_format`, Accept and Content-Type
ALIASES = {
    "json": JSON, "application/json": JSON, "application/fhir+json": JSON, "application/json+fhir": JSON,
    "xml": XML, "text/xml": XML, "application/xml": XML, "application/fhir+xml": XML, "application/xml+fhir": XML,
}


def _media(value: str) -> str:
    # in a query string an unescaped '+' arrives as a space: `_format=application/fhir+xml`
    return value.split(";")[0].strip().lower().replace(" ", "+")


def requested_format(accept: str | None, format_param: str | None = None) -> str:
    """The format a request asks for: `_format` if it names one, else the best Accept entry, else JSON."""
    if format_param:
        hit = ALIASES.get(_media(format_param))
        if hit:
            return hit
    best, best_q = JSON, -1.0
    for part in (accept or "").split(",")[:32]:
        fmt = ALIASES.get(_media(part))
        if fmt is None:
            continue
        q = 1.0
        for param in part.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q and q > 0:
            best, best_q = fmt, q
    return best


def content_format(content_type: str | None) -> str | None:
    """The format a Content-Type declares (None: neither FHIR JSON nor FHIR XML)."""
    return ALIASES.get(_media(content_type)) if content_type and "/" in content_type else None


def sniff(data: bytes) -> str:
    """XML if the first non-blank character (after a byte-order mark) is '<', else JSON."""
    head = data[:64].lstrip(b"\xef\xbb\xbf").lstrip()
    return XML if head.startswith(b"<") or head[:2] in (b"\xff\xfe", b"\xfe\xff") else JSON


def render(resource: dict[str, Any] | bytes, fmt: str, *, pretty: bool = False) -> bytes:
    """A resource (a dict, or FHIR JSON bytes) in the format; JSON bytes pass through unchanged."""
    if fmt == XML:
        value = loads_exact(resource) if isinstance(resource, bytes) else resource
        if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
            value = xml_safe(value)  # our own messages may name a key that XML cannot carry
        return default_codec().write(value, pretty=pretty)
    if isinstance(resource, bytes):
        return resource
    return dumps_exact(resource, pretty=pretty)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(value: Any) -> Any:
    """A copy whose strings hold no character XML 1.0 cannot carry (each becomes U+FFFD). For our own texts
    (OperationOutcomes) only: data is never altered silently, the writer refuses it instead."""
    if isinstance(value, str):
        return _NOT_XML.sub("\ufffd", value)
    if isinstance(value, dict):
        return {k: xml_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [xml_safe(v) for v in value]
    return value


def parse(raw: bytes, fmt: str, *, source: str = "<input>", max_depth: int = DEFAULT_MAX_DEPTH,
          max_bytes: int | None = None) -> tuple[Any, list[Issue]]:
    """(value, []) or (None, issues). JSON is parsed exactly (decimals keep their digits); XML through the
    XML reader, which names line and column."""
    if fmt == XML:
        return default_codec().read(raw, source=source, max_depth=max_depth, max_bytes=max_bytes)
    if max_bytes is not None and len(raw) > max_bytes:
        return None, [Issue(Severity.FATAL, IssueCode.TOO_COSTLY, f"the JSON exceeds {max_bytes} bytes",
                            "JSON_TOO_LARGE", position=SourceLocation(source))]
    try:
        return loads_exact(raw), []
    except (ValueError, RecursionError) as exc:
        line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        return None, [Issue(Severity.FATAL, IssueCode.STRUCTURE, "not well-formed JSON", "JSON_MALFORMED",
                            position=SourceLocation(source, line, col))]
