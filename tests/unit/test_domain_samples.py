"""The reference domain: schemas/domain-patient.schema.json, samples/patients/*, mappings/codes/*.yaml.

* the schema is valid draft 2020-12, documents every property and closes every object;
* every sample validates (with formats asserted), and also keeps the rules JSON Schema cannot express
  (the exporter's cross-field rules, mappings/rules.yaml: not one finding);
* broken documents are rejected with an error at the JSON path of the fault;
* tools/make_sample_patients.py reproduces samples/patients/large.json byte for byte;
* the canary strings occur in the samples and nowhere in docs, mappings, schemas, IG or code;
* every code table parses (duplicate keys are errors), is shaped as documented in docs/domain.md, covers
  the schema's internal values, and every coding passes the SNOMED CT / LOINC check digits and is
  allowed by the IG element and ValueSet the table declares as its target.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from exporter.domainschema import explaining_validator
from exporter.fhir.definitions import DefinitionStore, default_store
from exporter.issues import PackageError
from exporter.rules import load_rules
from exporter.settings import get_settings
from exporter.terminology.checkdigits import loinc_check_digit_ok, sctid_partition, snomed_verhoeff_ok
from exporter.terminology.valuesets import ValueSetExpander

ROOT = get_settings().root
SCHEMA_PATH = ROOT / "schemas" / "domain-patient.schema.json"
SAMPLES = ROOT / "samples" / "patients"
CODES = ROOT / "mappings" / "codes"
GENERATOR = ROOT / "tools" / "make_sample_patients.py"
SAMPLE_NAMES = ["minimal", "typical", "large"]

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


# ----------------------------------------------------------------------------- helpers

@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def validator() -> Any:
    """The exporter's explaining validator: jsonschema with the exporter's formats (a real calendar
    date in date and date-time, fhir-string) and patterns read as the fast checker reads them."""
    return explaining_validator(schema())


@cache
def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def errors_of(doc: Any) -> list[Any]:
    """All errors, including the ones inside anyOf/oneOf branches (error.context)."""
    out = []
    stack = list(validator().iter_errors(doc))
    while stack:
        err = stack.pop()
        out.append(err)
        stack.extend(err.context or [])
    return out


# ----------------------------------------------------------------------------- the schema itself

def test_schema_is_valid_draft_2020_12() -> None:
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema())


def _walk(node: Any, path: str, in_condition: bool = False):
    if isinstance(node, dict):
        yield node, path, in_condition
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}", in_condition or key == "if")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}", in_condition)


def test_schema_documents_every_property_and_closes_every_object() -> None:
    missing, open_objects = [], []
    for node, path, in_condition in _walk(schema(), "#"):
        if in_condition:
            continue  # `if` clauses are conditions, not property definitions
        for name, sub in (node.get("properties") or {}).items():
            if not isinstance(sub, dict) or not sub.get("description"):
                missing.append(f"{path}/properties/{name}")
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            open_objects.append(path)
    for name, sub in schema()["$defs"].items():
        if not sub.get("description"):
            missing.append(f"#/$defs/{name}")
    assert not missing, f"properties without description: {missing}"
    assert not open_objects, f"objects without additionalProperties: false: {open_objects}"


# ----------------------------------------------------------------------------- the samples

@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_validates(name: str) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in validator().iter_errors(sample(name))]
    assert not errors, errors[:10]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_keeps_the_rules_json_schema_cannot_express(name: str) -> None:
    """The cross-field rules of mappings/rules.yaml (ids, period, scores, pressures, check digits,
    ICD-10-GM, plausible ranges) hold: not one finding, not even a warning."""
    rules = load_rules(ROOT / "mappings" / "rules.yaml", "mappings/rules.yaml", schema())
    assert rules.issues == [] and rules.rules
    doc = sample(name)
    assert [i.format() for i in rules.check(doc)] == []
    known_snomed = set(code_table("condition-snomed")["entries"])
    for d in doc["diagnoses"]:
        if "snomed_code" in d:
            assert d["snomed_code"] in known_snomed, d


def test_typical_sample_covers_every_kind_of_data() -> None:
    doc = sample("typical")
    kinds_units = {(m["kind"], m["unit"]) for m in doc["measurements"]}
    unit_enum = {}
    for rule in schema()["$defs"]["measurement"]["allOf"]:
        kind = rule["if"]["properties"]["kind"].get("const")
        if kind:
            unit = rule["then"]["properties"]["unit"]
            unit_enum[kind] = set(unit.get("enum") or [unit.get("const")])
    expected = {(kind, unit) for kind, units in unit_enum.items() for unit in units}
    assert kinds_units == expected, "typical.json shows every kind in every unit"
    assert len(doc["diary_entries"]) >= 10
    assert sum(1 for d in doc["diary_entries"] if d["symptoms"]) >= 5
    assert sum(1 for d in doc["diary_entries"] if "note" in d) >= 5
    assert sorted(q["instrument"] for q in doc["questionnaires"]) == ["gad7", "phq9"]
    assert {d["icd10gm_code"] for d in doc["diagnoses"]} == {"F32.1", "E11.90"}
    assert any("snomed_code" in d for d in doc["diagnoses"])
    notes = [d.get("note", "") for d in doc["diary_entries"]]
    assert any("{{ 7*7 }} and %resource.id" in n for n in notes), "the template-looking note must stay in"


def test_minimal_sample_is_minimal() -> None:
    doc = sample("minimal")
    assert "kvnr" not in doc["patient"]
    assert len(doc["measurements"]) <= 1
    assert doc["diary_entries"] == doc["questionnaires"] == doc["diagnoses"] == []


def test_large_sample_size() -> None:
    doc = sample("large")
    assert len(doc["measurements"]) >= 2000
    assert len(doc["diary_entries"]) >= 300
    assert 180 <= len(doc["questionnaires"]) <= 250
    assert {m["kind"] for m in doc["measurements"]} == set(schema()["$defs"]["measurement_kind"]["enum"])
    assert {m["unit"] for m in doc["measurements"] if m["kind"] == "glucose"} == {"mmol/L", "mg/dL"}
    assert (SAMPLES / "large.json").stat().st_size < 1_000_000


def test_generator_reproduces_large_json(tmp_path: Path) -> None:
    out = tmp_path / "large.json"
    proc = subprocess.run([sys.executable, str(GENERATOR), "--output", str(out)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (SAMPLES / "large.json").read_bytes(), \
        "samples/patients/large.json is stale: run `python tools/make_sample_patients.py`"


def test_the_example_in_docs_domain_md_validates() -> None:
    text = (ROOT / "docs" / "domain.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/domain.md has one complete example document"
    doc = json.loads(blocks[0])
    errors = [f"{e.json_path}: {e.message}" for e in validator().iter_errors(doc)]
    assert not errors, errors


# ----------------------------------------------------------------------------- broken documents

def _set(path: tuple, value: Any) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        node = doc
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return mutate


def _delete(path: tuple) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        node = doc
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
    return mutate


def _index(kind: str) -> int:
    return next(i for i, m in enumerate(sample("typical")["measurements"]) if m["kind"] == kind)


def _instrument(name: str) -> int:
    return next(i for i, q in enumerate(sample("typical")["questionnaires"]) if q["instrument"] == name)


BP, WEIGHT, GLUCOSE, HR = _index("blood_pressure"), _index("weight"), _index("glucose"), _index("heart_rate")
PHQ9, GAD7 = _instrument("phq9"), _instrument("gad7")

BROKEN = {
    # name: (mutation, JSON path the error must name, word the message must contain)
    "wrong schema version": (_set(("schema_version",), "2.0"), "$.schema_version", "'1.0'"),
    "unknown measurement kind": (_set(("measurements", 0, "kind"), "temperature"), "$.measurements[0].kind", "temperature"),
    "gender not of the app's enum": (_set(("patient", "gender"), "divers"), "$.patient.gender", "divers"),
    "symptom outside the IG-aligned enum": (_set(("diary_entries", 0, "symptoms"), ["anxiety"]),
                                            "$.diary_entries[0].symptoms[0]", "anxiety"),
    "repeated symptom": (_set(("diary_entries", 0, "symptoms"), ["headache", "headache"]),
                         "$.diary_entries[0].symptoms", "non-unique"),
    "mood off the 1..5 scale": (_set(("diary_entries", 0, "mood"), 6), "$.diary_entries[0].mood", "6"),
    "PHQ-9 with 7 answers": (_set(("questionnaires", PHQ9, "answers"), [1] * 7),
                             f"$.questionnaires[{PHQ9}].answers", "too short"),
    "GAD-7 with 9 answers": (_set(("questionnaires", GAD7, "answers"), [1] * 9),
                             f"$.questionnaires[{GAD7}].answers", "too long"),
    "answer out of 0..3": (_set(("questionnaires", PHQ9, "answers", 2), 4),
                           f"$.questionnaires[{PHQ9}].answers[2]", "4"),
    "GAD-7 total above 21": (_set(("questionnaires", GAD7, "total_score"), 22),
                             f"$.questionnaires[{GAD7}].total_score", "22"),
    "measurement without unit": (_delete(("measurements", WEIGHT, "unit")), f"$.measurements[{WEIGHT}]", "'unit'"),
    "weight in mmHg": (_set(("measurements", WEIGHT, "unit"), "mmHg"), f"$.measurements[{WEIGHT}].unit", "mmHg"),
    "heart rate in kg": (_set(("measurements", HR, "unit"), "kg"), f"$.measurements[{HR}].unit", "bpm"),
    "blood pressure without diastolic": (_delete(("measurements", BP, "diastolic")), f"$.measurements[{BP}]",
                                         "'diastolic'"),
    "blood pressure with a single value": (_set(("measurements", BP, "value"), 120), f"$.measurements[{BP}]",
                                           "should not be valid"),
    "weight without value": (_delete(("measurements", WEIGHT, "value")), f"$.measurements[{WEIGHT}]", "'value'"),
    "negative weight": (_set(("measurements", WEIGHT, "value"), -3), f"$.measurements[{WEIGHT}].value", "-3"),
    "glucose 140 mmol/L": (_set(("measurements", GLUCOSE, "value"), 140), f"$.measurements[{GLUCOSE}].value", "140"),
    "KVNR lower-case letter": (_set(("patient", "kvnr"), "a123456780"), "$.patient.kvnr", "does not match"),
    "KVNR too short": (_set(("patient", "kvnr"), "A12345678"), "$.patient.kvnr", "does not match"),
    "PZN with 7 digits": (_set(("diga", "pzn"), "1765432"), "$.diga.pzn", "does not match"),
    "upper-case uuid": (_set(("patient", "id"), sample("typical")["patient"]["id"].upper()), "$.patient.id",
                        "does not match"),
    "not a uuid": (_set(("measurements", 0, "id"), "m-0001"), "$.measurements[0].id", "m-0001"),
    "date-time without offset": (_set(("measurements", 0, "measured_at"), "2026-03-09T08:02:00"),
                                 "$.measurements[0].measured_at", "does not match"),
    "date-time without seconds": (_set(("measurements", 0, "measured_at"), "2026-03-09T08:02+01:00"),
                                  "$.measurements[0].measured_at", "does not match"),
    "impossible calendar date": (_set(("patient", "birth_date"), "1959-02-30"), "$.patient.birth_date", "'date'"),
    "impossible date in a date-time": (_set(("diary_entries", 0, "recorded_at"), "2026-02-30T21:10:00+01:00"),
                                       "$.diary_entries[0].recorded_at", "'date-time'"),
    "leap second": (_set(("measurements", 0, "measured_at"), "2026-03-09T23:59:60Z"), "$.measurements[0].measured_at",
                    "does not match"),
    "NUL in a diary note": (_set(("diary_entries", 0, "note"), "Kanal\x00zu"), "$.diary_entries[0].note",
                            "'fhir-string'"),
    "unpaired surrogate in a name": (_set(("patient", "given_name"), "Max\ud800"), "$.patient.given_name",
                                     "'fhir-string'"),
    "escape character in a manufacturer": (_set(("diga", "manufacturer"), "Beispiel \x1b[31m GmbH"),
                                           "$.diga.manufacturer", "'fhir-string'"),
    "uuid with a trailing newline": (_set(("measurements", 0, "id"), sample("typical")["measurements"][0]["id"] + "\n"),
                                     "$.measurements[0].id", "does not match"),
    "period bound that is neither date nor date-time": (_set(("export_period", "from"), "März 2026"),
                                                        "$.export_period.from", "März 2026"),
    "empty diary entry": (_set(("diary_entries", 0), {"id": "0f0e0d0c-0b0a-4909-8807-060504030201",
                                                      "recorded_at": "2026-03-09T21:10:00+01:00", "symptoms": []}),
                          "$.diary_entries[0]", "not valid under any"),
    "blank note": (_set(("diary_entries", 0, "note"), "   "), "$.diary_entries[0].note", "does not match"),
    "ICD-10-GM code with certainty suffix": (_set(("diagnoses", 0, "icd10gm_code"), "F32.1G"),
                                             "$.diagnoses[0].icd10gm_code", "does not match"),
    "ICD-10-GM version as text": (_set(("diagnoses", 0, "icd10gm_version"), "2026"),
                                  "$.diagnoses[0].icd10gm_version", "integer"),
    "unknown clinical status": (_set(("diagnoses", 0, "clinical_status"), "chronic"),
                                "$.diagnoses[0].clinical_status", "chronic"),
    "entered-in-error is never exported": (_set(("diagnoses", 0, "verification_status"), "entered-in-error"),
                                           "$.diagnoses[0].verification_status", "entered-in-error"),
    "extra top-level property": (_set(("exported_at",), "2026-04-06T00:00:00Z"), "$", "'exported_at'"),
    "extra patient property": (_set(("patient", "email"), "x@example.org"), "$.patient", "'email'"),
    "extra measurement property": (_set(("measurements", 0, "comment"), "x"), "$.measurements[0]", "'comment'"),
    "extra property in the period": (_set(("export_period", "timezone"), "Europe/Berlin"), "$.export_period",
                                     "'timezone'"),
    "missing list": (_delete(("diagnoses",)), "$", "'diagnoses'"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_document_is_rejected_at_its_path(name: str) -> None:
    mutate, path, word = BROKEN[name]
    doc = copy.deepcopy(sample("typical"))
    mutate(doc)
    errors = errors_of(doc)
    assert errors, f"{name}: accepted"
    at_path = [e for e in errors if e.json_path == path]
    assert at_path, f"{name}: no error at {path}; got {[(e.json_path, e.message) for e in errors]}"
    assert any(word in e.message for e in at_path), \
        f"{name}: no message at {path} mentions {word!r}: {[e.message for e in at_path]}"
    unrelated = [e.json_path for e in errors if not e.json_path.startswith(path.split("[")[0])]
    assert not unrelated, f"{name}: errors away from the fault: {unrelated}"


# ----------------------------------------------------------------------------- canaries

@cache
def canaries() -> list[str]:
    return (SAMPLES / "CANARIES.txt").read_text(encoding="utf-8").splitlines()


def test_canaries_are_listed_once_and_occur_in_the_samples() -> None:
    lines = canaries()
    assert lines and all(line.strip() == line and line for line in lines), "one non-blank canary per line"
    assert len(lines) == len(set(lines))
    texts = {name: (SAMPLES / f"{name}.json").read_text(encoding="utf-8") for name in SAMPLE_NAMES}
    for name in SAMPLE_NAMES:
        assert any(c in texts[name] for c in lines), f"{name}.json carries no canary"
    missing = [c for c in lines if not any(c in t for t in texts.values())]
    assert not missing, f"canaries that occur in no sample: {missing}"


def test_canaries_occur_nowhere_else() -> None:
    """Only the samples (their generator, and the golden export cases made from them) may hold them;
    so a canary in a log always means a leak."""
    places = ["docs", "mappings", "schemas", "igs", "exporter", "profiles_fsh", "tests", "README.md"]
    golden = ROOT / "tests" / "cases" / "export"
    hits = []
    for place in places:
        root = ROOT / place
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix not in (".md", ".json", ".yaml", ".yml", ".py", ".fsh", ".txt"):
                continue
            if path.is_relative_to(golden) and path.suffix == ".json":
                continue  # input.json is a copy of a sample; expected.json is its export
            text = path.read_text(encoding="utf-8", errors="replace")
            hits += [f"{path.relative_to(ROOT)}: {c}" for c in canaries() if c in text]
    assert not hits, hits


# ----------------------------------------------------------------------------- code tables

class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

TABLE_KEYS = {"id", "title", "description", "key", "target", "entries"}
TARGET_KEYS = {"profile", "element", "valueset", "keys"}
ENTRY_KEYS = {"codings", "equivalence", "comment", "attributes"}
CODING_KEYS = {"system", "code", "display", "version"}
EQUIVALENCES = {"relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes", "inexact",
                "unmatched", "disjoint"}  # FHIR R4 ConceptMapEquivalence
TABLE_FILES = sorted(CODES.glob("*.yaml"))


@cache
def code_table(table_id: str) -> dict[str, Any]:
    return yaml.load((CODES / f"{table_id}.yaml").read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)


def test_code_tables_exist() -> None:
    assert {p.stem for p in TABLE_FILES} >= {
        "measurement-kind-loinc", "measurement-kind-snomed", "ucum-units", "diary-symptoms", "mood-scale", "questionnaire-instruments",
        "questionnaire-answers", "gender", "condition-clinical-status", "condition-verification-status",
        "condition-snomed"}


def test_duplicate_keys_are_detected() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'a'"):
        yaml.load("entries:\n  a: 1\n  b: 2\n  a: 3\n", Loader=_UniqueKeyLoader)


@pytest.mark.parametrize("path", TABLE_FILES, ids=lambda p: p.stem)
def test_code_table_shape_and_check_digits(path: Path) -> None:
    table = code_table(path.stem)  # raises on duplicate keys
    assert set(table) == TABLE_KEYS, f"top-level keys: {sorted(table)}"
    assert table["id"] == path.stem
    for field in ("title", "description", "key"):
        assert isinstance(table[field], str) and table[field].strip()
    entries = table["entries"]
    assert isinstance(entries, dict) and entries
    for key, entry in entries.items():
        assert isinstance(key, str) and key, f"key {key!r} must be a non-empty string (quote numbers)"
        assert isinstance(entry, dict) and set(entry) <= ENTRY_KEYS and "codings" in entry, key
        assert isinstance(entry["codings"], list) and entry["codings"], key
        for coding in entry["codings"]:
            assert set(coding) <= CODING_KEYS and {"system", "code", "display"} <= set(coding), (key, coding)
            assert all(isinstance(v, str) and v.strip() for v in coding.values()), (key, coding)
            assert re.fullmatch(r"[a-z][a-z0-9+.-]*:\S+", coding["system"]), coding["system"]
            if coding["system"] == SCT:
                assert snomed_verhoeff_ok(coding["code"]), f"{key}: SNOMED CT {coding['code']} check digit"
                assert sctid_partition(coding["code"]) in ("00", "10"), f"{key}: {coding['code']} is no concept id"
            if coding["system"] == LOINC:
                assert loinc_check_digit_ok(coding["code"]), f"{key}: LOINC {coding['code']} check digit"
        equivalence = entry.get("equivalence", "equivalent")
        assert equivalence in EQUIVALENCES, key
        if equivalence in ("narrower", "inexact"):  # ConceptMap invariant cmd-1
            assert entry.get("comment", "").strip(), f"{key}: a {equivalence} map needs a comment"
        attributes = entry.get("attributes", {})
        assert isinstance(attributes, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()), key

    targets = table["target"]
    assert isinstance(targets, list) and targets
    covered: set[str] = set()
    for target in targets:
        assert set(target) <= TARGET_KEYS and {"profile", "element"} <= set(target), target
        keys = target.get("keys", list(entries))
        unknown = set(keys) - set(entries)
        assert not unknown, f"target names keys without entry: {unknown}"
        covered |= set(keys)
    assert covered == set(entries), f"entries without target: {set(entries) - covered}"


# --- membership in the IG: every coding must be accepted by the element the table feeds

@cache
def store() -> tuple[DefinitionStore, bool]:
    """Core + igs/ when the core package is installed, else igs/ alone (core ValueSets then unknown)."""
    settings = get_settings()
    try:
        return default_store(settings), True
    except PackageError:
        s = DefinitionStore()
        for pkg in sorted(p for p in settings.igs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            s.add_source(pkg)
        return s, False


@cache
def expander() -> ValueSetExpander:
    return ValueSetExpander(store()[0])


def _element(profile: str, element_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    sd = store()[0].structure(profile)
    assert sd is not None, f"profile {profile} not found in igs/"
    by_id = {e["id"]: e for e in sd["snapshot"]["element"]}
    assert element_id in by_id, f"{profile} has no element {element_id}"
    return by_id[element_id], by_id


def _strip(url: str) -> str:
    return url.split("|", 1)[0]


def check_coding_against_element(profile: str, element_id: str, coding: dict[str, str]) -> list[str]:
    """Problems with `coding` as the value of that element; [] if the element's constraints accept it.

    Constraints looked at: pattern/fixed CodeableConcept or Coding, fixed code (+ fixed system of the
    sibling `system`, for Quantity.code), fixed coding.code/coding.system children, and a required binding.
    An element that constrains nothing is a problem too: the table must point at what really checks it.
    """
    el, by_id = _element(profile, element_id)
    system, code = coding["system"], coding["code"]
    problems, constraints = [], 0
    for prefix in ("pattern", "fixed"):
        for kind in ("CodeableConcept", "Coding"):
            value = el.get(prefix + kind)
            if value is not None:
                constraints += 1
                codings = value.get("coding", []) if kind == "CodeableConcept" else [value]
                if not any(c.get("system") == system and c.get("code") == code for c in codings):
                    problems.append(f"{prefix}{kind} is {codings}")
        if prefix + "Code" in el:
            constraints += 1
            if el[prefix + "Code"] != code:
                problems.append(f"{prefix}Code is {el[prefix + 'Code']}")
            sibling = by_id.get(element_id.rsplit(".", 1)[0] + ".system", {})
            if sibling.get("fixedUri", system) != system:
                problems.append(f"system is fixed to {sibling['fixedUri']}")
    # fixed code/system on the coding children (`coding.code`, or a slice `coding:Name.code`), or on the
    # element's own `code` when it is a Coding (a slice such as `code.coding:snomed`)
    child = re.compile(re.escape(element_id) + r"(?:[.]coding(:[^.]+)?)?[.]code")
    fixed = []
    for eid, e in by_id.items():
        value = e.get("fixedCode", e.get("patternCode"))
        if value is not None and child.fullmatch(eid):
            sibling = by_id.get(eid[: -len(".code")] + ".system", {})
            fixed.append((sibling.get("fixedUri", sibling.get("patternUri")), value))
    if fixed:
        constraints += 1
        if not any(code == c and s in (None, system) for s, c in fixed):
            problems.append(f"codings fixed to {fixed}")
    binding = el.get("binding") or {}
    if binding.get("strength") == "required" and binding.get("valueSet"):
        constraints += 1
        member = expander().expand(binding["valueSet"]).contains(system, code)
        if member is not True:
            problems.append(f"not in required ValueSet {binding['valueSet']} (member: {member})")
    if not constraints:
        problems.append("the element constrains no code: point the target at the element that does")
    return problems


def _display_problems(valueset: str, coding: dict[str, str]) -> list[str]:
    if coding["system"] == UCUM:
        return []  # UCUM has no canonical display; the table's display is the human unit (Quantity.unit)
    exp = expander().expand(valueset)
    shown = exp.displays.get((coding["system"], coding["code"]))
    known = (shown,) if shown else ()
    looked_up = expander().lookup(coding["system"], coding["code"])
    if looked_up is not None:
        known += looked_up[1]
    if known and coding["display"] not in known:
        return [f"display {coding['display']!r} is none of {known}"]
    return []


@pytest.mark.parametrize("path", TABLE_FILES, ids=lambda p: p.stem)
def test_code_table_codings_are_allowed_by_their_target(path: Path) -> None:
    table = code_table(path.stem)
    _, has_core = store()
    problems = []
    for target in table["target"]:
        el, _ = _element(target["profile"], target["element"])
        bound = (el.get("binding") or {}) if (el.get("binding") or {}).get("strength") == "required" else {}
        if bound.get("valueSet") and _strip(bound["valueSet"]) != _strip(target.get("valueset", "")):
            problems.append(f"{target['element']} is bound to {bound['valueSet']}: name it as the target's valueset")
        valueset = target.get("valueset")
        if valueset and not has_core and valueset.startswith("http://hl7.org/fhir/"):
            pytest.skip("hl7.fhir.r4.core is not installed (make setup): core ValueSets cannot be expanded")
        for key in target.get("keys", list(table["entries"])):
            for coding in table["entries"][key]["codings"]:
                where = f"{key} → {coding['system']}#{coding['code']} at {target['element']}"
                problems += [f"{where}: {p}" for p in check_coding_against_element(
                    target["profile"], target["element"], coding)]
                if valueset:
                    exp = expander().expand(valueset)
                    assert exp.problem is None, exp.problem
                    if exp.contains(coding["system"], coding["code"]) is not True:
                        problems.append(f"{where}: not a member of {valueset}")
                    problems += [f"{where}: {p}" for p in _display_problems(valueset, coding)]
    assert not problems, "\n".join(problems)


# --- the tables cover exactly the internal values of the schema

def _enum(name: str) -> set[str]:
    return set(schema()["$defs"][name]["enum"])


def _range(node: dict[str, Any]) -> set[str]:
    return {str(i) for i in range(node["minimum"], node["maximum"] + 1)}


def expected_keys() -> dict[str, set[str]]:
    defs = schema()["$defs"]
    glucose_units = next(rule["then"]["properties"]["unit"]["enum"] for rule in defs["measurement"]["allOf"]
                         if rule["if"]["properties"]["kind"].get("const") == "glucose")
    return {
        "gender": _enum("gender"),
        "diary-symptoms": _enum("symptom"),
        "mood-scale": _range(defs["diary_entry"]["properties"]["mood"]),
        "questionnaire-answers": _range(defs["questionnaire"]["properties"]["answers"]["items"]),
        "questionnaire-instruments": _enum("instrument"),
        "condition-clinical-status": _enum("clinical_status"),
        "condition-verification-status": _enum("verification_status"),
        "measurement-kind-loinc": (_enum("measurement_kind") - {"glucose"})
        | {f"glucose:{u}" for u in glucose_units} | {"blood_pressure:systolic", "blood_pressure:diastolic"},
        "measurement-kind-snomed": (_enum("measurement_kind") - {"glucose"})
        | {f"glucose:{u}" for u in glucose_units} | {"blood_pressure:systolic", "blood_pressure:diastolic"},
        # "m" is converted to cm before the look-up; "score" is the questionnaire total's unit
        "ucum-units": (_enum("measurement_unit") - {"m"}) | {"score"},
    }


@pytest.mark.parametrize("table_id", sorted(expected_keys()))
def test_code_table_covers_the_schema_values(table_id: str) -> None:
    assert set(code_table(table_id)["entries"]) == expected_keys()[table_id]


def test_questionnaire_instruments_match_the_ig_questionnaires() -> None:
    answers_rules = {rule["if"]["properties"]["instrument"]["const"]: rule["then"]["properties"]
                     for rule in schema()["$defs"]["questionnaire"]["allOf"]}
    for key, entry in code_table("questionnaire-instruments")["entries"].items():
        attrs = entry["attributes"]
        assert set(attrs) == {"questionnaire", "score_profile", "item_count", "link_id_prefix"}
        url, _, version = attrs["questionnaire"].partition("|")
        files = list(get_settings().igs_dir.glob("*/Questionnaire-*.json"))
        qs = [q for q in (json.loads(f.read_text(encoding="utf-8")) for f in files) if q["url"] == url]
        assert len(qs) == 1, f"{key}: no Questionnaire {url} in igs/"
        q = qs[0]
        assert q.get("version") == version, f"{key}: Questionnaire version {q.get('version')} != {version}"
        link_ids = [item["linkId"] for item in q["item"]]
        count = int(attrs["item_count"])
        assert link_ids == [f"{attrs['link_id_prefix']}{i}" for i in range(1, count + 1)]
        rule = answers_rules[key]["answers"]
        assert rule["minItems"] == rule["maxItems"] == count, f"{key}: schema answers length != item count"
        assert answers_rules[key]["total_score"]["maximum"] == 3 * count
        profile_url, _, profile_version = attrs["score_profile"].partition("|")
        sd = store()[0].structure(profile_url)
        assert sd is not None and sd["version"] == profile_version
        # the score code in the table is the one the score profile fixes
        assert check_coding_against_element(profile_url, "Observation.code", entry["codings"][0]) == []


def test_questionnaire_answer_keys_are_the_ordinal_values() -> None:
    table = code_table("questionnaire-answers")["entries"]
    for f in get_settings().igs_dir.glob("*/Questionnaire-*.json"):
        for item in json.loads(f.read_text(encoding="utf-8"))["item"]:
            for option in item["answerOption"]:
                ordinal = next(e["valueDecimal"] for e in option["extension"]
                               if e["url"] == "http://hl7.org/fhir/StructureDefinition/ordinalValue")
                coding = table[str(int(ordinal))]["codings"][0]
                assert (coding["system"], coding["code"]) == (option["valueCoding"]["system"],
                                                              option["valueCoding"]["code"]), (f.name, item["linkId"])
