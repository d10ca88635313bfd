"""Reusable authorization: the three policies a route can declare (layer L3; imports FastAPI's
dependency and security helpers).

    @router.post("/internal/export", dependencies=[Depends(require_service("export"))])
    def export(principal: Principal = Depends(require_service("export"))): ...
    @router.get("/patient/export")
    def patient_export(principal: Principal = Depends(current_patient)): ...
    @router.get("/metadata")
    def metadata(_: Principal = Depends(public)): ...

Every policy is a `Policy` instance used as a FastAPI dependency; `route_policy(route)` returns the
one policy of a route and raises when there is none or more than one (the API refuses to start
then, and tests/unit/api/test_policies.py walks app.routes with it).

The verifier is taken from `request.app.state.verifier` (a TokenVerifier). The resolved Principal is
stored in `request.state.principal` for the request log (its kind only). Denials raise AuthError;
the API renders every one of them as the same generic answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exporter.auth.principal import ANONYMOUS, AuthError, Principal

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="keycloak",
    bearerFormat="JWT",
    description="An access token of the configured Keycloak realm (RS256). Services: client credentials of an "
                "allow-listed client holding the API client's role. Patients: authorization code + PKCE through "
                "the patient app; the patient id is taken from the token claim only.",
)


class Policy:
    """Base of the declared route policies; `name` appears in logs and in the OpenAPI `x-policy`."""

    name = "policy"

    def __repr__(self) -> str:
        return f"<Policy {self.name}>"


class _Public(Policy):
    name = "public"

    async def __call__(self, request: Request) -> Principal:
        request.state.principal = ANONYMOUS
        return ANONYMOUS


async def _verify(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    request.state.principal = None
    header = request.headers.get("authorization")
    if header is not None and credentials is None:
        raise AuthError("scheme")
    principal: Principal = await request.app.state.verifier.averify(credentials.credentials if credentials else None)
    return principal


class RequireService(Policy):
    def __init__(self, role: str):
        self.role = role
        self.name = f"service:{role}"

    # on the event loop, in no thread pool: a known key verifies at once (~0.1 ms), and waiting for a
    # JWKS fetch (an unknown kid) holds no thread that health checks or exports would need
    async def __call__(self, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
        principal = await _verify(request, credentials)
        if principal.kind != "service":
            raise AuthError("not_service")
        if self.role not in principal.roles:
            raise AuthError("role")
        request.state.principal = principal
        return principal

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, RequireService) and other.role == self.role

    def __hash__(self) -> int:
        return hash(("service", self.role))


class _CurrentPatient(Policy):
    name = "patient"

    async def __call__(self, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
        principal = await _verify(request, credentials)
        if principal.kind != "patient" or not principal.patient_id:
            raise AuthError("not_patient")
        request.state.principal = principal
        return principal


public = _Public()
current_patient = _CurrentPatient()
_service_policies: dict[str, RequireService] = {}


def require_service(role: str) -> RequireService:
    """The policy "an allow-listed service client holding client role `role` of the API client"."""
    return _service_policies.setdefault(role, RequireService(role))


def _policies_of(dependant: Any) -> list[Policy]:
    found = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, Policy):
            found.append(dep.call)
        found += _policies_of(dep)
    return found


def route_policy(route: Any) -> Policy:
    """The one policy declared by a FastAPI APIRoute; ValueError when it declares none or several."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        raise ValueError(f"{getattr(route, 'path', route)}: not an APIRoute, cannot declare a policy")
    found = _policies_of(dependant)
    if len(found) != 1:
        raise ValueError(f"{route.path}: declares {len(found)} policies ({found}); exactly one is required")
    return found[0]
