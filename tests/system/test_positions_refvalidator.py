"""Our line:column agree with the HL7 reference validator's on invalid files.

The HL7 validator (its JSON parser, as built in tools/java) reports an issue at the line where the
node *starts* and the column just *after its end* (`"gender": "x",` → the column of the comma).
We report where the node starts (line and column, like a compiler). So the check is: for each
issue HL7 positions, the node its FHIRPath names — found by our scanner — starts on HL7's line and
ends just before HL7's column; and each of our issues about the same node has HL7's line.

Some HL7 messages are positioned at another node than the one their expression names (the Coding
for an unknown code system, the referring entry for a reverse-link check, …); those are listed
below with what HL7 points at, and left out of the comparison.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.fhir.positions import attach, spans
from exporter.settings import get_settings
from exporter.validation.validator import Validator
from tests.system.test_ig_invalid import CASES_DIR, PLACEHOLDERS
from tools.devstack.refvalidator import EXT_COL, EXT_LINE, expression, message_id, text

pytestmark = pytest.mark.refvalidator

# HL7 messages positioned at another node than their expression names
ELSEWHERE = {
    "UNKNOWN_CODESYSTEM": "the Coding (its expression names Coding.system)",
    "Unknown_Code_in_Version": "the Coding (its expression names Coding.code)",
    "BUNDLE_BUNDLE_ENTRY_REVERSE_R4": "the entry that refers (its expression names the entry referred to)",
    "Bundle_BUNDLE_Entry_NotFound": "the reference inside the resource (its expression names the element)",
    "Bundle_BUNDLE_Entry_Orphan_DOCUMENT": "the entry's resource",
    "Bundle_BUNDLE_Entry_Document": "the Bundle's first entry",
    "Extension_PROF_Type": "the resource",
    "Questionnaire_QR_Item_NoCoding": "the answer's value",
    "Questionnaire_QR_Q_NotFound": "the questionnaire reference",
}
ELSEWHERE_TEXT = {
    "Unrecognized property": "the unknown property (its expression names the object holding it)",
    "Error parsing JSON": "the offending item (its expression names the element, e.g. the whole array)",
}

HANDWRITTEN = {
    "patient.json": """{
  "resourceType": "Patient",
  "id": "p1",
  "gender": "femalex",
  "birthDate": "1964-13-12",
  "name": [
    {
      "family": "Muster",
      "given": ["Erika", "Anna"],
      "_given": [null, {"extension": [{"url": "http://example.org/x"}]}]
    }
  ],
  "_birthDate": {"extension": [{"url": "http://example.org/y"}]}
}
""",
    "observation.json": """{"resourceType": "Observation", "status": "final",
 "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "valueQuantity": {"value": "72.4", "unit": "kg"},
 "component": [{"code": {"text": "x"}, "valueString": 3}]
}
""",
    "bundle.json": """{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {"fullUrl": "urn:uuid:0f0c3b5e-8b0b-4b9e-9d55-5d6c1c1d1a01",
     "resource": {"resourceType": "Patient", "gender": "x",
                  "contained": [{"resourceType": "Organization", "name": 7}]}},
    {"resource": {"resourceType": "Observation", "status": "final",
        "code": {"text": "w"},
        "valueQuantity": {"value": "1"}}}
  ]
}
""",
}


def _corpus() -> dict[str, str]:
    files = dict(HANDWRITTEN)
    for path in sorted(CASES_DIR.glob("*.json")):
        raw = path.read_text(encoding="utf-8")
        for token, value in PLACEHOLDERS.items():
            raw = raw.replace(token, value)
        files[path.name] = raw
        if len(files) % 6 == 0:  # every sixth case also on one line, where only the columns tell nodes apart
            files["compact-" + path.name] = json.dumps(json.loads(raw), ensure_ascii=False)
    return files


def _positioned(outcome: dict[str, Any]) -> list[tuple[str, int, int, dict]]:
    out = []
    for issue in outcome.get("issue", []):
        ext = {e.get("url"): e.get("valueInteger") for e in issue.get("extension", [])}
        if ext.get(EXT_LINE) is not None and expression(issue):
            out.append((expression(issue), ext[EXT_LINE], ext[EXT_COL], issue))
    return out


def _elsewhere(issue: dict) -> bool:
    return message_id(issue) in ELSEWHERE or any(t in text(issue) for t in ELSEWHERE_TEXT)


@pytest.fixture(scope="module")
def compared(refvalidator):
    files = _corpus()
    return {name: (raw, refvalidator.validate_text(raw)) for name, raw in files.items()}


def test_hl7_positions_are_the_nodes_our_scanner_finds(compared):
    checked, wrong = 0, []
    for name, (raw, outcome) in compared.items():
        hl7 = [p for p in _positioned(outcome) if not _elsewhere(p[3])]
        found = spans(raw, [e for e, *_ in hl7])
        for expr, line, col, _ in hl7:
            (start_line, _), (_, end_col) = found[expr]
            checked += 1
            if (line, col) != (start_line, end_col):
                wrong.append(f"{name}: {expr}: HL7 {line}:{col}, our node starts on line {start_line}, ends before {end_col}")
    assert wrong == []
    assert checked > 800, checked


def test_our_issues_are_on_the_line_hl7_reports(compared):
    validator = Validator.from_settings(get_settings())
    pairs, wrong, files = 0, [], set()
    for name, (raw, outcome) in compared.items():
        data = raw.encode("utf-8")
        ours = [i for i in attach(validator.validate_json(data), data, file=name) if i.expression]
        hl7 = [p for p in _positioned(outcome) if not _elsewhere(p[3])]
        nodes = spans(raw, [e for e, *_ in hl7] + [i.expression[0] for i in ours])
        for issue in ours:
            node = nodes[issue.expression[0]]
            assert issue.position is not None and (issue.position.line, issue.position.column) == node[0]
            for expr, line, col, _ in hl7:
                if nodes[expr] == node:
                    pairs += 1
                    files.add(name)
                    if (line, col) != (node[0][0], node[1][1]):
                        wrong.append(f"{issue.format()}: HL7 {line}:{col} for {expr}")
    assert wrong == []
    assert pairs > 80 and len(files) > 30, (pairs, len(files))

