"""Straight-line Python for the hot closures of a compiled mapping (layer L2).

A structure of ten fields evaluated through a loop over (key, closure) pairs costs about twice as
much as the same fields written out one after the other; an export evaluates some 100,000 of them.
`Code` writes such functions. Every value the generated source uses — keys, literal text, scalars,
nested closures — is bound to a name in the function's globals and never written into the source
as a literal, so no text from a mapping or a document ever becomes code: what is generated is only
the shape (assignments, tests, dict and list displays, calls).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CONTAINERS = (dict, list)


class Code:
    """The source of one generated function and the names it uses."""

    MAX_NODES, MAX_DEPTH = 2_000, 40  # larger constants are copied by `copy` (still fresh, just slower)

    def __init__(self, **names: Any) -> None:
        self.names: dict[str, Any] = {"copy": copy, **names}

    def bind(self, value: Any) -> str:
        """A new name for `value` (each call binds anew: names are never shared between values)."""
        name = f"_{len(self.names)}"
        self.names[name] = value
        return name

    def fresh(self, value: Any) -> str:
        """An expression that builds a new copy of the JSON-like constant `value` on every evaluation: a
        display of dicts and lists around its scalars (immutable, so shared)."""
        if not isinstance(value, _CONTAINERS):
            return self.bind(value)
        if _size(value, 0) > self.MAX_NODES:
            return f"copy({self.bind(value)})"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.bind(k)}: {self.fresh(v)}" for k, v in value.items()) + "}"
        return "[" + ", ".join(self.fresh(v) for v in value) + "]"

    def function(self, name: str, params: str, body: list[str], where: str) -> Callable[..., Any]:
        """Define `name(params)` with the lines of `body`; `where` (file and YAML path) names it in
        tracebacks and profiles."""
        source = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body)
        exec(compile(source, f"<{name} {where}>", "exec"), self.names)  # noqa: S102 - see the module docstring
        fn: Callable[..., Any] = self.names[name]
        return fn


def _size(value: Any, depth: int) -> float:
    """Nodes of a constant (infinite when nested deeper than Code.MAX_DEPTH)."""
    if depth > Code.MAX_DEPTH:
        return float("inf")
    if isinstance(value, dict):
        return 1 + sum(_size(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v, depth + 1) for v in value)
    return 1


def copy(value: Any) -> Any:
    """A new copy of the dicts and lists of `value` (the scalars are shared)."""
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy(v) for v in value]
    return value
