"""Contained resources (layer L2): each has an id, unique among the resources contained in the same
resource — the `#id` a reference to it uses (R4 "Contained Resources"; the HL7 validator reports
Resource_RES_ID_Missing and RESOURCE_DUPLICATE_CONTAINED_ID). That a contained resource is
referenced, and that a `#id` reference names one, are dom-3 and ref-1 (invariants.py) and the
Reference rule (references.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import RESOURCE, Rule, rule


def findings(resource: Any) -> list[tuple[int, str]]:
    """(index in `contained`, message id) of each contained resource without an id, or with the id
    of one before it."""
    contained = resource.get("contained")
    if type(contained) is not list:
        return []
    out: list[tuple[int, str]] = []
    seen: set[Any] = set()
    for i, c in enumerate(contained):
        if type(c) is not dict:
            continue  # the walk reports it
        cid = c.get("id")
        if cid is None:
            out.append((i, M.CONTAINED_ID_MISSING))
        elif type(cid) is str:
            if cid in seen:
                out.append((i, M.CONTAINED_ID_DUPLICATE))
            seen.add(cid)
    return out


def _holds(resource: Any, ctx: Any) -> bool:
    return "contained" not in resource or not findings(resource)


@rule
class ContainedIds(Rule):
    """Every contained resource has an id, and no two contained resources of a resource share one."""

    messages = (M.CONTAINED_ID_MISSING, M.CONTAINED_ID_DUPLICATE)
    stage = RESOURCE
    costly = False

    def applies(self, m: Member) -> bool:
        return m.is_root and "contained" in m.node.children

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        return _holds

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        for i, mid in findings(value):
            ctx.add(mid, f"{path}.contained[{i}]")
