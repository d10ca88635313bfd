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
