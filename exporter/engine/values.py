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
* any other mapping is structure (a `when` key in it is its condition, not a FHIR element); a list is a list, and a list item `{for_each, when?, item}`
  expands to one item per selected record. Empty values are omitted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

from exporter.fhir.fhirpath import FhirPathError, compile_expression
from exporter.validation.fhirpath_native import translate
from exporter.engine.templating import Template, TemplateProblem
from exporter.issues import Issue, IssueCode, Severity, SourceLocation, error
from exporter.mapping.tables import CodeTable, suggest
from exporter.mapping.yamlsrc import Positions, position


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
AS_TYPES = ("date", "dateTime", "instant", "decimal", "integer", "string", "boolean", "code")
_SIMPLE_EQ = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'([^'\\]*)'\s*\Z")
_PATH = re.compile(r"(\$\.|(\^\.)+)?[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*\Z")


class DataPath:
    """The JSON path of a record, formatted only when an issue needs it (thousands are made per export)."""

    __slots__ = ("base", "index")

    def __init__(self, base: Any, index: int | None = None):
        self.base, self.index = base, index

    def __str__(self) -> str:
        return f"{self.base}[{self.index}]" if self.index is not None else str(self.base)


@dataclass
class Scope:
    item: Any
    data_path: Any  # str or DataPath
    parent: "Scope | None"
    run: "RunContext"
    index: int | None = None  # position in the enclosing for_each list item (templates: `index`)

    def up(self, n: int) -> "Scope":
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

    def report(self, message_id: str, message: str, where: SourceLocation | None, data_path: Any,
               code: IssueCode = IssueCode.VALUE) -> None:
        path = str(data_path) if data_path is not None else ""
        self.issues.append(Issue(Severity.ERROR, code, message, message_id,
                                 expression=(path,) if path else (), location=where))

ValueFn = Callable[[Scope], Any]


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
def converter(kind: str, tz: str) -> Callable[[Any], Any]:
    zone = ZoneInfo(tz)

    def to_datetime(v: Any) -> str:
        if isinstance(v, str):
            text = v.strip().replace(" ", "T", 1)
            if re.fullmatch(r"\d{4}(-\d\d(-\d\d)?)?", text):
                return text  # a partial date is a valid dateTime
            d = datetime.fromisoformat(text.replace("Z", "+00:00"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            d = datetime.fromtimestamp(v, tz=timezone.utc)
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
        if isinstance(v, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(v, (int, float)):
            return v
        d = Decimal(str(v).strip())
        if not d.is_finite():
            raise ValueError("not a finite number")
        return int(d) if d == d.to_integral_value() and "." not in str(v) else float(d)

    def to_integer(v: Any) -> int:
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
        if v in ("true", "false"):
            return v == "true"
        raise ValueError(f"{v!r} is not a boolean")

    def to_code(v: Any) -> str:
        s = " ".join(str(v).split())
        if not s:
            raise ValueError("empty code")
        return s

    return {"dateTime": to_datetime, "instant": to_instant, "date": to_date, "decimal": to_decimal,
            "integer": to_integer, "string": lambda v: str(v), "boolean": to_boolean, "code": to_code}[kind]


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

        def structure(scope: Scope) -> Any:
            if cond is not None and not cond(scope):
                return MISSING
            out = {}
            for k, fn in fields:
                v = fn(scope)
                if v is MISSING or (not v and type(v) in _CONTAINERS):
                    continue  # empty values are omitted
                out[k] = v
            return out or MISSING
        return structure
    if isinstance(spec, list):
        parts = [_compile_list_item(v, at + (i,), cc) for i, v in enumerate(spec)]

        def listing(scope: Scope) -> Any:
            out: list[Any] = []
            for expand, fn in parts:
                v = fn(scope)
                if v is MISSING:
                    continue
                if expand:
                    out.extend(v)
                elif v or type(v) not in _CONTAINERS:
                    out.append(v)
            return out or MISSING
        return listing
    if spec is None:
        return cc.fail("MAP_SPEC", "null is not a value; leave the element out instead", at)
    return lambda scope, _v=spec: _v


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
    body = compile_value(spec["item"], at + ("item",), cc)

    def expand(scope: Scope) -> Any:
        out = []
        for i, (value, data_path) in enumerate(select(scope)):
            sub = Scope(value, data_path, scope, scope.run, i)
            if when is not None and not when(sub):
                continue
            v = body(sub)
            if v is not MISSING:
                out.append(v)
        return out
    return True, expand


def selector(text: Any, at: tuple[Any, ...], cc: CompileContext) -> Callable[[Scope], list[tuple[Any, Any]]]:
    """A for_each selection: a simple path to a list (or a single record)."""
    parsed = compile_path(text) if isinstance(text, str) else None
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
            return [(x, DataPath(base, i)) for i, x in enumerate(v) if x is not None]
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
    loc = cc.loc(at)
    simple = _SIMPLE_EQ.match(text)
    if simple:  # `field = 'literal'`, the common filter: a dict look-up (lists fall through to FHIRPath)
        name, literal = simple.group(1), simple.group(2)
    native = translate(text)  # e.g. exists(), and/or: ~1 µs instead of ~40 µs through fhirpathpy

    def holds(scope: Scope) -> bool:
        if simple:
            item = scope.item
            if isinstance(item, dict):
                v = item.get(name)
                if not isinstance(v, (list, dict)):
                    return v == literal if isinstance(v, str) else False
        if native is not None:
            verdict = native(scope.item, None, {})
            if verdict is not None:
                return verdict
        try:
            result = fn(scope.item, {"doc": scope.run.doc, "parent": scope.parent.item if scope.parent else None})
        except FhirPathError as exc:
            scope.run.report("MAP_FHIRPATH_EVAL", str(exc), loc, scope.data_path)
            return False
        return result == [True]
    return holds


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
        conv = converter(kind, cc.default_timezone)
        loc = cc.loc(at)
        inner = base

        def converted(scope: Scope) -> Any:
            v = inner(scope)
            if v is MISSING:
                return v
            try:
                return conv(v)
            except (ValueError, TypeError, InvalidOperation, OverflowError) as exc:
                scope.run.report("MAP_CONVERT", f"cannot convert the value to {kind}: {exc}", loc, scope.data_path)
                return MISSING
        base = converted
    if "when" in spec:
        cond = condition(spec["when"], at + ("when",), cc)
        inner2 = base
        base = lambda scope: inner2(scope) if cond(scope) else MISSING  # noqa: E731
    return base


def _compile_base(op: str, spec: dict[str, Any], at: tuple[Any, ...], cc: CompileContext) -> ValueFn:
    arg = spec[op]
    here = at + (op,)
    if op == "literal":
        return lambda scope, _v=arg: _v
    if op == "now":
        return lambda scope: scope.run.export_time
    if op == "path":
        parsed = compile_path(arg)
        if parsed is None:
            return cc.fail("MAP_PATH_SYNTAX", f"not a simple path: {arg!r} (use 'fhirpath' for expressions)", here)
        return _getter(*parsed)
    if op == "fhirpath":
        if not isinstance(arg, str):
            return cc.fail("MAP_SPEC", "'fhirpath' needs an expression string", here)
        try:
            fn = compile_expression(arg)
        except FhirPathError as exc:
            return cc.fail("MAP_FHIRPATH_SYNTAX", str(exc), here)
        loc = cc.loc(here)

        def evaluate(scope: Scope) -> Any:
            try:
                result = fn(scope.item, {"doc": scope.run.doc, "parent": scope.parent.item if scope.parent else None})
            except FhirPathError as exc:
                scope.run.report("MAP_FHIRPATH_EVAL", str(exc), loc, scope.data_path)
                return MISSING
            result = [_plain(r) for r in result]
            if not result:
                return MISSING
            return result[0] if len(result) == 1 else result
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
        loc = cc.loc(here)

        def render(scope: Scope) -> Any:
            try:
                text = tpl.render({"item": scope.item, "parent": scope.parent.item if scope.parent else None,
                                   "doc": scope.run.doc, "export_time": scope.run.export_time, "index": scope.index})
            except TemplateProblem as exc:
                scope.run.report("MAP_TEMPLATE_RENDER", str(exc), loc, scope.data_path)
                return MISSING
            if op == "xhtml":
                return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{text}</div>'}
            return text if text != "" else MISSING
        return render
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

        def lookup(scope: Scope) -> Any:
            key = key_fn(scope)
            if key is MISSING:
                return MISSING
            codings = table.lookup(key)
            if codings is None:
                scope.run.report("MAP_CODE_UNMAPPED", f"value '{key}' is not in code table '{table.id}' "
                                 f"({table.file}){suggest(key, table.entries)}", loc, scope.data_path,
                                 IssueCode.CODE_INVALID)
                return MISSING
            if fld == "codeable":
                return {"coding": [dict(c) for c in codings]}
            if fld == "codings":
                return [dict(c) for c in codings]
            if fld == "coding":
                return dict(codings[0])
            if fld.startswith("attribute:"):
                name = fld.split(":", 1)[1]
                value = table.attributes.get(str(key), {}).get(name)
                if value is None:
                    scope.run.report("MAP_CODE_UNMAPPED", f"entry '{key}' of code table '{table.id}' has no attribute "
                                     f"'{name}'", loc, scope.data_path, IssueCode.CODE_INVALID)
                    return MISSING
                return value
            return codings[0].get(fld, MISSING)
        return lookup
    if op == "ref":
        target = cc.mapping_types.get(arg) if isinstance(arg, str) else None
        if target is None:
            return cc.fail("MAP_REF_UNKNOWN", f"no mapping '{arg}' to refer to{suggest(arg, cc.mapping_types)}", here)
        _, singleton = target
        if "key" not in spec and not singleton:
            return cc.fail("MAP_SPEC", f"mapping '{arg}' produces many resources: say which with 'key'", at)
        key_fn = compile_value(spec["key"], at + ("key",), cc) if "key" in spec else (lambda scope: arg)
        loc = cc.loc(here)

        def reference(scope: Scope) -> Any:
            key = key_fn(scope)
            if key is MISSING:
                return MISSING
            urn = scope.run.ref_resolver(arg, key, loc, scope.data_path)
            return {"reference": urn} if urn else MISSING
        return reference
    raise AssertionError(op)


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v
