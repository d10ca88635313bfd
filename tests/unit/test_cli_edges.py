"""CLI edges found by review 1 (findings 4, 6, 11, 13, 14): one line and a defined exit code for every
set-up problem (malformed settings, unreadable inputs, unwritable outputs, a mapping folder that is
not one, an export time without a zone), duplicate members refused, positions of domain issues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
TYPICAL = ROOT / "samples" / "patients" / "typical.json"
PATIENT_KEY = '"patient": '


@pytest.fixture
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- 6: malformed settings

COMMANDS = [["check"], ["map", str(TYPICAL)], ["validate", str(TYPICAL)], ["convert", str(TYPICAL)],
            ["concept-maps", "-o", "/nonexistent/out"], ["serve", "--port", "1"], ["fetch-core"], ["build-ig", "--check"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("name, value, reason", [
    ("DIGA_EXPORTER_RULE_SEVERITY", '{"plausible-weight-kg": "fatal-SECRETVALUE"}', "'error' or 'warning'"),
    ("DIGA_EXPORTER_RULE_SEVERITY", "{SECRETVALUE", "not valid JSON"),
    ("DIGA_EXPORTER_RULE_SEVERITY", '["SECRETVALUE"]', "valid dictionary"),
    ("DIGA_EXPORTER_MAX_ISSUES", "SECRETVALUE", "valid integer"),
])
def test_a_malformed_setting_is_one_line_naming_it_and_exit_2(command, name, value, reason, monkeypatch, capsys,
                                                              fresh_settings):
    monkeypatch.setenv(name, value)
    assert main(command) == 2
    out, err = capsys.readouterr()
    assert out == "" and _lines(err) == [f"{name}: error SETTINGS_INVALID: " + _lines(err)[0].split(": ", 2)[2]], err
    assert reason in err and "SECRETVALUE" not in err and "Traceback" not in err


# ----------------------------------------------------------------------------- 13: inputs, outputs, usage


@pytest.mark.parametrize("command, message_id", [
    (["validate", "{missing}"], "VAL_READ"), (["map", "{missing}"], "MAP_INPUT"), (["convert", "{missing}"], "CONVERT_READ"),
])
def test_an_input_file_that_cannot_be_read_is_exit_2_in_every_command(command, message_id, tmp_path, capsys):
    missing = str(tmp_path / "nope.json")
    assert main([c.replace("{missing}", missing) for c in command]) == 2
    err = capsys.readouterr().err
    assert _lines(err)[0] == f"{missing}: fatal {message_id}: cannot read: No such file or directory", err


def test_validate_goes_on_after_an_unreadable_file(tmp_path, capsys):
    good = tmp_path / "p.json"
    good.write_text('{"resourceType": "Patient"}', encoding="utf-8")
    assert main(["validate", str(tmp_path / "nope.json"), str(good)]) == 2
    out = capsys.readouterr().out
    assert f"{good}: valid" in out


@pytest.mark.parametrize("command", [
    ["map", str(TYPICAL), "--export-time", "2026-04-01T00:00:00Z", "-o", "{bad}/x.json"],
    ["convert", str(ROOT / "igs"), "-o", "{bad}/x.json"],
    ["concept-maps", "-o", "{bad}/maps"],
])
def test_an_output_path_that_cannot_be_written_is_one_line_and_exit_2(command, tmp_path, capsys):
    if command[0] == "convert":
        src = tmp_path / "p.json"
        src.write_text('{"resourceType": "Patient", "id": "p"}', encoding="utf-8")
        command = ["convert", str(src), "-o", "{bad}/x.xml"]
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = [c.replace("{bad}", str(blocker)) for c in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(line.startswith(f"{blocker}/") and "fatal OUTPUT_WRITE: cannot write: " in line for line in _lines(err)), err


@pytest.mark.parametrize("value", ["2026-04-01T00:00:00", "2026-04-01", "2026-04-01T10:00+02:00", "yesterday"])
def test_an_export_time_without_seconds_and_zone_is_a_usage_error(value, capsys):
    assert main(["map", str(TYPICAL), "--export-time", value]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(_lines(err)) == 1 and "--export-time" in err and "timezone" in err


def test_check_on_a_mapping_folder_that_is_not_a_folder_is_one_error(capsys):
    assert main(["check", "--mappings", str(ROOT / "README.md")]) == 2
    out, err = capsys.readouterr()
    assert _lines(out + err) == [f"error MAP_ROOT: mapping folder {ROOT / 'README.md'} is not a folder"]


# ----------------------------------------------------------------------------- 4 and 14: the reader's verdicts


def test_duplicate_members_fail_validate_and_map(tmp_path, capsys):
    fhir = tmp_path / "p.json"
    fhir.write_text('{"resourceType": "Patient",\n "gender": "nonsense",\n "gender": "male"}', encoding="utf-8")
    assert main(["validate", str(fhir)]) == 1
    out = capsys.readouterr().out
    assert _lines(out)[0] == (f"{fhir}:3:2: fatal JSON_DUPLICATE_KEY: duplicate member name 'gender' in one object "
                              "(JSON member names must be unique)")
    text = TYPICAL.read_text(encoding="utf-8")
    domain = tmp_path / "d.json"
    domain.write_text(text.replace('"patient": {', '"patient": {"id": "not-a-uuid"}, "patient": {', 1), encoding="utf-8")
    assert main(["map", str(domain), "--export-time", "2026-04-01T00:00:00Z"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "fatal JSON_DUPLICATE_KEY: duplicate member name 'patient'" in err


def test_a_whitespace_file_has_one_position(tmp_path, capsys):
    """Finding 14: VAL_NOT_JSON quoted orjson's 'line 1 column 1 (char 0)' beside the position 3:1."""
    ws = tmp_path / "ws.json"
    ws.write_text("  \n\n", encoding="utf-8")
    assert main(["validate", str(ws)]) == 1
    line = _lines(capsys.readouterr().out)[0]
    assert line == f"{ws}:3:1: fatal JSON_SYNTAX: not well-formed JSON: unexpected end of input, expected a JSON value"


def test_json_format_of_several_files_is_a_valid_bundle(tmp_path, capsys):
    """Finding 14: the entries' fullUrl was 'file:name', not a URI; now urn:uuid, the name in the narrative."""
    from exporter.validation.validator import Validator

    names = []
    for i in range(2):
        path = tmp_path / f"p{i}.json"
        path.write_text('{"resourceType": "Patient", "gender": "x"}', encoding="utf-8")
        names.append(str(path))
    assert main(["validate", "--format", "json", *names]) == 1
    bundle = json.loads(capsys.readouterr().out)
    assert [e["fullUrl"][:9] for e in bundle["entry"]] == ["urn:uuid:"] * 2
    assert all(name in e["resource"]["text"]["div"] for name, e in zip(names, bundle["entry"], strict=True))
    assert main(["validate", "--format", "json", *names]) == 1
    assert json.loads(capsys.readouterr().out) == bundle  # the same files, the same uuids
    issues = Validator.from_settings(get_settings()).validate(bundle)
    # (the HL7 line/col extensions are not in the R4 core package, so they are unknown to it)
    assert not [i for i in issues if i.is_error and i.message_id != "VAL_EXTENSION_UNKNOWN"], [i.format() for i in issues]


# ----------------------------------------------------------------------------- 11: positions of domain issues


def _position(text: str, needle: str, nth: int = 0) -> str:
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    return f"{text.count(chr(10), 0, offset) + 1}:{offset - text.rfind(chr(10), 0, offset)}"


def test_map_prints_line_and_column_of_schema_rule_and_mapping_issues(tmp_path, capsys):
    doc = json.loads(TYPICAL.read_text(encoding="utf-8"))
    del doc["patient"]["given_name"]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    assert main(["map", str(path), "--export-time", "2026-04-01T00:00:00Z"]) == 1
    text = path.read_text(encoding="utf-8")
    err = capsys.readouterr().err
    line, col = _position(text, PATIENT_KEY).split(":")
    patient = f"{line}:{int(col) + len(PATIENT_KEY)}"
    assert (f"{path}:{patient}: error DOMAIN_SCHEMA: domain document breaks schema rule 'required': misses the "
            f"required member(s) 'given_name' (at $.patient)") in _lines(err), err

    doc = json.loads(TYPICAL.read_text(encoding="utf-8"))  # a cross-field rule
    bp = next(m for m in doc["measurements"] if m["kind"] == "blood_pressure")
    index = doc["measurements"].index(bp)
    bp["systolic"], bp["diastolic"] = bp["diastolic"], bp["systolic"]
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    assert main(["map", str(path), "--export-time", "2026-04-01T00:00:00Z"]) == 1
    text = path.read_text(encoding="utf-8")
    rule = [line for line in _lines(capsys.readouterr().err) if "DOMAIN_RULE" in line]
    assert rule and rule[0].startswith("mappings/rules.yaml:"), rule
    line, _ = _list_item(text, "measurements", index).split(":")
    record = sum(len(x) + 1 for x in text.split("\n")[:int(line) - 1])
    systolic = text.index('"systolic": ', record) + len('"systolic": ')
    where = f"{text.count(chr(10), 0, systolic) + 1}:{systolic - text.rfind(chr(10), 0, systolic)}"
    assert rule[0].endswith(f"(at $.measurements[{index}].systolic; {path}:{where})"), rule

    mappings = tmp_path / "mappings"  # a mapping issue: the code table lacks the document's mood 2
    shutil.copytree(ROOT / "mappings", mappings)
    table = mappings / "codes" / "mood-scale.yaml"
    lines = table.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index('  "2":\n')
    table.write_text("".join(lines[:start] + lines[start + 5:]), encoding="utf-8")
    doc = json.loads(TYPICAL.read_text(encoding="utf-8"))
    entry = next(k for k, e in enumerate(doc["diary_entries"]) if e.get("mood") == 2)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    assert main(["map", str(path), "--mappings", str(mappings), "--export-time", "2026-04-01T00:00:00Z"]) == 1
    text = path.read_text(encoding="utf-8")
    unmapped = [line for line in _lines(capsys.readouterr().err) if "MAP_CODE_UNMAPPED" in line]
    assert unmapped and unmapped[0].endswith(f"(at $.diary_entries[{entry}]; {path}:{_list_item(text, 'diary_entries', entry)})"), unmapped


def _list_item(text: str, name: str, index: int) -> str:
    """line:col of item `index` of the top-level list `name` in an indent=1 dump (each item starts a line
    with two spaces of indent and a '{')."""
    start = text.index(f'"{name}": [')
    lines = text[start:].split("\n")
    items = [k for k, line in enumerate(lines) if line == "  {"]
    line = text.count("\n", 0, start) + 1 + items[index]
    return f"{line}:3"
