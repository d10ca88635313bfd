"""Cardinality (layer L2): min/max of each element, including 0..0 (prohibited) elements.

`violated(node, var)` is the one definition of the bounds: a Python condition on the count `var`.
The clean path inlines it into its generated code; `check`, which the walk reports from, runs the
same condition compiled once per element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Node

_HOLDS: dict[int, tuple[Node, Callable[[int], bool]]] = {}


def violated(node: Node, var: str) -> str | None:
    """The condition on count `var` under which `node`'s cardinality is broken; None when no count can."""
    cond = [f"{var} < {node.min}"] if node.min > 0 else []
    if node.max is not None:
        cond.append(f"{var} > {node.max}")
    return " or ".join(cond) or None


def _holds(node: Node) -> Callable[[int], bool]:
    hit = _HOLDS.get(id(node))
    if hit is None or hit[0] is not node:
        cond = violated(node, "n")
        fn: Callable[[int], bool] = eval(f"lambda n: not ({cond})") if cond else (lambda n: True)  # noqa: S307
        if len(_HOLDS) > 100_000:
            _HOLDS.clear()
        hit = _HOLDS[id(node)] = (node, fn)
    return hit[1]


def check(node: Node, count: int, where: str) -> tuple[str, str, str | None, dict[str, Any]] | None:
    """(message id, expression, variant, arguments) when `count` values violate the element's cardinality."""
    if _holds(node)(count):
        return None
    if count < node.min:
        return (M.CARD_MIN, where, None, {"path": node.path, "min": node.min, "count": count})
    if node.max == 0:
        return (M.CARD_MAX, where, "prohibited", {"path": node.path, "count": count})
    return (M.CARD_MAX, where, None, {"path": node.path, "max": node.max, "count": count})
