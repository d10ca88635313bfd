"""Access-token verification (layer L3; imports PyJWT): signature, claims, client allow-lists, roles.

Checks, in order (any failure → AuthError with a fixed reason word, for logs only):
compact JWS with three parts and at most 16 KiB; header alg exactly RS256 (so `none` and HS256 signed
with the public key never reach a key) and a kid; the kid's key from the own KeyCache; signature;
exp / nbf / iat with a small leeway, and JSON numbers (PyJWT alone accepts "9999999999"); iss exactly
the configured issuer; aud (string or list) contains the API client id; typ "Bearer" (ID and refresh
tokens are refused); azp on the service or patient allow-list. Services get their roles from
resource_access.<api client>.roles; patients get their patient id only from the configured claim.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jwt

from exporter.auth.keys import FetchJson, KeyCache, http_fetch_json
from exporter.auth.principal import AuthError, Principal

MAX_TOKEN_LENGTH = 16_384
TIME_CLAIMS = ("exp", "iat", "nbf")
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenVerifier:
    def __init__(self, keys: KeyCache, *, issuer: str, audience: str, service_clients: list[str],
                 patient_clients: list[str], patient_id_claim: str = "diga_patient_id", leeway: int = 30):
        overlap = set(service_clients) & set(patient_clients)
        if overlap:
            raise ValueError(f"clients on both the service and the patient allow-list: {sorted(overlap)}")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.service_clients = frozenset(service_clients)
        self.patient_clients = frozenset(patient_clients)
        self.patient_id_claim = patient_id_claim
        self.leeway = leeway

    @classmethod
    def from_settings(cls, settings: Any, fetch_json: FetchJson | None = None) -> TokenVerifier:
        realm_url = f"{settings.keycloak_url.rstrip('/')}/realms/{settings.keycloak_realm}"
        keys = KeyCache(settings.issuer, fetch_json or http_fetch_json(settings.oidc_timeout_seconds), realm_url=realm_url,
                        min_refresh=settings.jwks_min_refresh_seconds, max_age=settings.jwks_max_age_seconds,
                        wait=settings.oidc_timeout_seconds)
        return cls(keys, issuer=settings.issuer, audience=settings.api_client_id,
                   service_clients=list(settings.service_clients), patient_clients=list(settings.patient_clients),
                   patient_id_claim=settings.patient_id_claim, leeway=settings.token_leeway_seconds)

    def verify(self, token: str | None) -> Principal:
        """The Principal of a valid token, else AuthError (AuthUnavailable without any key)."""
        return self._claims(token, self.keys.get(self._kid(token)))

    async def averify(self, token: str | None) -> Principal:
        """`verify` on the event loop: a known key is used at once, waiting for a key fetch takes no thread."""
        return self._claims(token, await self.keys.aget(self._kid(token)))

    def _kid(self, token: str | None) -> str:
        if not token:
            raise AuthError("no_token")
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise AuthError("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed") from None
        if header.get("alg") != "RS256":
            raise AuthError("alg")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("no_kid")
        return kid

    def _claims(self, token: Any, key: Any) -> Principal:
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "azp", "typ"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("signature") from None
        except jwt.InvalidAudienceError:
            raise AuthError("audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("issuer") from None
        except jwt.PyJWTError:
            raise AuthError("claims") from None
        for name in TIME_CLAIMS:  # PyJWT converts "9999999999" with int(): RFC 7519 wants a NumericDate
            if name in claims and not _numeric_date(claims[name]):
                raise AuthError("claims")
        if claims.get("typ") != "Bearer":
            raise AuthError("typ")
        azp, sub = claims.get("azp"), claims.get("sub")
        if not isinstance(azp, str) or not isinstance(sub, str):
            raise AuthError("claims")
        if azp in self.service_clients:
            access = claims.get("resource_access")
            roles = access.get(self.audience, {}).get("roles", []) if isinstance(access, dict) else []
            if not isinstance(roles, list):
                roles = []
            return Principal("service", sub, azp, frozenset(r for r in roles if isinstance(r, str)))
        if azp in self.patient_clients:
            pid = claims.get(self.patient_id_claim)
            if not isinstance(pid, str) or not PATIENT_ID.match(pid):
                raise AuthError("patient_claim")
            return Principal("patient", sub, azp, frozenset(), pid)
        raise AuthError("azp")


def _numeric_date(value: Any) -> bool:
    """A JSON number (not a string, not a boolean), finite."""
    return type(value) in (int, float) and math.isfinite(value)
