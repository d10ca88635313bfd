"""The routes (layer L4). Thin: each declares exactly one policy as a parameter, reads its input
within the limits, runs the pipeline in the thread pool under the per-request time bound, and
answers FHIR JSON. Errors are raised (ApiError / AuthError) and rendered by errors.error_response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response

from exporter.api import formats
from exporter.api.bodies import read_json_body
from exporter.api.errors import (
    DENIED_BODY,
    FHIR_JSON,
    FHIR_XML,
    PATIENT_FAILED_BODY,
    ApiError,
    denied,
    fhir_response,
    in_format,
    response_format,
)
from exporter.api.limits import run_bounded
from exporter.api.logs import audit_export
from exporter.api.negotiation import XML_VALIDATE_EXAMPLE, read_resource_body
from exporter.api.sources import SourceDocumentInvalid, SourceUnavailable
from exporter.auth.policies import current_patient, public, require_service
from exporter.auth.principal import Principal
from exporter.fhir.positions import attach
from exporter.formats.media import FILE_SUFFIXES, render
from exporter.issues import IssueCode, to_operation_outcome

log = logging.getLogger("exporter.api")

# OpenAPI response objects (free-form JSON, hence the Any)
_XML: dict[str, Any] = {"schema": {"type": "string", "description": "FHIR XML (Accept: application/fhir+xml or _format=xml)"}}
_OUTCOME: dict[str, Any] = {"content": {FHIR_JSON: {"schema": {"type": "object", "description": "OperationOutcome"}},
                                        FHIR_XML: _XML}}
_DENIED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated, not authorised, or no such patient: always this same body (per format).",
                 "content": {FHIR_JSON: {"example": orjson.loads(DENIED_BODY)}, FHIR_XML: _XML}}}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Keycloak keys not yet loaded (cold start) or the source is unreachable.", **_OUTCOME}}
FHIR_ID = r"^[A-Za-z0-9\-\.]{1,64}$"
# the human-readable representations of a successful export (Accept: text/html, application/pdf)
_HUMAN = {"text/html": {"schema": {"type": "string"}},
          "application/pdf": {"schema": {"type": "string", "format": "binary"}}}

# OpenAPI examples (synthetic; a real request carries one patient's domain document, see docs/domain.md)
_EXPORT_EXAMPLE = {
    "schema_version": "1.0",
    "patient": {"id": "3f1c2a3e-5b7d-4c1e-9a2b-0c4d5e6f7a8b", "given_name": "Erika", "family_name": "Musterfrau",
                "birth_date": "1964-08-12", "gender": "female"},
    "diga": {"name": "MindJournal", "version": "2.4.1", "pzn": "17654326", "diga_ve_id": "27184930",
             "manufacturer": "Example DiGA GmbH"},
    "export_period": {"from": "2026-03-01", "to": "2026-03-31"},
    "measurements": [{"id": "5bb7fb0f-d8d9-415b-8725-460b8ce504db", "kind": "weight",
                      "measured_at": "2026-03-09T07:15:00+01:00", "value": 72.4, "unit": "kg", "source": "manual"}],
    "diary_entries": [], "questionnaires": [], "diagnoses": [],
}
_VALIDATE_EXAMPLE = {"resourceType": "Patient", "name": [{"family": "Musterfrau", "given": ["Erika"]}],
                     "gender": "female", "birthDate": "1964-08-12"}
_OUTCOME_EXAMPLE = {"resourceType": "OperationOutcome", "issue": [
    {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger": 12},
                   {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col", "valueInteger": 19}],
     "severity": "error", "code": "required", "details": {"text": "Observation.subject: minimum required = 1, but only found 0"},
     "expression": ["Bundle.entry[4].resource.subject"]}]}


def _json_body(example: dict, xml_example: str | None = None) -> dict:
    content: dict[str, Any] = {FHIR_JSON: {"schema": {"type": "object"}, "example": example},
                               "application/json": {"schema": {"type": "object"}, "example": example}}
    if xml_example:
        content[FHIR_XML] = {"schema": {"type": "string"}, "example": xml_example}
    return {"requestBody": {"required": True, "content": content}}


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _deadline(request: Request) -> float:
    return request.app.state.settings.request_timeout_seconds


def _export(request: Request, doc: Any, fmt: str, human: formats.Format | None = None,
            raw: bytes | None = None) -> tuple[Any, bytes | None]:
    """Export and, when it succeeded, write the Bundle in the format asked for — FHIR JSON or XML, or the
    human-readable HTML or PDF rendered from it (both in the worker thread); when it failed, the issues
    get the line:column of their record in `raw` (the request body)."""
    exporter = request.app.state.exporter
    if human is None:  # FHIR JSON or XML: written inside the export (see Exporter.export_written)
        result = exporter.export_written(doc, export_time=_now(), write=lambda bundle: render(bundle, fmt))
    else:
        result = exporter.export(doc, export_time=_now())
    if not result.ok:
        if raw is not None:
            result.issues = attach(result.issues, raw, json_paths=True)
        return result, None
    return result, (result.body if human is None else formats.body(request.app, result.bundle, human))


async def _in_thread(request: Request, fn: Callable[..., Any], *args: Any) -> Any:
    """Run CPU-bound or blocking work on the export pool (exporter/api/limits.py) under the request's
    deadline; the work stops at that deadline and frees its slot."""
    return await run_bounded(request, fn, *args)


def _timed_out(request: Request) -> ApiError:
    return ApiError(408, code=IssueCode.TOO_COSTLY, message_id="API_TIMEOUT",
                    text=f"The request took longer than {_deadline(request):g} s.")


def _pseudonym(request: Request, doc: Any) -> str | None:
    pid = doc.get("patient", {}).get("id") if isinstance(doc, dict) and isinstance(doc.get("patient"), dict) else None
    return request.app.state.pseudonymize(pid) if isinstance(pid, str) else None


def register(app: FastAPI) -> None:
    """Add every route of the service to `app`."""

    @app.post("/internal/export", summary="Export one patient's domain document as a validated FHIR document Bundle",
              response_class=Response, openapi_extra=_json_body(_EXPORT_EXAMPLE),
              responses={200: {"description": "The document Bundle", "content": {FHIR_JSON: {"example": {
                  "resourceType": "Bundle", "type": "document", "identifier": {
                      "system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c9e2d0a-5f3b-5f7e-9a51-8d7f3c1b2a40"},
                  "timestamp": "2026-04-06T10:00:00+02:00", "entry": ["…"]}}, FHIR_XML: _XML, **_HUMAN}},
                         422: {"description": "The document could not be exported: detailed issues",
                               "content": {FHIR_JSON: {"schema": {"type": "object"}, "example": _OUTCOME_EXAMPLE},
                                           FHIR_XML: _XML}},
                         **_DENIED, **_UNAVAILABLE})
    async def internal_export(request: Request, principal: Principal = Depends(require_service("export"))) -> Response:
        settings = request.app.state.settings
        fmt = response_format(request)
        doc: Any = None
        size, result_word = 0, "error"
        try:
            human = formats.human_format(request)  # Accept / _format: text/html or application/pdf, else None
            with anyio.fail_after(settings.request_timeout_seconds):
                doc, raw = await read_json_body(request, max_bytes=settings.max_body_bytes,
                                                max_depth=settings.max_json_depth)
                result, body = await _in_thread(request, _export, request, doc, fmt, human, raw)
            if body is None:
                result_word = "invalid"
                return fhir_response(result.operation_outcome(), 422, fmt=fmt)
            size, result_word = len(body), "ok"
            request.state.outcome = "ok"
            return formats.response(body, human) if human else fhir_response(body, 200, fmt=fmt)
        except TimeoutError:
            result_word = "timeout"
            raise _timed_out(request) from None
        except ApiError as exc:
            result_word = f"rejected:{exc.reason}"
            raise
        finally:
            audit_export(caller=principal.client_id, patient=_pseudonym(request, doc), size=size, result=result_word,
                         request_id=request.state.request_id)

    @app.get("/patient/export", summary="The logged-in patient's own export, as a download",
                response_class=Response,
                responses={200: {"description": "The document as an attachment: the FHIR Bundle (JSON, or XML), or by "
                                        "Accept / _format the human-readable HTML or PDF/A-3b",
                                 "content": {FHIR_JSON: {}, FHIR_XML: _XML, **_HUMAN}},
                        422: {"description": "The export could not be produced (generic)", **_OUTCOME},
                        **_DENIED, **_UNAVAILABLE})
    async def patient_export(request: Request, principal: Principal = Depends(current_patient)) -> Response:
        settings = request.app.state.settings
        fmt = response_format(request)
        pid = principal.patient_id or ""
        pseudonym = request.app.state.pseudonymize(pid)
        size, result_word = 0, "error"
        try:
            human = formats.human_format(request)  # Accept / _format: text/html or application/pdf, else None
            with anyio.fail_after(settings.request_timeout_seconds):
                try:
                    doc = await _in_thread(request, request.app.state.source.get, pid)
                except SourceUnavailable:
                    result_word = "source_unavailable"
                    raise ApiError(503, code=IssueCode.EXCEPTION, message_id="API_SOURCE_UNAVAILABLE",
                                   text="The source is unavailable.", headers={"Retry-After": "10"}) from None
                except SourceDocumentInvalid as exc:  # a data problem, not an outage: the generic 422, the reason logged
                    result_word = f"source_invalid:{exc.issue.message_id}"
                    pos = exc.issue.position
                    log.warning("source document unreadable", extra={
                        "event": "source_document_invalid", "message_id": exc.issue.message_id,
                        "line": pos.line if pos else None,
                        "column": pos.column if pos else None, "request_id": request.state.request_id})
                    raise ApiError(422, [exc.issue], reason=result_word) from None
                if doc is None:
                    result_word = "no_patient"
                    raise denied("no_patient")
                patient = doc.get("patient")
                if not isinstance(patient, dict) or patient.get("id") != pid:
                    result_word = "source_mismatch"  # the source answered someone else's document: never hand it out
                    raise denied("source_mismatch")
                result, body = await _in_thread(request, _export, request, doc, fmt, human)
            if body is None:
                result_word = "invalid"
                return fhir_response(in_format(PATIENT_FAILED_BODY, fmt), 422, fmt=fmt)
            size, result_word = len(body), "ok"
            request.state.outcome = "ok"
            day = datetime.now(UTC).strftime("%Y%m%d")
            name = {"Content-Disposition": f'attachment; filename="diga-export-{day}{human.suffix if human else FILE_SUFFIXES[fmt]}"'}
            return formats.response(body, human, name) if human else fhir_response(body, 200, name, fmt)
        except TimeoutError:
            result_word = "timeout"
            raise _timed_out(request) from None
        finally:
            audit_export(caller=principal.client_id, patient=pseudonym, size=size, result=result_word,
                         request_id=request.state.request_id)

    @app.post("/$validate", summary="Validate a FHIR resource against igs/ and FHIR R4 core",
              response_class=Response, openapi_extra=_json_body(_VALIDATE_EXAMPLE, XML_VALIDATE_EXAMPLE),
              responses={200: {"description": "OperationOutcome (also when the resource has errors)",
                               "content": {FHIR_JSON: {"schema": {"type": "object"}, "example": _OUTCOME_EXAMPLE},
                                           FHIR_XML: _XML}},
                         400: {"description": "Not a FHIR resource (no resourceType), malformed or too deep "
                                              "(XML: issues name line and column)", **_OUTCOME},
                         422: {"description": "Unknown resourceType", **_OUTCOME}, **_DENIED, **_UNAVAILABLE})
    async def validate(request: Request, principal: Principal = Depends(require_service("validate"))) -> Response:
        settings = request.app.state.settings
        fmt = response_format(request)
        try:
            with anyio.fail_after(settings.request_timeout_seconds):
                value, raw = await read_resource_body(request, max_bytes=settings.max_body_bytes,
                                                      max_depth=settings.max_json_depth)
                root = ""
                if isinstance(value, dict) and value.get("resourceType") == "Parameters":
                    params = [(k, p) for k, p in enumerate(value.get("parameter") or [])
                              if isinstance(p, dict) and p.get("name") == "resource"]
                    value = params[0][1].get("resource") if len(params) == 1 else None
                    root = f"Parameters.parameter[{params[0][0]}].resource" if len(params) == 1 else ""
                if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
                    raise ApiError(400, code=IssueCode.STRUCTURE, message_id="API_NOT_A_RESOURCE",
                                   text="The body is not a FHIR resource (a JSON object with a resourceType).")
                validator = request.app.state.exporter.validator
                media_type = request.headers.get("content-type", "")
                issues = await _in_thread(request, lambda: attach(validator.validate(value), raw,
                                                                  media_type=media_type, root=root))
        except TimeoutError:
            raise _timed_out(request) from None
        if any(i.message_id == "VAL_UNKNOWN_RESOURCE_TYPE" and i.is_error for i in issues):
            raise ApiError(422, issues, reason="unknown_resource_type")
        request.state.outcome = "ok"
        return fhir_response(to_operation_outcome(issues), 200, fmt=fmt)

    @app.get("/metadata", summary="CapabilityStatement", response_class=Response,
                responses={200: {"description": "CapabilityStatement", "content": {FHIR_JSON: {}, FHIR_XML: _XML}}})
    def metadata(request: Request, _: Principal = Depends(public)) -> Response:
        return fhir_response(request.app.state.capability_statement, fmt=response_format(request))

    def _conformance_route(rtype: str) -> None:  # noqa: E306
        def read(request: Request, id: str = Path(pattern=FHIR_ID, max_length=64),
                 _: Principal = Depends(public)) -> Response:
            raw = request.app.state.conformance.resources[rtype].get(id)
            if raw is None:
                raise ApiError(404, code=IssueCode.NOT_FOUND, message_id="API_NOT_FOUND", text=f"No {rtype} with this id.")
            fmt = response_format(request)
            return fhir_response(in_format(raw, fmt), fmt=fmt)

        read.__name__ = f"read_{rtype}"
        app.add_api_route(f"/{rtype}/{{id}}", read, methods=["GET"], summary=f"Read a {rtype} of the IG",
                          response_class=Response, name=f"read_{rtype}",
                          responses={200: {"description": rtype, "content": {FHIR_JSON: {}, FHIR_XML: _XML}},
                                     404: {"description": "Unknown id", **_OUTCOME}})

    for rtype in ("StructureDefinition", "ValueSet", "CodeSystem"):
        _conformance_route(rtype)

    # health answers on the event loop: no thread pool, no export slot, no wait for Keycloak
    @app.get("/healthz", summary="Liveness")
    async def healthz(_: Principal = Depends(public)) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: mappings, IG and Keycloak keys loaded",
                responses={503: {"description": "Not ready"}})
    async def readyz(request: Request, _: Principal = Depends(public)) -> JSONResponse:
        state = request.app.state
        exporter = getattr(state, "exporter", None)
        checks = {
            "mappings": exporter is not None and not any(i.is_error for i in exporter.load_issues),
            "ig": getattr(state, "conformance", None) is not None and state.conformance.count > 0,
            "keys": state.verifier.keys.ensure_loaded(wait=False),  # no keys yet: a load starts in the background
        }
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503,
                            headers={"Cache-Control": "no-store"})

    @app.get("/openapi.json", summary="This OpenAPI document", include_in_schema=False)
    def openapi(request: Request, _: Principal = Depends(public)) -> JSONResponse:
        return JSONResponse(request.app.openapi())
