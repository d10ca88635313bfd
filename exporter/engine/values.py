"""Value specs → compiled closures (layer L2). Compile at load, evaluate per record.

In a mapping's `resource:` body:

* a YAML scalar is a literal — strings are never evaluated;
* a mapping with one operator key is a value:
  `path` (native getter: `a.b[0]`, `$.` from the document root, `^.` from the enclosing record),
  `fhirpath` (compiled FHIRPath on the record; `%doc`, `%parent` available),
  `template` (jinja2 string; variables `item`, `parent`, `doc`, `export_time`, `index`),
  `xhtml` (jinja2 with autoescape → a Narrative), `table` + `key` [+ `field`] (code table lookup),
  `ref` [+ `key`] (reference to a resource produced by another mapping), `literal` (verbatim),
  `now` (the export time);
  modifiers: `as` (date, dateTime, instant, decimal, integer, string, boolean, code), `when`
  (FHIRPath condition on the record; false → the value is omitted);
* any other mapping is structure (a `when` key in it is its condition, not a FHIR element); a list
  is a list, and a list item `{for_each, when?, item}` expands to one item per selected record. Empty values are omitted.

Speed (an export evaluates some 100,000 closures): parts without an operator anywhere below are
folded to constants at load, and structures and lists are compiled to straight-line Python (codegen).
Every evaluation still returns new dicts and lists — a Bundle shares no object with another Bundle
or with the compiled mappings — so whoever receives a Bundle may change it without harm.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from exporter.engine.codegen import Code
from exporter.engine.templating import Template, TemplateProblem, neutralise
from exporter.fhir.fhirpath import FhirPathError, compile_expression
from exporter.issues import Issue, IssueCode, Severity, SourceLocation, error
from exporter.mapping.tables import CodeTable, suggest
from exporter.mapping.yamlsrc import Positions, position
from exporter.validation.fhirpath_native import translate


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
_CONTAINERS = (dict, list)
OPS = ("path", "fhirpath", "template", "xhtml", "table", "ref", "literal", "now")
MODIFIERS = {"as", "when", "key", "field"}
TABLE_FIELDS = ("codeable", "codings", "coding", "code", "display", "system")
AS_TYPES = ("date", "dateTime", "instant", "decimal", "integer", "string", "boolean", "code", "markdown")
# `field = 'literal'`, `field != 'literal'` (and the same on `$this`, an element of a list of strings)
_LITERAL_TEST = re.compile(r"\s*(\$this|[A-Za-z_][A-Za-z0-9_]*)\s*(!?=)\s*'([^'\\]*)'\s*\Z")
_PATH = re.compile(r"(\$\.|(\^\.)+)?[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*\Z")


class DataPath(tuple[Any, ...]):
    """The JSON path (base, index) of a list element, formatted only when an issue needs it. Thousands
    are made per export: as a tuple, `DataPath((base, index))` is made without a Python call."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self[0]}[{self[1]}]"


class Scope:
    """The record a value is evaluated on (a plain class with slots: one is made per record)."""

    __slots__ = ("item", "data_path", "parent", "run", "index")

    def __init__(self, item: Any, data_path: Any, parent: Scope | None, run: RunContext,
                 index: int | None = None):
        self.item = item
        self.data_path = data_path  # str or DataPath
        self.parent = parent
        self.run = run
        self.index = index  # position in the enclosing for_each list item (templates: `index`)

    def up(self, n: int) -> Scope:
        s = self
        for _ in range(n):
            s = s.parent if s.parent is not None else s
        return s


@dataclass
class RunContext:
    """Per-export state shared by all closures: the document, the export time, the issue sink."""

    doc: dict[str, Any]
    export_time: str
    ref_resolver: Callable[[str, Any, SourceLocation | None, str], str | None]
    issues: list[Issue] = field(default_factory=list)
    max_issues: int = 10_000
    """report() raises IssueLimit when this many issues are collected (the build stops there)."""
    # the elements the checked nested `for_each` items met (see EachItem): list key -> data path ->
    # [the element's scope, every item whose `when` selected it]
    nested: dict[str, dict[Any, list[Any]]] = field(default_factory=dict)

    def report(self, message_id: str, message: str, where: SourceLocation | None, data_path: Any,
               code: IssueCode = IssueCode.VALUE) -> None:
        path = str(data_path) if data_path is not None else ""
        self.issues.append(Issue(Severity.ERROR, code, message, message_id,
                                 expression=(path,) if path else (), location=where))
        if len(self.issues) >= self.max_issues:
            raise IssueLimit()


class IssueLimit(Exception):
    """The run collected its maximum number of issues: the build stops (Engine.build reports it)."""

ValueFn = Callable[[Scope], Any]


@dataclass(eq=False)
class EachItem:
    """A nested `for_each` list item (for exporter/engine/coverage.py). Where the list it reads is
    exported only by such items (a diary entry's `symptoms`), an element no item's `when` selects
    would be left out silently: Coverage sets `checked` on those with a `when`, and they record per
    export which elements they met and which they selected (RunContext.nested)."""

    at: tuple[Any, ...]  # YAML path of the list item
    for_each: str
    when_text: str | None
    when: Callable[[Scope], bool] | None
    location: SourceLocation | None  # of its `when` (or of the item, without one)
    key: str | None = None  # the list it reads, e.g. "diary_entries[].symptoms" (set by Coverage)
    checked: bool = False


@dataclass
class CompileContext:
    file: str
    positions: Positions
    tables: dict[str, CodeTable]
    mapping_types: dict[str, tuple[str, bool]]  # mapping id -> (resource type, is singleton)
    default_timezone: str = "Europe/Berlin"
    issues: list[Issue] = field(default_factory=list)
    # for `fhir-export check`: every table lookup (table, field, YAML path, literal key or None)
    table_uses: list[tuple[CodeTable, str, tuple[Any, ...], Any]] = field(default_factory=list)
    each_items: set[tuple[Any, ...]] = field(default_factory=set)  # YAML paths of for_each `item:` bodies
    eaches: list[EachItem] = field(default_factory=list)  # the nested for_each list items, for coverage.py
    # for `fhir-export check` (exporter/engine/static_check.py): every expression that reads the domain
    # document — (operator: path, fhirpath, template, xhtml, when or for_each; its text; YAML path)
    expressions: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)

    def loc(self, at: tuple[Any, ...]) -> SourceLocation | None:
        return position(self.positions, at)

    def fail(self, message_id: str, message: str, at: tuple[Any, ...]) -> ValueFn:
        self.issues.append(error(IssueCode.INVALID, message, message_id, location=self.loc(at)))
        return lambda scope: MISSING


# -- getters ---------------------------------------------------------------------------------------
def compile_path(text: str) -> tuple[int, bool, tuple[tuple[str, int | None], ...]] | None:
    """(levels up, from root?, steps) or None when `text` is not a simple path. `$this` is the record."""
    if text == "$this":
        return 0, False, ()
    if not isinstance(text, str) or not _PATH.match(text):
        return None
    up = 0
    from_root = text.startswith("$.")
    rest = text[2:] if from_root else text
    while rest.startswith("^."):
        up += 1
        rest = rest[2:]
    steps = []
    for part in rest.split("."):
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?\Z", part)
        assert m
        steps.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
    return up, from_root, tuple(steps)


def _getter(up: int, from_root: bool, steps: tuple[tuple[str, int | None], ...]) -> ValueFn:
    """A native getter; the common shapes get their own closure (same results as the general loop)."""
    if not from_root and up == 0 and all(index is None for _, index in steps):
        names = tuple(name for name, _ in steps)
        if not names:  # `$this`
            this = lambda scope: MISSING if scope.item is None else scope.item  # noqa: E731
            setattr(this, "inline", ("this",))  # see `_inline`
            return this
        if len(names) == 1:  # `field`: a missing key and a null value are both MISSING
            name = names[0]

            def get_field(scope: Scope) -> Any:
                v = scope.item
                if not isinstance(v, dict):
                    return MISSING
                v = v.get(name)
                return MISSING if v is None else v
            setattr(get_field, "inline", ("field", name))  # see `_inline`
            return get_field

        def get_fields(scope: Scope) -> Any:
            v = scope.item
            for name in names:
                if not isinstance(v, dict):
                    return MISSING
                v = v.get(name)  # None (absent or null) stops the walk at the next step or below
            return MISSING if v is None else v
        return get_fields

    def get(scope: Scope) -> Any:
        v: Any = scope.run.doc if from_root else scope.up(up).item
        for name, index in steps:
            if not isinstance(v, dict) or name not in v:
                return MISSING
            v = v[name]
            if index is not None:
                if not isinstance(v, list) or index >= len(v):
                    return MISSING
                v = v[index]
        return MISSING if v is None else v
    return get


# -- conversions -----------------------------------------------------------------------------------
# A date-time the conversion would write exactly as it is: seconds, milliseconds only if not zero,
# an offset other than ±00:00 or `Z`, every field in range — days 29-31 excepted (those take the
# general path, which knows the months). What domain data usually carries; the general path parses
# and re-formats (~3 µs), this test is one regular expression.
_NORMALISED_DATETIME = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.(?!000)[0-9]{3})?(?:Z|[+-](?!00:00)(?:[01][0-9]|2[0-3]):[0-5][0-9])").fullmatch


# The first test of these converters, inlined by `_compile_op`: values they return as they are.
_AS_IS = {"dateTime": "type(v) is str and _NORMALISED_DATETIME(v) is not None",
          "decimal": "type(v) is int or type(v) is float", "integer": "type(v) is int"}


def converter(kind: str, tz: str) -> Callable[[Any], Any]:
    zone = ZoneInfo(tz)

    def to_datetime(v: Any) -> str:
        if type(v) is str and _NORMALISED_DATETIME(v) is not None:
            return v
        if isinstance(v, str):
            text = v.strip().replace(" ", "T", 1)
            if re.fullmatch(r"\d{4}(-\d\d(-\d\d)?)?", text):
                return text  # a partial date is a valid dateTime
            d = datetime.fromisoformat(text.replace("Z", "+00:00"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            d = datetime.fromtimestamp(v, tz=UTC)
        else:
            raise ValueError(f"cannot read {type(v).__name__} as a date-time")
        if d.tzinfo is None:
            d = d.replace(tzinfo=zone)  # local wall-clock time of the DiGA's configured timezone
        return d.isoformat(timespec="milliseconds" if d.microsecond else "seconds").replace("+00:00", "Z")

    def to_instant(v: Any) -> str:
        out = to_datetime(v)
        if "T" not in out:
            raise ValueError("an instant needs a time")
        return out

    def to_date(v: Any) -> str:
        if isinstance(v, str) and re.fullmatch(r"\d{4}(-\d\d(-\d\d)?)?", v.strip()):
            return v.strip()
        if isinstance(v, str):
            return datetime.fromisoformat(v.strip().replace("Z", "+00:00")).date().isoformat()
        if isinstance(v, date):
            return v.isoformat()
        raise ValueError(f"cannot read {type(v).__name__} as a date")

    def to_decimal(v: Any) -> Any:
        if type(v) is int or type(v) is float:  # the JSON numbers, as they are (bool is not one)
            return v
        if isinstance(v, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(v, (int, float)):
            return v
        d = Decimal(str(v).strip())
        if not d.is_finite():
            raise ValueError("not a finite number")
        return int(d) if d == d.to_integral_value() and "." not in str(v) else float(d)

    def to_integer(v: Any) -> int:
        if type(v) is int:
            return v
        if isinstance(v, bool):
            raise ValueError("a boolean is not an integer")
        if isinstance(v, int):
            return v
        d = Decimal(str(v).strip())
        if d != d.to_integral_value():
            raise ValueError(f"{v!r} is not a whole number")
        return int(d)

    def to_boolean(v: Any) -> bool:
        if isinstance(v, bool):
            return v
        if v == "true":
            return True
        if v == "false":
            return False
        raise ValueError(f"{v!r} is not a boolean")

    def to_code(v: Any) -> str:
        s = " ".join(str(v).split())
        if not s:
            raise ValueError("empty code")
        return s

    return {"dateTime": to_datetime, "instant": to_instant, "date": to_date, "decimal": to_decimal,
            "integer": to_integer, "string": lambda v: str(v), "boolean": to_boolean, "code": to_code,
            "markdown": to_markdown}[kind]


# plain text as FHIR markdown: every character that markdown would read as markup (emphasis, code,
# links, HTML, entities, headings, tables) escaped with a backslash, so the text reads as it was typed;
# controls and bidi overrides (which reorder what a reader sees) become U+FFFD, as in every narrative
_MARKDOWN_MARKUP = re.compile(r"([\\`*_\[\]<>&#|~])")


def to_markdown(v: Any) -> str:
    return _MARKDOWN_MARKUP.sub(r"\\\1", neutralise(str(v)))


# -- constants and straight-line code -------------------------------------------------------------
_VARIES: Any = object()  # constant_of() of a value that depends on the record


def constant_of(fn: ValueFn) -> Any:
    """What `fn` returns for every record if that is known at load (see `_constant`), else _VARIES."""
    return getattr(fn, "constant", _VARIES)


def _kept(v: Any) -> bool:
    """The rule "empty values are omitted", applied to a structure field or a list item."""
    return v is not MISSING and (bool(v) or type(v) not in _CONTAINERS)


def _where(at: tuple[Any, ...], cc: CompileContext) -> str:
    return f"{cc.file}:{'.'.join(map(str, at))}"


def returns(value: Any) -> ValueFn:
    """The closure that returns `value` (the same object) on every call."""
    return lambda scope: value


def _constant(value: Any, where: str = "") -> ValueFn:
    """The closure of a value known at load. Containers are built anew on every call, by a function
    generated at the first call: most constants are folded into the code of their structure or list
    and never called on their own."""
    fn: ValueFn
    if isinstance(value, _CONTAINERS):
        made: list[Callable[[], Any]] = []

        def build(scope: Scope) -> Any:
            if not made:
                code = Code()
                made.append(code.function("constant", "", [f"return {code.fresh(value)}"], where))
            return made[0]()
        fn = build
    else:
        fn = returns(value)
    setattr(fn, "constant", value)
    return fn


def _structure(fields: list[tuple[Any, ValueFn]], cond: Callable[[Scope], bool] | None, where: str) -> ValueFn:
    """A structure as straight-line code: constant fields are built in place (in a leading dict display
    as long as they come first), every other field is evaluated and kept unless empty. Keys keep the
    order of the mapping."""
    code = Code(MISSING=MISSING, _CONTAINERS=_CONTAINERS)
    test = f"if not {code.bind(cond)}(scope): return" if cond is not None else None
    leading: list[tuple[str, str]] = []
    rest: list[str] = []
    always = False  # a constant field is kept: the result is never empty
    for key, fn in fields:
        value = constant_of(fn)
        if value is not _VARIES:
            if not _kept(value):
                continue
            always = True
            if not rest:
                leading.append((code.bind(key), code.fresh(value)))
            else:
                rest.append(f"out[{code.bind(key)}] = {code.fresh(value)}")
            continue
        rest += _kept_lines(fn, code, f"out[{code.bind(key)}] = v")
    body = [test + " MISSING"] if test else []
    body += ["out = {" + ", ".join(f"{k}: {v}" for k, v in leading) + "}"] + rest
    made = code.function("structure", "scope", body + ["return out" if always else "return out or MISSING"], where)
    # the same fields written into a given dict (see `filler`): the lines above, the leading display split up
    fill = ([test] if test else []) + [f"out[{k}] = {v}" for k, v in leading] + rest
    setattr(made, "fill", (code, fill + ["return"], where))
    return made


def filler(fn: ValueFn) -> Callable[[Scope, dict[str, Any]], None] | None:
    """For a structure of `_structure`: `fill(scope, out)` adds to `out` the fields `fn(scope)` returns,
    in the same order (a resource's fields go straight into the resource, after the ones the engine
    sets; `out.update(fn(scope))` would build and drop a dict per resource). None for any other value."""
    spec = getattr(fn, "fill", None)
    if spec is None:
        return None
    code, lines, where = spec
    made: Callable[[Scope, dict[str, Any]], None] = code.function("fill", "scope, out", lines, where)
    return made


def _listing(items: list[tuple[bool, ValueFn]], where: str) -> ValueFn:
    """A list as straight-line code, like `_structure`; for_each items, and the several results of a
    `fhirpath` item, are spliced in."""
    code = Code(MISSING=MISSING, _CONTAINERS=_CONTAINERS)
    leading: list[str] = []
    rest: list[str] = []
    always = False
    for expand, fn in items:
        value = constant_of(fn) if not expand else _VARIES
        if value is not _VARIES:
            if not _kept(value):
                continue
            always = True
            if not rest:
                leading.append(code.fresh(value))
            else:
                rest.append(f"out.append({code.fresh(value)})")
            continue
        if expand:
            rest += [f"v = {code.bind(fn)}(scope)", "if v is not MISSING: out.extend(v)"]
        elif getattr(fn, "splices", False):  # a FHIRPath's several results are spliced in: FHIR has no nested lists
            rest += _kept_lines(fn, code, "out.extend(v) if type(v) is list else out.append(v)")
        else:
            rest += _kept_lines(fn, code, "out.append(v)")
    body = ["out = [" + ", ".join(leading) + "]"] + rest + ["return out" if always else "return out or MISSING"]
    return code.function("listing", "scope", body, where)


def _inline(fn: ValueFn, code: Code, target: str) -> tuple[list[str], str]:
    """Lines setting `target` to what `fn(scope)` returns, and what then stands for MISSING ("MISSING",
    or "None" after an inlined path). The most frequent small closures are inlined — one-step paths
    (most table keys and converted values), `$this`, references to a singleton (every resource refers
    to the patient): their lines do what their closure does; any other closure is called."""
    kind = getattr(fn, "inline", None)
    if kind is None:
        return [f"{target} = {code.bind(fn)}(scope)"], "MISSING"
    if kind[0] == "field":  # get_field
        return [f"{target} = scope.item",
                f"{target} = {target}.get({code.bind(kind[1])}) if isinstance({target}, dict) else None"], "None"
    if kind[0] == "this":
        return [f"{target} = scope.item"], "None"
    assert kind[0] == "ref"  # reference_singleton
    mapping = code.bind(kind[1])
    return [f"{target} = scope.run.ref_resolver({mapping}, {mapping}, {code.bind(kind[2])}, scope.data_path)",
            f"{target} = {{{code.bind('reference')}: {target}}} if {target} else MISSING"], "MISSING"


def _read(fn: ValueFn, code: Code, target: str) -> list[str]:
    """Lines setting `target` to `fn(scope)` that return MISSING from the function when it is MISSING."""
    lines, missing = _inline(fn, code, target)
    return lines + [f"if {target} is {missing}: return MISSING"]


def _kept_lines(fn: ValueFn, code: Code, keep: str) -> list[str]:
    """Lines evaluating `fn` into `v` and, unless it is empty, doing `keep` (a line using `v`)."""
    lines, missing = _inline(fn, code, "v")
    return lines + [f"if v is not {missing} and (v or type(v) not in _CONTAINERS):", f"    {keep}"]


# -- the compiler ----------------------------------------------------------------------------------
def compile_value(spec: Any, at: tuple[Any, ...], cc: CompileContext) -> ValueFn:
    if isinstance(spec, dict):
        ops = [k for k in spec if k in OPS]
        if ops:
            return _compile_op(spec, ops, at, cc)
        if "for_each" in spec:
            return cc.fail("MAP_SPEC", "'for_each' is only allowed in a list item", at)
        for k in spec:
            if k in MODIFIERS and k != "when":
                return cc.fail("MAP_SPEC", f"'{k}' needs one of the value operators {', '.join(OPS)} beside it",
                               at + (k,))
        cond = condition(spec["when"], at + ("when",), cc) if "when" in spec else None
        fields = [(k, compile_value(v, at + (k,), cc)) for k, v in spec.items() if k != "when"]
        if cond is None and all(constant_of(fn) is not _VARIES for _, fn in fields):
            folded = {k: constant_of(fn) for k, fn in fields if _kept(constant_of(fn))}
            return _constant(folded or MISSING, _where(at, cc))
        return _structure(fields, cond, _where(at, cc))
    if isinstance(spec, list):
        items = [_compile_list_item(v, at + (i,), cc) for i, v in enumerate(spec)]
        if not any(expand or constant_of(fn) is _VARIES for expand, fn in items):
            folded_list = [constant_of(fn) for _, fn in items if _kept(constant_of(fn))]
            return _constant(folded_list or MISSING, _where(at, cc))
        return _listing(items, _where(at, cc))
    if spec is None:
        return cc.fail("MAP_SPEC", "null is not a value; leave the element out instead", at)
    return _constant(spec, _where(at, cc))


def _compile_list_item(spec: Any, at: tuple[Any, ...], cc: CompileContext) -> tuple[bool, ValueFn]:
    if not (isinstance(spec, dict) and "for_each" in spec):
        return False, compile_value(spec, at, cc)
    for k in spec:
        if k not in ("for_each", "when", "item"):
            cc.fail("MAP_UNKNOWN_KEY", f"unknown key '{k}' in a for_each list item{suggest(k, ('for_each', 'when', 'item'))}",
                    at + (k,))
    if "item" not in spec:
        return False, cc.fail("MAP_SPEC", "a for_each list item needs 'item'", at)
    select = selector(spec["for_each"], at + ("for_each",), cc)
    when = condition(spec.get("when"), at + ("when",), cc) if "when" in spec else None
    cc.each_items.add(at + ("item",))
    each = EachItem(at, spec["for_each"] if isinstance(spec["for_each"], str) else "",
                    spec["when"] if isinstance(spec.get("when"), str) else None, when,
                    cc.loc(at + ("when",)) if "when" in spec else cc.loc(at))
    cc.eaches.append(each)
    body = compile_value(spec["item"], at + ("item",), cc)

    def expand(scope: Scope) -> Any:
        out = []
        met = scope.run.nested.setdefault(each.key, {}) if each.checked else None  # type: ignore[arg-type]
        for i, (value, data_path) in enumerate(select(scope)):
            sub = Scope(value, data_path, scope, scope.run, i)
            if when is not None:
                held = when(sub)
                if met is not None:
                    entry = met.get(data_path)
                    if entry is None:
                        entry = met[data_path] = [sub]
                    if held:
                        entry.append(each)
                if not held:
                    continue
            v = body(sub)
            if v is not MISSING:
                out.append(v)
        return out
    return True, expand


def selector(text: Any, at: tuple[Any, ...], cc: CompileContext) -> Callable[[Scope], list[tuple[Any, Any]]]:
    """A for_each selection: a simple path to a list (or a single record)."""
    parsed = compile_path(text) if isinstance(text, str) else None
    if parsed is not None:
        cc.expressions.append(("for_each", text, at))
    if parsed is None:
        cc.fail("MAP_PATH_SYNTAX", f"for_each needs a simple path such as 'measurements' or '$.diagnoses', "
                f"not {text!r}", at)
        return lambda scope: []
    get = _getter(*parsed)
    label = text if not parsed[1] else text[2:]

    def select(scope: Scope) -> list[tuple[Any, Any]]:
        v = get(scope)
        if v is MISSING:
            return []
        base = f"$.{label}" if parsed[1] or scope.parent is None else f"{scope.data_path}.{label}"
        if isinstance(v, list):
            return [(x, DataPath((base, i))) for i, x in enumerate(v) if x is not None]
        return [(v, base)]
    return select


def condition(text: Any, at: tuple[Any, ...], cc: CompileContext) -> Callable[[Scope], bool]:
    if not isinstance(text, str):
        cc.fail("MAP_SPEC", "'when' needs a FHIRPath expression string", at)
        return lambda scope: False
    try:
        fn = compile_expression(text)
    except FhirPathError as exc:
        cc.fail("MAP_FHIRPATH_SYNTAX", f"{exc}", at)
        return lambda scope: False
    cc.expressions.append(("when", text, at))
    loc = cc.loc(at)
    quick = item_test(text)
    native = translate(text)  # e.g. exists(), and/or: ~1 µs instead of ~40 µs through fhirpathpy

    def holds(scope: Scope) -> bool:
        if quick is not None:
            verdict = quick(scope.item)
            if verdict is not None:
                return verdict
        if native is not None:
            verdict = native(scope.item, None, {})
            if verdict is not None:
                return verdict
        try:
            result = fn(scope.item, {"doc": scope.run.doc, "parent": scope.parent.item if scope.parent else None})
        except FhirPathError:
            scope.run.report("MAP_FHIRPATH_EVAL", "the condition failed for this record", loc, scope.data_path)
            return False
        return result == [True]
    setattr(holds, "item_test", quick)  # lets the engine decide before it makes a record's scope
    return holds


class ItemTest:
    """`field = 'literal'`, the common filter, decided by a dict look-up on the record: True or False,
    or None when the look-up cannot decide (a record that is no dict, a list or object value: those
    go through FHIRPath)."""

    __slots__ = ("name", "literal")

    def __init__(self, name: str, literal: str):
        self.name, self.literal = name, literal

    def __call__(self, item: Any) -> bool | None:
        if isinstance(item, dict):
            v = item.get(self.name)
            if not isinstance(v, (list, dict)):
                return v == self.literal if isinstance(v, str) else False
        return None

    def group(self, records: list[tuple[Any, Any]]) -> dict[str, list[tuple[Any, Any]]] | None:
        """The records by their value of `name`, in their order, for every test on `name` at once:
        `group(records).get(literal, [])` are the records `ItemTest(name, literal)` holds for. None
        when some record cannot be decided (see __call__)."""
        groups: dict[str, list[tuple[Any, Any]]] = {}
        name = self.name
        for record in records:
            item = record[0]
            if not isinstance(item, dict):
                return None
            v = item.get(name)
            if isinstance(v, str):
                group = groups.get(v)
                if group is None:
                    groups[v] = [record]
                else:
                    group.append(record)
            elif isinstance(v, (list, dict)):
                return None
        return groups


def literal_test(text: str) -> tuple[str, str, str] | None:
    """(field or `$this`, `=` or `!=`, literal) of a `when` that compares one field with a string
    literal, else None: what `fhir-export check` can reason about with the schema's allowed values."""
    m = _LITERAL_TEST.match(text)
    return (m.group(1), m.group(2), m.group(3)) if m is not None else None


def item_test(text: str) -> ItemTest | None:
    """The ItemTest of a `when` condition, or None when it is not `field = 'literal'`. The engine also
    runs it on records before it makes their scope."""
    simple = literal_test(text)
    if simple is None or simple[0] == "$this" or simple[1] != "=":
        return None
    return ItemTest(simple[0], simple[2])


def _compile_op(spec: dict[str, Any], ops: list[str], at: tuple[Any, ...], cc: CompileContext) -> ValueFn:
    if len(ops) > 1:
        return cc.fail("MAP_SPEC", f"a value has exactly one operator, found {', '.join(ops)}", at)
    op = ops[0]
    allowed = {op} | MODIFIERS
    for k in spec:
        if k not in allowed:
            return cc.fail("MAP_UNKNOWN_KEY", f"unknown key '{k}' beside '{op}'{suggest(k, sorted(allowed))}", at + (k,))
    if "key" in spec and op not in ("table", "ref"):
        return cc.fail("MAP_SPEC", f"'key' belongs to 'table' or 'ref', not '{op}'", at + ("key",))
    if "field" in spec and op != "table":
        return cc.fail("MAP_SPEC", f"'field' belongs to 'table', not '{op}'", at + ("field",))
    base = _compile_base(op, spec, at, cc)
    if "as" in spec:
        kind = spec["as"]
        if kind not in AS_TYPES:
            return cc.fail("MAP_AS_UNKNOWN", f"unknown type '{kind}' for 'as'{suggest(kind, AS_TYPES)}", at + ("as",))
        loc = cc.loc(at)

        def failed(scope: Scope, exc: Exception) -> Any:
            scope.run.report("MAP_CONVERT", f"cannot convert the value to {kind}", loc, scope.data_path)
            return MISSING
        code = Code(MISSING=MISSING, conv=converter(kind, cc.default_timezone), failed=failed,
                    ERRORS=(ValueError, TypeError, InvalidOperation, OverflowError),
                    _NORMALISED_DATETIME=_NORMALISED_DATETIME)
        as_is = [f"if {_AS_IS[kind]}: return v"] if kind in _AS_IS else []
        base = code.function("converted", "scope", _read(base, code, "v") + as_is + [
            "try:", "    return conv(v)", "except ERRORS as exc:", "    return failed(scope, exc)"], _where(at, cc))
    if "when" in spec:
        cond = condition(spec["when"], at + ("when",), cc)
        inner2 = base
        base = lambda scope: inner2(scope) if cond(scope) else MISSING  # noqa: E731
    return base


def _compile_base(op: str, spec: dict[str, Any], at: tuple[Any, ...], cc: CompileContext) -> ValueFn:
    arg = spec[op]
    here = at + (op,)
    if op == "literal":
        return _constant(arg, _where(here, cc))
    if op == "now":
        return lambda scope: scope.run.export_time
    if op == "path":
        parsed = compile_path(arg)
        if parsed is None:
            return cc.fail("MAP_PATH_SYNTAX", f"not a simple path: {arg!r} (use 'fhirpath' for expressions)", here)
        cc.expressions.append(("path", arg, here))
        return _getter(*parsed)
    if op == "fhirpath":
        if not isinstance(arg, str):
            return cc.fail("MAP_SPEC", "'fhirpath' needs an expression string", here)
        try:
            fn = compile_expression(arg)
        except FhirPathError as exc:
            return cc.fail("MAP_FHIRPATH_SYNTAX", str(exc), here)
        cc.expressions.append(("fhirpath", arg, here))
        loc = cc.loc(here)

        def evaluate(scope: Scope) -> Any:
            try:
                result = fn(scope.item, {"doc": scope.run.doc, "parent": scope.parent.item if scope.parent else None})
            except FhirPathError:
                scope.run.report("MAP_FHIRPATH_EVAL", "the expression failed for this record", loc, scope.data_path)
                return MISSING
            result = [_plain(r) for r in result]
            if not result:
                return MISSING
            return result[0] if len(result) == 1 else result
        evaluate.splices = True  # type: ignore[attr-defined]  # as a list item: several results, several items
        return evaluate
    if op in ("template", "xhtml"):
        if not isinstance(arg, str):
            return cc.fail("MAP_SPEC", f"'{op}' needs a template string", here)
        try:
            tpl = Template(arg, xhtml=op == "xhtml")
        except TemplateProblem as exc:
            base_loc = cc.loc(here)
            loc = SourceLocation(base_loc.file, (base_loc.line or 1) + (exc.line or 1) - 1, None) if base_loc else None
            cc.issues.append(error(IssueCode.INVALID, str(exc), "MAP_TEMPLATE_SYNTAX", location=loc))
            return lambda scope: MISSING
        cc.expressions.append((op, arg, here))
        loc = cc.loc(here)

        def failed(scope: Scope, exc: TemplateProblem) -> Any:
            scope.run.report("MAP_TEMPLATE_RENDER", exc.summary, loc, scope.data_path)
            return MISSING
        # the variables, as positional arguments: only those the template reads, when it is known which
        names = tuple(n for n in _TEMPLATE_VARIABLES if tpl.variables is None or n in tpl.variables)
        code = Code(MISSING=MISSING, render_template=tpl.renderer(names), failed=failed, TemplateProblem=TemplateProblem)
        variables = ", ".join(_TEMPLATE_VARIABLES[n] for n in names)
        if op == "xhtml":  # a Narrative
            result = (f"{{{code.bind('status')}: {code.bind('generated')}, "
                      f"{code.bind('div')}: {code.bind(XHTML_OPEN)} + text + {code.bind('</div>')}}}")
        else:
            result = 'text if text != "" else MISSING'
        return code.function("render", "scope", [
            "try:", f"    text = render_template({variables})", "except TemplateProblem as exc:",
            "    return failed(scope, exc)", f"return {result}"], _where(here, cc))
    if op == "table":
        table = cc.tables.get(arg) if isinstance(arg, str) else None
        if table is None:
            return cc.fail("MAP_TABLE_UNKNOWN", f"no code table '{arg}' in mappings/codes/{suggest(arg, cc.tables)}", here)
        if "key" not in spec:
            return cc.fail("MAP_SPEC", f"table '{arg}' needs a 'key' value", at)
        fld = spec.get("field", "codeable")
        if not (isinstance(fld, str) and (fld in TABLE_FIELDS or fld.startswith("attribute:"))):
            return cc.fail("MAP_SPEC", f"unknown table field '{fld}'{suggest(fld, TABLE_FIELDS)}", at + ("field",))
        key_fn = compile_value(spec["key"], at + ("key",), cc)
        literal_key = spec["key"]["literal"] if isinstance(spec["key"], dict) and "literal" in spec["key"] else (
            spec["key"] if isinstance(spec["key"], (str, int)) else None)
        cc.table_uses.append((table, fld, at, literal_key))
        loc = cc.loc(here)

        def unmapped(scope: Scope, key: Any, codings: list[dict[str, Any]] | None) -> Any:
            if codings is None:
                # the value's type, never the value: a number is looked up as written (2.0 as "2.0")
                written = ("; the value is a number with a decimal point, looked up as written (2.0 as '2.0')"
                           if type(key) is float else "")
                scope.run.report("MAP_CODE_UNMAPPED", f"the value is not in code table '{table.id}' ({table.file})"
                                 f"{written}", loc, scope.data_path, IssueCode.CODE_INVALID)
            else:
                scope.run.report("MAP_CODE_UNMAPPED", f"the entry of code table '{table.id}' for the value has no "
                                 f"attribute '{fld.split(':', 1)[1]}'", loc, scope.data_path, IssueCode.CODE_INVALID)
            return MISSING

        # the value of `field` from the key's codings, as an expression (codings are copied: the Bundle
        # never shares an object with the table); an attribute may be missing (_UNMAPPED)
        code = Code(MISSING=MISSING, table=table, unmapped=unmapped, _UNMAPPED=_UNMAPPED,
                    attribute=_attribute(table, fld[len("attribute:"):]) if fld.startswith("attribute:") else None)
        value_of = {"codeable": f"{{{code.bind('coding')}: list(map(dict, codings))}}", "codings": "list(map(dict, codings))",
                    "coding": "dict(codings[0])"}.get(fld, "attribute(key, codings)" if fld.startswith("attribute:")
                                                      else f"codings[0].get({code.bind(fld)}, MISSING)")
        key = constant_of(key_fn)
        if key is not _VARIES:  # a constant key: looked up once, at load (tables do not change after load)
            value = MISSING if key is MISSING else _UNMAPPED
            codings = table.lookup(key) if key is not MISSING else None
            if codings is not None:
                pick = code.function("pick", "key, codings", [f"return {value_of}"], _where(here, cc))
                try:
                    value = pick(key, codings)
                except IndexError:  # an entry without codings: fails per record, as before
                    pass
            if value is not _UNMAPPED:
                return _constant(value, _where(here, cc))  # an unmapped constant key is reported per record, below
        body = _read(key_fn, code, "key") + [
            "codings = table.entries.get(str(key)) if key is not None else None  # = table.lookup(key)",
            "if codings is None: return unmapped(scope, key, None)"]
        if fld.startswith("attribute:"):
            body += ["value = attribute(key, codings)",
                     "return value if value is not _UNMAPPED else unmapped(scope, key, codings)"]
        else:
            body.append(f"return {value_of}")
        return code.function("lookup", "scope", body, _where(here, cc))
    if op == "ref":
        target = cc.mapping_types.get(arg) if isinstance(arg, str) else None
        if target is None:
            return cc.fail("MAP_REF_UNKNOWN", f"no mapping '{arg}' to refer to{suggest(arg, cc.mapping_types)}", here)
        _, singleton = target
        if "key" not in spec and not singleton:
            return cc.fail("MAP_SPEC", f"mapping '{arg}' produces many resources: say which with 'key'", at)
        loc = cc.loc(here)
        if "key" not in spec:  # a singleton: its mapping id is the key
            def reference_singleton(scope: Scope) -> Any:
                urn = scope.run.ref_resolver(arg, arg, loc, scope.data_path)
                return {"reference": urn} if urn else MISSING
            setattr(reference_singleton, "inline", ("ref", arg, loc))  # see `_inline`
            return reference_singleton
        key_fn = compile_value(spec["key"], at + ("key",), cc)

        def reference(scope: Scope) -> Any:
            key = key_fn(scope)
            if key is MISSING:
                return MISSING
            urn = scope.run.ref_resolver(arg, key, loc, scope.data_path)
            return {"reference": urn} if urn else MISSING
        return reference
    raise AssertionError(op)


_UNMAPPED: Any = object()
XHTML_OPEN = '<div xmlns="http://www.w3.org/1999/xhtml">'
# the variables of a template: how each is read from the scope
_TEMPLATE_VARIABLES = {"item": "scope.item", "parent": "scope.parent.item if scope.parent else None",
                       "doc": "scope.run.doc", "export_time": "scope.run.export_time", "index": "scope.index"}


def _attribute(table: CodeTable, name: str) -> Callable[[Any, Any], Any]:
    """(key, codings) -> the entry's attribute `name`, or _UNMAPPED."""
    return lambda key, codings: _UNMAPPED if (v := table.attributes.get(str(key), {}).get(name)) is None else v


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v
