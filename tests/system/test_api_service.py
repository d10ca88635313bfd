"""The HTTP service as a uvicorn subprocess (`python -m exporter serve`) against the real Keycloak.

The access matrix for every protected route (no token, expired, foreign key under Keycloak's kid,
alg=none, HS256 signed with the public key, wrong audience, wrong azp, wrong role, patient A reaching
for patient B, unknown patient) is denied with the identical generic body; the service log (JSON
lines, captured from the subprocess) names the check that refused each request. Authorised calls
succeed and carry only the caller's data; a signing-key rotation in Keycloak is followed; Keycloak
unreachable at cold start gives 503; the captured logs never contain a canary of the samples.

Order matters: the key-rotation test changes the realm's key and runs after the matrix; the log
canary check runs last.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.devstack.keycloak import (
    API_CLIENT_ID,
    BACKEND_CLIENT_ID,
    DEMO_CLIENT_SECRETS,
    DEMO_PATIENTS,
    REPORTING_CLIENT_ID,
    KeycloakServer,
    free_port,
)

pytestmark = pytest.mark.keycloak

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "patients"
TYPICAL = (SAMPLES / "typical.json").read_bytes()
CANARIES = (SAMPLES / "CANARIES.txt").read_text(encoding="utf-8").splitlines()
ANNA, BEN = DEMO_PATIENTS["patient-anna"], DEMO_PATIENTS["patient-ben"]
FHIR = "application/fhir+json"
VARYING_HEADERS = {"x-request-id", "date", "www-authenticate"}
ROGUE_CLIENT, EXPIRING_CLIENT = "test-rogue-service", "test-expiring-service"
GHOST_USER = "patient-ghost"
ROUTES = (("POST", "/internal/export"), ("POST", "/$validate"), ("GET", "/patient/export"))


@dataclass
class Service:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unparsed": line})
        return out

    def outcome_of(self, request_id: str) -> str | None:
        for _ in range(20):  # the log line is written right after the response
            for line in self.log_lines():
                if line.get("event") == "request" and line.get("request_id") == request_id:
                    return line.get("outcome")
            time.sleep(0.05)
        return None


def start_service(tmp: Path, keycloak_url: str, **env: str) -> Service:
    port = free_port()
    log_path = tmp / f"service-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIGA_EXPORTER_")}
    full_env.update({
        "DIGA_EXPORTER_KEYCLOAK_URL": keycloak_url,
        "DIGA_EXPORTER_SERVICE_CLIENTS": json.dumps([BACKEND_CLIENT_ID, REPORTING_CLIENT_ID, EXPIRING_CLIENT]),
        "DIGA_EXPORTER_JWKS_MIN_REFRESH_SECONDS": "1",
        "DIGA_EXPORTER_TOKEN_LEEWAY_SECONDS": "1",
        **env,
    })
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--port", str(port)], cwd=ROOT,
                                env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    svc = Service(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited: {log_path.read_text()[-3000:]}")
        try:
            requests.get(svc.base_url + "/healthz", timeout=1)
            return svc
        except requests.RequestException:
            time.sleep(0.2)
    stop_service(svc)
    raise RuntimeError(f"service did not start: {log_path.read_text()[-3000:]}")


def stop_service(svc: Service) -> None:
    if svc.process.poll() is None:
        svc.process.terminate()
        try:
            svc.process.wait(10)
        except subprocess.TimeoutExpired:
            svc.process.kill()
            svc.process.wait(5)


def _api_client_uuid(kc: KeycloakServer, client_id: str) -> str:
    return kc.admin_request("GET", "clients", params={"clientId": client_id}).json()[0]["id"]


def _create_service_client(kc: KeycloakServer, client_id: str, *, roles: list[str], audience: bool = True,
                           lifespan: int | None = None) -> str:
    secret = secrets.token_urlsafe(24)
    rep = {"clientId": client_id, "secret": secret, "publicClient": False, "serviceAccountsEnabled": True,
           "standardFlowEnabled": False, "directAccessGrantsEnabled": False, "protocol": "openid-connect",
           "attributes": {"access.token.lifespan": str(lifespan)} if lifespan else {}}
    if audience:
        rep["protocolMappers"] = [{"name": "aud", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                                   "config": {"included.client.audience": API_CLIENT_ID, "access.token.claim": "true"}}]
    kc.admin_request("POST", "clients", json=rep)
    uuid = _api_client_uuid(kc, client_id)
    api = _api_client_uuid(kc, API_CLIENT_ID)
    user = kc.admin_request("GET", f"clients/{uuid}/service-account-user").json()["id"]
    all_roles = {r["name"]: r for r in kc.admin_request("GET", f"clients/{api}/roles").json()}
    kc.admin_request("POST", f"users/{user}/role-mappings/clients/{api}", json=[all_roles[r] for r in roles])
    return secret


def _create_ghost_patient(kc: KeycloakServer) -> tuple[str, str, str]:
    """A patient who can log in and whose patient id has no document in the source."""
    password, pid = "ghost-" + secrets.token_urlsafe(12), "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"
    kc.admin_request("POST", "users", json={
        "username": GHOST_USER, "enabled": True, "email": "ghost@example.org", "emailVerified": True,
        "firstName": "Gast", "lastName": "Beispiel", "attributes": {"diga_patient_id": [pid]},
        "credentials": [{"type": "password", "value": password, "temporary": False}]})
    return GHOST_USER, password, pid


@pytest.fixture(scope="module")
def world(keycloak: KeycloakServer, tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("api-service")
    rogue = _create_service_client(keycloak, ROGUE_CLIENT, roles=["export", "validate"])
    expiring = _create_service_client(keycloak, EXPIRING_CLIENT, roles=["export", "validate"], lifespan=2)
    ghost = _create_ghost_patient(keycloak)
    svc = start_service(tmp, keycloak.base_url)
    deadline = time.monotonic() + 60
    while requests.get(svc.base_url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, svc.log_path.read_text()[-3000:]
        time.sleep(0.3)
    try:
        yield {"svc": svc, "kc": keycloak, "rogue": rogue, "expiring": expiring, "ghost": ghost, "tmp": tmp}
    finally:
        stop_service(svc)
        for cid in (ROGUE_CLIENT, EXPIRING_CLIENT):
            try:
                keycloak.admin_request("DELETE", f"clients/{_api_client_uuid(keycloak, cid)}")
            except Exception:  # noqa: BLE001 - best effort clean-up of the shared realm
                pass
        try:
            uid = keycloak.admin_request("GET", "users", params={"username": GHOST_USER, "exact": "true"}).json()[0]["id"]
            keycloak.admin_request("DELETE", f"users/{uid}")
        except Exception:  # noqa: BLE001
            pass


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _backend(kc) -> str:
    return kc.client_credentials_token(BACKEND_CLIENT_ID, DEMO_CLIENT_SECRETS[BACKEND_CLIENT_ID])


def _reporting(kc) -> str:
    return kc.client_credentials_token(REPORTING_CLIENT_ID, DEMO_CLIENT_SECRETS[REPORTING_CLIENT_ID])


def _login(kc, patient) -> dict:
    return kc.pkce_login(patient.username, patient.password)


def call(svc: Service, method: str, path: str, token: str | None = None, *, body: bytes | None = None,
         headers: dict | None = None) -> requests.Response:
    h = {"X-Request-ID": secrets.token_hex(16), **(headers or {})}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if method == "POST":
        h.setdefault("Content-Type", FHIR)
        body = TYPICAL if body is None else body
    r = requests.request(method, svc.base_url + path, data=body, headers=h, timeout=60)
    r.request_id = r.headers.get("x-request-id")  # type: ignore[attr-defined]  # the service's own id, not ours
    return r


def forged_tokens(kc: KeycloakServer) -> dict[str, str]:
    """Tokens an attacker can make from a real one: same kid, claims changed to reach patient B."""
    real = _login(kc, ANNA)["access_token"]
    header = jwt.get_unverified_header(real)
    claims = {**_claims(real), "diga_patient_id": BEN.patient_id}
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = next(k for k in kc.jwks()["keys"] if k["kid"] == header["kid"])
    pem = jwt.PyJWK(jwk).key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': header['kid']})}.{_b64(claims)}"
    return {
        "foreign_key_under_keycloak_kid": jwt.encode(claims, foreign, algorithm="RS256",
                                                     headers={"kid": header["kid"]}),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{_b64(claims)}.",
        "hs256_with_public_key": f"{hs_input}.{_b64(hmac.new(pem, hs_input.encode(), hashlib.sha256).digest())}",
        "tampered_claims_real_signature": f"{real.split('.')[0]}.{_b64(claims)}.{real.split('.')[2]}",
    }


def assert_denied(world, r: requests.Response, reason: str | None, reference: dict) -> None:
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert r.content == reference["body"], r.text
    headers = {k: v for k, v in r.headers.items() if k.lower() not in VARYING_HEADERS}
    assert headers == reference["headers"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    if reason is not None:
        assert world["svc"].outcome_of(r.request_id) == f"denied:{reason}"


@pytest.fixture(scope="module")
def reference(world) -> dict:
    r = call(world["svc"], "GET", "/patient/export")
    return {"body": r.content, "headers": {k: v for k, v in r.headers.items() if k.lower() not in VARYING_HEADERS}}


def test_access_matrix_every_failure_is_the_identical_generic_denial(world, reference):
    kc, svc = world["kc"], world["svc"]
    anna = _login(kc, ANNA)
    expiring = kc.client_credentials_token(EXPIRING_CLIENT, world["expiring"])
    cases: dict[str, tuple[str | None, dict[str, str]]] = {
        "no_token": (None, {r: "no_token" for _, r in ROUTES}),
        "garbage": ("not.a.jwt", {r: "malformed" for _, r in ROUTES}),
        "id_token_wrong_audience": (anna["id_token"], {r: "audience" for _, r in ROUTES}),
        "refresh_token": (anna["refresh_token"], {r: None for _, r in ROUTES}),
        "wrong_azp": (kc.client_credentials_token(ROGUE_CLIENT, world["rogue"]), {r: "azp" for _, r in ROUTES}),
        "wrong_role": (_reporting(kc), {"/internal/export": "role", "/patient/export": "not_patient"}),
        "patient_on_service_routes": (anna["access_token"], {"/internal/export": "not_service",
                                                             "/$validate": "not_service"}),
        "service_on_patient_route": (_backend(kc), {"/patient/export": "not_patient"}),
    }
    for name, token in forged_tokens(kc).items():
        expect = "alg" if name in ("alg_none", "hs256_with_public_key") else "signature"
        cases[name] = (token, {r: expect for _, r in ROUTES})
    ghost_user, ghost_password, _ = world["ghost"]
    cases["unknown_patient"] = (kc.pkce_login(ghost_user, ghost_password)["access_token"],
                                {"/patient/export": "no_patient"})
    time.sleep(3.5)  # the expiring client's token (lifespan 2 s) is now past exp + leeway
    cases["expired"] = (expiring, {r: "expired" for _, r in ROUTES})
    checked = 0
    for name, (token, per_route) in cases.items():
        for method, path in ROUTES:
            if path not in per_route:
                continue
            r = call(svc, method, path, token)
            try:
                assert_denied(world, r, per_route[path], reference)
            except AssertionError as e:
                raise AssertionError(f"{name} {method} {path}: {e}") from None
            checked += 1
    assert checked >= 35


def test_patient_a_cannot_reach_patient_b(world, reference):
    kc, svc = world["kc"], world["svc"]
    anna = _login(kc, ANNA)["access_token"]
    for path in (f"/patient/{BEN.patient_id}/export", f"/patient/export/{BEN.patient_id}",
                 f"/patient/{BEN.patient_id}", "/patient"):
        assert_denied(world, call(svc, "GET", path, anna), None, reference)
    for method in ("POST", "PUT", "DELETE"):
        assert_denied(world, call(svc, method, "/patient/export", anna, body=b"{}"), None, reference)
    # the only patient id used is the token's: parameters naming B are ignored
    r = call(svc, "GET", f"/patient/export?patient={BEN.patient_id}&diga_patient_id={BEN.patient_id}", anna,
             headers={"X-Patient-Id": BEN.patient_id})
    assert r.status_code == 200
    assert ANNA.patient_id in r.text and BEN.patient_id not in r.text


def test_authorised_calls_succeed_with_only_the_callers_data(world):
    kc, svc = world["kc"], world["svc"]
    docs = {p.username: (ROOT / "deploy" / "demo-source" / f"{p.patient_id}.json").read_text(encoding="utf-8")
            for p in (ANNA, BEN)}
    for me, other in ((ANNA, BEN), (BEN, ANNA)):
        r = call(svc, "GET", "/patient/export", _login(kc, me)["access_token"])
        assert r.status_code == 200, r.text[:500]
        assert r.headers["content-type"] == FHIR
        assert r.headers["content-disposition"].startswith("attachment; filename=")
        assert r.headers["cache-control"] == "no-store"
        bundle = r.json()
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
        patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == 1
        assert me.patient_id in r.text and other.patient_id not in r.text
        others_only = [c for c in CANARIES if c in docs[other.username] and c not in docs[me.username]]
        assert others_only and not [c for c in others_only if c in r.text]
    r = call(svc, "POST", "/internal/export", _backend(kc))
    assert r.status_code == 200 and r.json()["resourceType"] == "Bundle"
    r = call(svc, "POST", "/internal/export", _backend(kc), body=b'{"schema_version": "1.0"}')
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    for token in (_backend(kc), _reporting(kc)):
        r = call(svc, "POST", "/$validate", token, body=json.dumps({"resourceType": "Patient", "gender": "x"}).encode())
        assert r.status_code == 200 and any(i["severity"] == "error" for i in r.json()["issue"])
    assert call(svc, "GET", "/metadata").json()["resourceType"] == "CapabilityStatement"
    assert call(svc, "GET", "/StructureDefinition/diga-patient").json()["id"] == "diga-patient"
    assert call(svc, "GET", "/readyz").status_code == 200


def test_bad_input_from_an_authorised_service_is_a_4xx_outcome(world):
    kc, svc = world["kc"], world["svc"]
    tok = _backend(kc)
    for body, ctype, status in ((b"{oops", FHIR, 400), (b"[" * 100 + b"]" * 100, FHIR, 400),
                                (TYPICAL, "text/plain", 415), (b"x" * 5_100_000, FHIR, 413)):
        r = call(svc, "POST", "/internal/export", tok, body=body, headers={"Content-Type": ctype})
        assert r.status_code == status and r.json()["resourceType"] == "OperationOutcome"
    r = call(svc, "POST", "/$validate", tok, body=b'{"resourceType": "Unheard"}')
    assert r.status_code == 422
    templated = json.loads(TYPICAL)
    templated["diary_entries"][0]["text"] = "{{ ''.__class__.__mro__ }} {% for x in range(10**9) %}{% endfor %}"
    r = call(svc, "POST", "/internal/export", tok, body=json.dumps(templated).encode())
    assert r.status_code in (200, 422), r.text[:300]
    assert "<class" not in r.text  # the template text is data: never evaluated


def test_signing_key_rotation_is_followed(world, reference):
    kc, svc = world["kc"], world["svc"]
    old = _backend(kc)
    assert call(svc, "POST", "/$validate", old, body=b'{"resourceType": "Patient"}').status_code == 200
    rotation = kc.rotate_signing_key(retire="delete")
    new = _backend(kc)
    assert jwt.get_unverified_header(new)["kid"] == rotation.new_kid != jwt.get_unverified_header(old)["kid"]
    deadline = time.monotonic() + 10
    while True:  # the unknown kid triggers a refetch (at most one per DIGA_EXPORTER_JWKS_MIN_REFRESH_SECONDS)
        r = call(svc, "POST", "/$validate", new, body=b'{"resourceType": "Patient"}')
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200
    assert_denied(world, call(svc, "POST", "/$validate", old, body=b'{"resourceType": "Patient"}'),
                  "unknown_kid", reference)
    anna = _login(kc, ANNA)["access_token"]
    assert call(svc, "GET", "/patient/export", anna).status_code == 200


def test_keycloak_unreachable_at_cold_start_is_503(world, tmp_path):
    kc = world["kc"]
    dead = f"http://127.0.0.1:{free_port()}"
    svc = start_service(tmp_path, dead)
    try:
        assert call(svc, "GET", "/readyz").status_code == 503
        r = call(svc, "POST", "/internal/export", _backend(kc))
        assert r.status_code == 503 and r.json()["resourceType"] == "OperationOutcome"
        assert r.headers.get("retry-after")
        r = call(svc, "GET", "/patient/export", _login(kc, ANNA)["access_token"])
        assert r.status_code == 503
        assert call(svc, "GET", "/healthz").status_code == 200
    finally:
        stop_service(svc)


def test_logs_are_json_with_audit_lines_and_contain_no_canary(world):
    svc = world["svc"]
    text = svc.log_path.read_text(encoding="utf-8", errors="replace")
    lines = svc.log_lines()
    assert lines and not [line for line in lines if "unparsed" in line]
    audits = [line for line in lines if line.get("event") == "audit_export"]
    assert audits and all({"caller", "patient", "size", "result", "ts"} <= set(a) for a in audits)
    ok = [a for a in audits if a["result"] == "ok"]
    assert {a["caller"] for a in ok} >= {"diga-patient-app", BACKEND_CLIENT_ID}
    assert all(a["patient"] is None or a["patient"].startswith("p-") for a in audits)
    leaked = [c for c in CANARIES if c in text]
    for p in (ANNA, BEN):
        if p.patient_id in text:
            leaked.append(p.patient_id)
    assert leaked == []
    assert "eyJ" not in text  # no token (base64url JSON) in the log
