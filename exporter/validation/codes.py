"""Codings against local code systems (layer L2): a code must exist in a CodeSystem we hold
completely, and a display, when given, must be the code's display or one of its designations
(compared ignoring case and repeated whitespace). Systems we do not hold (SNOMED CT, LOINC, UCUM)
are not judged here — bindings report those as unchecked."""

from __future__ import annotations

import re
from typing import Any, Callable

from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import messages as M

_WS = re.compile(r"\s+")


def _norm(s: str) -> str:
    return _WS.sub(" ", s.strip()).casefold()


def check_coding(coding: dict[str, Any], expander: ValueSetExpander, path: str,
                 report: Callable[[str, str, str, str], None]) -> None:
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return
    found = expander.lookup(system, code)
    if found is None:
        return
    exists, displays = found
    if not exists:
        report("error", M.CODE_UNKNOWN, f"unknown code in the CodeSystem {system}", path)
        return
    display = coding.get("display")
    if isinstance(display, str) and displays and displays[0] and _norm(display) not in {_norm(d) for d in displays if d}:
        report("error", M.DISPLAY_WRONG, f"wrong display for a code of {system}", path)
