"""No silent loss below the top level, template bindings followed by `check`, integers written as
2.0, and unmapped records blamed on the right file (review 1, findings 8, 9 and 12). Each mistake
is applied to a copy of the reference mapping set."""

from __future__ import annotations

import copy
import json
import re

import pytest

from exporter.cli import main
from exporter.engine.templating import template_reads
from exporter.mapping.fields import IntegerPlaces, fields_of
from exporter.settings import get_settings
from tests.unit.mapping.conftest import EXPORT_TIME, load
from tests.unit.mapping.test_errors import TYPICAL, _edit, _line_of

DIARY = "resources/diary-entry.yaml"
WEIGHT = "resources/body-weight.yaml"
SYMPTOMS = "    - for_each: symptoms\n      item:"
SCHEMA = json.loads((get_settings().root / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))
HEADACHE, FATIGUE = "25064002", "84229001"  # SNOMED CT codes of the diary-symptoms table's entries


def _issues(mappings, code):
    return [i for i in load(mappings).load_issues if i.message_id == code]


def _filter_symptoms(mappings, when: str) -> None:
    _edit(mappings, DIARY, SYMPTOMS, f"    - for_each: symptoms\n      when: \"{when}\"\n      item:")


def _ignore(mappings, rule: str) -> None:
    layout = mappings / "bundle.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + "\nignore:\n" + rule, encoding="utf-8")


def _headache_paths() -> list[str]:
    return [f"$.diary_entries[{i}].symptoms[{j}]" for i, e in enumerate(TYPICAL["diary_entries"])
            for j, s in enumerate(e["symptoms"]) if s == "headache"]


# -- finding 8: a nested `when` that leaves elements out -------------------------------------------
def test_a_nested_filter_that_leaves_symptoms_out_fails_check(scratch_mappings):
    _filter_symptoms(scratch_mappings, "$this != 'headache'")
    hits = _issues(scratch_mappings, "MAP_RECORDS_UNMAPPED")
    assert len(hits) == 1, [i.format() for i in load(scratch_mappings).load_issues]
    assert "'headache'" in hits[0].message and "diary_entries[].symptoms" in hits[0].message
    assert "ignore:" in hits[0].message
    loc = hits[0].location
    assert loc.file.endswith(DIARY) and loc.line == _line_of(scratch_mappings, DIARY, "$this != 'headache'") and loc.column


def test_a_nested_filter_that_leaves_symptoms_out_fails_the_export_per_element(scratch_mappings):
    """The run-time guard on its own (a condition check cannot decide): every headache the filter
    leaves out fails the export, named by its JSON path, blamed on the filter's line."""
    _filter_symptoms(scratch_mappings, "$this.startsWith('head').not()")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle is None
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_UNMAPPED"]
    assert [h.expression[0] for h in hits] == _headache_paths() and len(hits) == 2
    line = _line_of(scratch_mappings, DIARY, "startsWith('head')")
    assert all(h.location.file.endswith(DIARY) and h.location.line == line for h in hits)
    assert "leaves it out" in hits[0].message and "diary_entries[].symptoms" in hits[0].message


def test_a_nested_filter_declared_as_a_selection_exports(scratch_mappings):
    """Leaving elements out on purpose is written down, with the reason, as an ignore rule for the
    nested list; then check is clean and the export has no headache coding."""
    _filter_symptoms(scratch_mappings, "$this != 'headache'")
    _ignore(scratch_mappings, "  - for_each: diary_entries[].symptoms\n    when: \"$this = 'headache'\"\n"
            "    reason: headaches are reported to the physician separately\n")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues if i.is_error]
    text = str(result.bundle)
    assert HEADACHE not in text and FATIGUE in text


def test_complementary_nested_filters_map_every_symptom(scratch_mappings):
    _filter_symptoms(scratch_mappings, "$this != 'headache'")
    # a second item over the same list, for the headaches: together they select every symptom once
    _edit(scratch_mappings, DIARY, "  note:\n", "    - for_each: symptoms\n      when: \"$this = 'headache'\"\n"
          "      item:\n        code: {coding: [{system: https://diga-exporter.example.org/fhir/CodeSystem/diga-concepts, "
          "code: symptom, display: Reported symptom}]}\n"
          "        valueCodeableConcept: {table: diary-symptoms, key: {path: \"$this\"}}\n  note:\n")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues if i.is_error]
    assert str(result.bundle).count(HEADACHE) == 2


def test_two_nested_filters_selecting_the_same_symptoms_fail_check(scratch_mappings):
    _filter_symptoms(scratch_mappings, "$this != 'nausea'")
    _edit(scratch_mappings, DIARY, "  note:\n", "    - for_each: symptoms\n      when: \"$this = 'headache'\"\n"
          "      item: {text: x}\n  note:\n")
    hits = _issues(scratch_mappings, "MAP_RECORDS_OVERLAP")
    assert len(hits) == 1 and "'headache'" in hits[0].message, [i.format() for i in load(scratch_mappings).load_issues]
    assert hits[0].location.line == _line_of(scratch_mappings, DIARY, "$this = 'headache'")


def test_two_nested_filters_selecting_the_same_symptom_fail_the_export(scratch_mappings):
    _filter_symptoms(scratch_mappings, "$this.startsWith('h')")
    _edit(scratch_mappings, DIARY, "  note:\n", "    - for_each: symptoms\n      when: \"$this.startsWith('h').not() or "
          "$this = 'headache'\"\n      item: {text: x}\n  note:\n")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_MAPPED_TWICE"]
    assert result.bundle is None and [h.expression[0] for h in hits] == _headache_paths()
    assert all(h.location.line == _line_of(scratch_mappings, DIARY, "or $this = 'headache'") for h in hits)


def test_a_nested_ignore_rule_is_read_against_the_schema(scratch_mappings):
    _filter_symptoms(scratch_mappings, "$this != 'headache'")
    _ignore(scratch_mappings, "  - for_each: diary_entries[].symptomz\n    reason: x\n")
    hits = _issues(scratch_mappings, "MAP_FIELD_UNKNOWN")
    assert len(hits) == 1 and "did you mean 'symptoms'" in hits[0].message
    assert hits[0].location.file.endswith("bundle.yaml")


def test_a_nested_ignore_rule_may_not_contradict_a_filter(scratch_mappings):
    _filter_symptoms(scratch_mappings, "$this != 'headache'")
    _ignore(scratch_mappings, "  - for_each: diary_entries[].symptoms\n    when: \"$this = 'nausea'\"\n    reason: x\n")
    hits = _issues(scratch_mappings, "MAP_IGNORE_MAPPED")
    assert len(hits) == 1 and "'nausea'" in hits[0].message and hits[0].location.file.endswith("bundle.yaml")


def test_a_nested_view_of_records_exported_anyway_is_no_loss(scratch_mappings):
    """A nested `for_each` over a list its own mappings export record by record (here the weights'
    ids on the Patient) selects what it likes: those records are exported all the same."""
    _edit(scratch_mappings, "resources/patient.yaml", "  identifier:\n",
          "  identifier:\n    - for_each: $.measurements\n      when: \"kind = 'weight'\"\n"
          "      item: {system: 'urn:x', value: {path: id}}\n")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]


# -- finding 8: template bindings ------------------------------------------------------------------
@pytest.mark.parametrize("template, shown", [
    ("{% with e = item %}{{ e.nte | default('') }}{% endwith %}", "e.nte"),
    ("{% for a in doc.diary_entries %}{{ a.nte }}{% endfor %}", "a.nte"),
    ("{% set e = item %}{{ e.nte | default('') }}", "e.nte"),
    ("{% macro line(e) %}{{ e.nte }}{% endmacro %}{{ line(item) }}", "e.nte"),
    ("{{ item.get('nte', '') }}", "item.get('nte')"),
    ("{% for a in doc.diary_entries | selectattr('mood', 'defined') | sort(attribute='recorded_at') %}{{ a.nte }}"
     "{% endfor %}", "a.nte"),
    ("{% set last = doc.diary_entries | last %}{{ last.nte }}", "last.nte"),
])
def test_template_bindings_are_followed_by_check(scratch_mappings, capsys, template, shown):
    _edit(scratch_mappings, DIARY, '    - text: {path: note, as: markdown}',
          f'    - text:\n        template: "Diary entry of {{{{ item.recorded_at[:10] }}}}{template}"')
    hits = _issues(scratch_mappings, "MAP_FIELD_UNKNOWN")
    assert len(hits) == 1, [i.format() for i in load(scratch_mappings).load_issues]
    assert f"template reads {shown}:" in hits[0].message and "did you mean 'note'?" in hits[0].message
    assert main(["check", "--mappings", str(scratch_mappings)]) == 1
    line = _line_of(scratch_mappings, DIARY, "Diary entry of")
    assert f"diary-entry.yaml:{line}:9: error MAP_FIELD_UNKNOWN" in capsys.readouterr().out  # at `template:`


def test_template_reads_follow_bindings_and_know_nothing_of_other_locals():
    _, reads = template_reads("{% for i in range(3) %}{{ i.x }}{{ loop.index }}{% endfor %}"
                              "{% for k, v in item.items() %}{{ v.y }}{% endfor %}{{ item.unit.upper() }}"
                              "{% macro r(e) %}{{ r(e.z) }}{% endmacro %}{{ r(parent) }}")
    assert {(r.variable, r.steps) for r in reads} == {("item", ()), ("item", ("unit",)), ("parent", ()),
                                                      ("parent", ("z",))}
    _, reads = template_reads("{% for a in doc.diary_entries %}{% with b = a %}{{ b.mood }}{% endwith %}{% endfor %}")
    assert ("doc", ("diary_entries", 0, "mood"), "b.mood") in {(r.variable, r.steps, r.text) for r in reads}


# -- finding 12: unmapped records blamed on the right file -----------------------------------------
@pytest.mark.parametrize("old, new", [
    ("status: final", "status: [final"),  # not YAML
    ("profile: diga-body-weight", "profile: diga-body-wieght"),  # unknown profile
])
def test_a_mapping_that_did_not_load_causes_no_cascade(scratch_mappings, old, new):
    _edit(scratch_mappings, WEIGHT, old, new)
    issues = load(scratch_mappings).load_issues
    errors = [i for i in issues if i.is_error]
    assert len(errors) == 1 and errors[0].location.file.endswith(WEIGHT), [i.format() for i in issues]


def test_records_no_mapping_can_be_blamed_for_are_reported_at_bundle_yaml(scratch_mappings):
    (scratch_mappings / "resources" / "heart-rate.yaml").unlink()
    hits = _issues(scratch_mappings, "MAP_RECORDS_UNMAPPED")
    assert len(hits) == 1 and "'heart_rate'" in hits[0].message
    assert hits[0].location.file.endswith("bundle.yaml")


def test_a_condition_no_value_meets_is_blamed_for_the_records_it_leaves(scratch_mappings):
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kind = 'spo2'\"")
    hits = _issues(scratch_mappings, "MAP_RECORDS_UNMAPPED")
    assert len(hits) == 1 and "'weight'" in hits[0].message and "mapping 'body-weight'" in hits[0].message
    assert hits[0].location.file.endswith(WEIGHT) and hits[0].location.line == _line_of(scratch_mappings, WEIGHT, "spo2")


def test_at_map_a_misspelt_literal_is_blamed_on_its_mapping(scratch_mappings):
    """`kind.startsWith('weigth')` selects nothing: the weights are blamed on body-weight.yaml, not on
    the alphabetically first mapping of measurements (nor on body-height, whose 'height' is as close)."""
    _edit(scratch_mappings, WEIGHT, "when: \"kind = 'weight'\"", "when: \"kind.startsWith('weigth')\"")
    result = load(scratch_mappings).export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_UNMAPPED"]
    assert hits and all(h.location.file.endswith(WEIGHT) for h in hits), [h.format() for h in hits]
    assert "mapping 'body-weight'" in hits[0].message


def test_at_map_records_no_mapping_can_be_blamed_for_are_reported_at_bundle_yaml(scratch_mappings):
    (scratch_mappings / "resources" / "heart-rate.yaml").unlink()
    _ignore(scratch_mappings, "  - for_each: measurements\n    when: \"kind = 'heart_rate' and value > 1000\"\n"
            "    reason: implausible heart rates are not exported\n")
    exporter = load(scratch_mappings)
    assert not any(i.is_error for i in exporter.load_issues), [i.format() for i in exporter.load_issues]
    result = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    hits = [i for i in result.issues if i.message_id == "MAP_RECORD_UNMAPPED"]
    expected = [f"$.measurements[{i}]" for i, m in enumerate(TYPICAL["measurements"]) if m["kind"] == "heart_rate"]
    assert expected and [h.expression[0] for h in hits] == expected
    assert all(h.location.file.endswith("bundle.yaml") for h in hits) and "add a mapping" in hits[0].message


# -- finding 9: integers written as 2.0 ------------------------------------------------------------
def _integer_places() -> list[str]:
    return IntegerPlaces(fields_of(SCHEMA)).places


def _as_floats(doc, places: list[str]):
    """`doc` with the value at every place (`$.a[*].b`) that holds an int written as a float."""
    def walk(value, steps):
        if not steps:
            return float(value) if type(value) is int else value
        step, rest = steps[0], steps[1:]
        if step == "[*]":
            return [walk(v, rest) for v in value] if isinstance(value, list) else value
        return {k: walk(v, rest) if k == step else v for k, v in value.items()} if isinstance(value, dict) else value
    for place in places:
        doc = walk(doc, re.findall(r"\[\*\]|[A-Za-z_]\w*", place.removeprefix("$")))
    return doc


def test_the_integer_places_are_the_schemas():
    places = _integer_places()
    integers = [f"$.{k}[*].{name}" for k, d in (("diary_entries", "diary_entry"), ("questionnaires", "questionnaire"),
                                                ("diagnoses", "diagnosis"))
                for name, p in SCHEMA["$defs"][d]["properties"].items() if p.get("type") == "integer"]
    assert integers and set(integers) <= set(places) and "$.questionnaires[*].answers[*]" in places
    assert not any("measurements" in p for p in places)  # decimals keep their 72.0


def test_integers_written_as_floats_export_as_the_integers_they_are(exporter):
    floats = _as_floats(copy.deepcopy(TYPICAL), _integer_places())
    assert any(type(e.get("mood")) is float for e in floats["diary_entries"])
    assert type(floats["diagnoses"][0]["icd10gm_version"]) is float
    before = copy.deepcopy(floats)
    result = exporter.export(floats, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues if i.is_error]
    reference = exporter.export(copy.deepcopy(TYPICAL), export_time=EXPORT_TIME)
    assert result.bundle == reference.bundle  # codes, Coding.version "2026", narratives: as for the integers
    assert json.dumps(result.bundle) == json.dumps(reference.bundle)  # 2, not 2.0, anywhere
    assert floats == before and json.dumps(floats) == json.dumps(before)  # the caller's document is left as it is


def test_a_decimal_keeps_its_written_precision(exporter):
    doc = copy.deepcopy(TYPICAL)
    i = next(i for i, m in enumerate(doc["measurements"]) if m["kind"] == "weight")
    doc["measurements"][i]["value"] = 72.0
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok and '"value": 72.0' in json.dumps(result.bundle)


def test_an_unmapped_float_key_says_how_it_was_looked_up(exporter):
    """Past the pipeline (a caller of the engine, or a number place): the message names the cause."""
    doc = copy.deepcopy(TYPICAL)
    entry = next(e for e in doc["diary_entries"] if "mood" in e)
    entry["mood"] = float(entry["mood"])
    _, issues = exporter.engine.build(doc, EXPORT_TIME)
    hits = [i for i in issues if i.message_id == "MAP_CODE_UNMAPPED"]
    assert len(hits) == 1 and "decimal point" in hits[0].message and "mood-scale" in hits[0].message
