"""Content negotiation of the export routes: the same policies and denials, FHIR JSON by default,
HTML and PDF/A-3b by Accept header, 406 for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.api.errors import DENIED_BODY
from tools.devstack.verapdf import verapdf

from .conftest import ANNA_ID

ROOT = Path(__file__).resolve().parents[3]
TYPICAL = (ROOT / "samples" / "patients" / "typical.json").read_bytes()


def auth(token: str, accept: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    if accept is not None:
        h["Accept"] = accept
    return h


@pytest.mark.parametrize("accept, media", [
    (None, "application/fhir+json"), ("application/fhir+json", "application/fhir+json"), ("*/*", "application/fhir+json"),
    ("text/html", "text/html; charset=utf-8"), ("text/html;q=0.5, application/pdf", "application/pdf"),
])
def test_internal_export_by_accept_header(client, idp, accept, media, tmp_path):
    r = client.post("/internal/export", content=TYPICAL, headers=auth(idp.token(), accept))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media and r.headers["cache-control"] == "no-store"
    if media == "application/pdf":
        pdf = tmp_path / "api.pdf"
        pdf.write_bytes(r.content)
        assert verapdf([pdf]) == {pdf: None}
    elif media.startswith("text/html"):
        assert "<!DOCTYPE html>" in r.text and "Vitalparameter" in r.text
    else:
        assert r.json()["resourceType"] == "Bundle"


def test_patient_export_as_pdf_is_a_download_with_the_right_name(client, idp):
    r = client.get("/patient/export", headers=auth(idp.patient_token(ANNA_ID), "application/pdf"))
    assert r.status_code == 200
    assert r.content.startswith(b"%PDF-") and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].endswith('.pdf"')


def test_other_accept_values_get_fhir_and_denials_do_not_depend_on_the_format(client, idp):
    r = client.post("/internal/export", content=TYPICAL, headers=auth(idp.token(), "image/png"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+json"  # unknown: the default
    r = client.post("/internal/export?_format=pdf", content=TYPICAL, headers=auth(idp.token(), "application/fhir+xml"))
    assert r.content.startswith(b"%PDF-")  # _format wins over Accept
    r = client.post("/internal/export", content=TYPICAL, headers=auth(idp.token(), "application/fhir+xml, application/pdf;q=0.5"))
    assert r.headers["content-type"] == "application/fhir+xml"
    broken = TYPICAL.replace(b'"birth_date"', b'"birth_dat"')
    r = client.post("/internal/export", content=broken, headers=auth(idp.token(), "application/pdf"))
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"  # a failure is never a PDF
    for accept in ("application/pdf", "text/html", "image/png"):
        for method, path in (("POST", "/internal/export"), ("GET", "/patient/export")):
            r = client.request(method, path, content=TYPICAL, headers={"Accept": accept, "Content-Type": "application/fhir+json"})
            assert r.status_code == 401 and r.content == DENIED_BODY
