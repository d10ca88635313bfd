"""A new measurement kind end to end, in a copy of the project: `fhir-export new-kind` (the recipe of
docs/extending.md), a real SUSHI build of the profile stub, `check`, `map` of a document with records
of the new kinds, and our validator on the result: 0 errors (the HL7 validator too, loaded with the
copy's IG). Two kinds, so both shapes of the stub
are built: SpO2 derives from the FHIR core vital signs profile of its LOINC code (oxygensat), a pain
score, which has none, from Observation (and reuses the unit `score` of the questionnaire totals)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.settings import get_settings
from tests.support.projectcopy import copy_project

pytestmark = pytest.mark.sushi

SPO2 = ["new-kind", "spo2", "--loinc", "2708-6", "--display", "Oxygen saturation in Arterial blood",
        "--loinc", "59408-5", "--display", "Oxygen saturation in Arterial blood by Pulse oximetry",
        "--snomed", "103228002", "--snomed-display", "Hemoglobin saturation with oxygen (observable entity)",
        "--unit", "%", "--title", "oxygen saturation", "--max-possible", "100", "--min", "70", "--max", "100"]
# a kind without a core vital signs profile (codes with correct check digits; the test needs no more)
PAIN = ["new-kind", "pain_score", "--loinc", "72514-3", "--snomed", "225908003", "--unit", "score", "--ucum", "{score}",
        "--title", "pain score", "--max-possible", "10", "--min", "0.5", "--max", "10"]
COPIED = ("sushi-config.yaml", "profiles_fsh", "igs", "mappings", "schemas", "docs", "samples")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """A project copy with spo2 and pain_score added by the scaffold and its IG rebuilt by SUSHI."""
    root = tmp_path_factory.mktemp("newkind") / "proj"
    env = copy_project(root, COPIED)
    for args in (SPO2, PAIN):
        proc = _cli(env, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _cli(env, "build-ig")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, env


def _sample(root: Path) -> Path:
    """The typical sample plus one record of each new kind, in the export period."""
    doc = json.loads((get_settings().root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
    at = next(m["measured_at"] for m in doc["measurements"])
    doc["measurements"] += [
        {"id": "0f0e0d0c-0b0a-4909-8807-060504030201", "kind": "spo2", "measured_at": at, "value": 97,
         "unit": "%", "source": "device"},
        {"id": "0f0e0d0c-0b0a-4909-8807-060504030202", "kind": "spo2", "measured_at": at, "value": 93.5,
         "unit": "%", "source": "manual"},
        {"id": "0f0e0d0c-0b0a-4909-8807-060504030203", "kind": "pain_score", "measured_at": at, "value": 4,
         "unit": "score", "source": "manual"},
    ]
    path = root / "with-new-kinds.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def test_the_new_kinds_pass_check(scaffolded):
    root, env = scaffolded
    proc = _cli(env, "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 error(s), 0 warning(s)" in proc.stdout
    assert "rule plausible-spo2 [warning, configurable]" in proc.stdout


def test_a_document_with_the_new_kinds_maps_and_validates(scaffolded):
    root, env = scaffolded
    out = root / "bundle.json"
    proc = _cli(env, "map", str(_sample(root)), "-o", str(out), "--export-time", "2026-04-06T10:00:00Z", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "valid (0 error(s), 0 warning(s))" in proc.stderr
    bundle = json.loads(out.read_text(encoding="utf-8"))
    by_profile: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        for claim in entry["resource"].get("meta", {}).get("profile", []):
            by_profile.setdefault(claim.split("|")[0].rsplit("/", 1)[-1], []).append(entry["resource"])
    spo2, pain = by_profile["diga-spo2"], by_profile["diga-pain-score"]
    assert sorted(o["valueQuantity"]["value"] for o in spo2) == [93.5, 97]
    assert [c["code"] for c in spo2[0]["code"]["coding"]][0] == "2708-6"
    assert "103228002" in [c["code"] for c in spo2[0]["code"]["coding"]]
    assert spo2[0]["valueQuantity"]["code"] == "%" and pain[0]["valueQuantity"]["code"] == "{score}"
    assert [c["code"] for c in pain[0]["code"]["coding"]] == ["72514-3", "225908003"]
    composition = bundle["entry"][0]["resource"]
    listed = {r["reference"] for s in composition["section"] for sub in s.get("section", []) for r in sub["entry"]}
    assert {e["fullUrl"] for e in bundle["entry"] if e["resource"] in spo2 + pain} <= listed
    # the CLI's validator on the written file: the profiles the scaffold wrote, SUSHI built
    proc = _cli(env, "validate", str(out), "-w")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid (0 error(s), 0 warning(s))" in proc.stdout


def _map_with(root: Path, env: dict[str, str], spo2_value: float) -> subprocess.CompletedProcess[str]:
    doc = json.loads(_sample(root).read_text(encoding="utf-8"))
    doc["measurements"][-3]["value"] = spo2_value
    path = root / "changed.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return _cli(env, "map", str(path), "-o", str(root / "x.json"), "--export-time", "2026-04-06T10:00:00Z", "-v")


def test_an_implausible_value_of_a_new_kind_is_a_warning(scaffolded):
    proc = _map_with(*scaffolded, 60)  # below the plausible 70
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "plausible-spo2" in proc.stderr


def test_an_impossible_value_of_a_new_kind_is_refused_by_the_schema(scaffolded):
    proc = _map_with(*scaffolded, 101)  # above the possible 100
    assert proc.returncode == 1, proc.stderr
    assert "DOMAIN_SCHEMA" in proc.stderr and "measurements[" in proc.stderr


DERIVING_TESTS = [
    "tests/unit/rules/test_rules.py",
    "tests/unit/test_domain_schema.py",
    "tests/unit/mapping/test_properties.py",
    "tests/unit/test_domain_samples.py::test_code_table_covers_the_schema_values",
]


def test_the_tests_that_derive_kinds_pass_on_the_new_kinds_unchanged(scaffolded):
    """No test constant to touch: the tests that know the kinds read them from the project they run on,
    here the copy with spo2 and pain_score (its samples have no record of them: adding some, and to the
    sample generator, is a step of docs/extending.md that no test here needs)."""
    root, env = scaffolded
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *DERIVING_TESTS],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=900,
                          cwd=get_settings().root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.refvalidator
def test_the_hl7_validator_accepts_the_export_with_the_new_kinds(scaffolded, tmp_path):
    """The second opinion on the scaffolded profiles: the HL7 validator, loaded with the copy's IG."""
    from tools.devstack.refvalidator import ReferenceValidator, errors, summarize

    root, env = scaffolded
    out = tmp_path / "bundle.json"
    proc = _cli(env, "map", str(_sample(root)), "-o", str(out), "--export-time", "2026-04-06T10:00:00Z")
    assert proc.returncode == 0, proc.stderr
    igs = sorted(p for p in (root / "igs").iterdir() if (p / "package.json").is_file())
    bundle = json.loads(out.read_text(encoding="utf-8"))
    broken = json.loads(out.read_text(encoding="utf-8"))  # the check bites: a unit the profile fixes otherwise
    spo2 = next(e["resource"] for e in broken["entry"] if "diga-spo2" in str(e["resource"].get("meta")))
    spo2["valueQuantity"]["code"] = "/min"
    with ReferenceValidator(igs, log_file=tmp_path / "refvalidator.log") as hl7:
        outcome, bad = hl7.validate(bundle), hl7.validate(broken)
    assert errors(outcome) == [], summarize(outcome, "error")
    assert "fixed to '%' in the profile https://diga-exporter.example.org/fhir/StructureDefinition/diga-spo2|" \
        in summarize(bad, "error"), summarize(bad, "error")
