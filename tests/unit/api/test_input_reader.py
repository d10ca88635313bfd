"""One JSON reader at every door of the service (review 1, findings 4, 7, 11): request bodies of
`POST /internal/export` and `POST /$validate`, and the patient's document from the directory and the
HTTP source of `GET /patient/export` — the same verdicts, ids and positions; a source document the
reader refuses is the generic 422 (never 500 or 503) with its reason in the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.api.errors import PATIENT_FAILED_BODY
from exporter.api.sources import DirectorySource, HttpSource, SourceDocumentInvalid
from exporter.issues import EXT_ISSUE_COL, EXT_ISSUE_LINE
from tests.support.logs import json_logs

from .conftest import ANNA_ID, SourceBackend

ROOT = Path(__file__).resolve().parents[3]
TYPICAL = (ROOT / "samples" / "patients" / "typical.json").read_bytes()
FHIR = {"Content-Type": "application/fhir+json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR}


def position(issue: dict) -> tuple[int, int] | None:
    ext = {e["url"]: e["valueInteger"] for e in issue.get("extension", [])}
    return (ext[EXT_ISSUE_LINE], ext[EXT_ISSUE_COL]) if EXT_ISSUE_LINE in ext else None


def anna(text: bytes) -> bytes:
    """Anna's document (the demo source's patient id) in the shape of typical.json."""
    doc = json.loads(TYPICAL)
    doc["patient"]["id"] = ANNA_ID
    return text.replace(b"@DOC@", json.dumps(doc, indent=1).encode())


HOSTILE = {
    "deep": b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b', "doc": @DOC@}',
    "bom": b"\xef\xbb\xbf@DOC@",
    "nan": b'{"nan": NaN, "doc": @DOC@}',
    "duplicate": b'{"patient": {"id": "x"}, "doc": @DOC@, "patient": 1}',
    "latin1": b'{"note": "M\xfcller", "doc": @DOC@}',
}
IDS = {"deep": "JSON_TOO_DEEP", "bom": "JSON_SYNTAX", "nan": "JSON_SYNTAX", "duplicate": "JSON_DUPLICATE_KEY",
       "latin1": "JSON_SYNTAX"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_internal_export_body_and_both_sources_read_alike(name, tmp_path, make_client, idp):
    raw = anna(HOSTILE[name])
    # the request body
    r = make_client().post("/internal/export", content=raw, headers=bearer(idp.token()))
    assert r.status_code == 400, r.text
    body_issue = r.json()["issue"][0]
    assert body_issue["details"]["coding"][0]["code"] == IDS[name]
    # the directory source: the same reader, the same verdict and position
    (tmp_path / f"{ANNA_ID}.json").write_bytes(raw)
    with pytest.raises(SourceDocumentInvalid) as info:
        DirectorySource(tmp_path).get(ANNA_ID)
    assert info.value.issue.message_id == IDS[name]
    assert (info.value.issue.position.line, info.value.issue.position.column) == position(body_issue)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_source_document_the_reader_refuses_is_the_generic_422_and_a_logged_reason(name, tmp_path, make_client,
                                                                                     idp):
    """It was a 500 (RecursionError) for deep nesting and a 503 'temporarily unavailable' with
    Retry-After for a byte order mark: a permanent data problem shown as a passing outage."""
    (tmp_path / f"{ANNA_ID}.json").write_bytes(anna(HOSTILE[name]))
    client = make_client(source=DirectorySource(tmp_path, max_depth=64))
    with json_logs() as stream:
        r = client.get("/patient/export", headers=bearer(idp.patient_token(ANNA_ID)))
    assert r.status_code == 422 and "retry-after" not in r.headers
    assert r.content == PATIENT_FAILED_BODY
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    reasons = [line for line in lines if line.get("event") == "source_document_invalid"]
    assert len(reasons) == 1 and reasons[0]["message_id"] == IDS[name] and reasons[0]["line"] >= 1, lines
    audits = [line for line in lines if line.get("event") == "audit_export"]
    assert [a["result"] for a in audits] == [f"source_invalid:{IDS[name]}"]
    assert not any(line.get("event") == "unhandled_exception" for line in lines)
    assert "Erika" not in stream.getvalue() and "M\xfcller" not in stream.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_http_source_reads_with_the_same_reader(name, backend):
    SourceBackend.body = anna(HOSTILE[name])
    src = HttpSource(backend, backend + "/token", "exporter", "secret", timeout=2, retries=0, backoff=0, max_depth=64)
    with pytest.raises(SourceDocumentInvalid) as info:
        src.get(ANNA_ID)
    assert info.value.issue.message_id == IDS[name]
    SourceBackend.body = anna(b"@DOC@")
    assert src.get(ANNA_ID)["patient"]["id"] == ANNA_ID


def test_validate_refuses_duplicate_members_with_their_position(make_client, idp):
    """Review 1, finding 4: orjson kept the last 'gender' and answered 'All OK'; the HL7 validator reports
    the duplicate (and judges the first value)."""
    token = idp.token(azp="diga-reporting", resource_access={"diga-exporter-api": {"roles": ["validate"]}})
    raw = b'{"resourceType": "Patient",\n "gender": "nonsense",\n "gender": "male"}'
    r = make_client().post("/$validate", content=raw, headers=bearer(token))
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "JSON_DUPLICATE_KEY" and position(issue) == (3, 2)
    assert "'gender'" in issue["details"]["text"]


def test_internal_export_422_issues_carry_line_and_column(make_client, idp):
    """Review 1, finding 11: schema and rule issues of a domain document name their line:column (the JSON
    path maps onto the scanner), the schema ones name the missing or unknown member, and no text
    repeats the path."""
    doc = json.loads(TYPICAL)
    del doc["patient"]["given_name"]
    doc["patient"]["nickname"] = "x"
    doc["measurements"][1]["value"] = 1e308
    raw = json.dumps(doc, indent=1).encode()
    r = make_client().post("/internal/export", content=raw, headers=bearer(idp.token()))
    assert r.status_code == 422
    issues = r.json()["issue"]
    text = raw.decode()
    at = {(i["expression"][0], position(i)) for i in issues}
    patient = text.index('"patient": ') + len('"patient": ')
    assert ("$.patient", (text.count("\n", 0, patient) + 1, patient - text.rfind("\n", 0, patient))) in at
    value = text.index("1e+308")
    assert ("$.measurements[1].value", (text.count("\n", 0, value) + 1, value - text.rfind("\n", 0, value))) in at
    texts = " | ".join(i["details"]["text"] for i in issues)
    assert "misses the required member(s) 'given_name'" in texts and "unknown member(s) 'nickname'" in texts
    assert "'value' is above the maximum 700" in texts
    assert "$." not in texts

    doc = json.loads(TYPICAL)  # a cross-field rule: systolic below diastolic
    bp = next(m for m in doc["measurements"] if m["kind"] == "blood_pressure")
    bp["systolic"], bp["diastolic"] = bp["diastolic"], bp["systolic"]
    raw = json.dumps(doc, indent=1).encode()
    r = make_client().post("/internal/export", content=raw, headers=bearer(idp.token()))
    assert r.status_code == 422
    rule = [i for i in r.json()["issue"] if i["details"]["coding"][0]["code"] == "DOMAIN_RULE"]
    assert rule and all(position(i) is not None and "rules.yaml" in i["diagnostics"] for i in rule)
