"""Every error the service answers is an OperationOutcome, made by ONE function: `error_response`
(layer L4).

Silent failures: on the protected routes (patient, internal, $validate) every authentication or
authorization failure and every "no such patient" is answered with DENIED — status 401, the same
bytes (`DENIED_BODY`) and the same headers (`WWW-Authenticate: Bearer`, no-store); nothing in it
depends on the token, the patient or the reason. The reason goes to the log as a fixed word only.
Patient routes also get one generic body for any other failure (limits, time-outs, a broken export);
only authorised service callers get detailed OperationOutcomes.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from exporter.auth.principal import AuthError, AuthUnavailable
from exporter.formats.media import JSON, MEDIA_TYPES, XML, render, requested_format
from exporter.issues import Issue, IssueCode, Severity, to_operation_outcome

FHIR_JSON = MEDIA_TYPES[JSON]
FHIR_XML = MEDIA_TYPES[XML]
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
PROTECTED_PREFIXES = ("/patient", "/internal", "/$validate")
"""Paths whose unknown sub-paths, methods and failures are answered silently."""

log = logging.getLogger("exporter.api")


def _outcome_bytes(code: IssueCode, text: str, message_id: str) -> bytes:
    return orjson.dumps(to_operation_outcome([Issue(Severity.ERROR, code, text, message_id)]))


DENIED_STATUS = 401
DENIED_BODY = _outcome_bytes(IssueCode.SECURITY, "The request could not be authorised.", "API_DENIED")
DENIED_HEADERS = {**NO_STORE, "WWW-Authenticate": 'Bearer realm="diga-exporter"'}
PATIENT_FAILED_BODY = _outcome_bytes(IssueCode.PROCESSING, "The export could not be produced.", "API_FAILED")
UNAVAILABLE_BODY = _outcome_bytes(IssueCode.EXCEPTION,
                                  "The service is temporarily unavailable.", "API_UNAVAILABLE")
INTERNAL_BODY = _outcome_bytes(IssueCode.EXCEPTION, "Internal error.", "API_INTERNAL")


class ApiError(Exception):
    """A failure with a status and issues. `generic=True` forces the generic body on patient routes
    (it is forced there anyway); `denied=True` makes it the silent denial everywhere."""

    def __init__(self, status: int, issues: list[Issue] | Issue | None = None, *, code: IssueCode = IssueCode.INVALID,
                 text: str = "", message_id: str = "", reason: str = "", denied: bool = False,
                 headers: dict[str, str] | None = None):
        if issues is None:
            issues = [Issue(Severity.ERROR, code, text, message_id)]
        self.status = status
        self.issues = [issues] if isinstance(issues, Issue) else list(issues)
        self.reason = reason or message_id or str(status)
        self.denied = denied
        self.headers = headers or {}
        super().__init__(self.reason)


def denied(reason: str) -> ApiError:
    """The one silent denial (also used for "no such patient")."""
    return ApiError(DENIED_STATUS, [], reason=reason, denied=True)


def is_patient_path(path: str) -> bool:
    return path == "/patient" or path.startswith("/patient/")


def is_protected_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def response_format(request: Request) -> str:
    """The format the caller asked for (`_format`, then Accept; JSON by default). Depends on nothing but
    these two request fields, so a denial is still the same bytes for every reason."""
    return requested_format(request.headers.get("accept"), request.query_params.get("_format"))


@functools.lru_cache(maxsize=512)
def in_format(json_body: bytes, fmt: str) -> bytes:
    """A fixed FHIR JSON body (the constant outcomes, a committed conformance resource) in `fmt`; the XML
    is written once and reused, so a constant stays the same bytes."""
    return json_body if fmt == JSON else render(json_body, fmt)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None, fmt: str = JSON) -> Response:
    """A FHIR resource: a dict (written here in `fmt`) or bytes already in `fmt`."""
    content = body if isinstance(body, bytes) else render(body, fmt)
    return Response(content, status_code=status, media_type=MEDIA_TYPES[fmt], headers={**NO_STORE, **(headers or {})})


def _denied_response(fmt: str = JSON) -> Response:
    return fhir_response(in_format(DENIED_BODY, fmt), DENIED_STATUS, dict(DENIED_HEADERS), fmt)


def error_response(request: Request, exc: Exception) -> Response:
    """THE exception handler: any exception → an OperationOutcome response. Records the outcome
    (a fixed word) in request.state for the request log; never logs the exception's message."""
    path = request.scope.get("path", "")  # never request.url: it is built from the Host header
    state = request.state
    fmt = response_format(request)
    if isinstance(exc, AuthError) or (isinstance(exc, ApiError) and exc.denied):
        state.outcome = f"denied:{getattr(exc, 'reason', 'auth')}"
        return _denied_response(fmt)
    if isinstance(exc, AuthUnavailable):
        state.outcome = "unavailable:keys"
        return fhir_response(in_format(UNAVAILABLE_BODY, fmt), 503, {"Retry-After": "10"}, fmt)
    if isinstance(exc, StarletteHTTPException):
        if is_protected_path(path):  # unknown sub-path or method under a protected prefix: silent
            state.outcome = f"denied:http_{exc.status_code}"
            return _denied_response(fmt)
        state.outcome = f"http_{exc.status_code}"
        code = IssueCode.NOT_FOUND if exc.status_code == 404 else IssueCode.NOT_SUPPORTED
        text = "Not found." if exc.status_code == 404 else "Not supported."
        return fhir_response(in_format(_outcome_bytes(code, text, f"API_HTTP_{exc.status_code}"), fmt), exc.status_code,
                             dict(getattr(exc, "headers", None) or {}), fmt)
    if isinstance(exc, RequestValidationError):
        exc = ApiError(400, code=IssueCode.INVALID, text="The request parameters are invalid.",
                       message_id="API_BAD_REQUEST")
    if isinstance(exc, ApiError):
        state.outcome = f"error:{exc.reason}"
        if exc.status >= 500:
            return fhir_response(in_format(UNAVAILABLE_BODY if exc.status == 503 else INTERNAL_BODY, fmt), exc.status,
                                 exc.headers, fmt)
        if is_patient_path(path):
            return fhir_response(in_format(PATIENT_FAILED_BODY, fmt), exc.status, exc.headers, fmt)
        return fhir_response(to_operation_outcome(exc.issues), exc.status, exc.headers, fmt)
    state.outcome = f"internal:{type(exc).__name__}"
    log.error("unhandled exception", extra={"event": "unhandled_exception", "error": type(exc).__name__})
    if is_protected_path(path) and is_patient_path(path):
        return fhir_response(in_format(PATIENT_FAILED_BODY, fmt), 500, fmt=fmt)
    return fhir_response(in_format(INTERNAL_BODY, fmt), 500, fmt=fmt)
