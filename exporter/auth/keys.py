"""The signing-key cache of the configured realm (layer L3; imports PyJWT and requests).

OIDC discovery once (`<issuer>/.well-known/openid-configuration`; its `issuer` must equal the
configured issuer exactly), then the JWKS from the announced `jwks_uri`. Only RSA keys with
`use=sig` and `alg=RS256` of at least 2048 bits are kept (Keycloak also publishes an RSA-OAEP
encryption key; it is never a verification key).

Refetching is rate-limited: at most one attempt per `min_refresh` seconds, whether triggered by an
unknown kid or by the keys reaching `max_age`. It runs in its own thread, one at a time, never under
a lock that a lookup takes: a token of a known key never waits for Keycloak (an aged key set is
refreshed in the background), and a token with an unknown kid waits for the one fetch in flight at
most `wait` seconds (Keycloak's JWKS endpoint hanging for 8 s once stalled every request). A refresh
that fails (Keycloak down, bad answer, no usable key) keeps the known keys, so a Keycloak outage does
not lock out valid tokens. A successful refresh replaces the set, so keys removed in Keycloak stop
verifying (rotation is followed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from exporter.auth.principal import AuthError, AuthUnavailable

log = logging.getLogger("exporter.auth")

FetchJson = Callable[[str], Any]
MAX_JWKS_BYTES = 256_000


def http_fetch_json(timeout: float) -> FetchJson:
    """A fetcher: GET the URL (no redirects), fail on non-200 or oversize answers, parse JSON."""

    def fetch(url: str) -> Any:
        r = requests.get(url, timeout=timeout, allow_redirects=False, headers={"Accept": "application/json"})
        if r.status_code != 200:
            raise OSError(f"HTTP {r.status_code}")
        if len(r.content) > MAX_JWKS_BYTES:
            raise OSError("answer too large")
        return r.json()

    return fetch


def parse_jwks(jwks: Any) -> dict[str, RSAPublicKey]:
    """kid → public key for the RS256 signing keys of a JWKS; everything else is skipped."""
    keys: dict[str, RSAPublicKey] = {}
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        return keys
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if (jwk.get("kty") != "RSA" or jwk.get("alg") != "RS256" or jwk.get("use", "sig") != "sig"
                or not isinstance(kid, str) or not kid or "d" in jwk):
            continue
        try:
            key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except Exception:  # noqa: BLE001 - a malformed key is skipped, not fatal
            continue
        if isinstance(key, RSAPublicKey) and key.key_size >= 2048:
            keys[kid] = key
    return keys


class KeyCache:
    """kid → RS256 public key of the realm. Lookups of known keys take no lock and never wait; a
    refresh runs in its own thread, at most one at a time (single flight), and callers that need it
    (an unknown kid) wait for that one fetch at most `wait` seconds."""

    def __init__(self, issuer: str, fetch_json: FetchJson, *, realm_url: str | None = None, min_refresh: float = 10.0,
                 max_age: float = 300.0, clock: Callable[[], float] = time.monotonic, wait: float = 3.0):
        self.issuer = issuer
        self.discovery_url = (realm_url or issuer).rstrip("/") + "/.well-known/openid-configuration"
        self._fetch = fetch_json
        self.min_refresh = min_refresh
        self.max_age = max_age
        self.wait = wait
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below; never held while fetching
        self._keys: dict[str, RSAPublicKey] = {}  # replaced whole, so readers need no lock
        self._jwks_uri: str | None = None
        self._last_attempt = -math.inf
        self._loaded_at: float | None = None
        self._inflight: Future[bool] | None = None
        self.fetches = 0
        """JWKS fetch attempts so far (for tests and metrics)."""

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def refresh(self) -> Future[bool] | None:
        """The refresh in flight, or a new one when the rate limit allows (else None). Never blocks."""
        with self._lock:
            if self._inflight is not None:
                return self._inflight
            now = self._clock()
            if now - self._last_attempt < self.min_refresh:
                return None
            self._last_attempt = now
            self.fetches += 1
            future: Future[bool] = Future()
            self._inflight = future
        threading.Thread(target=self._run_refresh, args=(future, now), name="jwks-fetch", daemon=True).start()
        return future

    def _run_refresh(self, future: Future[bool], started: float) -> None:
        ok = False
        try:
            ok = self._load(started)
        finally:
            with self._lock:
                self._inflight = None
            future.set_result(ok)

    def _load(self, started: float) -> bool:
        """Discovery (once) and JWKS, outside the lock; the new key set replaces the old one whole."""
        try:
            jwks_uri = self._jwks_uri
            if jwks_uri is None:
                disc = self._fetch(self.discovery_url)
                if not isinstance(disc, dict) or disc.get("issuer") != self.issuer:
                    raise ValueError("discovery announces a different issuer")
                uri = disc.get("jwks_uri")
                if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                    raise ValueError("discovery has no jwks_uri")
                self._jwks_uri = jwks_uri = uri
            keys = parse_jwks(self._fetch(jwks_uri))
            if not keys:
                raise ValueError("the JWKS holds no RS256 signing key")
        except Exception as exc:  # noqa: BLE001 - any failure keeps the known keys
            log.warning("jwks refresh failed", extra={"event": "jwks_refresh_failed", "error": type(exc).__name__,
                                                        "known_keys": len(self._keys)})
            return False
        changed = set(keys) != set(self._keys)
        with self._lock:
            self._keys = keys
            self._loaded_at = started
        if changed:
            log.info("jwks loaded", extra={"event": "jwks_loaded", "kids": sorted(keys)})
        return True

    def ensure_loaded(self, *, wait: bool = True) -> bool:
        """True when keys are known. If none are, start a (rate-limited) load and, with `wait`, wait
        for it at most `self.wait` seconds."""
        if not self._keys:
            future = self.refresh()
            if future is not None and wait:
                futures_wait([future], timeout=self.wait)
        return bool(self._keys)

    def _known(self, kid: str) -> RSAPublicKey | None:
        """The key if known (an aged key set is refreshed in the background meanwhile)."""
        keys, loaded_at = self._keys, self._loaded_at
        if keys and loaded_at is not None and self._clock() - loaded_at > self.max_age:
            self.refresh()
        return keys.get(kid)

    def _after_refresh(self, kid: str) -> RSAPublicKey:
        key = self._keys.get(kid)
        if key is None:
            if not self._keys:
                raise AuthUnavailable("no signing keys: the identity provider is unreachable")
            raise AuthError("unknown_kid")
        return key

    def get(self, kid: str) -> RSAPublicKey:
        """The key for `kid`. Raises AuthError for a kid that is still unknown after the (rate-limited,
        single-flight) refetch, AuthUnavailable when no key has ever been loaded."""
        key = self._known(kid)
        if key is not None:
            return key
        future = self.refresh()
        if future is not None:
            futures_wait([future], timeout=self.wait)
        return self._after_refresh(kid)

    async def aget(self, kid: str) -> RSAPublicKey:
        """`get` for the event loop: waiting for the fetch takes no thread."""
        key = self._known(kid)
        if key is not None:
            return key
        future = self.refresh()
        if future is not None:  # asyncio.wait: no cancellation of the shared fetch, no exception on timeout
            await asyncio.wait({asyncio.wrap_future(future)}, timeout=self.wait)
        return self._after_refresh(kid)
