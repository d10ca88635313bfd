"""Extensions (layer L2): resolve the definition by URL (unknown → error, as German validators
reject unknown extensions) and check the context it may be used in."""

from __future__ import annotations

from typing import Any

CONTEXT_ANY = frozenset({"Element", "Base"})
RESOURCE_CONTEXTS = frozenset({"Resource", "DomainResource"})


def context_allows(sd: dict[str, Any], host_type: str, host_path: str, host_is_resource: bool,
                   host_extension_url: str | None) -> bool:
    contexts = sd.get("context") or []
    if not contexts:
        return True
    for ctx in contexts:
        kind, expr = ctx.get("type"), ctx.get("expression", "")
        if kind == "element":
            if expr in CONTEXT_ANY or expr == host_type or expr == host_path:
                return True
            if host_is_resource and expr in RESOURCE_CONTEXTS:
                return True
            if expr.endswith("[x]") and host_path.startswith(expr[:-3]):
                return True
        elif kind == "extension":
            if host_extension_url is not None and expr == host_extension_url:
                return True
        elif kind == "fhirpath":
            return True  # cannot be evaluated without the host's full context; accepted
    return False


def describe_contexts(sd: dict[str, Any]) -> str:
    return ", ".join(f"{c.get('type')}:{c.get('expression')}" for c in sd.get("context") or []) or "(none)"
