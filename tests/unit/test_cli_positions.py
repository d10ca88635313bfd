"""`fhir-export validate` reports like a compiler: `file:line:col: severity ID: message (at FHIRPath)`,
and the same positions as HL7 extensions in `--format json`."""

from __future__ import annotations

import json

from exporter.cli import main
from exporter.issues import EXT_ISSUE_COL, EXT_ISSUE_LINE

OBSERVATION = """{
  "resourceType": "Observation",
  "status": "final",
  "code": {"text": "weight"},
  "valueQuantity": {
    "value": "72.4",
    "unit": "kg"
  },
  "component": [
    {"code": {"text": "a"}, "valueString": 3}
  ]
}
"""


def test_table_lines_start_with_file_line_col(tmp_path, capsys):
    path = tmp_path / "obs.json"
    path.write_text(OBSERVATION, encoding="utf-8")
    assert main(["validate", "-w", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"{path}:6:14: error VAL_PRIMITIVE: ")
               and line.endswith("(at Observation.valueQuantity.value)") for line in out)
    assert any(line.startswith(f"{path}:10:44: error VAL_PRIMITIVE: ")
               and line.endswith("(at Observation.component[0].valueString)") for line in out)
    assert any(line.startswith(f"{path}:1:1: warning VAL_INVARIANT: constraint dom-6") for line in out)
    assert out[-1] == f"{path}: INVALID (2 error(s), 1 warning(s))"


def test_json_output_carries_the_hl7_extensions(tmp_path, capsys):
    path = tmp_path / "obs.json"
    path.write_text(OBSERVATION, encoding="utf-8")
    assert main(["validate", "--format", "json", str(path)]) == 1
    outcome = json.loads(capsys.readouterr().out)
    found = {i["expression"][0]: [(e["url"], e["valueInteger"]) for e in i["extension"]] for i in outcome["issue"]}
    assert found["Observation.valueQuantity.value"] == [(EXT_ISSUE_LINE, 6), (EXT_ISSUE_COL, 14)]
    assert found["Observation.component[0].valueString"] == [(EXT_ISSUE_LINE, 10), (EXT_ISSUE_COL, 44)]


def test_syntax_errors_and_whole_file_problems_have_positions(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Patient",\n "name": [{"given": ["a",]}]}', encoding="utf-8")
    not_object = tmp_path / "list.json"
    not_object.write_text('\n\n  [1, 2]', encoding="utf-8")
    bad_utf8 = tmp_path / "latin1.json"
    bad_utf8.write_bytes(b'{"resourceType": "Patient",\n "name": [{"family": "M\xfcller"}]}')
    assert main(["validate", str(broken), str(not_object), str(bad_utf8)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{broken}:2:26: fatal JSON_SYNTAX: not well-formed JSON: expected a JSON value"
    assert out[2].startswith(f"{not_object}:3:3: fatal VAL_NOT_OBJECT: ")
    assert out[4] == f"{bad_utf8}:2:24: fatal JSON_SYNTAX: not well-formed JSON: invalid UTF-8"


def test_map_input_that_is_not_json_says_where(tmp_path, capsys):
    path = tmp_path / "domain.json"
    path.write_text('{"schema_version": "1.0",\n  "patient": {"id": 1,,}}', encoding="utf-8")
    assert main(["map", str(path)]) == 1
    assert capsys.readouterr().err.strip() == \
        f"{path}:2:23: fatal JSON_SYNTAX: not well-formed JSON: expected a member name in double quotes"
