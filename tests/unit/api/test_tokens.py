"""Token verification and the key cache, with a local RSA identity provider (no network)."""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.auth import AuthError, AuthUnavailable
from exporter.auth.keys import parse_jwks

from .conftest import ANNA_ID, API, ISSUER, FakeIdp, b64, new_key, public_jwk, verifier_for


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def reason(verifier, token) -> str:
    with pytest.raises(AuthError) as e:
        verifier.verify(token)
    return e.value.reason


def test_a_valid_service_token_yields_roles_from_the_api_client(idp):
    p = verifier_for(idp).verify(idp.token())
    assert (p.kind, p.client_id, p.roles, p.patient_id) == ("service", "diga-backend", {"export", "validate"}, None)


def test_roles_of_other_clients_and_realm_roles_do_not_count(idp):
    tok = idp.token(resource_access={"account": {"roles": ["export"]}}, realm_access={"roles": ["export"]})
    assert verifier_for(idp).verify(tok).roles == frozenset()


def test_a_patient_token_yields_the_patient_id_from_the_claim_only(idp):
    p = verifier_for(idp).verify(idp.patient_token(ANNA_ID))
    assert (p.kind, p.client_id, p.patient_id, p.roles) == ("patient", "diga-patient-app", ANNA_ID, frozenset())


@pytest.mark.parametrize("bad", [None, "", "../etc/passwd", "a/b", "x" * 65, 42, ["x"]])
def test_a_patient_token_without_a_usable_patient_claim_is_refused(idp, bad):
    assert reason(verifier_for(idp), idp.patient_token(diga_patient_id=bad)) == "patient_claim"


def test_aud_may_be_a_string(idp):
    assert verifier_for(idp).verify(idp.token(aud=API)).kind == "service"


@pytest.mark.parametrize("claims, why", [
    ({"aud": "account"}, "audience"),
    ({"aud": ["account", "other-api"]}, "audience"),
    ({"iss": ISSUER + "/"}, "issuer"),
    ({"iss": "http://idp.test/realms/other"}, "issuer"),
    ({"typ": "ID"}, "typ"),
    ({"typ": "Refresh"}, "typ"),
    ({"azp": "diga-unknown"}, "azp"),
    ({"azp": None}, "claims"),
    ({"exp": -120}, "expired"),  # offsets from now, resolved when the test runs: parameters are built
    ({"nbf": +120}, "claims"),    # at collection, which can be minutes earlier in a full run
    ({"iat": +120}, "claims"),
    ({"sub": None}, "claims"),
    ({"exp": None}, "claims"),
])
def test_claim_checks(idp, claims, why):
    now = int(time.time())
    claims = {k: (now + v if k in ("exp", "nbf", "iat") and isinstance(v, int) else v) for k, v in claims.items()}
    assert reason(verifier_for(idp), idp.token(**claims)) == why


def test_small_clock_skew_is_tolerated(idp):
    now = int(time.time())
    verifier_for(idp).verify(idp.token(exp=now - 10, nbf=now + 10))


def test_header_attacks(idp):
    v = verifier_for(idp)
    good = idp.token()
    h, payload, _ = good.split(".")
    # alg=none, unsigned
    assert reason(v, f"{b64({'alg': 'none', 'kid': 'kid-1'})}.{payload}.") == "alg"
    # HS256 "signed" with the RS256 public key (the classic key-confusion attack)
    pem = idp.keys["kid-1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'kid-1', 'typ': 'JWT'})}.{payload}"
    sig = b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    assert reason(v, f"{signing_input}.{sig}") == "alg"
    # a foreign key under the IdP's kid
    assert reason(v, idp.token(key=new_key())) == "signature"
    # tampered payload
    assert reason(v, f"{h}.{b64({'sub': 'x'})}.{good.split('.')[2]}") == "signature"
    # no kid, garbage, oversize
    assert reason(v, jwt.encode({"a": 1}, idp.keys["kid-1"], algorithm="RS256")) == "no_kid"
    assert reason(v, "not-a-token") == "malformed"
    assert reason(v, "a.b.c") == "malformed"
    assert reason(v, "a" * 20000) == "malformed"
    assert reason(v, None) == "no_token"


def test_only_rs256_signing_keys_are_loaded(idp):
    jwks = idp.jwks()
    jwks["keys"].append({**public_jwk(new_key(), "rs512"), "alg": "RS512"})
    jwks["keys"].append({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"})
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwks["keys"].append(public_jwk(small, "small"))
    assert sorted(parse_jwks(jwks)) == ["kid-1"]
    # the encryption key's kid never verifies, even with a matching signature
    tok = idp.token("enc-1", key=idp.enc_key)
    assert reason(verifier_for(idp), tok) == "unknown_kid"


def test_unknown_kid_triggers_a_rate_limited_refetch(idp):
    clock = Clock()
    v = verifier_for(idp, clock=clock, min_refresh=10)
    v.verify(idp.token())
    n = len(idp.fetched)
    idp.keys["kid-2"] = new_key()
    clock.t += 1
    for _ in range(5):  # a burst of unknown kids: at most one fetch in the window
        assert reason(v, idp.token("kid-2", key=idp.keys["kid-2"], headers={"kid": "kid-x"})) == "unknown_kid"
    clock.t += 10
    assert v.verify(idp.token("kid-2")).kind == "service"
    assert len(idp.fetched) - n <= 2


def test_rotation_is_followed_and_removed_keys_stop_verifying(idp):
    clock = Clock()
    v = verifier_for(idp, clock=clock, min_refresh=10)
    old = idp.token()
    v.verify(old)
    idp.keys = {"kid-2": new_key()}
    clock.t += 11
    v.verify(idp.token("kid-2"))
    assert reason(v, old) == "unknown_kid"


def test_known_keys_are_kept_while_the_idp_is_down(idp):
    clock = Clock()
    v = verifier_for(idp, clock=clock, min_refresh=10)
    v.verify(idp.token())
    idp.down = True
    clock.t += 10_000  # far beyond max_age: a refresh is attempted and fails
    assert v.verify(idp.token()).kind == "service"
    assert reason(v, idp.token(headers={"kid": "kid-new"})) == "unknown_kid"


def test_cold_start_without_the_idp_is_unavailable_then_recovers(idp):
    clock = Clock()
    idp.down = True
    v = verifier_for(idp, clock=clock, min_refresh=10)
    with pytest.raises(AuthUnavailable):
        v.verify(idp.token())
    idp.down = False
    with pytest.raises(AuthUnavailable):  # still inside the rate-limit window
        v.verify(idp.token())
    clock.t += 10
    assert v.verify(idp.token()).kind == "service"


def test_discovery_with_a_different_issuer_loads_no_key():
    class Liar(FakeIdp):
        def __call__(self, url):
            out = super().__call__(url)
            return {**out, "issuer": "http://evil.test/realms/diga"} if "well-known" in url else out

    idp = Liar()
    with pytest.raises(AuthUnavailable):
        verifier_for(idp).verify(idp.token())


def test_a_client_on_both_allow_lists_is_a_configuration_error(idp):
    from .conftest import settings_for

    with pytest.raises(ValueError, match="both"):
        verifier_for(idp, settings_for(service_clients=["x"], patient_clients=["x"]))


class HangingIdp(FakeIdp):
    """A JWKS endpoint that answers only when `release` is set (discovery answers at once)."""

    def __init__(self) -> None:
        super().__init__()
        import threading
        self.release = threading.Event()
        self.hang = False

    def __call__(self, url):
        if self.hang and url.endswith("/certs"):
            self.release.wait(10)
        return super().__call__(url)


def test_a_hanging_key_fetch_never_delays_a_known_key_and_is_fetched_once():
    import asyncio
    import threading

    idp = HangingIdp()
    v = verifier_for(idp, min_refresh=0)
    v.keys.wait = 0.5
    assert v.verify(idp.token()).kind == "service"
    idp.hang = True
    n = len(idp.fetched)
    denied = []

    def unknown() -> None:
        try:
            v.verify(idp.token(headers={"kid": "kid-unknown"}))
        except AuthError as e:
            denied.append((e.reason, time.monotonic() - t0))

    t0 = time.monotonic()
    waiting = [threading.Thread(target=unknown) for _ in range(5)]
    for t in waiting:
        t.start()
    time.sleep(0.05)
    known = time.monotonic()
    assert v.verify(idp.token()).kind == "service"  # no lock, no wait
    assert asyncio.run(v.averify(idp.token())).kind == "service"
    assert time.monotonic() - known < 0.05
    with pytest.raises(AuthError):  # on the event loop: waits for the same fetch, then refuses
        asyncio.run(v.averify(idp.token(headers={"kid": "kid-other"})))
    for t in waiting:
        t.join(5)
    assert [r for r, _ in denied] == ["unknown_kid"] * 5 and max(d for _, d in denied) < 1.5
    idp.release.set()
    time.sleep(0.1)
    assert [u for u in idp.fetched[n:] if u.endswith("/certs")] == [idp.fetched[-1]]  # one fetch for all


def test_an_aged_key_set_is_refreshed_in_the_background(idp):
    clock = Clock()
    v = verifier_for(idp, clock=clock, min_refresh=10)
    v.verify(idp.token())
    n = len(idp.fetched)
    clock.t += 10_000
    assert v.verify(idp.token()).kind == "service"
    time.sleep(0.2)
    assert len(idp.fetched) == n + 1


@pytest.mark.parametrize("claim, value", [("exp", "9999999999"), ("iat", "1"), ("nbf", "1"), ("exp", True),
                                          ("exp", 1e400)])
def test_time_claims_must_be_json_numbers(idp, claim, value):
    assert reason(verifier_for(idp), idp.token(**{claim: value})) in ("claims", "expired")
