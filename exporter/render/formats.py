"""The formats an export is delivered in, by name and media type (layer L3): FHIR JSON, and the
human-readable HTML and PDF/A-3b. Used by the CLI (`fhir-export render --format`) and the API
(content negotiation), so both produce the same bytes.

The PDF embeds the FHIR representations of the document (`attachments`): the Bundle as FHIR JSON and
as FHIR XML (exporter/formats); a further representation is one more `Attachment` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.fhir.json import dumps_exact
from exporter.formats import media
from exporter.render.document import Renderer
from exporter.render.pdf import Attachment


@dataclass(frozen=True)
class Format:
    name: str          # json | html | pdf
    media_type: str    # Content-Type of the answer
    suffix: str        # file name ending of a download


JSON = Format("json", "application/fhir+json", ".fhir.json")
HTML = Format("html", "text/html; charset=utf-8", ".html")
PDF = Format("pdf", "application/pdf", ".pdf")
FORMATS = {f.name: f for f in (JSON, HTML, PDF)}


def attachments(bundle: dict[str, Any], raw_json: bytes | None = None) -> list[Attachment]:
    """The files a PDF carries: the Bundle it shows, in every FHIR format the service writes."""
    raw = raw_json if raw_json is not None else dumps_exact(bundle)
    return [Attachment("diga-export.fhir.json", JSON.media_type, raw, "FHIR document Bundle (JSON)"),
            Attachment("diga-export.fhir.xml", media.MEDIA_TYPES[media.XML], media.render(bundle, media.XML),
                       "FHIR document Bundle (XML)")]


def render(renderer: Renderer, bundle: dict[str, Any], fmt: Format, raw_json: bytes | None = None) -> bytes:
    """The validated `bundle` in format `fmt`."""
    if fmt is JSON:
        return raw_json if raw_json is not None else dumps_exact(bundle)
    files = attachments(bundle, raw_json)
    if fmt is HTML:
        return renderer.html(bundle, files).encode("utf-8")
    return renderer.pdf(bundle, files)
