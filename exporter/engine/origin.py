"""Where a generated element came from (layer L2): the error path of an export.

The engine records, per Bundle entry, the mapping file, the YAML node of the resource body and the
JSON path of the source record (`Origin`; a list append per resource, nothing else on the clean
path). When the validator reports an issue at `Bundle.entry[37].resource.valueQuantity.value`,
`trace()` walks the mapping's `resource:` body along `valueQuantity.value` to the YAML node that
produced the element (or the nearest enclosing node the walk can tell: below an operator, inside a
list whose items the walk cannot match one to one) and adds it to the issue:

    mappings/resources/body-weight.yaml:21:5: error VAL_CARD_MIN: … (at Bundle.entry[37].resource.valueQuantity.value, $.measurements[36])
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from exporter.engine.values import OPS
from exporter.issues import Issue
from exporter.mapping.yamlsrc import Positions, position

_ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]\.resource(?:\.(.*))?\Z")
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")


@dataclass(frozen=True)
class Origin:
    """What produced one Bundle entry: the YAML (file, node positions, path of its resource body,
    the body itself) and the JSON path of the record ("$" for the document)."""

    file: str
    positions: Positions
    body_at: tuple[Any, ...]
    body: Any
    data_path: str


class Origins:
    """What produced each entry of one Bundle (`Engine.build(..., origins)` sets `make`), worked out
    only when asked."""

    def __init__(self) -> None:
        self.make: Callable[[], list[Origin]] = list
        self._entries: list[Origin] | None = None

    def entries(self) -> list[Origin]:
        if self._entries is None:
            self._entries = self.make()
        return self._entries


def trace(issues: list[Issue], found: Origins) -> list[Issue]:
    """`issues` with the origin of the entry each one is about added: the YAML node as its location,
    the record's JSON path as a second expression. Issues about the Bundle itself stay as they are."""
    out = []
    origins = found.entries() if any(i.expression and i.location is None for i in issues) else []
    for issue in issues:
        m = _ENTRY.match(issue.expression[0]) if issue.expression and issue.location is None else None
        index = int(m.group(1)) if m else -1
        if m is None or not 0 <= index < len(origins):
            out.append(issue)
            continue
        origin = origins[index]
        at = element_node(origin.body, origin.body_at, m.group(2) or "")
        out.append(replace(issue, location=position(origin.positions, at),
                           expression=issue.expression + (str(origin.data_path),)))
    return out


def element_node(body: Any, at: tuple[Any, ...], element: str) -> tuple[Any, ...]:
    """The YAML path of the node that produced `element` (a FHIRPath-like path such as
    `component[1].valueQuantity.value`) inside the resource body `body` found at `at`."""
    spec = body
    for step in _steps(element):
        name, index = step
        if not isinstance(spec, dict) or any(op in spec for op in OPS) or name not in spec:
            break  # a value (its operator produced everything below it) or an element the engine adds
        spec, at = spec[name], at + (name,)
        if index is None or not isinstance(spec, list):
            continue
        chosen = _item(spec, index)
        if chosen is None:
            break
        spec, at = spec[chosen], at + (chosen,)
        if isinstance(spec, dict) and "for_each" in spec and "item" in spec:
            spec, at = spec["item"], at + ("item",)
    return at


def _steps(element: str) -> list[tuple[str, int | None]]:
    steps = []
    for part in element.split(".") if element else []:
        m = _STEP.fullmatch(part)
        if m is None:
            break  # a function such as ofType(…) or a slice: stop at the element before it
        steps.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
    return steps


def _item(items: list[Any], index: int) -> int | None:
    """The YAML list item that produced output item `index`, where the list tells: items without
    `when` or `for_each` yield one value each, so the leading ones are matched by position, and
    what follows them comes from the last item when only one is left; else None."""
    plain = 0
    while plain < len(items) and not (isinstance(items[plain], dict) and ("for_each" in items[plain] or "when" in items[plain])):
        plain += 1
    if index < plain:
        return index
    return len(items) - 1 if len(items) - plain == 1 else None
