"""Terminology bindings (layer L2): required → error, extensible → warning, preferred/example ignored.

Codes are looked up in the local expansion (exporter.terminology.valuesets). A code whose system
cannot be enumerated offline is reported as a warning (VAL_BINDING_UNCHECKED), never passed silently.
"""

from __future__ import annotations

from typing import Any, Callable

from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import messages as M

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


def check(value: Any, type_code: str, strength: str | None, vs_url: str | None, expander: ValueSetExpander,
          path: str, report: Callable[[str, str, str, str], None]) -> None:
    if strength not in CHECKED_STRENGTHS or not vs_url:
        return
    pairs = codings_of(value, type_code)
    if pairs is None:
        return
    if not pairs:
        if type_code == "CodeableConcept" and strength == "required":
            report("error", M.BINDING_NO_CODE, f"no code given for the required binding to {vs_url}", path)
        return
    exp = expander.expand(vs_url)
    verdicts = [exp.contains(s, c) for s, c in pairs]
    if any(v is True for v in verdicts):
        return
    # the code systems, never the codes: a code in a patient's document is patient data (a diagnosis)
    systems = sorted({str(s) for s, _ in pairs if s})
    shown = "the code" + (f" of {', '.join(systems)}" if systems else "")
    if any(v is None for v in verdicts):
        why = exp.problem or "its code system is not available offline"
        report("warning", M.BINDING_UNCHECKED, f"cannot check {shown} against {vs_url}: {why}", path)
        return
    if strength == "required":
        report("error", M.BINDING_REQUIRED, f"{shown} is not in the required ValueSet {vs_url}", path)
    else:
        report("warning", M.BINDING_EXTENSIBLE, f"{shown} is not in the extensible ValueSet {vs_url}", path)
