"""Compile the domain-document JSON Schema into a fast checker, and the checker that explains it
(imports no exporter module; the one door to fastjsonschema and jsonschema).

    check = compile_checker(schema, formats=FORMATS)
    check.is_valid(doc)   # True iff fastjsonschema.compile(schema, formats=...)(doc) accepts doc
    check(doc)            # like that compiled validator: returns doc, or raises JsonSchemaValueException
    check.dispatched      # {"measurement": Dispatch(prop="kind", values=(...), leaves=8, paths=("measurements[*]",))}

Why: fastjsonschema decides `if`, `anyOf`, `oneOf` and `not` by raising and catching an exception
that is costly to build. A record type with rules `{if: {properties: {kind: {const: "weight"}}},
then: ...}` pays one exception per failing `if`, i.e. nearly every rule for every record.

How: the schema is partially evaluated once, at load. A `$defs` entry that tests a property P
(the discriminator) against string constants — `if` rules `{properties: {P: {const|enum}}}` in
`allOf`, or `anyOf`/`oneOf` branches whose `properties.P` is a const/enum — gets one compiled
validator per tested value of P: the def with every test on P decided for that value (the `then`
or `else` kept, the branches that cannot match dropped), split again on the next discriminator
the decided subschemas reveal (kind, then unit). Knowing the record is an object also turns
`not: {required: [a]}` (or an `anyOf` of such) into `properties: {a: false}`. The document is
checked by the schema with the def's `$ref`s removed; then each record at the places the def is
used goes to the validator its values select. A record that is not an object, or whose
discriminator is missing, not a string or another value, is checked by the less decided schema.
Every compiled schema has its `$ref`s to acyclic `$defs` inlined (saves a call per value).

One judge: `FORMATS` (uuid, date, date-time, fhir-string) are plain functions handed to both
fastjsonschema and jsonschema, and `explaining_validator(schema)` is jsonschema with fastjsonschema's
reading of `pattern` (`$` is the end of the text, as in ECMA-262, not "before a final newline"); so
the fast checker decides and jsonschema names the path and keyword of every fault of the same
documents (tests/unit/test_domain_property.py checks they agree). Where a `pattern` beside a
`format` already does part of the format's test (AFTER_PATTERN: the uuid pattern is the uuid format,
the schema's date-time pattern is stricter than the date-time format's shape), the fast checker runs
only the rest of the format's test, derived from the same function; jsonschema runs it whole.

Only what is provably equivalent is rewritten; the rest is compiled as it is, just slower. The
def must be used only at `properties`/`items` paths from the root, with no `$ref` on the way and
annotation-only siblings; every `$ref` must point into the document's `$defs`; no `$id`, anchors,
dynamic refs, `prefixItems` on the way, and no `default` anywhere (fastjsonschema inserts
defaults into the data, so the order of the checks would matter). Otherwise the plain compiled
schema is used. fastjsonschema ignores the siblings of a `$ref`, so subschemas with a `$ref` are
never rewritten.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urldefrag, urljoin

import fastjsonschema
from fastjsonschema.draft04 import DOLLAR_FINDER

from exporter import deadline

if TYPE_CHECKING:  # jsonschema itself is imported when a validator is made (it is slow to import)
    from jsonschema.protocols import Validator as SchemaValidator

Validator = Callable[[Any], Any]

# keywords that never change a verdict (in fastjsonschema too: `default` is not among them)
ANNOTATIONS = frozenset({"description", "title", "$comment", "examples", "deprecated", "readOnly", "writeOnly"})
# where the places a subschema applies to, or the order of the checks, could not be known (fastjsonschema
# ignores unevaluated*, jsonschema does not: rewritten `if`s would change what jsonschema sees as evaluated)
_UNSUPPORTED = frozenset({"$anchor", "$dynamicAnchor", "$dynamicRef", "$recursiveRef", "$recursiveAnchor", "default",
                          "unevaluatedProperties", "unevaluatedItems"})
# keywords whose value is a subschema / a map of subschemas / a list of subschemas
_ONE = ("not", "if", "then", "else", "items", "contains", "additionalProperties", "propertyNames",
        "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_MAP = ("properties", "patternProperties", "dependentSchemas")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_PROPERTY_KEYWORDS = frozenset({"properties", "patternProperties", "additionalProperties", "unevaluatedProperties"})
_ITEMS = None  # a path step: every element of an array (a str step is an object property)
MAX_LEAVES = 64  # validators compiled per def at most (the rest of the splits stay undecided)


@dataclass(frozen=True)
class Dispatch:
    """How one `$defs` entry is checked: split on `prop` (then maybe on more), `leaves` validators."""

    prop: str
    values: tuple[str, ...]
    leaves: int
    paths: tuple[str, ...]  # where the def is used, e.g. "measurements[*]"


class FastChecker:
    """The verdict of the schema compiled as one, faster."""

    def __init__(self, main: Validator, records: list[tuple[tuple[str | None, ...], Callable[[Any], None]]],
                 dispatched: dict[str, Dispatch]):
        self._main = main
        self._records = records
        self.dispatched = dispatched

    def __call__(self, doc: Any) -> Any:
        """Returns `doc` if it satisfies the schema, else raises fastjsonschema.JsonSchemaValueException
        (about the first fault met, which need not be the one the schema compiled as one reports)."""
        self._main(doc)
        for steps, check in self._records:
            for record in _at(doc, steps):
                check(record)
        return doc

    def is_valid(self, doc: Any) -> bool:
        try:
            self(doc)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True


def compile_checker(schema: dict[str, Any] | bool, *, formats: dict[str, Any] | None = None) -> FastChecker:
    """Compile `schema` (not modified) into a FastChecker, dispatching every def that qualifies."""
    schema = copy.deepcopy(schema)  # fastjsonschema rewrites the $refs of what it compiles
    uses = _uses(schema)
    if uses is None or not isinstance(schema, dict):  # _uses handles dicts only
        return FastChecker(fastjsonschema.compile(schema, formats=formats or {}), [], {})
    formats = dict(formats or {})  # and the rest of a format its sibling pattern leaves (_Inliner)
    inliner = _Inliner(schema, formats)
    compiled: dict[int, tuple[Any, Validator]] = {}  # by id(subschema), which the entry keeps alive
    lock = threading.Lock()  # compiling can happen later, in any thread (see _Lazy)

    def compile_(subschema: Any) -> Validator:
        """`subschema` (applied to one instance) as the root of the schema document, compiled."""
        if isinstance(subschema, bool):
            return _always if subschema else _never
        with lock:
            if id(subschema) not in compiled:
                doc: dict[str, Any] = {k: schema[k] for k in ("$schema", "$id", "id") if k in schema}
                doc.update(inliner.expand(_flatten(subschema)))
                if any("$ref" in node for _, node in _dicts(doc, ())):
                    doc["$defs"] = schema["$defs"]  # only then: fastjsonschema copies the root into each error
                compiled[id(subschema)] = subschema, fastjsonschema.compile(copy.deepcopy(doc), formats=formats)
            return compiled[id(subschema)][1]

    main = copy.deepcopy({k: v for k, v in schema.items() if k != "$defs"})
    records: list[tuple[tuple[str | None, ...], Callable[[Any], None]]] = []
    dispatched: dict[str, Dispatch] = {}
    for name, locations in uses.items():
        definition = schema["$defs"][name]
        if not isinstance(definition, dict) or definition.keys() & {"$ref", "$defs", "$schema", "$id", "id"}:
            continue
        if not all(_is_plain_use(schema, path) for path in locations):
            continue
        budget = [MAX_LEAVES]
        tree = _split(definition, {}, budget)
        if not isinstance(tree, _Split):
            continue
        for path in locations:
            parent = _node(main, path[:-1])
            node = parent[path[-1]]
            del node["$ref"]
            if path[-1] == "items" and node.keys() <= ANNOTATIONS:
                parent["items"] = True  # fastjsonschema skips `items: true` without looping
        check = _record_check(tree, compile_)
        steps = [s for path in locations if (s := _steps(schema, path)) is not None]  # all: plain uses
        records.extend((s, check) for s in steps)
        dispatched[name] = Dispatch(tree.prop, tuple(tree.branches), _leaves(tree), tuple(_show(s) for s in steps))
    return FastChecker(compile_(main), records, dispatched)


def _never(instance: Any) -> Any:
    raise fastjsonschema.JsonSchemaValueException("no instance satisfies this subschema", rule="false")


def _always(instance: Any) -> Any:
    return instance


# ----------------------------------------------------------------------------- run time

def _at(doc: Any, steps: tuple[str | None, ...]) -> Iterable[Any]:
    """The instances a subschema at `steps` (properties / items from the root) applies to, as
    fastjsonschema sees them: properties of a dict, items of a list or tuple."""
    nodes = [doc]
    for step in steps:
        if step is _ITEMS:
            nodes = [item for n in nodes if isinstance(n, (list, tuple)) for item in n]
        else:
            nodes = [n[step] for n in nodes if isinstance(n, dict) and step in n]
    return nodes


def _record_check(tree: _Split, compile_: Callable[[Any], Validator]) -> Callable[[Any], None]:
    """The check of one record: objects walk down the splits, anything else gets the whole def."""
    return _split_check(tree, compile_, {}, root=True)


def _split_check(node: _Split | dict[str, Any] | bool, compile_: Callable[[Any], Validator],
                 facts: dict[str, str], root: bool = False) -> Callable[[Any], Any]:
    if not isinstance(node, _Split):
        return compile_(_settle(node, facts, compile_))
    table = {value: _split_check(branch, compile_, {**facts, node.prop: value})
             for value, branch in node.branches.items()}
    rest = _Lazy(lambda: compile_(node.rest))
    pick, prop = table.get, node.prop

    def check(record: Any) -> None:
        if root and type(record) is not dict:
            rest()(record)  # the root's rest is the whole def
            return
        value = record.get(prop)
        chosen = pick(value) if type(value) is str else None
        (chosen or rest())(record)

    return check


def _settle(schema: Any, facts: dict[str, str], compile_: Callable[[Any], Validator]) -> Any:
    """A leaf with `properties.P` decided for each known P: run once on the known value at load
    time, it becomes `true` (P stays declared, for additionalProperties) or the leaf `false`."""
    schema = _flatten(schema)
    if not isinstance(schema, dict) or "$ref" in schema or not isinstance(schema.get("properties"), dict):
        return schema
    props = dict(schema["properties"])
    for prop, value in facts.items():
        if prop in props and props[prop] is not True:
            try:
                compile_(props[prop])(value)
            except fastjsonschema.JsonSchemaValueException:
                return False
            props[prop] = True
    return {**schema, "properties": props}


class _Lazy:
    """A validator compiled on first use (records with an unexpected discriminator are rare)."""

    def __init__(self, make: Callable[[], Validator]):
        self._make = make
        self._validator: Validator | None = None

    def __call__(self) -> Validator:
        if self._validator is None:
            self._validator = self._make()  # two threads may both ask: compile_ compiles once
        return self._validator


# ----------------------------------------------------------------------------- where defs are used

def _uses(schema: Any) -> dict[str, list[tuple[Any, ...]]] | None:
    """def name → paths of the `$ref`s naming it; None if the schema is outside what is handled."""
    if not isinstance(schema, dict) or not isinstance(schema.get("$defs"), dict):
        return None
    if "draft/2020-12" not in str(schema.get("$schema", "")):
        return None  # $ref siblings, `items` and prefixItems mean other things in other drafts
    uses: dict[str, list[tuple[Any, ...]]] = {}
    for path, node in _dicts(schema, ()):
        if path and (isinstance(node.get("$id"), str) or isinstance(node.get("id"), str) or "$schema" in node):
            return None  # a new base URI: $refs below it would resolve elsewhere (or another draft)
        if _UNSUPPORTED & node.keys():
            return None
        if "$ref" in node:
            target = _def_name(schema, node["$ref"])
            if target is None:
                return None  # a $ref outside #/$defs (maybe to the root or into root properties)
            if target:
                uses.setdefault(target, []).append(path)
    return uses


def _dicts(node: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every object of the JSON document with its path (schemas, but also const/enum data: harmless)."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _dicts(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _dicts(v, path + (i,))


def _def_name(schema: dict[str, Any], ref: Any) -> str | None:
    """For a $ref into #/$defs: the def it names exactly, or "" for a deeper pointer; None otherwise."""
    if not isinstance(ref, str):
        return None
    base = schema.get("$id") if isinstance(schema.get("$id"), str) else schema.get("id")
    base = base if isinstance(base, str) else ""
    uri, fragment = urldefrag(urljoin(base, ref))
    if uri and uri != urldefrag(base)[0]:
        return None
    # decoded as fastjsonschema's resolve_path does
    parts = [p.replace("~1", "/").replace("~0", "~") for p in unquote(fragment.lstrip("/")).split("/")]
    if not fragment.startswith("/") or len(parts) < 2 or parts[0] != "$defs" or parts[1] not in schema["$defs"]:
        return None
    return parts[1] if len(parts) == 2 else ""


def _is_plain_use(schema: dict[str, Any], path: tuple[Any, ...]) -> bool:
    """Is the $ref at `path` a bare `$ref` applied to every instance at a properties/items path?"""
    return _steps(schema, path) is not None and _node(schema, path).keys() - {"$ref"} <= ANNOTATIONS


def _steps(schema: dict[str, Any], path: tuple[Any, ...]) -> tuple[str | None, ...] | None:
    """`path` in the schema as instance steps, or None unless it is properties/items all the way
    (no `$ref` on the way: fastjsonschema ignores the siblings of a $ref; no prefixItems: it ignores them)."""
    steps: list[str | None] = []
    node: Any = schema
    i = 0
    while i < len(path):
        if not isinstance(node, dict) or "$ref" in node:
            return None
        if path[i] == "properties" and i + 1 < len(path) and isinstance(node.get("properties"), dict):
            steps.append(path[i + 1])
            node = node["properties"][path[i + 1]]
            i += 2
        elif path[i] == "items" and isinstance(node.get("items"), dict) and "prefixItems" not in node:
            steps.append(_ITEMS)
            node = node["items"]
            i += 1
        else:
            return None
    return tuple(steps)


def _node(schema: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        schema = schema[key]
    return schema


def _show(steps: tuple[str | None, ...]) -> str:
    return "".join("[*]" if s is _ITEMS else f".{s}" for s in steps).lstrip(".") or "$"


# ----------------------------------------------------------------------------- partial evaluation
#
# Every function below takes a subschema that is applied to an *object* whose properties named in
# `facts` exist and hold those strings, and is exact for such instances only.

@dataclass
class _Split:
    prop: str
    branches: dict[str, _Split | dict[str, Any] | bool] = field(default_factory=dict)
    rest: Any = None  # the schema for any other instance (prop missing, not a string, another value)


def _split(schema: dict[str, Any], facts: dict[str, str], budget: list[int]) -> _Split | dict[str, Any] | bool:
    """A tree of _Split on the discriminators of `schema`, its leaves the decided schemas."""
    tests = {p: t for p, t in _tests(schema, facts).items() if any(t)}
    if not tests:
        return schema
    prop = max(tests, key=lambda p: len(tests[p]))  # the first of the most tested
    values = sorted({v for vs in tests[prop] for v in vs})
    if len(values) > budget[0]:
        return schema
    budget[0] -= len(values)
    node = _Split(prop, rest=schema)
    for value in values:
        known = {**facts, prop: value}
        decided = _decide(schema, known)
        node.branches[value] = decided if decided is False else _split(decided, known, budget)
    return node


def _leaves(node: Any) -> int:
    return sum(_leaves(b) for b in node.branches.values()) if isinstance(node, _Split) else 1


def _tests(schema: Any, facts: dict[str, str]) -> dict[str, list[list[str]]]:
    """Property → the string values of each test on it (if-rules, pinned anyOf/oneOf branches),
    in `schema` and in the allOf entries that apply to the same instance."""
    tests: dict[str, list[list[str]]] = {}
    for s in _same_instance(schema):
        pinned = _if_test(s.get("if"))
        if pinned and pinned[0] not in facts:
            tests.setdefault(pinned[0], []).append([v for v in pinned[1] if isinstance(v, str)])
        for key in ("anyOf", "oneOf"):
            seen: dict[str, list[str]] = {}
            branches = s.get(key)
            for branch in branches if isinstance(branches, list) else ():
                for prop, test in _pins(branch):
                    if prop not in facts:
                        seen.setdefault(prop, []).extend(v for v in test if isinstance(v, str))
            for prop, values in seen.items():
                tests.setdefault(prop, []).append(values)
    return tests


def _same_instance(schema: Any) -> Iterable[dict[str, Any]]:
    """`schema` and, recursively, its allOf entries (they apply to the same instance); never a
    subschema with a $ref (fastjsonschema ignores its other keywords)."""
    if isinstance(schema, dict) and "$ref" not in schema:
        yield schema
        entries = schema.get("allOf")
        for entry in entries if isinstance(entries, list) else ():
            yield from _same_instance(entry)


def _if_test(cond: Any) -> tuple[str, list[Any]] | None:
    """`if: {properties: {P: {const: c} | {enum: [...]}}, required: [P]}` → (P, allowed values)."""
    if not isinstance(cond, dict) or "$ref" in cond or not cond.keys() - ANNOTATIONS <= {"properties", "required"}:
        return None
    props = cond.get("properties")
    if not isinstance(props, dict) or len(props) != 1:
        return None
    [(prop, test)] = props.items()
    if "required" in cond and cond["required"] != [prop]:
        return None
    if not isinstance(test, dict) or "$ref" in test or not test.keys() - ANNOTATIONS <= {"const", "enum"}:
        return None
    allowed = _allowed(test)
    return None if allowed is None else (prop, allowed)


def _allowed(test: dict[str, Any]) -> list[Any] | None:
    """The values a const/enum test allows (None if it has neither, or both)."""
    if ("const" in test) == ("enum" in test):
        return None
    if "const" in test:
        return [test["const"]]
    return test["enum"] if isinstance(test["enum"], list) else None


def _pins(branch: Any) -> Iterable[tuple[str, list[Any]]]:
    """(P, allowed values) for each `properties.P` of `branch` that carries a const/enum test."""
    if isinstance(branch, dict) and "$ref" not in branch and isinstance(branch.get("properties"), dict):
        for prop, test in branch["properties"].items():
            if isinstance(test, dict) and "$ref" not in test:
                allowed = _allowed(test)
                if allowed is not None:
                    yield prop, allowed


def _matches(value: str, allowed: list[Any]) -> bool:
    # a string equals no non-string JSON value, in fastjsonschema and in jsonschema
    return any(isinstance(a, str) and a == value for a in allowed)


def _decide(schema: Any, facts: dict[str, str]) -> Any:
    """`schema` with every test on a known property decided; False if it cannot be satisfied."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    out = dict(schema)
    now: list[Any] = []  # subschemas that now apply to the instance unconditionally
    pinned = _if_test(out.get("if"))
    if pinned and pinned[0] in facts:
        chosen = out.get("then" if _matches(facts[pinned[0]], pinned[1]) else "else")
        for key in ("if", "then", "else"):
            out.pop(key, None)
        if chosen is not None:
            now.append(chosen)
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            kept = [b for b in out[key] if not _fails(b, facts)]
            if not kept:
                return False
            if len(kept) == 1:
                del out[key]
                now.append(kept[0])
            else:
                out[key] = kept
    absent = _forbidden(out.get("not"))
    if absent:
        del out["not"]
        if out.keys() & _PROPERTY_KEYWORDS:
            now.append({"properties": dict.fromkeys(absent, False)})
        else:
            out["properties"] = dict.fromkeys(absent, False)
    if isinstance(out.get("allOf"), list) or now:
        entries = []
        for entry in (out.get("allOf") or []) + now:
            entry = _decide(entry, facts)
            if entry is False:
                return False
            if entry is True or (isinstance(entry, dict) and entry.keys() <= ANNOTATIONS):
                continue
            entries.append(entry)
        out.pop("allOf", None)
        if entries:
            out["allOf"] = entries
    return out


def _fails(branch: Any, facts: dict[str, str]) -> bool:
    """Does `branch` certainly reject the instance (a known property breaks its const/enum)?"""
    if branch is False:
        return True
    return any(prop in facts and not _matches(facts[prop], allowed) for prop, allowed in _pins(branch))


def _forbidden(negated: Any) -> list[str] | None:
    """`not: {required: [a]}` or `not: {anyOf: [{required: [a]}, {required: [b]}]}` → [a, b]: for
    an object, the same as `properties: {a: false, b: false}`, without an exception per check."""
    def single(s: Any) -> str | None:
        if isinstance(s, dict) and "$ref" not in s and s.keys() - ANNOTATIONS == {"required"}:
            names = s["required"]
            if isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
                return names[0]
        return None

    first = single(negated)
    if first:
        return [first]
    if isinstance(negated, dict) and "$ref" not in negated and negated.keys() - ANNOTATIONS == {"anyOf"}:
        names = [single(b) for b in negated["anyOf"]] if isinstance(negated["anyOf"], list) else [None]
        found = [n for n in names if n is not None]
        if names and len(found) == len(names):
            return found
    return None


def _flatten(schema: Any) -> Any:
    """`schema` with its allOf entries merged into it where that is plain algebra: an entry of
    annotations and allOf is spliced in; an entry of `properties` / `required` naming only
    properties the schema lists has them merged into the schema's (`properties.a` becomes the
    allOf of both), so additionalProperties keeps its meaning. Fewer levels, fewer checks per call."""
    if not isinstance(schema, dict) or "$ref" in schema or not isinstance(schema.get("allOf"), list):
        return schema
    out = dict(schema)
    props = dict(out["properties"]) if isinstance(out.get("properties"), dict) else None
    required = list(out["required"]) if isinstance(out.get("required"), list) else []
    pending, kept = list(out.pop("allOf")), []
    while pending:
        entry = _flatten(pending.pop(0))
        if entry is True:
            continue
        if isinstance(entry, dict) and "$ref" not in entry and isinstance(entry.get("allOf", []), list):
            keys = entry.keys() - ANNOTATIONS
            names = entry.get("properties", {})
            needed = entry.get("required", [])
            if keys <= {"allOf"} or (
                    keys <= {"properties", "required", "allOf"} and props is not None
                    and isinstance(names, dict) and names.keys() <= props.keys()
                    and isinstance(needed, list) and all(isinstance(n, str) and n in props for n in needed)):
                if props is not None:  # else there are no properties
                    for name, sub in names.items():
                        props[name] = _both(props[name], sub)
                required += [n for n in needed if n not in required]
                pending[:0] = entry.get("allOf", [])
                continue
        kept.append(entry)
    if props is not None:
        out["properties"] = props
    if required:
        out["required"] = required
    if kept:
        out["allOf"] = kept
    return out


def _both(a: Any, b: Any) -> Any:
    """A subschema equivalent to allOf [a, b]."""
    if a is False or b is False:
        return False
    if a is True or b is True:
        return b if a is True else a
    if isinstance(a, dict) and a.keys() == {"allOf"} and isinstance(a["allOf"], list):
        return {"allOf": a["allOf"] + [b]}
    return {"allOf": [a, b]}


# ----------------------------------------------------------------------------- inlining

class _Inliner:
    """Replaces `{"$ref": "#/$defs/x"}` (annotation-only siblings) by the content of def x, when x
    does not refer back to itself, and drops annotations (less generated code: fastjsonschema
    writes each subschema into the code of each error it can raise). A `format` whose test its
    sibling `pattern` already does in part (AFTER_PATTERN) is replaced by the rest of that test,
    added to `formats` under a name of its own. Only subschema positions are rewritten, never
    const/enum data."""

    def __init__(self, schema: dict[str, Any], formats: dict[str, Any] | None = None):
        self._schema = schema
        self._formats = formats if formats is not None else {}
        self._bodies: dict[str, Any] = {}
        self._open: set[str] = set()

    def _after_pattern(self, node: dict[str, Any]) -> None:
        name, pattern = node.get("format"), node.get("pattern")
        if not isinstance(name, str) or not isinstance(pattern, str) or not callable(self._formats.get(name)):
            return
        key = (self._formats[name], pattern)
        if key not in AFTER_PATTERN:
            return
        rest = AFTER_PATTERN[key]
        if rest is None:
            del node["format"]
            return
        derived = f"{name} after its pattern"
        if self._formats.setdefault(derived, rest) is rest:  # never another format of that name
            node["format"] = derived

    def expand(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            name = _def_name(self._schema, node["$ref"]) if node.keys() - {"$ref"} <= ANNOTATIONS else None
            return node if not name else self._body(name, node)
        out = {k: v for k, v in node.items() if k not in ANNOTATIONS}
        self._after_pattern(out)
        for key, value in node.items():
            if key in _ONE and isinstance(value, dict):
                out[key] = self.expand(value)
            elif key in _MAP and isinstance(value, dict):
                out[key] = {k: self.expand(v) for k, v in value.items()}
            elif key in _LIST and isinstance(value, list):
                out[key] = [self.expand(v) for v in value]
        return out

    def _body(self, name: str, ref: dict[str, Any]) -> Any:
        if name in self._open:
            return ref  # a cycle: keep the $ref
        if name not in self._bodies:
            self._open.add(name)
            self._bodies[name] = self.expand(self._schema["$defs"][name])
            self._open.discard(name)
        return self._bodies[name]


# ----------------------------------------------------------------------------- formats, and the explaining checker

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = re.compile(UUID_PATTERN[1:-1] + r"\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})\Z",
                        re.IGNORECASE)
# FHIR strings: no character below U+0020 but tab, line feed and carriage return; and text must be
# Unicode scalar values: an unpaired surrogate (a JSON "\ud800" escape) cannot be written as UTF-8
_NOT_FHIR_STRING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _is_uuid(v: Any) -> bool:
    return not isinstance(v, str) or bool(_UUID.match(v))


def _is_date(v: Any) -> bool:
    """A calendar date that exists (no 30 February)."""
    if not isinstance(v, str):
        return True
    if not _DATE.match(v):
        return False
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _is_date_time(v: Any) -> bool:
    """RFC 3339 date-time that exists: a real calendar date, hours 00-23, seconds 00-59 (a leap
    second, :60, cannot be represented by the FHIR tools downstream)."""
    if not isinstance(v, str):
        return True
    return _DATE_TIME.match(v) is not None and _date_time_exists(v)


def _date_time_exists(v: Any) -> bool:
    """The second half of `_is_date_time`: a text of its shape names a date and time that exist."""
    if not isinstance(v, str):
        return True
    try:
        datetime.fromisoformat(v.upper())
    except ValueError:
        return False
    return True


def _is_fhir_string(v: Any) -> bool:
    return not isinstance(v, str) or not _NOT_FHIR_STRING.search(v)


FORMATS: dict[str, Callable[[Any], bool]] = {
    "uuid": _is_uuid, "date": _is_date, "date-time": _is_date_time, "fhir-string": _is_fhir_string}
"""The formats of the domain schema, as functions both checkers call."""

DATE_TIME_PATTERN = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                     r"([.][0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$")
"""The domain schema's pattern of a date-time: every text it matches has the shape `_is_date_time` tests."""

AFTER_PATTERN: dict[tuple[Callable[[Any], bool], str], Callable[[Any], bool] | None] = {
    (_is_uuid, UUID_PATTERN): None,  # the format is this pattern
    (_is_date_time, DATE_TIME_PATTERN): _date_time_exists,  # the pattern is stricter than the format's shape
}
"""(format function, a `pattern` beside the format): what is left of the format's test for the texts the
pattern matched (None: nothing). The fast checker tests only that (a regular expression less per value);
fastjsonschema tests `pattern` and `format` on strings only, and every format here accepts a non-string."""

FORMAT_HINTS = {
    "uuid": "not a lower-case UUID",
    "date": "not a calendar date that exists",
    "date-time": "not a date and time that exist: seconds 00-59, no leap second",
    "fhir-string": "a control character or an unpaired surrogate",
}
"""Why a value breaks a format, in words that never quote the value."""


@functools.lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(DOLLAR_FINDER.sub(r"\\Z", text))  # as fastjsonschema reads it


def explaining_validator(schema: dict[str, Any]) -> SchemaValidator:
    """A jsonschema validator (draft 2020-12) that judges like `compile_checker(schema, formats=FORMATS)`
    and lists every fault with its path and keyword."""
    from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

    checker = FormatChecker(formats=())
    for name, fn in FORMATS.items():
        checker.checks(name)(fn)

    def pattern(validator: Any, text: str, instance: Any, subschema: Any) -> Iterable[Any]:
        if isinstance(instance, str) and not _pattern(text).search(instance):
            yield ValidationError("does not match the pattern")

    follow = Draft202012Validator.VALIDATORS["$ref"]

    def ref_within_deadline(validator: Any, ref: Any, instance: Any, subschema: Any) -> Iterable[Any]:
        deadline.check()  # every record is reached through a $ref: a check per record
        yield from follow(validator, ref, instance, subschema)

    cls = validators.extend(Draft202012Validator, {"pattern": pattern, "$ref": ref_within_deadline})
    return cls(schema, format_checker=checker)


SHOWN_NAME = 64
"""Characters of a member name (schema vocabulary, or a document's unknown key) a message shows at most."""


def _name(key: Any) -> str:
    text = str(key)
    return f"'{text}'" if len(text) <= SHOWN_NAME else f"'{text[:SHOWN_NAME]}…'"


def _schema_value(value: Any) -> str:
    """A constant of the schema (an enum member, a bound) as a message shows it."""
    return _name(value) if isinstance(value, str) else str(value)


def _relative(path: Iterable[Any]) -> str:
    steps = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return steps[1:] if steps.startswith(".") else steps


_WORDS = {
    "maximum": "is above the maximum {v}", "minimum": "is below the minimum {v}",
    "exclusiveMaximum": "must be below {v}", "exclusiveMinimum": "must be above {v}",
    "minItems": "needs at least {v} item(s)", "maxItems": "allows at most {v} item(s)",
    "minLength": "needs at least {v} character(s)", "maxLength": "allows at most {v} character(s)",
    "type": "must be of JSON type {v}", "const": "must be {v}", "pattern": "does not match the pattern {v}",
    "uniqueItems": "must not repeat an item", "minProperties": "needs at least {v} member(s)",
}


def explain(error: Any) -> tuple[str, tuple[Any, ...]]:
    """What one jsonschema error of `explaining_validator` says, in words that name schema vocabulary
    (member names, bounds, allowed constants) and never a value of the document — `required` names the
    missing members, `additionalProperties` the unknown ones, `anyOf`/`oneOf` the alternatives that
    came closest and why each failed — and the path below the error's own where all of that is (so
    `'value' is above the maximum 700` points at the value; empty when it is not one place)."""
    kw, value, instance = error.validator, error.validator_value, error.instance
    if kw == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        return f"misses the required member(s) {', '.join(map(_name, missing))}", ()
    if kw == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = [_pattern(p) for p in error.schema.get("patternProperties", {})]
        extra = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
        shown = ", ".join(map(_name, extra[:3])) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        return f"has unknown member(s) {shown}", ()
    if kw == "format":
        return FORMAT_HINTS.get(value, f"breaks the format '{value}'"), ()
    if kw == "enum":
        shown = ", ".join(_schema_value(v) for v in value[:8]) + (", …" if len(value) > 8 else "")
        return f"is not one of the allowed values ({shown})", ()
    if kw in ("anyOf", "oneOf") and error.context:
        branches: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
        for sub in error.context:
            text, below = explain(sub)
            at = tuple(sub.relative_path) + below
            where = _relative(at)
            branches.setdefault(sub.relative_schema_path[0], []).append(
                (f"{_name(where) if where else 'the value'} {text}", at))
        fewest = min(len(v) for v in branches.values())
        closest = [v for _, v in sorted(branches.items()) if len(v) == fewest]
        places = {at for v in closest for _, at in v}
        texts = dict.fromkeys("; ".join(t for t, _ in v) for v in closest)
        return "fits none of the alternatives: " + " — or: ".join(texts), places.pop() if len(places) == 1 else ()
    if kw in _WORDS:
        return _WORDS[kw].format(v=_schema_value(value) if not isinstance(value, list) else value), ()
    return f"breaks schema rule '{kw}'", ()
