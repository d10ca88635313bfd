"""FHIR XML in the service (layer L4): reading a resource body in either format. Which format a
response uses is errors.response_format (`_format`, then Accept); every FHIR answer — exports,
OperationOutcomes, denials, conformance resources — goes through errors.fhir_response in that
format, so the same policies and the same byte-identical denials hold per format.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from exporter.api.bodies import JSON_TYPES, read_body_bytes, read_json_body
from exporter.api.errors import ApiError
from exporter.api.limits import run_bounded
from exporter.formats.media import XML, parse
from exporter.issues import IssueCode

XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml")
XML_VALIDATE_EXAMPLE = ('<Patient xmlns="http://hl7.org/fhir"><name><family value="Musterfrau"/><given value="Erika"/>'
                        '</name><gender value="female"/><birthDate value="1964-08-12"/></Patient>')


async def read_resource_body(request: Request, *, max_bytes: int, max_depth: int) -> tuple[Any, bytes]:
    """(the body as a JSON-shaped value, its raw bytes): FHIR JSON as before (read_json_body), or FHIR XML
    through the XML reader (no DTDs or entities, the same size and depth limits; errors name line and column)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in JSON_TYPES:
        return await read_json_body(request, max_bytes=max_bytes, max_depth=max_depth)
    if ctype not in XML_TYPES:
        raise ApiError(415, code=IssueCode.NOT_SUPPORTED, message_id="API_CONTENT_TYPE",
                       text="The body must be FHIR JSON (application/fhir+json, application/json) "
                            "or FHIR XML (application/fhir+xml, application/xml).")
    raw = await read_body_bytes(request, max_bytes=max_bytes)
    # parsed on the export pool under the request's deadline, like a JSON body (exporter/api/limits.py)
    value, issues = await run_bounded(request, _parse_xml, raw, max_depth, max_bytes)
    if issues:
        raise ApiError(400, issues, reason="malformed_xml")
    return value, raw


def _parse_xml(raw: bytes, max_depth: int, max_bytes: int) -> tuple[Any, list[Any]]:
    return parse(raw, XML, source="body", max_depth=max_depth, max_bytes=max_bytes)
