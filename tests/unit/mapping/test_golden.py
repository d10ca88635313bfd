"""Golden exports: domain input → the exact expected Bundle, itself valid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from exporter.settings import get_settings
from tests.unit.mapping.conftest import EXPORT_TIME

CASES = sorted(p for p in (get_settings().root / "tests" / "cases" / "export").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_export(case: Path, exporter):
    doc = json.loads((case / "input.json").read_text(encoding="utf-8"))
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues]
    assert result.bundle == expected


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_bundle_is_valid_for_our_validator(case: Path, exporter):
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    errors = [i.format() for i in exporter.validator.validate(expected) if i.is_error]
    assert errors == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_bundle_parses_with_fhir_resources_r4b(case: Path):
    from fhir.resources.R4B.bundle import Bundle

    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    Bundle.model_validate(expected)  # raises on any structural error (R4/R4B differences do not occur here)


def test_export_is_deterministic(exporter):
    doc = json.loads((CASES[-1] / "input.json").read_text(encoding="utf-8"))
    a = exporter.export(copy.deepcopy(doc), export_time=EXPORT_TIME).bundle
    b = exporter.export(copy.deepcopy(doc), export_time=EXPORT_TIME).bundle
    assert a == b
    c = exporter.export(copy.deepcopy(doc), export_time="2026-04-07T10:00:00+02:00").bundle
    assert c["identifier"] != a["identifier"] and c["timestamp"] == "2026-04-07T10:00:00+02:00"


def test_template_syntax_in_domain_strings_is_exported_verbatim(exporter):
    doc = json.loads((get_settings().root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
    notes = [e["note"] for e in doc["diary_entries"] if "note" in e and "{{" in e["note"]]
    assert notes, "the typical sample carries a note with template syntax"
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    from exporter.narrative.present import plain_markdown
    exported = [plain_markdown(n["text"]) for e in bundle["entry"] for n in e["resource"].get("note", [])]
    for note in notes:
        assert note in exported  # not rendered: "{{ 7*7 }}" stays (as markdown: "{{ 7\\*7 }}"), no "49"


def test_large_sample_exports(exporter):
    doc = json.loads((get_settings().root / "samples" / "patients" / "large.json").read_text(encoding="utf-8"))
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues[:10]]
    assert len(result.bundle["entry"]) > 2000


def test_every_fullurl_and_reference_is_a_urn_uuid(exporter):
    doc = json.loads((CASES[-1] / "input.json").read_text(encoding="utf-8"))
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    full = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") for u in full)
    refs = []

    def walk(v):
        if isinstance(v, dict):
            if "reference" in v and isinstance(v["reference"], str):
                refs.append(v["reference"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    for entry in bundle["entry"]:
        refs.clear()
        walk(entry)
        local = {"#" + c["id"] for c in entry["resource"].get("contained", [])}  # e.g. the measuring Device
        assert set(refs) <= full | local, entry["fullUrl"]
    assert any(e["resource"].get("contained") for e in bundle["entry"]), "a local reference was among them"
