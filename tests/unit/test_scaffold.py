"""`fhir-export new-kind` on a copy of the project's sources: what it writes, and that a bad argument,
an existing kind or a file not in the expected shape is a compiler-style error, exit 2, with no file
changed (all or nothing). The built result is proven in tests/system/test_new_kind.py."""

from __future__ import annotations

import json

import pytest

from exporter import cli
from exporter.mapping.registry import load_mapping_set
from exporter.mapping.yamlsrc import load_yaml
from exporter.settings import get_settings
from tests.support.projectcopy import copy_project, tree_digest

COPIED = ("sushi-config.yaml", "profiles_fsh", "mappings", "schemas", "docs", "igs")
SPO2 = ["new-kind", "spo2", "--loinc", "2708-6", "--loinc", "59408-5", "--snomed", "103228002", "--unit", "%",
        "--title", "oxygen saturation", "--max-possible", "100", "--min", "70", "--max", "100"]


@pytest.fixture()
def project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    for key, value in copy_project(root, COPIED).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_writes_every_place_of_a_kind(project, capsys):
    code, out, err = _run(capsys, *SPO2)
    assert code == 0, err
    schema = json.loads((project / "schemas/domain-patient.schema.json").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    assert defs["measurement_kind"]["enum"][-1] == "spo2" and defs["measurement_unit"]["enum"][-1] == "%"
    branch = next(b for b in defs["measurement"]["allOf"] if b["if"]["properties"]["kind"].get("const") == "spo2")
    assert branch["then"]["properties"]["unit"]["const"] == "%"
    assert branch["then"]["properties"]["value"]["maximum"] == 100
    ms = load_mapping_set(project / "mappings")
    assert [i.format() for i in ms.issues if i.is_error] == []
    codes = [c["code"] for table in ms.tables.values() for c in table.entries.get("spo2", [])]
    # LOINC, then SNOMED CT (beside it, or in its own table); only the first LOINC code where the mapping
    # takes one coding per table (`field: coding`), and the command says so
    assert codes in (["2708-6", "59408-5", "103228002"], ["2708-6", "103228002"])
    if codes == ["2708-6", "103228002"]:
        assert "the mapping takes one coding from this table; not written: 59408-5" in out
    targets = [tg["element"] for tg in ms.tables["measurement-kind-loinc"].targets if tg["keys"] == ["spo2"]]
    # a pattern on Observation.code, or the core oxygensat LOINC slice when the tables target coding slices
    assert targets in (["Observation.code"], ["Observation.code.coding:OxygenSatCode"])
    units = ms.tables["ucum-units"]
    assert units.entries["%"] == [{"system": "http://unitsofmeasure.org", "code": "%", "display": "%"}]
    assert {"keys": ["%"], "profile": "https://diga-exporter.example.org/fhir/StructureDefinition/diga-spo2",
            "element": "Observation.value[x]:valueQuantity.code"} in units.targets  # the core parent slices value[x]
    rules, _ = load_yaml(project / "mappings/rules.yaml")
    assert rules["rules"][-1]["id"] == "plausible-spo2"
    assert rules["rules"][-1]["check"] == {"range": {"field": "value", "min": 70, "max": 100}}
    fsh = (project / "profiles_fsh/observation-spo2.fsh").read_text(encoding="utf-8")
    assert "Parent: $vs-oxygensat" in fsh and "* valueQuantity.code = #% (exactly)" in fsh
    assert "Alias: $vs-oxygensat = http://hl7.org/fhir/StructureDefinition/oxygensat" in (
        project / "profiles_fsh/aliases.fsh").read_text(encoding="utf-8")
    assert "or DiGABloodGlucose or DiGASpo2)" in (project / "profiles_fsh/composition.fsh").read_text(encoding="utf-8")
    doc = (project / "docs/domain.md").read_text(encoding="utf-8")
    assert "| `spo2` | `%` (0–100] | `diga-spo2` | 2708-6, 59408-5 | `%` |" in doc
    assert "| `plausible-spo2` | warning (configurable) | each of `measurements` where `kind` = spo2 | 70 ≤ `value` ≤ 100." in doc
    assert not list(project.rglob(".*.new-kind"))


def test_a_kind_without_core_profile_derives_from_observation(project, capsys):
    code, _, err = _run(capsys, "new-kind", "pain_score", "--loinc", "72514-3", "--snomed", "225908003", "--unit", "%")
    assert code == 0, err
    fsh = (project / "profiles_fsh/observation-pain-score.fsh").read_text(encoding="utf-8")
    assert "Parent: Observation" in fsh and "* insert VitalSignsCategory" in fsh
    units = load_mapping_set(project / "mappings").tables["ucum-units"]
    assert {"keys": ["%"], "profile": "https://diga-exporter.example.org/fhir/StructureDefinition/diga-pain-score",
            "element": "Observation.value[x].code"} in units.targets
    assert "plausible-pain-score" not in (project / "mappings/rules.yaml").read_text(encoding="utf-8")  # no range given


def test_dry_run_writes_nothing(project, capsys):
    before = tree_digest(project)
    code, out, _ = _run(capsys, *SPO2, "--dry-run")
    assert code == 0
    assert "mappings/resources/spo2.yaml: create (dry run)" in out
    assert tree_digest(project) == before


@pytest.mark.parametrize("args, expected", [
    (["new-kind", "heart_rate", "--loinc", "8867-4", "--unit", "bpm"],
     ": error SCAFFOLD_EXISTS: measurement kind 'heart_rate' exists already"),
    (["new-kind", "spo2", "--loinc", "2708-5", "--unit", "%"],
     "error SCAFFOLD_LOINC: '2708-5' is not a LOINC code with a correct check digit"),
    (["new-kind", "spo2", "--loinc", "2708-6", "--unit", "%", "--ucum", "mm[Hg"],
     "error SCAFFOLD_UCUM: 'mm[Hg' is not a UCUM code"),
    (["new-kind", "spo2", "--loinc", "2708-6", "--unit", "percent", "--ucum", "1/min"],
     "error SCAFFOLD_UCUM: LOINC 2708-6 is a core vital sign: its profile "
     "http://hl7.org/fhir/StructureDefinition/oxygensat fixes the unit to '%', not '1/min'"),
    (["new-kind", "pulse", "--loinc", "4548-4", "--snomed", "225908003", "--unit", "bpm", "--ucum", "{beats}/min"],
     "mappings/codes/ucum-units.yaml: error SCAFFOLD_UCUM: unit 'bpm' is mapped to UCUM ['/min'] already"),
    (["new-kind", "SpO2", "--loinc", "2708-6", "--unit", "%", "--snomed", "103228003"],
     "error SCAFFOLD_SNOMED: '103228003' is not a SNOMED CT id with a correct Verhoeff check digit"),
    (["new-kind", "spo2", "--loinc", "2708-6", "--unit", "%", "--min", "70", "--max", "101", "--max-possible", "100"],
     "plausible maximum 101.0 lies above the possible maximum 100.0"),
    (["new-kind", "spo2", "--loinc", "2708-6", "--unit", "%", "--like", "blood_pressure"],
     "error SCAFFOLD_USAGE: --like 'blood_pressure' is not a scalar measurement kind"),
])
def test_bad_arguments_exit_2_and_change_nothing(project, capsys, args, expected):
    _assert_refused(project, capsys, args, expected)


def _assert_refused(project, capsys, args, expected: str) -> None:
    """Exit 2, the expected compiler-style error, no traceback, no file of the project changed."""
    before = tree_digest(project)
    code, out, err = _run(capsys, *args)
    assert code == 2, out + err
    assert expected in err
    assert "Traceback" not in err
    assert tree_digest(project) == before


def test_an_existing_kind_is_named_at_its_line_of_the_schema(project, capsys):
    code, _, err = _run(capsys, "new-kind", "glucose", "--loinc", "2339-0", "--unit", "mg/dL")
    assert code == 2
    where = err.split(": error SCAFFOLD_EXISTS")[0]
    file, line = where.rsplit(":", 1)
    assert file == "schemas/domain-patient.schema.json"
    assert '"glucose"' in (project / file).read_text(encoding="utf-8").splitlines()[int(line) - 1]


def test_all_argument_problems_are_reported_together(project, capsys):
    code, _, err = _run(capsys, "new-kind", "SpO2", "--loinc", "2708-5", "--unit", "%", "--snomed", "1")
    assert code == 2
    assert "snake_case" in err and "SCAFFOLD_LOINC" in err and "SCAFFOLD_SNOMED" in err


def test_a_second_run_is_refused_and_changes_nothing(project, capsys):
    assert _run(capsys, *SPO2)[0] == 0
    before = tree_digest(project)
    code, _, err = _run(capsys, *SPO2)
    assert code == 2
    assert "error SCAFFOLD_EXISTS" in err
    assert tree_digest(project) == before


@pytest.mark.parametrize("rel, old, new, expected", [
    ("schemas/domain-patient.schema.json", '"measurement_unit": {', '"measurement_units": {',
     "schemas/domain-patient.schema.json: error SCAFFOLD_SHAPE"),
    ("mappings/codes/ucum-units.yaml", "\nentries:", "\nentrys:", "mappings/codes/ucum-units.yaml: error SCAFFOLD_SHAPE"),
    ("mappings/rules.yaml", "\nrules:", "\nrule:", "mappings/rules.yaml: error SCAFFOLD_SHAPE"),
    ("profiles_fsh/composition.fsh", "* section[findings].section.entry only Reference(",
     "* section[findings].section.entry only Reference (", "profiles_fsh/composition.fsh: error SCAFFOLD_SHAPE"),
    ("mappings/codes/measurement-kind-loinc.yaml", "target:\n", "target: [\n",
     "mappings/codes/measurement-kind-loinc.yaml:"),
])
def test_a_file_not_in_the_expected_shape_is_named_and_nothing_is_written(project, capsys, rel, old, new, expected):
    path = project / rel
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    _assert_refused(project, capsys, SPO2, expected)
