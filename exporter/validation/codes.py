"""Codings against local code systems (layer L2): a code must exist in a CodeSystem we hold
completely, and a display, when given, must be the code's display or one of its designations
(compared ignoring case and repeated whitespace). Systems we do not hold (SNOMED CT, LOINC, UCUM)
are not judged here — bindings report those as unchecked."""

from __future__ import annotations

import re
from typing import Any

from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import messages as M
from exporter.validation.model import KIND_COMPLEX, Member
from exporter.validation.rules import CHILDREN, Rule, rule

_WS = re.compile(r"\s+")


def _norm(s: str) -> str:
    return _WS.sub(" ", s.strip()).casefold()


def finding(coding: dict[str, Any], expander: ValueSetExpander) -> tuple[str, dict[str, Any]] | None:
    """(message id, its arguments) when a Coding names an unknown code or a wrong display."""
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return None
    found = expander.lookup(system, code)
    if found is None:
        return None
    exists, displays = found
    if not exists:
        return M.CODE_UNKNOWN, {"system": system}
    display = coding.get("display")
    if isinstance(display, str) and displays and displays[0] and _norm(display) not in {_norm(d) for d in displays if d}:
        return M.DISPLAY_WRONG, {"system": system}
    return None


@rule
class CodeInSystem(Rule):
    """A Coding's code exists in a CodeSystem held completely, with a valid display."""

    messages = (M.CODE_UNKNOWN, M.DISPLAY_WRONG)
    stage = CHILDREN + 10

    def applies(self, m: Member) -> bool:
        return m.type.code == "Coding" and m.kind == KIND_COMPLEX

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return finding(value, self.env.expander) is None

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        found = finding(value, self.env.expander)
        if found is not None:
            severity = self.env.policy.display_mismatch if found[0] == M.DISPLAY_WRONG else None
            ctx.add(found[0], path, severity, **found[1])


@rule
class SupplementNotSystem(Rule):
    """A Coding's system is never a CodeSystem supplement (content `supplement`, or one that states
    what it `supplements`): a supplement adds designations and properties to another code system
    and defines no codes of its own (the HL7 validator's CODESYSTEM_CS_NO_SUPPLEMENT)."""

    messages = (M.CODE_SYSTEM_SUPPLEMENT,)
    stage = CHILDREN + 10

    def __init__(self, env: Any):
        super().__init__(env)
        self._is_supplement: dict[str, bool] = {}

    def applies(self, m: Member) -> bool:
        return m.type.code == "Coding" and m.kind == KIND_COMPLEX

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        system = value.get("system") if isinstance(value, dict) else None
        if not isinstance(system, str):
            return True
        hit = self._is_supplement.get(system)
        if hit is None:
            cs = self.env.store.code_system(system)
            hit = isinstance(cs, dict) and (cs.get("content") == "supplement" or "supplements" in cs)
            if len(self._is_supplement) < 10_000:
                self._is_supplement[system] = hit
        return not hit

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.CODE_SYSTEM_SUPPLEMENT, f"{path}.system")
