"""Authentication and authorization of the HTTP service (layer L3; imports exporter.settings, PyJWT,
requests and FastAPI's dependency/security helpers — never exporter.api).

    verifier = TokenVerifier.from_settings(settings)      # OIDC discovery + own JWKS key cache
    principal = verifier.verify(bearer_token)             # Principal, or AuthError / AuthUnavailable

Routes declare exactly one policy from `policies` (`public`, `require_service(role)`,
`current_patient`); `route_policy(route)` finds it, and the API refuses to start with a route that
has none or several.
"""

from exporter.auth.keys import KeyCache
from exporter.auth.principal import AuthError, AuthUnavailable, Principal
from exporter.auth.tokens import TokenVerifier

__all__ = ["AuthError", "AuthUnavailable", "KeyCache", "Principal", "TokenVerifier"]
