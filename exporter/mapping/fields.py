"""The fields a mapping may read, from the domain JSON Schema (layer L1; standard library only).

`fields_of(schema)` turns the schema into a tree of `Field`s: per place in a domain document the
JSON types it may hold, its properties (and whether the object is closed, i.e.
`additionalProperties: false`), the shape of list items, and the values an enum or const allows.
`fhir-export check` reads mapping expressions against this tree: a closed schema names every field,
so a misspelt field or a comparison with a value the schema does not allow is an error before any
data arrives.

Only what holds for every document the schema accepts is kept: `allOf` narrows (types, allowed
values), `anyOf`/`oneOf` widen, and conditional rules (`if`/`then`/`else`) are left out — they only
narrow further, so the allowed values kept are an upper bound and the field names are exact.

`IntegerPlaces(tree).normalise(doc)` makes integers written as `2.0` the ints they are, at the
places the tree says can only hold an integer (see below), before a document is mapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


@dataclass
class Field:
    """One place in a domain document. `types` empty: anything. `values` None: any value."""

    name: str  # how messages name it: "measurement" (a $defs entry) or a JSON path such as "$.patient"
    types: frozenset[str] = frozenset()
    properties: dict[str, Field] = field(default_factory=dict)
    closed: bool = False
    items: Field | None = None
    values: tuple[Any, ...] | None = None

    def is_(self, *types: str) -> bool:
        """Can only be of these JSON types (known)."""
        return bool(self.types) and self.types <= set(types)

    def may_be(self, *types: str) -> bool:
        return not self.types or bool(self.types & set(types))


ANY = Field("any")


def fields_of(schema: dict[str, Any]) -> Field:
    """The Field tree of a JSON Schema (draft 2020-12 subset: $ref into the document, type, enum,
    const, properties, additionalProperties, items, allOf, anyOf, oneOf)."""
    return _Reader(schema).read(schema, "$", ())


class _Reader:
    def __init__(self, root: dict[str, Any]):
        self.root = root

    def _resolve(self, ref: str) -> tuple[dict[str, Any] | bool, str]:
        if not ref.startswith("#/"):
            return True, ref
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return True, ref
            node = node[part]
        return node, ref.rsplit("/", 1)[-1]

    def read(self, schema: Any, name: str, seen: tuple[str, ...]) -> Field:
        if schema is True or not isinstance(schema, dict):
            return Field(name)
        parts: list[Field] = []
        if isinstance(schema.get("$ref"), str) and schema["$ref"] not in seen:
            target, ref_name = self._resolve(schema["$ref"])
            parts.append(self.read(target, ref_name, seen + (schema["$ref"],)))
        own = Field(name)
        t = schema.get("type")
        if isinstance(t, str):
            own.types = frozenset({t})
        elif isinstance(t, list):
            own.types = frozenset(x for x in t if isinstance(x, str))
        if "const" in schema:
            own.values = (schema["const"],)
        elif isinstance(schema.get("enum"), list):
            own.values = tuple(schema["enum"])
        if isinstance(schema.get("properties"), dict):
            own.properties = {k: self.read(v, f"{name}.{k}", seen) for k, v in schema["properties"].items()}
        if schema.get("additionalProperties") is False and not schema.get("patternProperties"):
            own.closed = True
        if isinstance(schema.get("items"), dict):
            own.items = self.read(schema["items"], f"{name}[*]", seen)
        parts.append(own)
        for sub in schema.get("allOf") or []:
            if isinstance(sub, dict) and not any(k in sub for k in ("if", "then", "else")):
                parts.append(self.read(sub, name, seen))
        out = _narrow(parts, name)
        branches = [self.read(b, name, seen) for key in ("anyOf", "oneOf") for b in (schema.get(key) or [])]
        if branches:
            out = _narrow([out, _widen(branches, name)], name)
        return out


def _narrow(parts: list[Field], name: str) -> Field:
    """What all of `parts` allow (allOf)."""
    out = Field(name)
    for p in parts:
        if p.name != name and out.name == name and (p.properties or p.is_("object")):
            out.name = p.name  # a $ref to an object names the place after its definition ("measurement")
        if p.types:
            out.types = p.types if not out.types else _types_and(out.types, p.types)
        if p.values is not None:
            out.values = p.values if out.values is None else tuple(v for v in out.values if v in p.values)
        for k, f in p.properties.items():
            out.properties[k] = _narrow([out.properties[k], f], f.name) if k in out.properties else f
        out.closed = out.closed or p.closed
        if p.items is not None:
            out.items = p.items if out.items is None else _narrow([out.items, p.items], p.items.name)
    return out


def _widen(branches: list[Field], name: str) -> Field:
    """What any of `branches` allows (anyOf / oneOf)."""
    out = Field(name)
    out.types = frozenset().union(*(b.types for b in branches)) if all(b.types for b in branches) else frozenset()
    out.values = (tuple(v for b in branches for v in (b.values or ()))
                  if all(b.values is not None for b in branches) else None)
    for b in branches:
        for k, f in b.properties.items():
            out.properties.setdefault(k, f)
    out.closed = all(b.closed for b in branches)
    items = [b.items for b in branches if b.items is not None]
    out.items = items[0] if len(items) == 1 else (_widen(items, f"{name}[*]") if items else None)
    return out


def _types_and(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    both = a & b
    if "integer" in a and "number" in b or "integer" in b and "number" in a:
        both |= {"integer"}
    return both


# -- whole numbers written as 2.0 ------------------------------------------------------------------
# JSON has one number type: 2.0 is the integer 2 (JSON Schema's `type: integer` accepts it), and
# backends that hold numbers as doubles (Java's Double, JavaScript) write it so. Read as a Python
# float it would become the key "2.0" of a code table, the string "2.0" of `as: string`, a FHIR
# Coding.version "2026.0". So before mapping, such a value is made the integer it is, wherever the
# schema says the place holds an integer (only there: a decimal's 72.0 keeps its precision).
_LARGEST = 2 ** 63  # a float beyond is no exact integer of the document's writer; left as it is


class _Place:
    """A place on the way to integers: its members that are integers, its members with integers
    below, and, for a list, whether its elements are integers or have integers below."""

    __slots__ = ("ints", "deeper", "each_int", "each")

    def __init__(self) -> None:
        self.ints: tuple[str, ...] = ()
        self.deeper: tuple[tuple[str, _Place], ...] = ()
        self.each_int = False
        self.each: _Place | None = None

    def empty(self) -> bool:
        return not (self.ints or self.deeper or self.each_int or self.each)


class IntegerPlaces:
    """The places of a document whose value can only be an integer, per the schema's Field tree.
    `normalise(doc)` returns `doc` with every whole float at those places made an int; it copies
    only the objects and lists on the way to a value it changes (the caller's document is left as
    it is) and returns `doc` itself when there is none."""

    def __init__(self, root: Field):
        self.root = self._place(root, 0)

    def _place(self, f: Field, depth: int) -> _Place:
        place = _Place()
        if depth > 64:
            return place
        ints, deeper = [], []
        for name, sub in f.properties.items():
            if sub.is_("integer"):
                ints.append(name)
            else:
                below = self._place(sub, depth + 1)
                if not below.empty():
                    deeper.append((name, below))
        place.ints, place.deeper = tuple(ints), tuple(deeper)
        if f.items is not None:
            place.each_int = f.items.is_("integer")
            below = self._place(f.items, depth + 1) if not place.each_int else _Place()
            place.each = below if not below.empty() else None
        return place

    @property
    def places(self) -> list[str]:
        """The places, as JSON paths (`$.diary_entries[*].mood`)."""
        out: list[str] = []

        def walk(place: _Place, here: str) -> None:
            out.extend(f"{here}.{name}" for name in place.ints)
            if place.each_int:
                out.append(f"{here}[*]")
            for name, below in place.deeper:
                walk(below, f"{here}.{name}")
            if place.each is not None:
                walk(place.each, f"{here}[*]")
        walk(self.root, "$")
        return out

    def normalise(self, doc: Any) -> Any:
        return _whole(doc, self.root)


def _integer(v: Any) -> Any:
    """A whole float as the int it is; anything else as it is."""
    return int(v) if type(v) is float and v.is_integer() and abs(v) < _LARGEST else v


def _whole(value: Any, place: _Place) -> Any:
    if type(value) is dict:
        out = value
        for name in place.ints:
            v = value.get(name)
            if type(v) is float and _integer(v) is not v:
                if out is value:
                    out = dict(value)
                out[name] = _integer(v)
        for name, deeper in place.deeper:
            v = value.get(name)
            if v is not None:
                w = _whole(v, deeper)
                if w is not v:
                    if out is value:
                        out = dict(value)
                    out[name] = w
        return out
    if type(value) is list:
        if place.each_int:
            return [_integer(v) for v in value] if float in map(type, value) else value
        below = place.each
        if below is None:
            return value
        changed: list[Any] | None = None
        # records with one integer member and nothing below (a diary entry's mood): tested without a call
        flat = below.ints[0] if len(below.ints) == 1 and not (below.deeper or below.each or below.each_int) else None
        for i, v in enumerate(value):
            if flat is not None and type(v) is dict and type(v.get(flat)) is not float:
                continue
            w = _whole(v, below)
            if w is not v:
                if changed is None:
                    changed = list(value)
                changed[i] = w
        return value if changed is None else changed
    return value
