"""The cross-field rules of mappings/rules.yaml (exporter/rules/).

* every rule of the file has a failing input here (a test fails on a rule without one): the export is
  refused (error rules) or carries a warning (plausibility), the issue names the rule's file:line and
  the record's JSON path, and never the value;
* the situations of issue 13 that used to export as "valid (0 warnings)" no longer do;
* the samples break no rule; a deployment can raise or lower the severity of configurable rules only;
* a broken rule file is reported like a mapping: file:line:column, message id, a suggestion;
* `fhir-export check` lists the rules, and docs/domain.md names every rule.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from exporter.cli import main
from exporter.issues import ConfigurationError, Severity
from exporter.mapping.yamlsrc import parse_yaml
from exporter.pipeline import Exporter
from exporter.rules import load_rules
from exporter.rules.checks import KINDS, VALUES, _not_after
from exporter.rules.ruleset import MAX_ISSUES, parse_rules
from exporter.settings import Settings, get_settings
from tests.support.domainkinds import kinds
from tests.unit.test_domain_samples import _set

ROOT = get_settings().root
RULES = ROOT / "mappings" / "rules.yaml"
EXPORT_TIME = "2026-04-06T10:00:00+02:00"


@cache
def schema() -> dict[str, Any]:
    return json.loads((ROOT / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))


@cache
def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "samples" / "patients" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


def rule_lines() -> dict[str, int]:
    """Rule id → line of its `- id:` in mappings/rules.yaml (read independently of the loader)."""
    lines = {}
    for n, line in enumerate(RULES.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip().startswith("- id:"):
            lines[line.split(":", 1)[1].strip()] = n
    return lines


def _both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        for m in mutations:
            m(doc)
    return mutate


TYP = sample("typical")
KVNR = TYP["patient"]["kvnr"]
WRONG_KVNR = KVNR[:9] + str((int(KVNR[9]) + 1) % 10)
# a canary of the samples, to show values never appear in messages
SECOND_MEASUREMENT_ID = TYP["measurements"][1]["id"]

# rule id → (mutation of typical.json, JSON path the finding must name, severity)
BREAKS: dict[str, tuple[Callable[[dict], None], str, Severity]] = {
    "unique-ids": (_set(("diary_entries", 2, "id"), SECOND_MEASUREMENT_ID), "$.diary_entries[2].id", Severity.ERROR),
    "period-order": (_set(("export_period", "from"), "2026-04-06"), "$.export_period.from", Severity.ERROR),
    "born-before-period-end": (_set(("patient", "birth_date"), "2026-04-06"), "$.patient.birth_date", Severity.ERROR),
    "measurement-in-period": (_set(("measurements", 4, "measured_at"), "2025-12-14T09:00:00+01:00"),
                              "$.measurements[4].measured_at", Severity.ERROR),
    "diary-entry-in-period": (_set(("diary_entries", 3, "recorded_at"), "2026-04-06T00:00:01+02:00"),
                              "$.diary_entries[3].recorded_at", Severity.ERROR),
    "questionnaire-in-period": (_set(("questionnaires", 1, "completed_at"), "2026-03-08T23:59:59+01:00"),
                                "$.questionnaires[1].completed_at", Severity.ERROR),
    "diagnosis-recorded-by-period-end": (_set(("diagnoses", 1, "recorded_at"), "2026-04-06"),
                                         "$.diagnoses[1].recorded_at", Severity.ERROR),
    "total-score-is-sum": (_both(_set(("questionnaires", 0, "answers"), [0] * 9),
                                 _set(("questionnaires", 0, "total_score"), 20)),
                           "$.questionnaires[0].total_score", Severity.ERROR),
    "blood-pressure-order": (_both(_set(("measurements", 6, "systolic"), 60), _set(("measurements", 6, "diastolic"), 120)),
                             "$.measurements[6].systolic", Severity.ERROR),
    "kvnr-check-digit": (_set(("patient", "kvnr"), WRONG_KVNR), "$.patient.kvnr", Severity.ERROR),
    "pzn-check-digit": (_set(("diga", "pzn"), "17654327"), "$.diga.pzn", Severity.ERROR),
    "icd10gm-chapter": (_set(("diagnoses", 1, "icd10gm_code"), "E95.1"), "$.diagnoses[1].icd10gm_code", Severity.ERROR),
    "icd10gm-year": (_set(("diagnoses", 0, "icd10gm_version"), 2028), "$.diagnoses[0].icd10gm_version", Severity.ERROR),
    "impossible-weight-kg": (_set(("measurements", 1, "value"), 1e-9), "$.measurements[1].value", Severity.ERROR),
    "impossible-weight-g": (_set(("measurements", 8, "value"), 680_000), "$.measurements[8].value", Severity.ERROR),
    "impossible-height-cm": (_set(("measurements", 0, "value"), 290), "$.measurements[0].value", Severity.ERROR),
    "impossible-height-m": (_set(("measurements", 15, "value"), 0.1), "$.measurements[15].value", Severity.ERROR),
    "impossible-heart-rate": (_set(("measurements", 7, "value"), 5), "$.measurements[7].value", Severity.ERROR),
    "impossible-systolic": (_both(_set(("measurements", 12, "systolic"), 400), _set(("measurements", 12, "diastolic"), 150)),
                            "$.measurements[12].systolic", Severity.ERROR),
    "impossible-diastolic": (_both(_set(("measurements", 12, "systolic"), 299), _set(("measurements", 12, "diastolic"), 260)),
                             "$.measurements[12].diastolic", Severity.ERROR),
    "impossible-glucose-mmol": (_set(("measurements", 2, "value"), 0.1), "$.measurements[2].value", Severity.ERROR),
    "impossible-glucose-mg": (_set(("measurements", 11, "value"), 5), "$.measurements[11].value", Severity.ERROR),
    "plausible-weight-kg": (_set(("measurements", 1, "value"), 400), "$.measurements[1].value", Severity.WARNING),
    "plausible-weight-g": (_set(("measurements", 8, "value"), 1500), "$.measurements[8].value", Severity.WARNING),
    "plausible-height-cm": (_set(("measurements", 0, "value"), 260), "$.measurements[0].value", Severity.WARNING),
    "plausible-height-m": (_set(("measurements", 15, "value"), 0.3), "$.measurements[15].value", Severity.WARNING),
    "plausible-heart-rate": (_set(("measurements", 7, "value"), 300), "$.measurements[7].value", Severity.WARNING),
    "plausible-systolic": (_both(_set(("measurements", 12, "systolic"), 320), _set(("measurements", 12, "diastolic"), 150)),
                           "$.measurements[12].systolic", Severity.WARNING),
    "plausible-diastolic": (_both(_set(("measurements", 12, "systolic"), 290), _set(("measurements", 12, "diastolic"), 250)),
                            "$.measurements[12].diastolic", Severity.WARNING),
    "plausible-glucose-mmol": (_set(("measurements", 2, "value"), 90), "$.measurements[2].value", Severity.WARNING),
    "plausible-glucose-mg": (_set(("measurements", 11, "value"), 1700), "$.measurements[11].value", Severity.WARNING),
}
# an impossible value is also implausible: its input breaks the plausible-* rule of the same value too
ALSO: dict[str, str] = {rule_id: "plausible-" + rule_id.removeprefix("impossible-")
                        for rule_id in BREAKS if rule_id.startswith("impossible-")}



def _below_range(rule: dict[str, Any], rules: list[dict[str, Any]]) -> tuple[Callable[[dict], None], str, Severity]:
    """A failing input for a range on measurements that BREAKS does not list (a kind added with
    `fhir-export new-kind`): one more record of the rule's kind and unit, schema-valid, below the range
    (every measurement value is above 0) and, for a plausible-* range, above any impossible-* range of
    the same value, so only this rule objects; an impossible value also breaks its plausible-* rule (ALSO)."""
    when, rng = rule.get("when") or {}, rule["check"]["range"]
    kind = kinds()[when["kind"]]
    same = [r for r in rules if r is not rule and r.get("when") == rule.get("when")
            and (r["check"].get("range") or {}).get("field") == rng["field"]]
    floor = max([r["check"]["range"]["min"] for r in same if r["check"]["range"]["min"] < rng["min"]], default=0)
    value = (floor + rng["min"]) / 2
    also = [r["id"] for r in same if r["check"]["range"]["min"] > value]
    if len(also) == 1:
        ALSO.setdefault(rule["id"], also[0])
    record = {"id": "0f0e0d0c-0b0a-4909-8807-0605040302ff", "kind": kind.name,
              "measured_at": TYP["measurements"][0]["measured_at"], "unit": when.get("unit", kind.units[0]),
              "source": "manual", rng["field"]: value}
    return (lambda doc: doc["measurements"].append(copy.deepcopy(record)),
            f"$.measurements[{len(TYP['measurements'])}].{rng['field']}", Severity(rule.get("severity", "error")))


def failing_inputs() -> dict[str, tuple[Callable[[dict], None], str, Severity]]:
    """BREAKS, and a derived input for each range of a scalar measurement kind it does not list."""
    out = dict(BREAKS)
    rules = parse_yaml(RULES.read_text(encoding="utf-8"), str(RULES))[0]["rules"]
    for rule in rules:
        if rule["id"] not in out and rule.get("records") == "measurements" and "range" in rule["check"] \
                and getattr(kinds().get((rule.get("when") or {}).get("kind")), "scalar", False):
            out[rule["id"]] = _below_range(rule, rules)
    return out


def test_every_rule_has_a_failing_input() -> None:
    assert set(failing_inputs()) == set(rule_lines()), \
        "add a failing input to BREAKS for each rule of mappings/rules.yaml"


@pytest.mark.parametrize("rule_id", list(failing_inputs()))
def test_rule_fails_on_its_input(rule_id: str, exporter: Exporter) -> None:
    mutate, path, severity = failing_inputs()[rule_id]
    doc = copy.deepcopy(TYP)
    mutate(doc)
    assert exporter.check_domain(doc) == [], "the input is schema-valid: only the rule may object"
    result = exporter.export(doc, export_time=EXPORT_TIME)
    findings = [i for i in result.issues if i.message_id == "DOMAIN_RULE"]
    expected = [(f"rule {rule_id}", (path,), severity)]
    if rule_id in ALSO:
        expected.append((f"rule {ALSO[rule_id]}", (path,), Severity.WARNING))
    assert [(i.message.split(":")[0], i.expression, i.severity) for i in findings] == expected, \
        [i.format() for i in findings]
    issue = findings[0]
    assert issue.location is not None and issue.location.file == "mappings/rules.yaml"
    assert issue.location.line == rule_lines()[rule_id]
    assert result.ok == (severity is Severity.WARNING)
    assert (result.bundle is None) == (severity is Severity.ERROR)
    text = issue.format() + json.dumps(result.operation_outcome() if not result.ok else issue.to_fhir())
    text = text.replace(rule_id, "<rule>")  # the rule's name may contain a kind's name (plausible-spo2): not a value
    changed = {json.dumps(v) for v in _leaves(doc)} - {json.dumps(v) for v in _leaves(TYP)}
    for value in changed:  # the changed values are never quoted (numbers could appear as rule bounds)
        assert not isinstance(json.loads(value), str) or json.loads(value) not in text, value


def _leaves(node: Any):
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    else:
        yield node


def test_the_samples_break_no_rule(exporter: Exporter) -> None:
    for name in ("minimal", "typical", "large"):
        assert exporter.rules.check(sample(name)) == [], name


def test_the_situations_of_issue_13_are_no_longer_valid(exporter: Exporter) -> None:
    """What exported as "valid (0 warnings)" before the rules existed."""
    cases = {
        "PHQ-9 total 20 with all answers 0": BREAKS["total-score-is-sum"][0],
        "blood pressure 60/120": BREAKS["blood-pressure-order"][0],
        "KVNR with a wrong check digit": BREAKS["kvnr-check-digit"][0],
        "PZN with a wrong check digit": BREAKS["pzn-check-digit"][0],
        "a December measurement in a March period": BREAKS["measurement-in-period"][0],
        "the same id in two lists": BREAKS["unique-ids"][0],
    }
    for name, mutate in cases.items():
        doc = copy.deepcopy(TYP)
        mutate(doc)
        result = exporter.export(doc, export_time=EXPORT_TIME)
        assert not result.ok and result.bundle is None, name
    impossible = {"700 kg": (_set(("measurements", 1, "value"), 700), "impossible-weight-kg"),
                  "1e-9 kg": (_set(("measurements", 1, "value"), 1e-9), "impossible-weight-kg"),
                  "400/300 mmHg": (_both(_set(("measurements", 12, "systolic"), 400),
                                         _set(("measurements", 12, "diastolic"), 300)),
                                   "impossible-systolic")}
    for name, (mutate, rule_id) in impossible.items():
        doc = copy.deepcopy(TYP)
        mutate(doc)
        result = exporter.export(doc, export_time=EXPORT_TIME)
        refused = [i.message.split(":")[0] for i in result.issues if i.is_error and i.message_id == "DOMAIN_RULE"]
        assert result.bundle is None and f"rule {rule_id}" in refused, f"{name}: not refused"
    doc = copy.deepcopy(TYP)
    BREAKS["plausible-weight-kg"][0](doc)  # 400 kg: unusual, possible: exported with a warning
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok and [i.severity for i in result.issues if i.message_id == "DOMAIN_RULE"] == [Severity.WARNING]


def test_a_date_bound_covers_its_whole_day_in_the_records_offset(exporter: Exporter) -> None:
    doc = copy.deepcopy(TYP)
    doc["export_period"] = {"from": "2026-03-09", "to": "2026-04-05"}
    doc["measurements"][4]["measured_at"] = "2026-04-05T23:59:59+02:00"  # 21:59:59Z: inside
    doc["measurements"][7]["measured_at"] = "2026-03-09T00:00:00+01:00"  # 2026-03-08T23:00Z: inside (its own day)
    assert exporter.rules.check(doc) == []
    doc["measurements"][4]["measured_at"] = "2026-04-06T00:30:00+02:00"  # 2026-04-05T22:30Z, but 6 April locally
    assert [i.expression for i in exporter.rules.check(doc)] == [("$.measurements[4].measured_at",)]


def test_date_time_bounds_compare_as_instants(exporter: Exporter) -> None:
    doc = copy.deepcopy(TYP)
    doc["export_period"] = {"from": "2026-03-09T00:00:00+01:00", "to": "2026-04-05T23:59:59+02:00"}
    doc["measurements"][4]["measured_at"] = "2026-04-05T21:59:59Z"  # = the end, written in UTC
    doc["measurements"][7]["measured_at"] = "2026-03-08T23:00:00.000Z"  # = the start, with a fraction
    assert exporter.rules.check(doc) == []
    doc["measurements"][4]["measured_at"] = "2026-04-05T22:00:00Z"
    doc["measurements"][7]["measured_at"] = "2026-03-08T22:59:59.999Z"
    assert [i.expression for i in exporter.rules.check(doc)] == [("$.measurements[4].measured_at",),
                                                                ("$.measurements[7].measured_at",)]


def test_errors_are_capped_and_the_cap_says_so(exporter: Exporter) -> None:
    doc = copy.deepcopy(sample("large"))
    doc["export_period"] = {"from": "2020-01-01", "to": "2020-01-02"}  # every measurement lies outside
    findings = exporter.rules.check(doc)
    assert all(i.is_error for i in findings)
    assert len(findings) == MAX_ISSUES + 1 and findings[-1].message_id == "ISSUES_STOPPED"


def _heart_rates(n: int, value: float = 260) -> list[dict[str, Any]]:
    """n heart rates inside typical.json's period, each implausible (a warning of plausible-heart-rate)."""
    return [{"id": str(uuid.UUID(int=i + 1)), "kind": "heart_rate", "measured_at": "2026-03-10T10:00:00+01:00",
             "value": value, "unit": "bpm", "source": "device"} for i in range(n)]


def test_warnings_alone_never_fail_an_export(exporter: Exporter) -> None:
    """Review 1, finding 2: 101 implausible heart rates (a faulty meter) made the export fail with
    ISSUES_STOPPED. Warnings are listed up to the cap, the rest counted in one information issue."""
    doc = copy.deepcopy(TYP)
    doc["measurements"] += _heart_rates(MAX_ISSUES + 50)
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok and result.bundle is not None, [i.format() for i in result.issues if i.is_error]
    warnings = [i for i in result.issues if i.message_id == "DOMAIN_RULE"]
    assert len(warnings) == MAX_ISSUES and all(i.severity is Severity.WARNING for i in warnings)
    [note] = [i for i in result.issues if i.message_id == "ISSUES_NOT_LISTED"]
    assert note.severity is Severity.INFORMATION and "50 more" in note.message
    assert not any(i.is_error for i in result.issues)


def test_error_rules_still_report_after_many_warnings(exporter: Exporter) -> None:
    """Review 1, finding 2: 200 implausible weights filled the cap and hid the PHQ-9 sum error."""
    doc = copy.deepcopy(TYP)
    doc["measurements"] += _heart_rates(2 * MAX_ISSUES)
    doc["questionnaires"][0]["total_score"] += 1 if doc["questionnaires"][0]["total_score"] < 27 else -1
    findings = exporter.rules.check(doc)
    assert [i.message.split(":")[0] for i in findings if i.is_error] == ["rule total-score-is-sum"]
    assert "ISSUES_STOPPED" not in {i.message_id for i in findings}
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert [i.message_id for i in result.issues if i.is_error] == ["DOMAIN_RULE"]


def test_map_exports_a_document_with_many_warnings(tmp_path: Path, capsys) -> None:
    doc = copy.deepcopy(TYP)
    doc["measurements"] += _heart_rates(MAX_ISSUES + 1)
    src = tmp_path / "w.json"
    src.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["map", str(src), "-o", str(tmp_path / "out.json"), "--export-time", EXPORT_TIME]) == 0
    err = capsys.readouterr().err
    assert "valid (0 error(s), 100 warning(s), 1 note(s)" in err and "ISSUES_STOPPED" not in err


# ----------------------------------------------------------------------------- severities per deployment

def _settings(**kw: Any) -> Settings:
    return Settings(**kw)


def test_a_deployment_can_make_a_plausibility_rule_an_error() -> None:
    strict = Exporter.from_settings(_settings(rule_severity={"plausible-weight-kg": "error"}))
    doc = copy.deepcopy(TYP)
    BREAKS["plausible-weight-kg"][0](doc)
    result = strict.export(doc, export_time=EXPORT_TIME)
    assert result.bundle is None and result.issues[0].severity is Severity.ERROR


def test_a_deployment_can_make_an_impossibility_rule_a_warning() -> None:
    lenient = Exporter.from_settings(_settings(rule_severity={"impossible-weight-kg": "warning"}))
    doc = copy.deepcopy(TYP)
    BREAKS["impossible-weight-kg"][0](doc)
    result = lenient.export(doc, export_time=EXPORT_TIME)
    assert result.ok and result.bundle is not None
    assert [i.severity for i in result.issues if i.message_id == "DOMAIN_RULE"] == [Severity.WARNING] * 2


@pytest.mark.parametrize("overrides, word", [({"kvnr-check-digit": "warning"}, "not configurable"),
                                             ({"plausible-weight": "error"}, "did you mean"),
                                             ({"plausible-weight-kg": "fatal"}, None)])
def test_only_configurable_rules_can_change(overrides: dict[str, str], word: str | None) -> None:
    if word is None:  # not a severity at all: the settings refuse it
        with pytest.raises(ValidationError, match="plausible-weight-kg"):
            _settings(rule_severity=overrides)
        return
    with pytest.raises(ConfigurationError) as info:
        Exporter.from_settings(_settings(rule_severity=overrides))
    assert word in str(info.value)


def test_severity_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DIGA_EXPORTER_RULE_SEVERITY", '{"plausible-heart-rate": "error"}')
    assert Settings().rule_severity == {"plausible-heart-rate": "error"}


# ----------------------------------------------------------------------------- the rule file itself

def _load(text: str):
    data, pos = parse_yaml(text, "mappings/rules.yaml")
    return parse_rules(data, pos, "mappings/rules.yaml", schema())


def _one(text: str) -> str:
    rs = _load(text)
    assert len(rs.issues) == 1, [i.format() for i in rs.issues]
    return rs.issues[0].format()


BROKEN_FILES = {
    "unknown key": ("rules:\n  - id: a\n    description: x\n    recrods: measurements\n"
                    "    check: {greater: {field: systolic, than: diastolic}}\n",
                    "mappings/rules.yaml:4:5: error RULE_UNKNOWN_KEY", "did you mean 'records'"),
    "unknown check": ("rules:\n  - id: a\n    description: x\n    records: measurements\n"
                      "    check: {greatr: {field: systolic, than: diastolic}}\n",
                      "mappings/rules.yaml:5:13: error RULE_UNKNOWN_CHECK", "did you mean 'greater'"),
    "field the schema does not know": ("rules:\n  - id: a\n    description: x\n    records: measurements\n"
                                       "    check: {greater: {field: systolc, than: diastolic}}\n",
                                       "mappings/rules.yaml:5:23: error RULE_FIELD", "did you mean 'systolic'"),
    "list the schema does not know": ("rules:\n  - id: a\n    description: x\n    records: measurement\n"
                                      "    check: {greater: {field: systolic, than: diastolic}}\n",
                                      "mappings/rules.yaml:4:5: error RULE_FIELD", "did you mean 'measurements'"),
    "when value the schema never has": ("rules:\n  - id: a\n    description: x\n    records: measurements\n"
                                        "    when: {kind: blood_presure}\n"
                                        "    check: {greater: {field: systolic, than: diastolic}}\n",
                                        "mappings/rules.yaml:5:12: error RULE_FIELD", "did you mean 'blood_pressure'"),
    "missing argument": ("rules:\n  - id: a\n    description: x\n    records: measurements\n"
                         "    check: {range: {field: value, max: 3}}\n",
                         "mappings/rules.yaml:5:13: error RULE_SHAPE", "needs 'min'"),
    "min above max": ("rules:\n  - id: a\n    description: x\n    records: measurements\n"
                      "    check: {range: {field: value, min: 4, max: 3}}\n",
                      "mappings/rules.yaml:5:13: error RULE_SHAPE", "above"),
    "bad category range": ("rules:\n  - id: a\n    description: x\n    records: diagnoses\n"
                           "    check: {category_in: {field: icd10gm_code, ranges: [B99-A00]}}\n",
                           "mappings/rules.yaml:5:48: error RULE_SHAPE", "first ≤ last"),
    "unknown check digit": ("rules:\n  - id: a\n    description: x\n"
                            "    check: {check_digit: {field: diga.pzn, algorithm: pzm}}\n",
                            "mappings/rules.yaml:4:44: error RULE_SHAPE", "did you mean 'pzn'"),
    "unique per record": ("rules:\n  - id: a\n    description: x\n    records: measurements\n"
                          "    check: {unique: {fields: [id]}}\n",
                          "mappings/rules.yaml:5:13: error RULE_SHAPE", "leave out 'records'"),
    "unique path the schema does not know": ("rules:\n  - id: a\n    description: x\n"
                                             "    check: {unique: {fields: [\"measurements[*].uid\"]}}\n",
                                             "mappings/rules.yaml:4:22: error RULE_FIELD", "measurements[*].uid"),
    "bad severity": ("rules:\n  - id: a\n    description: x\n    check: {check_digit: {field: diga.pzn, algorithm: pzn}}\n"
                     "    severity: fatal\n", "mappings/rules.yaml:5:5: error RULE_SHAPE", "error or warning"),
    "no description": ("rules:\n  - id: a\n    check: {check_digit: {field: diga.pzn, algorithm: pzn}}\n",
                       "mappings/rules.yaml:2:5: error RULE_SHAPE", "'description'"),
    "bad id": ("rules:\n  - id: Bad_Id\n    description: x\n    check: {check_digit: {field: diga.pzn, algorithm: pzn}}\n",
               "mappings/rules.yaml:2:5: error RULE_SHAPE", "lower-case"),
    "duplicate id": ("rules:\n  - id: a\n    description: x\n    check: {check_digit: {field: diga.pzn, algorithm: pzn}}\n"
                     "  - id: a\n    description: y\n    check: {check_digit: {field: diga.pzn, algorithm: pzn}}\n",
                     "mappings/rules.yaml:5:5: error RULE_DUPLICATE_ID", "twice"),
    "not a list": ("rules: {}\n", "mappings/rules.yaml:1:1: error RULE_SHAPE", "list 'rules'"),
}


# Review 1, finding 3: rules whose arguments have a type the check cannot judge passed `check` and
# then held for every record. Each is refused at `check`, at the argument, saying what it must be.
_R = "rules:\n  - id: a\n    description: x\n"
MISTYPED_RULES = {  # name: (records, check, (message id, argument it is reported at), words of the message)
    "a period that is not one": ("measurements", "{inside_period: {field: measured_at, period: $.patient}}",
                                 ("RULE_FIELD", "period"), "no field 'patient.from'"),
    "a period's bound as the period": ("measurements", "{inside_period: {field: measured_at, period: $.export_period.to}}",
                                       ("RULE_FIELD", "period"), "'from' and 'to'"),
    "greater against a text": ("measurements", "{greater: {field: systolic, than: unit}}", ("RULE_TYPE", "than"),
                               "'than' of 'greater' must name a number, but the domain schema makes 'unit' a text; "
                               "such fields here: value, systolic, diastolic"),
    "range on a text": ("measurements", "{range: {field: unit, min: 1, max: 2}}", ("RULE_TYPE", "field"),
                        "makes 'unit' a text"),
    "year_at_most on a text": ("diagnoses", "{year_at_most: {field: display, than: $.export_period.to}}",
                               ("RULE_TYPE", "field"), "must name an integer"),
    "year_at_most against a number": ("diagnoses", "{year_at_most: {field: icd10gm_version, than: icd10gm_version}}",
                                      ("RULE_TYPE", "than"), "must name a date or date-time"),
    "inside_period on a number": ("diagnoses", "{inside_period: {field: icd10gm_version, period: $.export_period}}",
                                  ("RULE_TYPE", "field"), "makes 'icd10gm_version' an integer"),
    "not_after on a number": ("measurements", "{not_after: {field: value, than: measured_at}}", ("RULE_TYPE", "field"),
                              "must name a date or date-time"),
    "not_after against a period": (None, "{not_after: {field: patient.birth_date, than: export_period}}",
                                   ("RULE_TYPE", "than"), "makes 'export_period' a period"),
    "check digit of a number": ("diagnoses", "{check_digit: {field: icd10gm_version, algorithm: pzn}}",
                                ("RULE_TYPE", "field"), "must name a text"),
    "category of a list": ("diary_entries", "{category_in: {field: symptoms, ranges: [A00-B99]}}", ("RULE_TYPE", "field"),
                           "makes 'symptoms' a list"),
    "unique numbers": (None, '{unique: {fields: ["measurements[*].id", "measurements[*].value"]}}',
                       ("RULE_TYPE", "fields"), "measurements[*].value a number"),
}


@pytest.mark.parametrize("name", list(MISTYPED_RULES))
def test_a_rule_that_cannot_apply_is_refused_at_check(name: str) -> None:
    records, check, (message_id, arg), word = MISTYPED_RULES[name]
    text = _R + (f"    records: {records}\n" if records else "") + f"    check: {check}\n"
    lines = text.splitlines()
    column = re.search(rf"\b{arg}:", lines[-1]).start() + 1  # at the argument
    at = f"mappings/rules.yaml:{len(lines)}:{column}: error {message_id}: "
    message = _one(text)
    assert message.startswith(at) and word in message, message


def test_swapped_arguments_are_named_as_such() -> None:
    rs = _load(_R + "    records: questionnaires\n    check: {sum_equals: {items: total_score, total: answers}}\n")
    assert [i.format() for i in rs.issues] == [
        "mappings/rules.yaml:5:26: error RULE_TYPE: 'items' of 'sum_equals' must name a list of numbers, but the "
        "domain schema makes 'total_score' an integer; did you swap 'items' and 'total'?",
        "mappings/rules.yaml:5:46: error RULE_TYPE: 'total' of 'sum_equals' must name a number, but the domain "
        "schema makes 'answers' a list of numbers; did you swap 'total' and 'items'?"]
    assert rs.rules == []


def test_every_field_argument_declares_what_it_holds() -> None:
    """The loader judges a field argument by its declared value type: a new check kind cannot skip it."""
    for kind in KINDS.values():
        for arg in kind.args:
            assert (arg.type in ("field", "fields")) == (arg.value in VALUES), (kind.name, arg.name)


def test_the_reviews_damaged_rule_file_fails_check(tmp_path: Path, capsys) -> None:
    """The three one-line mistakes of review 1 (rules_noop.sh) used to pass `check` and export a
    reversed blood pressure, a wrong PHQ-9 sum and a December measurement as valid."""
    import shutil

    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    text = RULES.read_text(encoding="utf-8")
    for old, new in (("{sum_equals: {items: answers, total: total_score}}", "{sum_equals: {items: total_score, total: answers}}"),
                     ("{inside_period: {field: measured_at, period: $.export_period}}",
                      "{inside_period: {field: measured_at, period: $.patient}}"),
                     ("{greater: {field: systolic, than: diastolic}}", "{greater: {field: systolic, than: unit}}")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (target / "rules.yaml").write_text(text, encoding="utf-8")
    assert main(["check", "--mappings", str(target)]) == 1
    out = capsys.readouterr().out
    lines = rule_lines()
    for rule_id, message_id in (("total-score-is-sum", "RULE_TYPE"), ("measurement-in-period", "RULE_FIELD"),
                                ("blood-pressure-order", "RULE_TYPE")):
        assert any(f"mappings/rules.yaml:{line}:" in out and message_id in out
                   for line in range(lines[rule_id], lines[rule_id] + 6)), (rule_id, out)
    assert "patient.from" in out and "rule measurement-in-period" not in out
    assert Exporter.from_settings(get_settings(), target).export(copy.deepcopy(TYP), export_time=EXPORT_TIME).bundle is None


# At run time (a rule set loaded without the schema, or a document that skipped it): a value of a type
# the check cannot judge is reported at its path, never taken for "the rule holds".
WRONG_TYPES = {
    "greater": ("records: measurements", "{greater: {field: systolic, than: diastolic}}",
                ("measurements", 6, "systolic"), "60", "$.measurements[6].systolic", "is not a number"),
    "sum_equals items": ("records: questionnaires", "{sum_equals: {items: answers, total: total_score}}",
                         ("questionnaires", 0, "answers"), ["0"] * 9, "$.questionnaires[0].answers",
                         "is not a list of numbers"),
    "sum_equals total": ("records: questionnaires", "{sum_equals: {items: answers, total: total_score}}",
                         ("questionnaires", 0, "total_score"), "20", "$.questionnaires[0].total_score", "is not a number"),
    "inside_period value": ("records: measurements", "{inside_period: {field: measured_at, period: $.export_period}}",
                            ("measurements", 4, "measured_at"), 20260310, "$.measurements[4].measured_at",
                            "is not a date or date-time"),
    "inside_period period": ("records: measurements", "{inside_period: {field: measured_at, period: $.export_period}}",
                             ("export_period",), "2026-03", "$.export_period", "is not a period"),
    "not_after": ("", "{not_after: {field: patient.birth_date, than: export_period.to}}",
                  ("patient", "birth_date"), 19800101, "$.patient.birth_date", "is not a date or date-time"),
    "unique": ("", "{unique: {fields: [patient.id, \"measurements[*].id\"]}}",
               ("measurements", 2, "id"), 7, "$.measurements[2].id", "is not a text"),
    "range": ("records: measurements\n    when: {kind: heart_rate}", "{range: {field: value, min: 20, max: 250}}",
              ("measurements", 7, "value"), "300", "$.measurements[7].value", "is not a number"),
    "check_digit": ("", "{check_digit: {field: diga.pzn, algorithm: pzn}}",
                    ("diga", "pzn"), 17654328, "$.diga.pzn", "is not a text"),
    "category_in": ("records: diagnoses", "{category_in: {field: icd10gm_code, ranges: [A00-Z99]}}",
                    ("diagnoses", 1, "icd10gm_code"), 42, "$.diagnoses[1].icd10gm_code", "is not a text"),
    "year_at_most": ("records: diagnoses", "{year_at_most: {field: icd10gm_version, than: $.export_period.to}}",
                     ("diagnoses", 0, "icd10gm_version"), "2028", "$.diagnoses[0].icd10gm_version",
                     "is not an integer"),
}


def test_a_date_time_without_offset_is_not_comparable_and_never_raises() -> None:
    assert _not_after("2026-03-10T10:00:00", "2026-03-10T10:00:00+01:00") is None
    assert _not_after("2026-03-10T10:00:00Z", "2026-03-10T11:00:00+01:00") is True


@pytest.mark.parametrize("name", list(WRONG_TYPES))
def test_a_value_of_the_wrong_type_is_reported_not_taken_for_a_rule_that_holds(name: str) -> None:
    scope, check, at, value, path, words = WRONG_TYPES[name]
    text = _R + (f"    {scope}\n" if scope else "") + f"    check: {check}\n"
    data, pos = parse_yaml(text, "mappings/rules.yaml")
    rs = parse_rules(data, pos, "mappings/rules.yaml")  # no schema: nothing was judged at load time
    assert rs.issues == [] and rs.check(TYP) == []
    doc = copy.deepcopy(TYP)
    _set(at, value)(doc)
    found = rs.check(doc)
    assert [(i.expression, i.severity) for i in found] == [((path,), Severity.ERROR)], [i.format() for i in found]
    assert words in found[0].message and "cannot be checked" in found[0].message
    assert json.dumps(value) not in found[0].message and str(value) not in found[0].message


@pytest.mark.parametrize("name", list(BROKEN_FILES))
def test_a_broken_rule_file_is_reported_with_its_line(name: str) -> None:
    text, start, word = BROKEN_FILES[name]
    message = _one(text)
    assert message.startswith(start) and word in message, message


def test_a_broken_rule_file_stops_exports_and_check(tmp_path: Path, capsys) -> None:
    import shutil

    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    (target / "rules.yaml").write_text(RULES.read_text(encoding="utf-8").replace("than: diastolic", "than: diastolc"),
                                       encoding="utf-8")
    broken = Exporter.from_settings(get_settings(), target)
    assert [i.message_id for i in broken.load_issues if i.is_error] == ["RULE_FIELD"]
    assert broken.export(copy.deepcopy(TYP), export_time=EXPORT_TIME).bundle is None
    assert main(["check", "--mappings", str(target)]) == 1
    assert "mappings/rules.yaml:" in capsys.readouterr().out


def test_a_mapping_set_without_a_rule_file_is_refused(tmp_path: Path, capsys) -> None:
    """Review 1, finding 15: a copied mapping set without rules.yaml exported without a single rule."""
    import shutil

    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    (target / "rules.yaml").unlink()
    assert main(["check", "--mappings", str(target)]) == 1
    out = capsys.readouterr().out
    assert "mappings/rules.yaml: error RULE_FILE_MISSING:" in out and "rules: []" in out
    missing = Exporter.from_settings(get_settings(), target)
    assert [i.message_id for i in missing.load_issues if i.is_error] == ["RULE_FILE_MISSING"]
    doc = copy.deepcopy(TYP)
    BREAKS["kvnr-check-digit"][0](doc)
    result = missing.export(doc, export_time=EXPORT_TIME)
    assert result.bundle is None and [i.message_id for i in result.issues] == ["MAP_SET_INVALID"]
    src = tmp_path / "doc.json"
    src.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["map", str(src), "--mappings", str(target), "-o", str(tmp_path / "out.json")]) == 1
    assert "RULE_FILE_MISSING" in capsys.readouterr().err


def test_an_empty_rule_list_is_the_explicit_way_to_have_none(tmp_path: Path, capsys) -> None:
    import shutil

    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    (target / "rules.yaml").write_text("rules: []\n", encoding="utf-8")
    assert main(["check", "--mappings", str(target)]) == 0
    assert ", 0 rules: 0 error(s)" in capsys.readouterr().out
    assert Exporter.from_settings(get_settings(), target).export(copy.deepcopy(TYP), export_time=EXPORT_TIME).ok


def test_a_missing_mapping_folder_is_not_also_a_missing_rule_file(tmp_path: Path) -> None:
    rs = load_rules(tmp_path / "nowhere" / "rules.yaml", "nowhere/rules.yaml", schema())
    assert rs.issues == [] and rs.rules == []


def test_the_loaded_rules_are_those_of_the_file() -> None:
    rs = load_rules(RULES, "mappings/rules.yaml", schema())
    assert rs.issues == []
    raw = yaml.safe_load(RULES.read_text(encoding="utf-8"))["rules"]
    assert [r.id for r in rs.rules] == [r["id"] for r in raw]
    assert {r.id: r.severity.value for r in rs.rules} == {r["id"]: r.get("severity", "error") for r in raw}


# ----------------------------------------------------------------------------- listing and docs

def test_check_lists_every_rule(capsys) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for rule_id, line in rule_lines().items():
        assert f"mappings/rules.yaml:{line}:5: rule {rule_id} [" in out, rule_id
    assert f"{len(rule_lines())} rules" in out


def test_docs_domain_md_names_every_rule_and_what_it_checks() -> None:
    text = (ROOT / "docs" / "domain.md").read_text(encoding="utf-8")
    rs = load_rules(RULES, "mappings/rules.yaml", schema())
    for rule in rs.rules:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{rule.id}` |")), None)
        assert row is not None, f"docs/domain.md has no row for rule {rule.id}"
        assert rule.kind.explain(rule.args) in row, f"the row of {rule.id} does not say what it checks"
        assert f"| {rule.severity.value}" in row


def test_rules_with_the_same_when_share_its_records_and_others_do_not() -> None:
    """RuleSet.check selects the records of one `when` once for all its rules: each rule still reports
    exactly the records its own `when` selects (same `when`: the same records; another unit: others)."""
    rs = _load("rules:\n"
               "  - {id: a, description: x, records: measurements, when: {kind: weight, unit: kg},"
               " check: {range: {field: value, min: 2, max: 350}}}\n"
               "  - {id: b, description: x, records: measurements, when: {kind: weight, unit: kg},"
               " check: {range: {field: value, min: 5, max: 300}}}\n"
               "  - {id: c, description: x, records: measurements, when: {kind: weight, unit: g},"
               " check: {range: {field: value, min: 2000, max: 350000}}}\n"
               "  - {id: d, description: x, records: measurements, when: {kind: [weight, height]},"
               " check: {range: {field: value, min: 2, max: 300}}}\n")
    assert rs.issues == []
    doc = {"measurements": [{"kind": "weight", "unit": "kg", "value": 400}, {"kind": "weight", "unit": "g", "value": 1},
                            {"kind": "height", "unit": "cm", "value": 301}, {"kind": "weight", "unit": "kg", "value": 4}]}
    found = sorted((i.message.split(":")[0], i.expression[0]) for i in rs.check(doc))
    assert found == [("rule a", "$.measurements[0].value"), ("rule b", "$.measurements[0].value"),
                     ("rule b", "$.measurements[3].value"), ("rule c", "$.measurements[1].value"),
                     ("rule d", "$.measurements[0].value"), ("rule d", "$.measurements[1].value"),
                     ("rule d", "$.measurements[2].value")]
