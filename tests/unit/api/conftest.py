"""Fixtures for the API unit tests: a local RSA "identity provider" (discovery + JWKS served by an
in-process fetcher, no network), token minting, and the app built with the real Exporter."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from exporter.api import create_app
from exporter.auth import KeyCache, TokenVerifier
from exporter.settings import Settings

ISSUER = "http://idp.test/realms/diga"
API = "diga-exporter-api"
ANNA_ID = "0b7c4f3e-1a2d-4e5f-8a9b-1c2d3e4f5a61"
BEN_ID = "9d8e7f6a-5b4c-4d3e-9f2a-1b0c9d8e7f62"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str, alg: str = "RS256", use: str = "sig") -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": use}


class FakeIdp:
    """Discovery + JWKS as a fetcher for KeyCache; `down=True` makes every fetch fail."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"kid-1": new_key()}
        self.enc_key = new_key()
        self.down = False
        self.fetched: list[str] = []

    def jwks(self) -> dict[str, Any]:
        keys = [public_jwk(k, kid) for kid, k in self.keys.items()]
        keys.append(public_jwk(self.enc_key, "enc-1", alg="RSA-OAEP", use="enc"))  # as Keycloak publishes
        return {"keys": keys}

    def __call__(self, url: str) -> Any:
        self.fetched.append(url)
        if self.down:
            raise OSError("connection refused")
        if url.endswith("/.well-known/openid-configuration"):
            return {"issuer": ISSUER, "jwks_uri": ISSUER + "/protocol/openid-connect/certs"}
        if url.endswith("/certs"):
            return self.jwks()
        raise OSError(f"unexpected {url}")

    def token(self, kid: str = "kid-1", *, key: rsa.RSAPrivateKey | None = None, headers: dict | None = None,
              **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": ["account", API], "sub": "sub-1", "typ": "Bearer", "azp": "diga-backend",
                "iat": now, "exp": now + 300,
                "resource_access": {API: {"roles": ["export", "validate"]}}}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid, **(headers or {})})

    def patient_token(self, patient_id: str = ANNA_ID, **claims: Any) -> str:
        base = {"azp": "diga-patient-app", "resource_access": None, "diga_patient_id": patient_id,
                "sub": "user-" + patient_id[:4]}
        base.update(claims)
        return self.token(**base)


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def settings_for(**kw: Any) -> Settings:
    from pathlib import Path

    base = dict(keycloak_url="http://idp.test", keycloak_realm="diga", jwks_min_refresh_seconds=0.0,
                source_dir=Path(__file__).resolve().parents[3] / "deploy" / "demo-source")
    base.update(kw)
    return Settings(**base)


def verifier_for(idp: FakeIdp, settings: Settings | None = None, clock: Callable[[], float] | None = None,
                 min_refresh: float | None = None) -> TokenVerifier:
    settings = settings or settings_for()
    keys = KeyCache(ISSUER, idp, min_refresh=settings.jwks_min_refresh_seconds if min_refresh is None else min_refresh,
                    max_age=settings.jwks_max_age_seconds, **({"clock": clock} if clock else {}))
    return TokenVerifier(keys, issuer=ISSUER, audience=API, service_clients=list(settings.service_clients),
                         patient_clients=list(settings.patient_clients), patient_id_claim=settings.patient_id_claim,
                         leeway=settings.token_leeway_seconds)


@pytest.fixture(scope="session")
def exporter():
    from exporter.pipeline import Exporter

    return Exporter.from_settings(Settings())


@pytest.fixture
def idp() -> FakeIdp:
    return FakeIdp()


@pytest.fixture
def make_client(exporter, idp):
    clients = []

    def make(settings: Settings | None = None, **kw: Any) -> TestClient:
        settings = settings or settings_for()
        kw.setdefault("exporter", exporter)
        kw.setdefault("verifier", verifier_for(idp, settings))
        client = TestClient(create_app(settings, **kw), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


class SourceBackend(BaseHTTPRequestHandler):
    """The main backend and its token endpoint, on loopback, for the HTTP source: GET answers the
    statuses in `plan` first, then `body` (raw bytes) when set, else Anna's document or 404."""

    plan: list[int] = []
    seen: list[tuple[str, str | None]] = []
    body: bytes | None = None

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(("token", None))
        self._send(200, b'{"access_token": "tok-1", "expires_in": 300}')

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        status = self.plan.pop(0) if self.plan else 200
        if status != 200:
            return self._send(status, b"{}")
        if self.body is not None:
            return self._send(200, self.body)
        if ANNA_ID in self.path:
            return self._send(200, json.dumps({"patient": {"id": ANNA_ID}}).encode())
        return self._send(404, b"{}")


@pytest.fixture
def backend() -> Iterator[str]:
    """The base URL of a fresh SourceBackend (its plan, record and body reset)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SourceBackend)
    SourceBackend.plan, SourceBackend.seen, SourceBackend.body = [], [], None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
