"""Reading JSON request bodies within limits (layer L4).

Called inside a route, i.e. only AFTER its policy has accepted the caller, so an unauthorised
caller never learns anything from body errors. Checks: content type (application/json or
application/fhir+json), size (Content-Length and the bytes actually received, `max_body_bytes` →
413), then the one input reader (exporter/fhir/json.py `read_json`: well-formed JSON, nesting depth
`max_json_depth`, unique member names → 400 JSON_SYNTAX / JSON_TOO_DEEP / JSON_DUPLICATE_KEY with
the line and column of the problem). Issues name the rule, never a value from the body. Parsing
runs on the export pool under the request's deadline (exporter/api/limits.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from exporter.api.errors import ApiError
from exporter.api.limits import run_bounded
from exporter.fhir.json import JsonInputError, read_json
from exporter.issues import IssueCode

JSON_TYPES = ("application/json", "application/fhir+json")


async def read_json_body(request: Request, *, max_bytes: int, max_depth: int) -> tuple[Any, bytes]:
    """(parsed JSON, raw bytes) of the request body, or ApiError 400 / 413 / 415."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in JSON_TYPES:
        raise ApiError(415, code=IssueCode.NOT_SUPPORTED, message_id="API_CONTENT_TYPE",
                       text="The body must be application/fhir+json or application/json.")
    raw = await read_body_bytes(request, max_bytes=max_bytes)
    # parsing megabytes is CPU work: on the export pool, not the event loop, and not more at once than
    # there are export slots (each parsed body may hold tens of MB)
    return await run_bounded(request, _parse, raw, max_depth), raw


async def read_body_bytes(request: Request, *, max_bytes: int) -> bytes:
    """The raw body within `max_bytes` (declared Content-Length and bytes received), or ApiError 400 / 413."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > max_bytes
        except ValueError:
            raise ApiError(400, code=IssueCode.INVALID, message_id="API_BAD_REQUEST",
                           text="Invalid Content-Length.") from None
        if too_big:
            raise ApiError(413, code=IssueCode.TOO_COSTLY, message_id="API_BODY_TOO_LARGE",
                           text=f"The body exceeds {max_bytes} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, code=IssueCode.TOO_COSTLY, message_id="API_BODY_TOO_LARGE",
                           text=f"The body exceeds {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes, max_depth: int) -> Any:
    try:
        return read_json(raw, max_depth=max_depth)
    except JsonInputError as exc:
        raise ApiError(400, exc.issue(), reason=exc.message_id) from None
