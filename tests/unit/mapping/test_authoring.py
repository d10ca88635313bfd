"""Mapping authoring without silent loss (issue 14): the mistakes a DiGA team makes while adding a
measurement kind, each applied to a copy of the mapping set, fail at `check` (or, where they depend
on the data, at `map`) with the mapping's file:line:column and a fix hint."""

from __future__ import annotations

import copy
import json

import pytest

from exporter.cli import main
from exporter.engine.static_check import check_static
from exporter.settings import get_settings
from tests.unit.mapping.conftest import EXPORT_TIME, load
from tests.unit.mapping.test_errors import TYPICAL, _edit, _line_of

SCHEMA = json.loads((get_settings().root / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))
WEIGHT = "resources/body-weight.yaml"


def _issues(mappings, code):
    return [i for i in load(mappings).load_issues if i.message_id == code]


def _only(mappings, code, file, needle):
    """The one issue `code`, located in `file` on the line containing `needle`."""
    hits = _issues(mappings, code)
    assert len(hits) == 1, [i.format() for i in load(mappings).load_issues]
    loc = hits[0].location
    assert loc.file.endswith(file) and loc.line == _line_of(mappings, file, needle) and loc.column, hits[0].format()
    return hits[0]


def _measurement_kinds() -> list[str]:
    return SCHEMA["$defs"]["measurement_kind"]["enum"]


def test_the_reference_mapping_set_passes_every_static_check(exporter):
    assert check_static(exporter.engine, SCHEMA) == []
    assert not any(i.is_error for i in exporter.load_issues)


# -- mistake 1: a misspelt field in `when` ---------------------------------------------------------
def test_misspelt_when_field_fails_check_with_line_and_suggestion(scratch_mappings):
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kindd = 'weight'\"")
    issue = _only(scratch_mappings, "MAP_FIELD_UNKNOWN", WEIGHT, "kindd")
    assert "no field 'kindd'" in issue.message and "did you mean 'kind'?" in issue.message
    result = load(scratch_mappings).export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None and result.issues[0].message_id == "MAP_SET_INVALID"


def test_misspelt_when_fails_the_export_even_past_check(scratch_mappings):
    """The run-time guard on its own: with the static finding set aside, the weight records no
    mapping selects fail the export, each named by its JSON path, blamed on the mapping whose
    condition names their value."""
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kindd = 'weight'\"")
    exporter = load(scratch_mappings)
    exporter.engine.issues[:] = [i for i in exporter.engine.issues if i.message_id != "MAP_FIELD_UNKNOWN"]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_UNMAPPED"]
    weights = [f"$.measurements[{i}]" for i, m in enumerate(TYPICAL["measurements"]) if m["kind"] == "weight"]
    assert [h.expression[0] for h in hits] == weights
    assert all(h.location.file.endswith(WEIGHT) and h.location.line == _line_of(scratch_mappings, WEIGHT, "kindd")
               for h in hits)
    assert "mapping 'body-weight'" in hits[0].message and "check its condition" in hits[0].message


def test_data_dependent_gap_fails_map_naming_the_records(scratch_mappings):
    """A valid condition that leaves some records out (only manual weights): known only per record."""
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kind = 'weight' and source = 'manual'\"")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_UNMAPPED"]
    expected = [f"$.measurements[{i}]" for i, m in enumerate(TYPICAL["measurements"])
                if m["kind"] == "weight" and m["source"] != "manual"]
    assert expected and [h.expression[0] for h in hits] == expected
    assert "`ignore:` rule" in hits[0].message or "check its condition" in hits[0].message


def test_misspelt_when_fails_fhir_export_map(scratch_mappings, tmp_path, capsys):
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kindd = 'weight'\"")
    out = tmp_path / "bundle.json"
    code = main(["map", str(get_settings().root / "samples" / "patients" / "typical.json"), "--mappings",
                 str(scratch_mappings), "--export-time", EXPORT_TIME, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    line = _line_of(scratch_mappings, WEIGHT, "kindd")
    assert f"body-weight.yaml:{line}:1: error MAP_FIELD_UNKNOWN" in err and "did you mean 'kind'" in err


# -- mistake 2: a misspelt `path` ------------------------------------------------------------------
def test_misspelt_path_fails_check(scratch_mappings, capsys):
    _edit(scratch_mappings, WEIGHT, "value: {path: value, as: decimal}", "value: {path: valeu, as: decimal}")
    issue = _only(scratch_mappings, "MAP_FIELD_UNKNOWN", WEIGHT, "valeu")
    assert "did you mean 'value'?" in issue.message
    assert main(["check", "--mappings", str(scratch_mappings)]) == 1
    line = _line_of(scratch_mappings, WEIGHT, "valeu")
    assert f"body-weight.yaml:{line}:" in capsys.readouterr().out


def test_validator_issue_names_the_yaml_line_and_the_record(scratch_mappings):
    """A path the schema has, but that is empty for weights: the validator's finding at
    valueQuantity.value names the YAML node that made the element and the record's JSON path."""
    _edit(scratch_mappings, WEIGHT, "value: {path: value, as: decimal}", "value: {path: systolic, as: decimal}")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues)
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    hits = [i for i in result.issues if i.message_id.startswith("VAL_") and "valueQuantity" in i.expression[0]]
    weights = [f"$.measurements[{i}]" for i, m in enumerate(TYPICAL["measurements"]) if m["kind"] == "weight"]
    assert hits and {h.expression[1] for h in hits} == set(weights)
    line = _line_of(scratch_mappings, WEIGHT, "path: systolic")
    for h in hits:
        assert h.location.file.endswith(WEIGHT) and h.location.line == line, h.format()


def test_every_validator_issue_on_a_mapped_entry_traces_back(scratch_mappings):
    _edit(scratch_mappings, WEIGHT, "status: final", "status: preliminary")
    result = load(scratch_mappings).export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    hits = [i for i in result.issues if i.message_id.startswith("VAL_")]
    assert hits
    for h in hits:
        assert h.location.file.endswith(WEIGHT) and h.location.line == _line_of(scratch_mappings, WEIGHT, "preliminary")
        index = int(h.expression[1].removeprefix("$.measurements[").rstrip("]"))
        assert TYPICAL["measurements"][index]["kind"] == "weight"


# -- mistake 3: FHIRPath functions and syntax ------------------------------------------------------
def test_unknown_fhirpath_function_fails_check(scratch_mappings):
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kind = 'weight' and foo()\"")
    issue = _only(scratch_mappings, "MAP_FHIRPATH_FUNCTION", WEIGHT, "foo()")
    assert "no FHIRPath function foo()" in issue.message


def test_wrong_number_of_arguments_fails_check(scratch_mappings):
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kind = 'weight' and id.startsWith()\"")
    assert "startsWith() takes 1 argument(s), not 0" in _only(scratch_mappings, "MAP_FHIRPATH_FUNCTION", WEIGHT,
                                                             "startsWith").message


@pytest.mark.parametrize("when, words", [
    ("kind == 'weight'", "single '='"),
    ("kind = 'weight", "not closed"),
    ('kind = \\"weight\\"', "single quotes"),
    ("kind = 'weight' && value > 1", "write 'and'"),
    ("(kind = 'weight'", "')'"),
])
def test_fhirpath_syntax_errors_read_as_one_sentence(scratch_mappings, when, words):
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", f'when: "{when}"')
    issue = _only(scratch_mappings, "MAP_FHIRPATH_SYNTAX", WEIGHT, "when:")
    assert words in issue.message and "column" in issue.message
    assert "expecting" not in issue.message and "token recognition" not in issue.message


@pytest.mark.parametrize("old, new, words", [
    ("when: \"kind = 'weight'\"", "when: \"kind = 'weight' and value = 'heavy'\"", "never equal"),
    ("when: \"kind = 'weight'\"", "when: \"kind = 'weight' and kind.upper() = 'WEIGHT' and value.lower() = 'x'\"",
     "lower() works on strings"),
    ("when: \"kind = 'weight'\"", "when: \"kind = 'weight' and (measured_at + 1).exists()\"", "cannot combine"),
])
def test_fhirpath_type_errors_fail_check(scratch_mappings, old, new, words):
    _edit(scratch_mappings, WEIGHT, old, new)
    assert words in _only(scratch_mappings, "MAP_FHIRPATH_TYPE", WEIGHT, "when:").message


def test_misspelt_template_field_and_variable_fail_check(scratch_mappings):
    device = "resources/device.yaml"  # a value template (narratives are the templates in mappings/templates/)
    _edit(scratch_mappings, device, 'display: {template: "{{ doc.diga.name }} DiGA"}',
          'display: {template: "{{ doc.diga.nmae }} {{ dco.diga }} DiGA"}')
    assert "did you mean 'name'" in _only(scratch_mappings, "MAP_FIELD_UNKNOWN", device, "display:").message
    assert "did you mean 'doc'" in _only(scratch_mappings, "MAP_TEMPLATE_VARIABLE", device, "display:").message


# -- mistake 4: a code-table target element id in the wrong form -----------------------------------
def test_target_element_must_be_a_snapshot_id(scratch_mappings):
    table = "codes/ucum-units.yaml"
    _edit(scratch_mappings, table, "  - keys: [kg, g]\n    profile: https://diga-exporter.example.org/fhir/StructureDefinition/"
          "diga-body-weight\n    element: Observation.value[x]:valueQuantity.code",
          "  - keys: [kg, g]\n    profile: https://diga-exporter.example.org/fhir/StructureDefinition/"
          "diga-body-weight\n    element: Observation.value[x].code")
    hits = _issues(scratch_mappings, "MAP_TABLE_TARGET")
    assert len(hits) == 1
    assert "did you mean 'Observation.value[x]:valueQuantity.code'" in hits[0].message
    text = (scratch_mappings / table).read_text(encoding="utf-8").splitlines()
    assert text[hits[0].location.line - 1].strip() == "element: Observation.value[x].code"


def test_target_keys_must_be_entries(scratch_mappings):
    _edit(scratch_mappings, "codes/ucum-units.yaml", "  - keys: [kg, g]", "  - keys: [kgs, g]")
    assert "did you mean 'kg'" in _issues(scratch_mappings, "MAP_TABLE_TARGET")[0].message


# -- a condition no value of the schema can meet; records no mapping selects -----------------------
def test_a_kind_the_schema_does_not_list_fails_check(scratch_mappings):
    assert "spo2" not in _measurement_kinds()
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kind = 'spo2'\"")
    issue = _only(scratch_mappings, "MAP_CONDITION_NEVER", WEIGHT, "spo2")
    assert "never 'spo2'" in issue.message and "'weight'" in issue.message
    unmapped = _issues(scratch_mappings, "MAP_RECORDS_UNMAPPED")  # and the weights are now mapped by nothing
    assert len(unmapped) == 1 and "'weight'" in unmapped[0].message


def test_a_kind_without_a_mapping_fails_check_until_it_is_ignored(scratch_mappings):
    (scratch_mappings / "resources" / "blood-glucose.yaml").unlink()
    unmapped = _issues(scratch_mappings, "MAP_RECORDS_UNMAPPED")
    assert len(unmapped) == 1 and "kind 'glucose'" in unmapped[0].message and "ignore:" in unmapped[0].message
    layout = scratch_mappings / "bundle.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + "\nignore:\n  - for_each: measurements\n"
                      "    when: \"kind = 'glucose'\"\n    reason: glucose is exported by the lab system\n", encoding="utf-8")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues if i.is_error]
    exported = {e["resource"]["meta"]["profile"][0].split("|")[0].rsplit("/", 1)[-1] for e in result.bundle["entry"]}
    assert "diga-blood-glucose" not in exported and "diga-body-weight" in exported


def test_an_ignore_rule_needs_a_reason(scratch_mappings):
    layout = scratch_mappings / "bundle.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + "\nignore:\n  - for_each: measurements\n"
                      "    when: \"kind = 'glucose'\"\n", encoding="utf-8")
    assert any("needs 'reason'" in i.message for i in _issues(scratch_mappings, "MAP_SHAPE"))


def test_an_ignore_rule_may_not_contradict_a_mapping(scratch_mappings):
    layout = scratch_mappings / "bundle.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + "\nignore:\n  - for_each: measurements\n"
                      "    when: \"kind = 'weight'\"\n    reason: not wanted\n", encoding="utf-8")
    assert "mapping 'body-weight'" in _issues(scratch_mappings, "MAP_IGNORE_MAPPED")[0].message


def test_two_mappings_may_not_map_the_same_records(scratch_mappings):
    _edit(scratch_mappings, "resources/heart-rate.yaml", "when: \"kind = 'heart_rate'\"", "when: \"kind = 'weight'\"")
    hits = _issues(scratch_mappings, "MAP_RECORDS_OVERLAP")
    assert len(hits) == 1 and hits[0].location.file.endswith("resources/heart-rate.yaml")


def test_overlap_found_per_record_when_conditions_are_not_simple(scratch_mappings):
    _edit(scratch_mappings, "resources/heart-rate.yaml", "when: \"kind = 'heart_rate'\"",
          "when: \"kind = 'heart_rate' or (kind = 'weight' and source = 'manual')\"")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues)
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_MAPPED_TWICE"]
    expected = [f"$.measurements[{i}]" for i, m in enumerate(TYPICAL["measurements"])
                if m["kind"] == "weight" and m["source"] == "manual"]
    assert result.bundle is None and expected and [h.expression[0] for h in hits] == expected


def test_a_list_no_mapping_reads_fails_check(scratch_mappings):
    (scratch_mappings / "resources" / "condition.yaml").unlink()
    hits = _issues(scratch_mappings, "MAP_LIST_UNMAPPED")
    assert len(hits) == 1 and "'diagnoses'" in hits[0].message
    layout = scratch_mappings / "bundle.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + "\nignore:\n  - for_each: diagnoses\n"
                      "    reason: diagnoses are not part of this DiGA's export\n", encoding="utf-8")
    assert _issues(scratch_mappings, "MAP_LIST_UNMAPPED") == []


def test_element_node_follows_lists_as_far_as_they_tell():
    from exporter.engine.origin import element_node

    body = {"component": [{"code": {"literal": "a"}, "valueQuantity": {"value": {"path": "systolic"}}},
                          {"code": {"literal": "b"}, "valueQuantity": {"value": {"path": "diastolic"}}}],
            "identifier": [{"value": "x"}, {"value": {"path": "kvnr"}, "when": "kvnr.exists()"}],
            "note": [{"when": "mood.exists()", "text": "m"}, {"for_each": "symptoms", "item": {"text": {"path": "$this"}}}]}
    at = ("resource",)
    assert element_node(body, at, "component[1].valueQuantity.value") == at + ("component", 1, "valueQuantity", "value")
    assert element_node(body, at, "component[1].valueQuantity.value.extension") == \
        at + ("component", 1, "valueQuantity", "value")  # below an operator: the operator's node
    assert element_node(body, at, "identifier[1].value") == at + ("identifier", 1, "value")  # the last one left
    assert element_node(body, at, "note[1].text") == at + ("note",)  # a conditional item, then a for_each: not told
    assert element_node(body, at, "status") == at  # an element the mapping does not write
