"""HTML → PDF/A-3b (layer L3): the only door to WeasyPrint.

The PDF is archival (PDF/A-3b: fonts embedded, colour profile, XMP metadata), tagged for
accessibility (structure tree from the HTML), and carries the files it was rendered from as embedded
files (PDF/A-3 associated files, relationship "Alternative": the same document in another form) —
the FHIR Bundle as JSON, and any other representation handed in (one `Attachment` each).
Fonts come from the system (fontconfig): the page asks for DejaVu Sans (Debian fonts-dejavu-core).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

PDF_VARIANT = "pdf/a-3b"


@dataclass(frozen=True)
class Attachment:
    name: str          # file name inside the PDF, e.g. "diga-export.fhir.json"
    media_type: str    # e.g. "application/fhir+json"
    data: bytes
    description: str = ""


def html_to_pdf(html: str, attachments: list[Attachment] = (), *, base_url: str | None = None) -> bytes:  # type: ignore[assignment]
    """The PDF/A-3b of `html` with `attachments` embedded. Nothing is fetched: the page may only
    use data: URLs (images) and system fonts."""
    import weasyprint

    no_fetch = weasyprint.URLFetcher(allowed_protocols=("data",), fail_on_errors=True)  # data: URLs only
    files = [weasyprint.Attachment(url=f"data:{a.media_type};base64,{base64.b64encode(a.data).decode('ascii')}",
                                   name=a.name, description=a.description or a.name, relationship="Alternative",
                                   url_fetcher=no_fetch)
             for a in attachments]
    document = weasyprint.HTML(string=html, base_url=base_url, url_fetcher=no_fetch)
    return document.write_pdf(pdf_variant=PDF_VARIANT, attachments=files, pdf_tags=True, uncompressed_pdf=False)
