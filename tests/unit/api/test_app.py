"""The service through FastAPI's TestClient with locally signed tokens: silent failures, limits,
routes, logs. (The proof against the real Keycloak is tests/system/test_api_service.py.)"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from exporter.api.errors import DENIED_BODY
from tests.support.logs import json_logs

from .conftest import ANNA_ID, BEN_ID, b64, new_key, settings_for

ROOT = Path(__file__).resolve().parents[3]
TYPICAL = (ROOT / "samples" / "patients" / "typical.json").read_bytes()
CANARIES = (ROOT / "samples" / "patients" / "CANARIES.txt").read_text(encoding="utf-8").splitlines()
FHIR = {"Content-Type": "application/fhir+json"}
VARYING = {"x-request-id", "date", "www-authenticate"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR}


def bad_tokens(idp) -> dict[str, dict[str, str]]:
    payload = idp.token().split(".")[1]
    return {
        "none": FHIR,
        "not_bearer": {"Authorization": "Basic dXNlcjpwYXNz", **FHIR},
        "garbage": bearer("garbage"),
        "alg_none": bearer(f"{b64({'alg': 'none', 'kid': 'kid-1'})}.{payload}."),
        "foreign_key": bearer(idp.token(key=new_key())),
        "expired": bearer(idp.token(exp=int(time.time()) - 600)),
        "wrong_aud": bearer(idp.token(aud="account")),
        "wrong_azp": bearer(idp.token(azp="diga-other")),
        "id_token": bearer(idp.token(typ="ID")),
        "no_roles": bearer(idp.token(resource_access={})),
        "reporting_only_validate": bearer(idp.token(azp="diga-reporting",
                                                    resource_access={"diga-exporter-api": {"roles": ["validate"]}})),
        "patient_on_service_route": bearer(idp.patient_token()),
        "service_on_patient_route": bearer(idp.token()),
        "unknown_patient": bearer(idp.patient_token("11111111-2222-4333-8444-555555555555")),
    }


def _same_denial(r):
    assert r.status_code == 401
    assert r.content == DENIED_BODY
    return {k: v for k, v in r.headers.items() if k not in VARYING}


def test_every_denial_is_byte_identical_on_every_protected_route(client, idp):
    seen_headers = []
    for name, headers in bad_tokens(idp).items():
        for method, path in (("POST", "/internal/export"), ("POST", "/$validate"), ("GET", "/patient/export")):
            if name == "service_on_patient_route" and path != "/patient/export":
                continue  # that token is allowed there
            if name == "reporting_only_validate" and path == "/$validate":
                continue
            if name == "patient_on_service_route" and path == "/patient/export":
                continue
            r = client.request(method, path, headers=headers, content=TYPICAL if method == "POST" else None)
            seen_headers.append(_same_denial(r))
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert all(h == seen_headers[0] for h in seen_headers)


def test_unknown_paths_and_methods_under_protected_prefixes_are_denied_the_same_way(client, idp):
    tok = bearer(idp.patient_token(ANNA_ID))
    for method, path in (("GET", f"/patient/{BEN_ID}/export"), ("GET", f"/patient/export/{BEN_ID}"),
                         ("DELETE", "/patient/export"), ("GET", "/internal/export"), ("PUT", "/$validate")):
        _same_denial(client.request(method, path, headers=tok))
    assert client.get("/nothing-here").status_code == 404


def test_body_problems_of_an_unauthorised_caller_still_get_the_denial(client):
    r = client.post("/internal/export", content=b"{" * 5000, headers=FHIR)
    _same_denial(r)


def test_patient_export_returns_only_the_callers_document(client, idp):
    r = client.get(f"/patient/export?patient={BEN_ID}&diga_patient_id={BEN_ID}",
                   headers=bearer(idp.patient_token(ANNA_ID)))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/fhir+json"
    assert r.headers["content-disposition"].startswith('attachment; filename="diga-export-')
    assert r.headers["cache-control"] == "no-store"
    text = r.text
    assert ANNA_ID in text and BEN_ID not in text
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"


def test_a_source_document_of_someone_else_is_never_handed_out(make_client, idp):
    class Wrong:
        def get(self, pid):
            return json.loads((ROOT / "deploy" / "demo-source" / f"{BEN_ID}.json").read_text())

    _same_denial(make_client(source=Wrong()).get("/patient/export", headers=bearer(idp.patient_token(ANNA_ID))))


def test_internal_export_success_and_detailed_422(client, idp):
    r = client.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
    assert r.status_code == 200 and r.json()["resourceType"] == "Bundle"
    broken = json.loads(TYPICAL)
    del broken["patient"]["birth_date"]
    broken["measurements"][0]["kind"] = "{{ 7*7 }}"
    r = client.post("/internal/export", content=json.dumps(broken), headers=bearer(idp.token()))
    assert r.status_code == 422
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome" and len(oo["issue"]) >= 1
    assert all("49" not in json.dumps({k: v for k, v in i.items() if k != "extension"}) for i in oo["issue"])


@pytest.mark.parametrize("body, headers, status, mid", [
    (b"{not json", FHIR, 400, "JSON_SYNTAX"),
    (b"[" * 70 + b"]" * 70, FHIR, 400, "JSON_TOO_DEEP"),
    (b"[" * 5000 + b"]" * 5000, FHIR, 400, "JSON_TOO_DEEP"),
    (b'{"schema_version": "1.0", "schema_version": "1.0"}', FHIR, 400, "JSON_DUPLICATE_KEY"),
    (TYPICAL, {"Content-Type": "text/plain"}, 415, "API_CONTENT_TYPE"),
    (TYPICAL, {}, 415, "API_CONTENT_TYPE"),
    (b"[]", FHIR, 422, "DOMAIN_SHAPE"),
])
def test_bad_bodies_get_a_4xx_operation_outcome(client, idp, body, headers, status, mid):
    h = {**headers, "Authorization": f"Bearer {idp.token()}"}
    r = client.post("/internal/export", content=body, headers=h)
    assert r.status_code == status, r.text
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == mid


def test_body_size_limit(make_client, idp):
    c = make_client(settings_for(max_body_bytes=1000))
    r = c.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
    assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(10):
            yield b" " * 200

    r = c.post("/$validate", content=chunks(), headers=bearer(idp.token()))
    assert r.status_code == 413


def test_per_request_time_bound(make_client, idp, exporter):
    class Slow:
        validator = exporter.validator
        load_issues = []

        def export(self, doc, export_time):
            time.sleep(1.5)
            return exporter.export(doc, export_time=export_time)

        def export_written(self, doc, export_time, write):  # the FHIR formats' path
            time.sleep(1.5)
            return exporter.export_written(doc, export_time=export_time, write=write)

    c = make_client(settings_for(request_timeout_seconds=0.3), exporter=Slow())
    t0 = time.monotonic()
    r = c.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
    assert r.status_code == 408 and r.json()["issue"][0]["code"] == "too-costly"
    assert time.monotonic() - t0 < 1.2
    r = c.get("/patient/export", headers=bearer(idp.patient_token(ANNA_ID)))
    assert r.status_code == 408
    assert "too-costly" not in r.text and r.json()["issue"][0]["details"]["text"] == "The export could not be produced."


def test_validate_answers_200_with_issues_and_4xx_for_non_resources(client, idp):
    h = bearer(idp.token(azp="diga-reporting", resource_access={"diga-exporter-api": {"roles": ["validate"]}}))
    r = client.post("/$validate", content=json.dumps({"resourceType": "Patient", "gender": "nope"}), headers=h)
    assert r.status_code == 200
    assert any(i["severity"] == "error" for i in r.json()["issue"])
    r = client.post("/$validate", content=json.dumps({"resourceType": "Patient", "id": "ok"}), headers=h)
    assert r.status_code == 200 and not any(i["severity"] == "error" for i in r.json()["issue"])
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]}
    assert client.post("/$validate", content=json.dumps(params), headers=h).status_code == 200
    assert client.post("/$validate", content=b'{"resourceType": "NoSuchThing"}', headers=h).status_code == 422
    assert client.post("/$validate", content=b'{"id": "x"}', headers=h).status_code == 400
    assert client.post("/$validate", content=b'"{{7*7}}"', headers=h).status_code == 400


def test_public_routes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"mappings": True, "ig": True, "keys": True}
    cs = client.get("/metadata")
    assert cs.status_code == 200 and cs.json()["resourceType"] == "CapabilityStatement"
    assert cs.json()["fhirVersion"] == "4.0.1"
    sd = client.get("/StructureDefinition/diga-patient")
    assert sd.status_code == 200 and sd.json()["id"] == "diga-patient"
    assert client.get("/ValueSet/score-units").status_code == 200
    assert client.get("/CodeSystem/diga-symptoms").status_code == 200
    r = client.get("/CodeSystem/nope")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/CodeSystem/..%2Fpackage.json").status_code in (400, 404)


def test_cold_start_without_keycloak_is_503_and_not_ready(make_client, idp):
    idp.down = True
    c = make_client()
    r = c.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
    assert r.status_code == 503 and r.json()["resourceType"] == "OperationOutcome"
    assert c.get("/readyz").status_code == 503
    _same_denial(c.post("/internal/export", content=TYPICAL, headers=FHIR))  # no token: still the denial


def test_a_broken_mapping_set_is_logged_at_start_up_and_not_ready(make_client, exporter, caplog):
    """E.g. a mapping set without rules.yaml (RULE_FILE_MISSING): the service says so once at start-up,
    answers not ready and refuses exports, instead of exporting without its cross-field rules."""
    from exporter.issues import IssueCode, SourceLocation, error

    class Broken:
        validator = exporter.validator
        load_issues = [error(IssueCode.NOT_FOUND, "no rule file", "RULE_FILE_MISSING",
                             location=SourceLocation("mappings/rules.yaml"))]

    with caplog.at_level(logging.ERROR, logger="exporter.api"):
        c = make_client(exporter=Broken())
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "startup" and r.levelno == logging.ERROR]
    assert line.error == ["mappings/rules.yaml: error RULE_FILE_MISSING: no rule file"]
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["mappings"] is False


def test_an_unexpected_exception_becomes_a_500_outcome_without_details(make_client, idp, exporter):
    class Broken:
        validator = exporter.validator
        load_issues = []

        def export(self, doc, export_time):
            raise RuntimeError("secret detail " + doc["patient"]["family_name"])

        def export_written(self, doc, export_time, write):  # the FHIR formats' path
            raise RuntimeError("secret detail " + doc["patient"]["family_name"])

    c = make_client(exporter=Broken())
    r = c.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
    assert r.status_code == 500 and "secret" not in r.text and r.json()["resourceType"] == "OperationOutcome"
    r = c.get("/patient/export", headers=bearer(idp.patient_token(ANNA_ID)))
    assert r.status_code == 500 and r.json()["issue"][0]["details"]["text"] == "The export could not be produced."


def test_logs_are_json_with_request_fields_and_an_audit_line_and_no_phi(client, idp):
    with json_logs() as stream:
        client.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
        client.get("/patient/export?name=Kanarien", headers=bearer(idp.patient_token(ANNA_ID)))
        client.post("/internal/export", content=b"{bad", headers=bearer(idp.token()))
        client.post("/internal/export", content=TYPICAL, headers=FHIR)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    requests_ = [line for line in lines if line.get("event") == "request"]
    audits = [line for line in lines if line.get("event") == "audit_export"]
    assert len(requests_) == 4 and len(audits) == 3
    assert {r["route"] for r in requests_} == {"/internal/export", "/patient/export"}
    assert [r["principal"] for r in requests_] == ["service", "patient", "service", "none"]
    assert requests_[-1]["outcome"] == "denied:no_token"
    for r in requests_:
        assert {"request_id", "method", "route", "status", "principal", "outcome", "duration_ms"} <= set(r)
    assert [a["result"] for a in audits] == ["ok", "ok", "rejected:JSON_SYNTAX"]
    assert audits[1]["caller"] == "diga-patient-app" and audits[1]["patient"].startswith("p-")
    assert audits[0]["size"] > 1000
    assert ANNA_ID not in text
    leaked = [c for c in CANARIES if c in text] + (["Kanarien"] if "Kanarien" in text else [])
    assert leaked == []
