"""`create_app(settings)`: the FastAPI application (layer L4).

Start-up (lifespan): the Exporter (mappings + IG + validator) and the IG's conformance resources are
loaded once; the Keycloak keys are fetched once (failure is not fatal: requests then answer 503
until keys can be loaded, /readyz says not ready). The app refuses to be built when any route
declares no policy or more than one (auth.policies.route_policy).

One middleware gives every request an id of its own (a client's X-Request-ID, if well-formed, is only
logged beside it as `client_request_id`) and its deadline, catches whatever escaped the routes
(rendered by the one handler, errors.error_response), holds every silent denial until
`denial_floor_seconds` after arrival (so its timing does not tell which check refused), sets
`Cache-Control: no-store` and `X-Content-Type-Options: nosniff` on every response and writes one JSON
request-log line. No redirects: a trailing slash is just an unknown path. FastAPI's own /docs and
/openapi.json are replaced by a policy-declaring /openapi.json route.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from exporter import __version__
from exporter.api.conformance import ConformanceIndex
from exporter.api.errors import DENIED_STATUS, NO_STORE, ApiError, error_response, is_protected_path
from exporter.api.limits import ExportPool
from exporter.api.logs import Pseudonymizer, request_log
from exporter.api.routes import register
from exporter.api.sources import Source, source_from_settings
from exporter.auth.policies import route_policy
from exporter.auth.principal import AuthError, AuthUnavailable
from exporter.auth.tokens import TokenVerifier
from exporter.settings import Settings, get_settings

log = logging.getLogger("exporter.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

DESCRIPTION = """FHIR R4 export service for DiGA backends and their patients.

* `POST /internal/export` — service clients with the API client's role `export`.
* `GET /patient/export` — a patient's own export; the patient id comes only from the access token.
* `POST /$validate` — service clients with role `validate`; answers 200 with an OperationOutcome.

Every authentication or authorization failure on the protected routes, and every unknown patient,
is answered with the same 401 OperationOutcome.
"""


def create_app(settings: Settings | None = None, *, exporter: Any = None, verifier: TokenVerifier | None = None,
               source: Source | None = None) -> FastAPI:
    """The service. `exporter`, `verifier` and `source` may be injected (tests); by default they are
    built from `settings` (the Exporter inside the lifespan, once)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        t0 = time.monotonic()
        if app.state.exporter is None:
            from exporter.pipeline import Exporter

            app.state.exporter = Exporter.from_settings(settings)
        broken = [i.format() for i in getattr(app.state.exporter, "load_issues", ()) if i.is_error]
        if broken:  # the service runs, not ready, and refuses exports (MAP_SET_INVALID) until the set is fixed
            log.error("the mapping set has errors: not ready, every export is refused; run `fhir-export check`",
                      extra={"event": "startup", "error": broken[:20]})
        app.state.conformance = ConformanceIndex.load(settings.igs_dir)
        app.state.capability_statement = app.state.conformance.capability_statement(
            issuer=settings.issuer, date=datetime.now(UTC).replace(microsecond=0).isoformat())
        keys = app.state.verifier.keys.ensure_loaded()
        log.info("service started", extra={"event": "startup", "duration_ms": round((time.monotonic() - t0) * 1000),
                                           "kids": app.state.verifier.keys.kids, "result": "keys" if keys else "no_keys"})
        try:
            yield
        finally:
            app.state.export_pool.shutdown()

    app = FastAPI(title="DiGA FHIR exporter", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.settings = settings
    app.state.exporter = exporter
    app.state.verifier = verifier or TokenVerifier.from_settings(settings)
    app.state.source = source or source_from_settings(settings)
    app.state.export_pool = ExportPool(settings.export_concurrency)
    key = settings.audit_pseudonym_key.get_secret_value().encode() if settings.audit_pseudonym_key else None
    app.state.pseudonymize = Pseudonymizer(key)
    app.state.conformance = None
    app.state.capability_statement = None
    register(app)

    for exc_type in (ApiError, AuthError, AuthUnavailable, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(exc_type, error_response)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Any) -> Any:
        t0 = time.monotonic()
        rid = secrets.token_hex(12)  # ours, never the client's: a client's id is logged beside it, if well-formed
        incoming = request.headers.get("x-request-id", "")
        request.state.request_id = rid
        request.state.deadline = t0 + settings.request_timeout_seconds
        request.state.principal = None
        request.state.outcome = None
        try:
            response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - everything becomes an OperationOutcome, never a traceback
            response = error_response(request, exc)
        if response.status_code == DENIED_STATUS and is_protected_path(request.scope.get("path", "")):
            hold = t0 + settings.denial_floor_seconds - time.monotonic()
            if hold > 0:
                await anyio.sleep(hold)
        response.headers["X-Request-ID"] = rid
        for name, value in NO_STORE.items():
            response.headers.setdefault(name, value)
        route = request.scope.get("route")
        principal = getattr(request.state, "principal", None)
        outcome = getattr(request.state, "outcome", None) or ("ok" if response.status_code < 400 else
                                                              f"http_{response.status_code}")
        request_log.info("request", extra={
            "event": "request", "request_id": rid, "method": request.method,
            "client_request_id": incoming if _REQUEST_ID.match(incoming) else None,
            "route": getattr(route, "path", None) or "<unmatched>", "status": response.status_code,
            "principal": principal.kind if principal else "none",
            "client": principal.client_id if principal and principal.kind == "service" else None,
            "outcome": outcome, "duration_ms": round((time.monotonic() - t0) * 1000, 1)})
        return response

    for route in app.routes:
        route_policy(route)  # raises: every route declares exactly one policy
        if isinstance(route, APIRoute):
            route.openapi_extra = {**(route.openapi_extra or {}), "x-policy": route_policy(route).name}
    return app
