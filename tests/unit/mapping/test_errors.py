"""One broken mapping per error code: the code and the YAML line are reported; bad domain input
gets an OperationOutcome naming the JSON path; a failed export never returns a Bundle."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from exporter.engine.check import check_bindings
from exporter.settings import get_settings
from tests.unit.mapping.conftest import EXPORT_TIME, load

TYPICAL = json.loads((get_settings().root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))


def _edit(mappings: Path, name: str, old: str, new: str) -> None:
    path = mappings / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text not found in {name}: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(mappings: Path, name: str, needle: str) -> int:
    for i, line in enumerate((mappings / name).read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


CASES = [
    # (id, file, old, new, expected code, text on the reported line)
    ("yaml", "resources/body-weight.yaml", "status: final", "status: [final", "MAP_YAML", None),
    ("duplicate-key", "resources/body-weight.yaml", "  status: final", "  status: final\n  status: amended",
     "MAP_YAML_DUPLICATE", "status: amended"),
    ("unknown-top-key", "resources/body-weight.yaml", "for_each: measurements", "for_eahc: measurements",
     "MAP_UNKNOWN_KEY", "for_eahc"),
    ("unknown-op-key", "resources/body-weight.yaml", "{path: value, as: decimal}", "{path: value, ass: decimal}",
     "MAP_UNKNOWN_KEY", "ass: decimal"),
    ("profile", "resources/body-weight.yaml", "profile: diga-body-weight", "profile: diga-body-wieght",
     "MAP_PROFILE_UNKNOWN", "profile:"),
    ("table", "resources/body-weight.yaml", "{table: ucum-units, key: {path: unit}, field: display}",
     "{table: ucum-unit, key: {path: unit}, field: display}", "MAP_TABLE_UNKNOWN", "ucum-unit,"),
    ("ref", "resources/body-weight.yaml", "subject: {ref: patient}", "subject: {ref: patients}",
     "MAP_REF_UNKNOWN", "ref: patients"),
    ("path", "resources/body-weight.yaml", "{path: measured_at, as: dateTime}", "{path: 'measured at', as: dateTime}",
     "MAP_PATH_SYNTAX", "measured at"),
    ("fhirpath", "resources/body-weight.yaml", "when: \"kind = 'weight'\"", "when: \"kind = 'weight')\"",
     "MAP_FHIRPATH_SYNTAX", "when:"),
    ("template", "resources/device.yaml", "display: {template: \"{{ doc.diga.name }} DiGA\"}",
     "display: {template: \"{{ doc.diga.name } DiGA\"}", "MAP_TEMPLATE_SYNTAX", "display:"),
    ("as", "resources/body-weight.yaml", "{path: value, as: decimal}", "{path: value, as: float}",
     "MAP_AS_UNKNOWN", "as: float"),
    ("spec", "resources/body-weight.yaml", "{path: value, as: decimal}", "{path: value, template: x}",
     "MAP_SPEC", "template: x"),
    ("section", "resources/body-weight.yaml", "section: vital-signs", "section: vitals", "MAP_SECTION_UNKNOWN",
     "section: vitals"),
    ("reserved", "resources/body-weight.yaml", "  status: final", "  id: {path: id}\n  status: final", "MAP_RESERVED",
     "id: {path: id}"),
    ("table-entry", "codes/ucum-units.yaml", "  kg:\n    codings:", "  kg:\n    codigns:", "MAP_UNKNOWN_KEY", "codigns"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_load_errors_name_code_and_line(case, scratch_mappings):
    _, file, old, new, code, needle = case
    _edit(scratch_mappings, file, old, new)
    exporter = load(scratch_mappings)
    hits = [i for i in exporter.load_issues if i.message_id == code]
    assert hits, [i.format() for i in exporter.load_issues]
    loc = hits[0].location
    assert loc is not None and loc.file.endswith(file) and loc.line
    if needle is not None:
        assert loc.line == _line_of(scratch_mappings, file, needle), hits[0].format()
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None and not result.ok


def test_table_entry_without_a_usable_coding(scratch_mappings):
    """An entry whose every coding is broken is reported and left out: nothing downstream (the
    mapping check, the binding check, an export) meets a code without codings."""
    _edit(scratch_mappings, "codes/ucum-units.yaml", "  kg:\n    codings:\n      - system: http://unitsofmeasure.org\n",
          "  kg:\n    codings:\n      - sytem: http://unitsofmeasure.org\n")
    exporter = load(scratch_mappings)
    hits = [i for i in exporter.load_issues if i.message_id == "MAP_TABLE_SHAPE"]
    assert hits and "coding 0 of entry 'kg'" in hits[0].message
    assert hits[0].location.line == _line_of(scratch_mappings, "codes/ucum-units.yaml", "sytem:")
    issues = check_bindings(exporter.engine, exporter.validator.compiler, exporter.validator.expander)
    assert isinstance(issues, list)  # no IndexError on the entry
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None and not result.ok


def test_unknown_key_gets_a_suggestion(scratch_mappings):
    _edit(scratch_mappings, "resources/body-weight.yaml", "for_each: measurements", "for_eahc: measurements")
    issue = next(i for i in load(scratch_mappings).load_issues if i.message_id == "MAP_UNKNOWN_KEY")
    assert "did you mean 'for_each'" in issue.message


def test_check_reports_codes_the_profile_does_not_allow(scratch_mappings):
    _edit(scratch_mappings, "codes/ucum-units.yaml", "code: kg", "code: lb")
    exporter = load(scratch_mappings)
    issues = check_bindings(exporter.engine, exporter.validator.compiler, exporter.validator.expander)
    hits = [i for i in issues if i.message_id == "MAP_CODE_NOT_ALLOWED"]
    assert hits and hits[0].location.file.endswith("resources/body-weight.yaml")


def test_unmapped_value_names_table_not_value(exporter):
    doc = copy.deepcopy(TYPICAL)
    doc["diagnoses"][0]["snomed_code"] = "197480006"  # in the table
    doc["diary_entries"][0]["symptoms"] = ["headache"]
    schema_ok = exporter.check_domain(doc) == []
    assert schema_ok
    exporter_engine = exporter.engine
    table = exporter_engine.ms.tables["diary-symptoms"]
    saved = table.entries.pop("headache")
    try:
        result = exporter.export(doc, export_time=EXPORT_TIME)
    finally:
        table.entries["headache"] = saved  # exactly as loaded: the session's exporter is shared
    hits = [i for i in result.issues if i.message_id == "MAP_CODE_UNMAPPED"]
    assert result.bundle is None
    assert hits and "diary-symptoms" in hits[0].message
    assert "headache" not in hits[0].message, "a record's value is patient data: never in a message"
    assert hits[0].expression == ("$.diary_entries[0].symptoms[0]",)
    assert hits[0].location.file.endswith("resources/diary-entry.yaml")


def test_dangling_reference(scratch_mappings):
    _edit(scratch_mappings, "resources/phq9-score.yaml", "{ref: questionnaire-response, key: {path: id}}",
          "{ref: questionnaire-response, key: {template: \"x{{ item.id }}\"}}")
    result = load(scratch_mappings).export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    assert any(i.message_id == "MAP_REF_DANGLING" for i in result.issues)


def test_conversion_error(scratch_mappings):
    _edit(scratch_mappings, "resources/body-weight.yaml", "{path: measured_at, as: dateTime}",
          "{path: source, as: dateTime}")
    result = load(scratch_mappings).export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    hit = next(i for i in result.issues if i.message_id == "MAP_CONVERT")
    assert hit.expression[0].startswith("$.measurements[")


def test_domain_schema_errors_name_the_path_not_the_value(exporter):
    doc = copy.deepcopy(TYPICAL)
    doc["patient"]["kvnr"] = "not-a-kvnr-Mustermann"
    doc["measurements"][0]["unit"] = "stone"
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.bundle is None
    paths = {e for i in result.issues for e in i.expression}
    assert "$.patient.kvnr" in paths
    assert all("Mustermann" not in i.message and "stone" not in i.message for i in result.issues)
    assert result.operation_outcome()["resourceType"] == "OperationOutcome"


def test_not_an_object(exporter):
    result = exporter.export(["x"], export_time=EXPORT_TIME)
    assert result.bundle is None and result.issues[0].message_id == "DOMAIN_SHAPE"


def test_invalid_bundle_is_never_returned(scratch_mappings):
    _edit(scratch_mappings, "resources/body-weight.yaml", "status: final", "status: preliminary")  # profile fixes final
    result = load(scratch_mappings).export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    assert any(i.message_id.startswith("VAL_") for i in result.issues)


def test_fast_and_reference_schema_validators_agree(exporter):
    """fastjsonschema (the fast path) and jsonschema (2020-12, the reference) judge alike."""
    import fastjsonschema

    root = get_settings().root / "samples" / "patients"
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*.json"))]
    broken = []
    for mutate in (lambda d: d["patient"].__setitem__("kvnr", "x"), lambda d: d["measurements"][0].__setitem__("unit", "lb"),
                   lambda d: d.__setitem__("extra", 1), lambda d: d["questionnaires"].append({"id": "x"}),
                   lambda d: d["measurements"][0].pop("measured_at"), lambda d: d["export_period"].__setitem__("to", "soon")):
        d = copy.deepcopy(docs[-1])
        mutate(d)
        broken.append(d)
    for d in docs + broken:
        try:
            exporter._fast_schema(d)
            fast_ok = True
        except fastjsonschema.JsonSchemaException:
            fast_ok = False
        assert fast_ok == (next(exporter._schema_validator.iter_errors(d), None) is None)
