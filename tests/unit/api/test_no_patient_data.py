"""No patient data in any error, log line or OperationOutcome, from any stage.

One test drives every error path — the domain schema, the cross-field rules, the mapping (with a
scratch mapping set made to fail on the patient's values), our validator, and the API routes that carry
them — with the canary values of the samples (names, notes, KVNR, birth date: samples/patients/
CANARIES.txt) and asserts that none appears in the CLI's output (`fhir-export map`, `validate`), in the
API's bodies (`POST /internal/export`, `GET /patient/export`, `POST /$validate`) or in the captured logs.
No answer is a 500 and no command ends in a traceback, also for unpaired surrogates.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.api.logs import JsonFormatter
from exporter.cli import main
from exporter.pipeline import Exporter
from exporter.settings import Settings

from .conftest import ANNA_ID

ROOT = Path(__file__).resolve().parents[3]
TYPICAL = json.loads((ROOT / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
CANARIES = (ROOT / "samples" / "patients" / "CANARIES.txt").read_text(encoding="utf-8").splitlines()
FHIR = {"Content-Type": "application/fhir+json"}
NAME, FAMILY, BORN, KVNR = (TYPICAL["patient"][k] for k in ("given_name", "family_name", "birth_date", "kvnr"))
NOTE = next(e["note"] for e in TYPICAL["diary_entries"] if "Kanarien" in e.get("note", ""))
assert {NAME, FAMILY, BORN, KVNR} <= set(CANARIES) and any(c in NOTE for c in CANARIES)


def _doc(**changes: Callable[[dict], None]) -> dict[str, Any]:
    doc = copy.deepcopy(TYPICAL)
    for change in changes.values():
        change(doc)
    return doc


def _note(value: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        next(e for e in doc["diary_entries"] if e.get("note") == NOTE)["note"] = value
    return change


def _patient(key: str, value: Any) -> Callable[[dict], None]:
    return lambda doc: doc["patient"].__setitem__(key, value)


# error paths through the domain schema and the rules: each document carries the canaries and fails on one
DOCUMENTS = {
    "schema: unpaired surrogate in the given name": _doc(a=_patient("given_name", NAME + "\ud800")),
    "schema: NUL in the note": _doc(a=_note(NOTE + "\x00")),
    "schema: escape character in the family name": _doc(a=_patient("family_name", "\x1b" + FAMILY)),
    "schema: KVNR with a blank": _doc(a=_patient("kvnr", KVNR + " ")),
    "schema: birth date with a time": _doc(a=_patient("birth_date", BORN + "T00:00:00Z")),
    "schema: family name too long": _doc(a=_patient("family_name", FAMILY * 10)),
    "schema: leap second": _doc(a=lambda d: d["measurements"][0].__setitem__("measured_at", BORN + "T23:59:60Z")),
    "rules: born after the period": _doc(a=lambda d: d.__setitem__("export_period", {"from": "1959-01-01",
                                                                                    "to": "1959-07-22"})),
    "rules: KVNR check digit": _doc(a=_patient("kvnr", KVNR[:9] + str((int(KVNR[9]) + 1) % 10))),
    "rules: plausibility warnings and an error": _doc(
        a=lambda d: d["measurements"][1].__setitem__("value", 699),
        b=lambda d: d["questionnaires"][0].__setitem__("total_score", 27)),
}

# error paths through the mapping and the validator: a scratch mapping set that trips over the values
MAPPING_BREAKS = [
    ("resources/patient.yaml", "family: {path: patient.family_name}",
     "family: {path: patient.family_name, as: integer}"),  # MAP_CONVERT
    ("resources/patient.yaml", "gender: {table: gender, key: {path: patient.gender}, field: code}",
     "gender: {table: gender, key: {path: patient.family_name}, field: code}"),  # MAP_CODE_UNMAPPED
    ("resources/diary-entry.yaml", "text: {path: note, as: markdown}", "text: {path: note, as: decimal}"),  # MAP_CONVERT
]

# error paths of our validator on its own (`fhir-export validate`, `POST /$validate`)
RESOURCE = {"resourceType": "Patient", "name": [{"family": FAMILY + "\x00", "given": [NAME, "\x07"]}],
            "birthDate": BORN + "x", "gender": FAMILY,
            "identifier": [{"system": "http://fhir.de/sid/gkv/kvid-10", "value": KVNR + "\x00"}],
            "link": [{"other": {"reference": NAME}, "type": "seealso"}]}


def _leaks(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def _scratch_mappings(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", target)
    for file, old, new in MAPPING_BREAKS:
        path = target / file
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{file} no longer has {old!r}: update MAPPING_BREAKS"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return target


def test_no_canary_in_any_error_log_or_outcome(tmp_path, capsys, caplog, make_client, idp, exporter) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []  # everything a person or a log collector could see

    # ---- the CLI: fhir-export map on every broken document, with the real and with the scratch mappings
    scratch = _scratch_mappings(tmp_path)
    broken_by_mapping = Exporter.from_settings(Settings(), scratch)
    assert not [i for i in broken_by_mapping.load_issues if i.is_error], "the scratch mappings load; they fail at run time"
    for n, (name, doc) in enumerate(list(DOCUMENTS.items()) + [("mapping: typical", copy.deepcopy(TYPICAL))]):
        path = tmp_path / f"doc{n}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")  # \ud800 stays an escape, as a backend would send it
        args = ["map", str(path), "-v", "--export-time", "2026-04-06T10:00:00+02:00"]
        if name.startswith("mapping"):
            args += ["--mappings", str(scratch)]
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 1, (name, code, err[-500:])
        assert "Traceback" not in err
        outputs += [out, err]
    result = broken_by_mapping.export(copy.deepcopy(TYPICAL), export_time="2026-04-06T10:00:00+02:00")
    ids = {i.message_id for i in result.issues}
    assert {"MAP_CONVERT", "MAP_CODE_UNMAPPED"} <= ids, ids  # the mapping paths ran (VAL_ needs a clean mapping)
    only_validator = _scratch_mappings(tmp_path / "v")
    (only_validator / "resources" / "patient.yaml").write_text(
        (ROOT / "mappings" / "resources" / "patient.yaml").read_text(encoding="utf-8").replace(
            "birthDate: {path: patient.birth_date, as: date}", "birthDate: {path: patient.given_name}"),
        encoding="utf-8")
    for file, _, _ in MAPPING_BREAKS:
        if file != "resources/patient.yaml":
            shutil.copy(ROOT / "mappings" / file, only_validator / file)
    path = tmp_path / "typical.json"
    path.write_text(json.dumps(TYPICAL), encoding="utf-8")
    assert main(["map", str(path), "--mappings", str(only_validator)]) == 1
    out, err = capsys.readouterr()
    assert "VAL_PRIMITIVE" in err, err[-800:]
    outputs += [out, err]

    # ---- the CLI: fhir-export validate on a resource full of canaries
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(RESOURCE), encoding="utf-8")
    assert main(["validate", str(path), "-w"]) == 1
    out, err = capsys.readouterr()
    assert "VAL_PRIMITIVE" in out
    outputs += [out, err]
    assert main(["validate", str(path), "--format", "json"]) == 1
    outputs += list(capsys.readouterr())

    # ---- the API: detailed 422 on the internal route, the generic answer on the patient route, $validate
    client = make_client()
    service = {"Authorization": f"Bearer {idp.token()}", **FHIR}
    for name, doc in DOCUMENTS.items():
        r = client.post("/internal/export", content=json.dumps(doc), headers=service)
        # 400: the route's JSON parser refuses an unpaired surrogate escape before the schema sees it
        assert r.status_code in (400, 422), (name, r.status_code, r.text[:300])
        outputs += [r.text, json.dumps(r.json(), ensure_ascii=False)]

        class Source:
            def get(self, pid: str, doc: dict = doc) -> dict:
                return {**copy.deepcopy(doc), "patient": {**doc["patient"], "id": ANNA_ID}}

        r = make_client(source=Source()).get("/patient/export",
                                             headers={"Authorization": f"Bearer {idp.patient_token(ANNA_ID)}"})
        assert r.status_code == 422, (name, r.status_code, r.text[:300])  # the source's json.loads accepts \ud800
        outputs += [r.text, json.dumps(r.json(), ensure_ascii=False)]
    broken_client = make_client(exporter=broken_by_mapping)
    r = broken_client.post("/internal/export", content=json.dumps(TYPICAL), headers=service)
    assert r.status_code == 422 and "MAP_CONVERT" in r.text
    outputs += [r.text, json.dumps(r.json(), ensure_ascii=False)]
    surrogate_id = _doc(a=_patient("id", "\ud800" + TYPICAL["patient"]["id"][1:]))
    r = client.post("/internal/export", content=json.dumps(surrogate_id), headers=service)
    assert r.status_code in (400, 422), r.text[:300]
    outputs.append(r.text)
    token = idp.token(azp="diga-reporting", resource_access={"diga-exporter-api": {"roles": ["validate"]}})
    validate = {"Authorization": f"Bearer {token}", **FHIR}
    r = client.post("/$validate", content=json.dumps(RESOURCE), headers=validate)
    assert r.status_code == 200 and "VAL_PRIMITIVE" in r.text
    outputs += [r.text, json.dumps(r.json(), ensure_ascii=False)]

    # ---- the logs of all of it
    formatter = JsonFormatter()
    outputs += [caplog.text] + [formatter.format(record) for record in caplog.records]
    outputs += [repr({k: v for k, v in record.__dict__.items() if k not in ("args", "msg")}) for record in caplog.records]

    leaks = {name: _leaks(text) for name, text in enumerate(outputs) if _leaks(text)}
    assert leaks == {}, {k: (v, outputs[k][:300]) for k, v in leaks.items()}
