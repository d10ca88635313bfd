"""The demo/test realm `diga` on a real Keycloak: token shapes, roles, audience, PKCE, refusals, key rotation.

One Keycloak per session (fixture `keycloak` from tests/support/keycloak.py). The key-rotation test
changes the realm's signing key for the rest of the session; it runs last in this file.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tools.devstack.keycloak import (
    API_CLIENT_ID,
    BACKEND_CLIENT_ID,
    DEMO_CLIENT_SECRETS,
    DEMO_PATIENTS,
    PATIENT_APP_CLIENT_ID,
    REALM_FILE,
    REPORTING_CLIENT_ID,
    KeycloakLoginError,
    KeycloakNotInstalledError,
    KeycloakServer,
    KeycloakStartError,
    pkce_pair,
)

pytestmark = pytest.mark.keycloak

ANNA = DEMO_PATIENTS["patient-anna"]
BEN = DEMO_PATIENTS["patient-ben"]


def _verify(kc: KeycloakServer, token: str, audience: str = API_CLIENT_ID) -> tuple[dict, dict]:
    """Header and claims of `token`, its RS256 signature checked against the realm's published JWKS."""
    header = jwt.get_unverified_header(token)
    keys = {k["kid"]: k for k in kc.jwks()["keys"]}
    assert header.get("kid") in keys, f"kid {header.get('kid')} not in the realm JWKS {sorted(keys)}"
    jwk = keys[header["kid"]]
    assert jwk["use"] == "sig" and jwk["alg"] == "RS256"
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=audience,
        issuer=kc.issuer,
        options={"require": ["exp", "iat", "iss", "sub", "aud"]},
    )
    return header, claims


def _aud(claims: dict) -> list[str]:
    aud = claims["aud"]
    return [aud] if isinstance(aud, str) else list(aud)


def _backend_token(kc: KeycloakServer) -> str:
    return kc.client_credentials_token(BACKEND_CLIENT_ID, DEMO_CLIENT_SECRETS[BACKEND_CLIENT_ID])


def test_demo_constants_match_the_realm_file():
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    secrets_in_file = {c["clientId"]: c.get("secret") for c in realm["clients"] if not c.get("publicClient")}
    assert secrets_in_file == DEMO_CLIENT_SECRETS
    assert len(set(DEMO_CLIENT_SECRETS.values())) == len(DEMO_CLIENT_SECRETS)
    users = {u["username"]: u for u in realm["users"]}
    for p in DEMO_PATIENTS.values():
        assert users[p.username]["attributes"]["diga_patient_id"] == [p.patient_id]
        assert users[p.username]["credentials"][0]["value"] == p.password


def test_discovery_and_issuer(keycloak):
    assert keycloak.issuer == keycloak.realm_url == f"{keycloak.base_url}/realms/diga"
    assert keycloak.base_url.startswith("http://127.0.0.1:")
    assert keycloak.token_endpoint == f"{keycloak.realm_url}/protocol/openid-connect/token"
    assert keycloak.jwks_uri == f"{keycloak.realm_url}/protocol/openid-connect/certs"
    assert keycloak.signing_kids(), "no RS256 signing key published"


def test_backend_client_credentials_token_shape(keycloak):
    header, claims = _verify(keycloak, _backend_token(keycloak))
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    assert header["kid"] in keycloak.signing_kids()
    assert claims["iss"] == keycloak.issuer
    assert claims["typ"] == "Bearer"
    assert claims["azp"] == BACKEND_CLIENT_ID
    assert API_CLIENT_ID in _aud(claims)
    assert {"export", "validate"} <= set(claims["resource_access"][API_CLIENT_ID]["roles"])
    assert claims["preferred_username"] == "service-account-diga-backend"
    assert claims["sub"]
    assert claims["exp"] > claims["iat"]
    assert claims["exp"] - claims["iat"] == 300  # accessTokenLifespan of the demo realm


def test_reporting_client_has_only_validate(keycloak):
    token = keycloak.client_credentials_token(REPORTING_CLIENT_ID, DEMO_CLIENT_SECRETS[REPORTING_CLIENT_ID])
    _, claims = _verify(keycloak, token)
    assert claims["azp"] == REPORTING_CLIENT_ID
    assert API_CLIENT_ID in _aud(claims)
    assert claims["resource_access"][API_CLIENT_ID]["roles"] == ["validate"]
    assert claims["preferred_username"] == "service-account-diga-reporting"


def test_wrong_client_secret_is_refused(keycloak):
    r = keycloak.token_response(grant_type="client_credentials", client_id=BACKEND_CLIENT_ID,
                                client_secret="not-the-secret")
    assert r.status_code in (400, 401)
    assert "access_token" not in r.json()
    # RFC 6749 says invalid_client; Keycloak 26.4 answers 401 unauthorized_client for a wrong secret.
    assert r.json()["error"] in ("invalid_client", "unauthorized_client")


def test_api_client_itself_gets_no_tokens(keycloak):
    r = keycloak.token_response(grant_type="client_credentials", client_id=API_CLIENT_ID,
                                client_secret=DEMO_CLIENT_SECRETS[API_CLIENT_ID])
    assert r.status_code in (400, 401)
    assert "access_token" not in r.json()


@pytest.mark.parametrize("patient", [ANNA, BEN], ids=lambda p: p.username)
def test_pkce_login_of_a_patient(keycloak, patient):
    tokens = keycloak.pkce_login(patient.username, patient.password)
    header, claims = _verify(keycloak, tokens["access_token"])
    assert header["alg"] == "RS256"
    assert claims["typ"] == "Bearer"
    assert claims["azp"] == PATIENT_APP_CLIENT_ID
    assert API_CLIENT_ID in _aud(claims)
    assert claims["diga_patient_id"] == patient.patient_id
    assert claims["sid"]
    # data minimisation: profile/email are optional scopes of the patient app, not in default tokens
    assert "email" not in claims and "name" not in claims
    assert API_CLIENT_ID not in claims.get("resource_access", {})  # patients hold no API client roles
    _, id_claims = _verify(keycloak, tokens["id_token"], audience=PATIENT_APP_CLIENT_ID)
    assert id_claims["typ"] == "ID"
    assert id_claims["sub"] == claims["sub"]


def test_authorization_request_without_code_challenge_is_refused(keycloak):
    redirect_uri = keycloak.redirect_uri(54321)
    r = keycloak.authorization_request(redirect_uri=redirect_uri, code_challenge=None, state="s-no-pkce")
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith(redirect_uri)
    q = parse_qs(urlsplit(location).query)
    assert q["error"] == ["invalid_request"]
    assert "code" not in q
    assert q["state"] == ["s-no-pkce"]


def test_plain_code_challenge_method_is_refused(keycloak):
    r = keycloak.authorization_request(code_challenge="a" * 43, code_challenge_method="plain")
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["invalid_request"] and "code" not in q


def test_unregistered_redirect_uri_is_refused(keycloak):
    r = keycloak.authorization_request(redirect_uri="http://127.0.0.1:54321/elsewhere", code_challenge="a" * 43)
    assert r.status_code == 400
    assert "Location" not in r.headers


def test_any_loopback_port_is_accepted(keycloak):
    for port in (1024, 50000, 65000):
        r = keycloak.authorization_request(redirect_uri=keycloak.redirect_uri(port), code_challenge="a" * 43)
        assert r.status_code == 200 and 'id="kc-form-login"' in r.text


def test_wrong_password_yields_no_code(keycloak):
    with pytest.raises(KeycloakLoginError) as e:
        keycloak.pkce_login(ANNA.username, "wrong-" + ANNA.password)
    assert e.value.status == 200 and e.value.page_id == "login-login"  # the form again, with an error
    assert "Invalid username or password" in str(e.value)


def test_code_is_useless_without_the_right_verifier(keycloak):
    """A code exchanged with a wrong code_verifier is refused, and the code is burnt by the attempt."""
    verifier, challenge = pkce_pair()
    redirect_uri = keycloak.redirect_uri(40001)
    code = keycloak.authorization_code(BEN.username, BEN.password, code_challenge=challenge,
                                       redirect_uri=redirect_uri)
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": PATIENT_APP_CLIENT_ID}
    wrong = keycloak.token_response(**base, code_verifier=pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = keycloak.token_response(**base, code_verifier=verifier)
    assert again.status_code == 400 and "access_token" not in again.json()


def test_code_without_verifier_is_refused(keycloak):
    _, challenge = pkce_pair()
    redirect_uri = keycloak.redirect_uri(40002)
    code = keycloak.authorization_code(ANNA.username, ANNA.password, code_challenge=challenge,
                                       redirect_uri=redirect_uri)
    r = keycloak.token_response(grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                                client_id=PATIENT_APP_CLIENT_ID)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_patient_app_has_no_password_grant(keycloak):
    r = keycloak.token_response(grant_type="password", client_id=PATIENT_APP_CLIENT_ID,
                                username=ANNA.username, password=ANNA.password)
    assert r.status_code in (400, 401) and "access_token" not in r.json()


def test_missing_install_asks_for_make_setup(tmp_path):
    with pytest.raises(KeycloakNotInstalledError, match="make setup"):
        KeycloakServer(install_root=tmp_path).start()


def test_a_failed_start_raises_with_the_log_tail_and_leaves_nothing(tmp_path):
    kc = KeycloakServer(java_opts_append="-XX:+UseSerialGC", work_dir=tmp_path)  # clashes with kc.sh's G1
    t0 = time.monotonic()
    with pytest.raises(KeycloakStartError, match="exited with code") as e:
        kc.start()
    assert "Multiple garbage collectors" in str(e.value)
    assert time.monotonic() - t0 < 60
    assert kc.process is None and list(tmp_path.iterdir()) == []


def test_a_start_timeout_raises_and_kills_the_server(tmp_path):
    kc = KeycloakServer(ready_timeout=3, work_dir=tmp_path)
    t0 = time.monotonic()
    with pytest.raises(KeycloakStartError, match="not ready within 3 s") as e:
        kc.start()
    assert time.monotonic() - t0 < 3 + kc.stop_timeout + 15
    assert "kc.sh start-dev" in str(e.value)  # the tail of the log
    assert kc.process is None and list(tmp_path.iterdir()) == []


def test_signing_key_rotation_is_visible_in_jwks_and_tokens(keycloak):
    """Runs last: afterwards the realm signs with a new key and the old one is gone from the JWKS."""
    old_kid = jwt.get_unverified_header(_backend_token(keycloak))["kid"]
    rotation = keycloak.rotate_signing_key(retire="delete")
    assert old_kid in rotation.old_kids and rotation.new_kid != old_kid
    kids = keycloak.signing_kids()
    assert rotation.new_kid in kids and old_kid not in kids
    header, claims = _verify(keycloak, _backend_token(keycloak))
    assert header["kid"] == rotation.new_kid
    assert claims["azp"] == BACKEND_CLIENT_ID
