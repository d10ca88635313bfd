"""The human-readable export: HTML and PDF/A-3b rendered from the validated Bundle with the
narratives' templates. Every PDF written here is judged by veraPDF (PDF/A-3b); pdftotext proves
that every value of the typical sample is in the PDF."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.pipeline import Exporter
from exporter.render.document import Renderer
from exporter.render.formats import FORMATS, attachments, render
from exporter.settings import get_settings
from tools.devstack.verapdf import verapdf

ROOT = get_settings().root
EXPORT_TIME = "2026-04-06T10:00:00+02:00"
TYPICAL = json.loads((ROOT / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


@pytest.fixture(scope="module")
def typical_pdf(exporter, tmp_path_factory) -> tuple[dict, Path]:
    bundle = exporter.export(TYPICAL, export_time=EXPORT_TIME).bundle
    path = tmp_path_factory.mktemp("pdf") / "typical.pdf"
    path.write_bytes(render(Renderer(exporter.engine.narrator), bundle, FORMATS["pdf"]))
    return bundle, path


def _text(pdf: Path) -> str:
    assert shutil.which("pdftotext"), "pdftotext (Debian poppler-utils) is missing: run `make setup`"
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", " ", out)


def _de(value) -> str:
    return str(value).replace(".", ",")


def test_the_typical_pdf_is_pdf_a_3b_with_the_bundle_embedded_as_json_and_xml(typical_pdf):
    bundle, pdf = typical_pdf
    assert verapdf([pdf]) == {pdf: None}
    listed = subprocess.run(["pdfdetach", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "diga-export.fhir.json" in listed and "diga-export.fhir.xml" in listed
    with_file = pdf.parent / "bundle.json"
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(with_file), str(pdf)], check=True)
    assert json.loads(with_file.read_text(encoding="utf-8")) == bundle


def test_every_value_of_the_typical_sample_is_in_the_pdf(typical_pdf):
    _, pdf = typical_pdf
    text = _text(pdf)
    p = TYPICAL["patient"]
    for value in (p["given_name"], p["family_name"], "23.07.1959", p["kvnr"], TYPICAL["diga"]["name"], TYPICAL["diga"]["pzn"]):
        assert value in text, value
    for m in TYPICAL["measurements"]:
        day = f"{m['measured_at'][8:10]}.{m['measured_at'][5:7]}.{m['measured_at'][:4]}, {m['measured_at'][11:16]}"
        assert day in text, m["id"]
        if m["kind"] == "blood_pressure":
            assert f"{m['systolic']} mmHg" in text and f"{m['diastolic']} mmHg" in text
        elif m["kind"] == "height" and m["unit"] == "m":
            assert f"{_de(round(m['value'] * 100, 6)).rstrip('0').rstrip(',')} cm" in text
        else:
            assert _de(m["value"]) in text, m["id"]
    answers = {0: "Überhaupt nicht", 1: "An einzelnen Tagen", 2: "An mehr als der Hälfte der Tage", 3: "Beinahe jeden Tag"}
    for q in TYPICAL["questionnaires"]:
        assert f"Gesamtwert: {q['total_score']} Punkte" in text
        for a in set(q["answers"]):
            assert answers[a] in text
    for d in TYPICAL["diagnoses"]:
        assert d["icd10gm_code"] in text and "gesichert" in text
    for e in TYPICAL["diary_entries"]:
        if e.get("note"):
            assert re.sub(r"\s+", " ", e["note"])[:25] in text


def test_html_is_the_narratives_page_with_charts_that_have_text_alternatives(exporter):
    bundle = exporter.export(TYPICAL, export_time=EXPORT_TIME).bundle
    html = Renderer(exporter.engine.narrator).html(bundle, attachments(bundle))
    assert html.startswith("<!DOCTYPE html>") and '<html lang="de-DE">' in html
    comp = bundle["entry"][0]["resource"]
    problems = comp["section"][-1]["text"]["div"]
    inner = problems[problems.index(">") + 1:-len("</div>")]
    assert inner in html  # the very section narrative, from the same template
    imgs = re.findall(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]+)"', html)
    assert imgs and all("Werte von" in alt for alt in imgs)


def test_bad_patient_text_stays_inert_in_html_and_pdf(exporter, tmp_path):
    doc = copy.deepcopy(TYPICAL)
    note = "<script>alert(1)</script> {{ 7*7 }} \u202eevil " + "Wort " * 1000
    doc["diary_entries"][0]["note"] = note[:5000]  # the schema's longest note
    doc["patient"]["family_name"] = "Lang" * 50
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues]
    bundle = result.bundle
    renderer = Renderer(exporter.engine.narrator)
    html = renderer.html(bundle)
    assert "<script>" not in html and "&lt;script&gt;" in html and "{{ 7*7 }}" in html and "\u202e" not in html
    pdf = tmp_path / "bad.pdf"
    pdf.write_bytes(render(renderer, bundle, FORMATS["pdf"]))
    assert verapdf([pdf]) == {pdf: None}
    assert "Lang" * 10 in _text(pdf).replace(" ", "")


def test_cli_renders_a_domain_document_and_an_exported_bundle(tmp_path, capsys):
    out = tmp_path / "t.pdf"
    assert main(["render", str(ROOT / "tests/cases/export/typical/input.json"), "--format", "pdf", "-o", str(out),
                 "--export-time", EXPORT_TIME]) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    html = tmp_path / "t.html"
    assert main(["render", str(ROOT / "tests/cases/export/typical/expected.json"), "--format", "html", "-o", str(html)]) == 0
    assert "Vitalparameter" in html.read_text(encoding="utf-8")
    en = tmp_path / "en.html"
    assert main(["render", str(ROOT / "tests/cases/export/typical/expected.json"), "--format", "html", "-o", str(en),
                 "--language", "en"]) == 0
    assert "Vital signs" in en.read_text(encoding="utf-8")
    assert verapdf([out]) == {out: None}


def test_cli_refuses_an_invalid_bundle_without_quoting_it(tmp_path, capsys):
    bundle = json.loads((ROOT / "tests/cases/export/typical/expected.json").read_text(encoding="utf-8"))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["birthDate"] = "Kanarienvogel"
    src = tmp_path / "broken.json"
    src.write_text(json.dumps(bundle), encoding="utf-8")
    assert main(["render", str(src), "-o", str(tmp_path / "x.pdf")]) == 1
    err = capsys.readouterr().err
    assert "Kanarienvogel" not in err and not (tmp_path / "x.pdf").exists()
