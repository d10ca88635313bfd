"""Terminology bindings (layer L2): required → error, extensible → warning, preferred/example ignored.

Codes are looked up in the local expansion (exporter.terminology.valuesets). A code whose system
cannot be enumerated offline is reported as a warning (VAL_BINDING_UNCHECKED), never passed silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import CHILDREN, Rule, rule

CHECKED_STRENGTHS = ("required", "extensible")


def codings_of(value: Any, type_code: str) -> list[tuple[str | None, str | None]] | None:
    """(system, code) pairs carried by a value of a bindable type; None when the type is not bindable."""
    if type_code in ("code", "string", "uri"):
        return [(None, value)] if isinstance(value, str) else []
    if not isinstance(value, dict):
        return []
    if type_code == "Coding":
        return [(value.get("system"), value.get("code"))] if "code" in value else []
    if type_code == "CodeableConcept":
        return [(c.get("system"), c.get("code")) for c in value.get("coding") or [] if isinstance(c, dict) and "code" in c]
    if type_code == "Quantity" or type_code in ("Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"):
        return [(value.get("system"), value.get("code"))] if "code" in value else []
    return None


_BINDABLE = frozenset({"code", "string", "uri", "Coding", "CodeableConcept", "Quantity", "Age", "Duration",
                       "Distance", "Count", "SimpleQuantity", "MoneyQuantity"})


def finding(value: Any, type_code: str, strength: str, vs_url: str, expander: ValueSetExpander
            ) -> tuple[str, dict[str, Any]] | None:
    """(message id, its arguments) when `value` breaks a required or extensible binding to `vs_url`."""
    pairs = codings_of(value, type_code)
    if pairs is None:
        return None
    if not pairs:
        if type_code == "CodeableConcept" and strength == "required":
            return M.BINDING_NO_CODE, {"vs": vs_url}
        return None
    exp = expander.expand(vs_url)
    # a Coding without a system names no code of any code system: it is in no ValueSet
    bare = type_code in ("code", "string", "uri")
    verdicts = [exp.contains(s, c) if s is not None or bare else False for s, c in pairs]
    if any(v is True for v in verdicts):
        return None
    # the code systems, never the codes: a code in a patient's document is patient data (a diagnosis)
    systems = sorted({str(s) for s, _ in pairs if s})
    shown = "the code" + (f" of {', '.join(systems)}" if systems else "")
    if any(v is None for v in verdicts):
        return M.BINDING_UNCHECKED, {"codes": shown, "vs": vs_url,
                                     "why": exp.problem or "its code system is not available offline"}
    return (M.BINDING_REQUIRED if strength == "required" else M.BINDING_EXTENSIBLE), {"codes": shown, "vs": vs_url}


@rule
class Binding(Rule):
    """A required or extensible binding: the code is in the ValueSet's local expansion."""

    messages = (M.BINDING_REQUIRED, M.BINDING_EXTENSIBLE, M.BINDING_UNCHECKED, M.BINDING_NO_CODE)
    stage = CHILDREN

    def applies(self, m: Member) -> bool:
        n = m.node
        return n.binding_strength in CHECKED_STRENGTHS and bool(n.binding_vs) and m.type.code in _BINDABLE

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        type_code, strength, vs, expander = m.type.code, m.node.binding_strength, m.node.binding_vs, self.env.expander
        return lambda value, ctx: finding(value, type_code, strength, vs, expander) is None  # type: ignore[arg-type]

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        found = finding(value, m.type.code, m.node.binding_strength, m.node.binding_vs, self.env.expander)  # type: ignore[arg-type]
        if found is not None:
            ctx.add(found[0], path, **found[1])
