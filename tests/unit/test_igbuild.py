"""Pure parts of the IG build: SUSHI log parsing, package manifest, tree diff."""

from __future__ import annotations

from exporter.igbuild import diff_trees, index_entry, package_manifest, parse_sushi_log
from exporter.issues import Severity
from exporter.settings import Settings

SAMPLE_LOG = """\
info  Converting FSH to FHIR resources...
warn  The FSHOnly property is set to true, so no output specific to IG creation will be generated.
  File: sushi-config.yaml
error No element found at path foo for CardRule in Broken, skipping rule
  File: {staged}/sub/broken.fsh
  Line: 4
error Resolved value "NoSuchVS" is not a valid URI.
  File: {staged}/broken.fsh
  Line: 5 - 7

========================= SUSHI RESULTS ===========================
"""


def test_sushi_log_maps_staged_paths_back_to_profiles_fsh(tmp_path):
    settings = Settings(root=tmp_path)
    staged = tmp_path / "stage" / "input" / "fsh"
    issues = parse_sushi_log(SAMPLE_LOG.format(staged=staged), staged, settings)
    errors = [i for i in issues if i.severity is Severity.ERROR]
    assert [e.format() for e in errors] == [
        "profiles_fsh/sub/broken.fsh:4: error IG_SUSHI: No element found at path foo for CardRule in Broken, skipping rule",
        'profiles_fsh/broken.fsh:5: error IG_SUSHI: Resolved value "NoSuchVS" is not a valid URI.',
    ]
    warnings = [i for i in issues if i.severity is Severity.WARNING]
    assert len(warnings) == 1 and warnings[0].location.file == "sushi-config.yaml"


def test_package_manifest_and_index_entry():
    manifest = package_manifest({"id": "x.y", "version": "1.2.3", "canonical": "https://e.org/fhir", "fhirVersion": "4.0.1"})
    assert manifest["name"] == "x.y" and manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    entry = index_entry("StructureDefinition-a.json", {"resourceType": "StructureDefinition", "id": "a",
                                                        "url": "u", "version": "1", "kind": "resource", "type": "Patient"})
    assert entry == {"filename": "StructureDefinition-a.json", "resourceType": "StructureDefinition", "id": "a",
                     "url": "u", "version": "1", "kind": "resource", "type": "Patient"}


def test_diff_trees_reports_added_removed_and_changed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "same.json").write_text("{}\n")
    (a / "only-a.json").write_text("1")
    (b / "only-b.json").write_text("1")
    (a / "changed.json").write_text("1")
    (b / "changed.json").write_text("2")
    assert diff_trees(a, b) == ["only-a.json", "only-b.json", "changed.json"]
    assert diff_trees(a, a) == []
