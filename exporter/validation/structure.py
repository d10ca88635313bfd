"""JSON shape (layer L2): unknown elements (with a did-you-mean), arrays vs single values, JSON null,
empty arrays and empty objects (ele-1 and the JSON format rules), the type of a nested resource, and
parsing raw input with limits.

Each shape check is defined once, as a `Shape`: a Python condition on a value (`{v}`; `{arg}` for
what it is compared with: the depth limit, the resource type expected) that is true when the value
is wrongly shaped, and the message the walk reports then.
The clean path (fastpath.py) inlines the conditions into the code it generates (`broken_source`);
the walk (validator.py) asks `first_broken`, which runs the same conditions compiled once. Which
checks a value takes is named here too (`SINGLE`, `MANY`, `ITEM`, `COMPLEX`, `COMPANION`; an
object to walk takes `TOO_DEEP` on its depth and `EMPTY_OBJECT`), so neither
path spells a shape condition of its own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.fhir.json import JsonInputError, read_json
from exporter.validation import messages as M


@dataclass(frozen=True, eq=False)
class Shape:
    """One JSON-shape check (see the module docstring); `broken(value, arg)` runs its condition."""

    message: str
    condition: str
    variant: str | None = None
    broken: Callable[..., bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fn = eval(f"lambda v, arg=None: {self.source()}")  # our own expression
        object.__setattr__(self, "broken", fn)

    def source(self, v: str = "v", arg: str = "arg") -> str:
        """The condition as Python source over the names `v` (the value) and `arg`."""
        return f"({self.condition.format(v=v, arg=arg)})"


TOO_DEEP = Shape(M.TOO_DEEP, "{v} > {arg}")  # v: the depth of an object, arg: Validator.max_depth
EMPTY_OBJECT = Shape(M.EMPTY_OBJECT, "not {v}")
ARRAY_UNEXPECTED = Shape(M.JSON_ARRAY_UNEXPECTED, "type({v}) is list")
NULL = Shape(M.JSON_NULL, "{v} is None")
ARRAY_EXPECTED = Shape(M.JSON_ARRAY_EXPECTED, "type({v}) is not list")
EMPTY_ARRAY = Shape(M.EMPTY_ARRAY, "not {v}")  # asked after ARRAY_EXPECTED: v is a list
NOT_AN_OBJECT = Shape(M.WRONG_JSON_TYPE, "type({v}) is not dict")
NOT_A_RESOURCE = Shape(M.NOT_OBJECT, "type({v}) is not dict")
COMPANION_NULL = Shape(M.JSON_NULL, "{v} is None", variant="companion")
COMPANION_NOT_AN_OBJECT = Shape(M.WRONG_JSON_TYPE, "type({v}) is not dict", variant="companion")

SINGLE = (ARRAY_UNEXPECTED, NULL)  # the value of an element that takes one (max 1)
MANY = (ARRAY_EXPECTED, EMPTY_ARRAY)  # the value of an element that takes an array
ITEM = (NULL,)  # an item of such an array (null only where the `_key` companion has one there)
COMPLEX = (NOT_AN_OBJECT,)  # a value of a complex type, after SINGLE or ITEM
COMPANION = (COMPANION_NULL, COMPANION_NOT_AN_OBJECT)  # an item of a `_key` companion
# a dict is neither a list nor null: for a yes/no answer NOT_AN_OBJECT makes these two redundant (the
# walk still reports the more precise message; tests/unit/validation/test_shapes.py checks the claim)
IMPLIED: dict[int, tuple[Shape, ...]] = {id(ARRAY_UNEXPECTED): (NOT_AN_OBJECT,), id(NULL): (NOT_AN_OBJECT,)}


def broken_source(shapes: Iterable[Shape], v: str = "v", arg: str = "arg") -> str:
    """The clean path's condition: true when any of `shapes` is broken for the value named `v`
    (a check implied by another of the set is left out)."""
    shapes = tuple(shapes)
    kept = [s for s in shapes if not any(o in shapes for o in IMPLIED.get(id(s), ()))]
    return " or ".join(s.source(v, arg) for s in kept)


def first_broken(shapes: Iterable[Shape], value: Any, arg: Any = None) -> Shape | None:
    """The walk's question: the first of `shapes` that `value` breaks, or None."""
    for s in shapes:
        if s.broken(value, arg):
            return s
    return None


_GENERATED: dict[tuple[bool, tuple[int, ...]], Callable[[Any], bool]] = {}


def any_broken(shapes: tuple[Shape, ...]) -> Callable[[Any], bool]:
    """A function (value) -> does it break any of `shapes`? (`broken_source` compiled once per set.)"""
    return _generated(False, shapes)


def items_broken(shapes: tuple[Shape, ...]) -> Callable[[list[Any]], bool]:
    """A function (items) -> does any item break any of `shapes`? Generated once per set."""
    return _generated(True, shapes)


def _generated(items: bool, shapes: tuple[Shape, ...]) -> Callable[[Any], bool]:
    key = (items, tuple(id(s) for s in shapes))
    fn = _GENERATED.get(key)
    if fn is None:
        body = (f"    for v in items:\n        if {broken_source(shapes)}:\n            return True\n    return False\n"
                if items else f"    return {broken_source(shapes)}\n")
        env: dict[str, Any] = {}
        exec(f"def broken({'items' if items else 'v'}):\n{body}", env)  # noqa: S102 (our own source)
        fn = _GENERATED[key] = env["broken"]
    return fn


def unmodelled(is_resource: bool) -> tuple[str, ...]:
    """Keys of an object that are no element and still not unknown: a resource's resourceType."""
    return ("resourceType",) if is_resource else ()


WRONG_RESOURCE_TYPE = Shape(M.TYPE_NOT_ALLOWED, "type({v}) is dict and {v}.get('resourceType') != {arg}")


def wrong_resource_type(type_code: str) -> Shape | None:
    """The check of a resource held by an element of type `type_code`, asked with `arg` = that type
    (None: any resource will do)."""
    return None if type_code in ("Resource", "DomainResource") else WRONG_RESOURCE_TYPE


LONG_ARRAY = 256  # an array longer than this is worth a look at the clock before its items are walked


def unknown_element_hint(key: str, known: Iterable[str]) -> str:
    """The did-you-mean part of an unknown element's message ("" when nothing is close)."""
    candidates = [k for k in known if not k.startswith("_")]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_json(data: bytes | str) -> tuple[Any, str | None]:
    """(value, None) or (None, reason): the one input reader (exporter/fhir/json.py `read_json`), whose
    reason texts and positions every other door shows too."""
    try:
        return read_json(data), None
    except JsonInputError as exc:
        return None, exc.text


def depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative depth check (no recursion), used before walking untrusted input: one level at a time,
    collected with list.extend (100,000 records in ~20 ms, a third of a per-node stack walk)."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        children: list[Any] = []
        for v in level:
            if type(v) is dict:
                children.extend(v.values())
            elif type(v) is list:
                children.extend(v)
        level = [c for c in children if type(c) is dict or type(c) is list]
        depth += 1
    return False
