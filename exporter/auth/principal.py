"""Who is calling (layer L3; standard library only): `Principal` and the two auth exceptions.

`AuthError.reason` is a short fixed word chosen by this package (never token content) and only ever
goes to logs; callers of the API always see one generic denial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["anonymous", "service", "patient"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject: str = ""
    """`sub` of the token (Keycloak user or service-account id)."""
    client_id: str = ""
    """`azp`: the client the token was issued to."""
    roles: frozenset[str] = field(default_factory=frozenset)
    """Client roles of the API client (resource_access.<api client>.roles); empty for patients."""
    patient_id: str | None = None
    """Patients only: the value of the configured patient-id claim. The only patient id a patient
    route may use."""


ANONYMOUS = Principal("anonymous")


class AuthError(Exception):
    """The request is not authenticated or not authorised. Rendered as the one generic denial."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AuthUnavailable(Exception):
    """No signing key is known and Keycloak cannot be reached (cold start): answer 503."""
