"""The human-readable representations of an export in the service (layer L4): `Accept: text/html` or
`application/pdf` (or `_format=html|pdf`) on the export routes answers the HTML or PDF/A-3b rendered from
the validated Bundle by render/formats.py, the same code as `fhir-export render`. Everything else —
FHIR JSON (the default) and FHIR XML, every OperationOutcome and denial — stays with
errors.response_format / fhir_response: a failed export is always an OperationOutcome, and policies,
limits and denials are the routes' own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from exporter.api.errors import NO_STORE
from exporter.formats.media import ALIASES
from exporter.render.document import Renderer
from exporter.render.formats import HTML, PDF, Format, render

# media type (lower case, without parameters) -> human-readable format
_HUMAN = {"text/html": HTML, "application/xhtml+xml": HTML, "application/pdf": PDF}
_BY_NAME = {"html": HTML, "pdf": PDF}


def human_format(request: Request) -> Format | None:
    """HTML or PDF when the request asks for one (`_format=html|pdf`, or an Accept entry for it ranked above
    every FHIR media type and `*/*`: by q, the first of equals), else None (FHIR JSON or XML)."""
    param = (request.query_params.get("_format") or "").strip().lower()
    if param:
        return _BY_NAME.get(param) or (_HUMAN.get(param) if param in _HUMAN else None)
    best: tuple[float, int, Format | None] | None = None  # (q, -position, format; None = a FHIR format)
    for i, part in enumerate(request.headers.get("accept", "").split(",")[:32]):
        media, *params = [p.strip() for p in part.split(";")]
        media = media.lower()
        if media in _HUMAN:
            fmt: Format | None = _HUMAN[media]
        elif media in ALIASES or media in ("*/*", "application/*"):
            fmt = None
        else:
            continue
        q = 1.0
        for p in params:
            if p.lower().startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -i) > best[:2]):
            best = (q, -i, fmt)
    return best[2] if best is not None else None


def renderer(app: FastAPI) -> Renderer:
    """The application's renderer (made once, from the exporter's narrator)."""
    found = getattr(app.state, "renderer", None)
    if found is None:
        found = app.state.renderer = Renderer(app.state.exporter.engine.narrator)
    return found


def body(app: FastAPI, bundle: dict[str, Any], fmt: Format) -> bytes:
    """The validated Bundle as HTML or PDF (CPU-bound: call it in the worker thread)."""
    return render(renderer(app), bundle, fmt)


def response(data: bytes, fmt: Format, headers: dict[str, str] | None = None) -> Response:
    return Response(data, status_code=200, media_type=fmt.media_type, headers={**NO_STORE, **(headers or {})})
