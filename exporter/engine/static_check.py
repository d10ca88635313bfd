"""What `fhir-export check` proves before any data arrives (layer L2).

The domain schema is closed (`additionalProperties: false`), so every field a record can have is
known. Every expression of a compiled mapping set (recorded by the compiler in
`CompileContext.expressions`) is read against it, in the scope it is evaluated in — the document,
a record of a mapping's `for_each` list, an item of a nested `for_each`:

* `path`, `for_each`, the fields a `fhirpath`/`when` expression navigates and the look-ups of a
  template (`item.x`, `doc.patient.y`, `parent.z`) must name fields the schema has (with a
  suggestion when they do not), and templates may only use the variables the engine passes;
* FHIRPath functions must exist in the evaluator with that number of arguments, string functions
  must not be applied to numbers (and the reverse), and a comparison must be able to hold: a field
  compared with a value of another type, or with a value its enum does not allow
  (`kind = 'spo2'`), can never be true;
* records of a list no mapping and no `ignore:` rule selects are found where the conditions are
  `field = 'literal'` tests (see exporter/engine/coverage.py for the run-time counterpart);
* a code table's `target` element must be an element id of the target profile's snapshot.

Every problem is an issue with the file:line:column of the YAML node and a fix hint.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from exporter.engine.builder import Engine
from exporter.engine.coverage import NESTED, ListGroup, Reader, list_key
from exporter.engine.templating import TemplateProblem, template_reads
from exporter.engine.values import _TEMPLATE_VARIABLES, CompileContext, Scope, compile_path, literal_test
from exporter.fhir.fhirpath import FhirPathError, functions, parse_strict
from exporter.issues import Issue, IssueCode, SourceLocation, error
from exporter.mapping.fields import ANY, Field, fields_of
from exporter.mapping.tables import suggest
from exporter.mapping.yamlsrc import position

# the variables a value template is given (narratives are templates for people: exporter/narrative)
VALUE_TEMPLATE_VARIABLES = tuple(_TEMPLATE_VARIABLES)
FHIRPATH_VARIABLES = ("doc", "parent", "ucum", "sct", "loinc")
_STRING_FUNCTIONS = frozenset({"upper", "lower", "trim", "substring", "startsWith", "endsWith", "matches", "replace",
                               "replaceMatches", "length", "indexOf", "split", "toChars", "encode", "decode"})
_MATH_FUNCTIONS = frozenset({"abs", "ceiling", "floor", "round", "sqrt", "ln", "exp", "log", "power", "truncate"})
_BOOLEAN_FUNCTIONS = frozenset({"exists", "empty", "not", "all", "allTrue", "anyTrue", "allFalse", "anyFalse", "subsetOf",
                                "supersetOf", "isDistinct", "startsWith", "endsWith", "matches", "is",
                                "convertsToBoolean", "convertsToDate", "convertsToDateTime", "convertsToDecimal",
                                "convertsToInteger", "convertsToQuantity", "convertsToString", "convertsToTime"})
_SAME_FUNCTIONS = frozenset({"where", "first", "last", "single", "tail", "skip", "take", "distinct", "trace"})
_RESULT = {"count": "integer", "length": "integer", "indexOf": "integer", "toInteger": "integer", "toDecimal": "number",
           "upper": "string", "lower": "string", "trim": "string", "substring": "string", "replace": "string",
           "replaceMatches": "string", "toString": "string", "join": "string"}
_NUMBERS = ("number", "integer")


def _scope(field: Field, parent: Scope | None) -> Scope:
    """The engine's Scope, holding the Field of the records it will hold at run time: an expression
    is read in the scope it runs in (`^.`, `parent`, `%parent` go up as they do then)."""
    return Scope(field, None, parent, None)  # type: ignore[arg-type]  # no run: nothing is evaluated


def _root(scope: Scope) -> Scope:
    while scope.parent is not None:
        scope = scope.parent
    return scope


class _Literal(Field):
    """A literal of a FHIRPath expression."""


def check_static(engine: Engine, schema: dict[str, Any] | None) -> list[Issue]:
    """Every problem `check` can prove without data (see the module docstring)."""
    issues: list[Issue] = []
    issues += check_table_targets(engine)
    if not isinstance(schema, dict):
        return issues
    root = _scope(fields_of(schema), None)
    for mapping, cc in engine.contexts:
        record = _inner(root, mapping.for_each) if mapping is not None and mapping.for_each is not None else root
        _Reader(cc, root, record, issues).run()
    issues += _coverage(engine, root)
    issues += _origins(engine, root)
    return issues


def _origins(engine: Engine, root: Scope) -> list[Issue]:
    """A mapping's `origin: {path: …}` can only give origin keys bundle.yaml declares: every value the
    schema allows at that path (an enum) must be one."""
    issues: list[Issue] = []
    keys = engine.origin_keys()
    for c in engine.compiled:
        spec = c.m.origin
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            continue
        parsed = compile_path(spec["path"])
        record = _inner(root, c.m.for_each) if c.m.for_each is not None else root
        found = _resolve(parsed, record) if parsed is not None else None
        missing = [v for v in (found.values or ()) if v not in keys] if found is not None else []
        if missing:
            issues.append(error(IssueCode.INVALID, f"the schema allows {', '.join(map(repr, missing))} at "
                                f"'{spec['path']}', which bundle.yaml provenance.origins does not declare "
                                f"(it has: {', '.join(keys) or 'none'})", "MAP_ORIGIN_UNKNOWN",
                                location=position(c.m.positions, ("origin",))))
    return issues


# -- fields ----------------------------------------------------------------------------------------
def _element(f: Field | None) -> Field:
    """The Field of a list's elements (a single record stands for itself)."""
    if f is None:
        return ANY
    return f.items if f.is_("array") and f.items is not None else f


def _member(f: Field, name: str) -> tuple[Field | None, str | None]:
    """(the Field of `f.name`, or None when unknown; a problem text, or None)."""
    if f.is_("array") and f.items is not None:
        f = f.items
    if not f.types and not f.properties:
        return None, None  # nothing known about it
    if f.properties and name in f.properties:
        return f.properties[name], None
    if not f.may_be("object"):
        kind = " or ".join(sorted(f.types))
        return None, f"'{f.name}' is a {kind}; it has no field '{name}'"
    if f.closed:
        return None, f"the domain schema has no field '{name}' in {f.name}{suggest(name, f.properties)}"
    return None, None


def _resolve(parsed: tuple[int, bool, tuple[tuple[str, int | None], ...]], scope: Scope,
             report: Any = None, loc: SourceLocation | None = None) -> Field | None:
    """The Field a simple path (see values.compile_path) reaches from `scope`; None: not known.
    A field the schema does not have goes to `report`."""
    up, from_root, steps = parsed
    current: Field | None = _root(scope).item if from_root else scope.up(up).item
    for name, index in steps:
        if current is None:
            return None
        found, problem = _member(current, name)
        if problem is not None:
            if report is not None:
                report("MAP_FIELD_UNKNOWN", problem, loc)
            return None
        current = found
        if index is not None and current is not None:
            current = current.items if current.is_("array") else None
    return current


def _inner(scope: Scope, for_each: str | None, report: Any = None, loc: SourceLocation | None = None) -> Scope:
    """The scope of the elements `for_each` selects in `scope`."""
    parsed = compile_path(for_each) if for_each else None
    if parsed is None:
        return _scope(ANY, scope)
    return _scope(_element(_resolve(parsed, scope, report, loc)), scope)


def _list_scope(root: Scope, key: str | None, report: Any = None, loc: SourceLocation | None = None) -> Scope:
    """The scope of the elements of a list named by its key (`measurements`, `diary_entries[].symptoms`)."""
    scope = root
    for part in (key or "").removeprefix("$.").split(NESTED):
        scope = _inner(scope, part, report, loc)
    return scope


# -- expressions of one compiled mapping -----------------------------------------------------------
class _Reader:
    def __init__(self, cc: CompileContext, root: Scope, record: Scope, issues: list[Issue]):
        self.cc, self.root, self.record, self.issues = cc, root, record, issues
        self.each_for = {at[:-1]: text for op, text, at in cc.expressions if op == "for_each" and len(at) > 1}

    def report(self, message_id: str, message: str, loc: SourceLocation | None) -> None:
        self.issues.append(error(IssueCode.INVALID, message, message_id, location=loc))

    def scope_of(self, at: tuple[Any, ...]) -> Scope:
        """The scope the expression at YAML path `at` is evaluated in: a mapping's own `for_each` and
        an ignore rule's are read from the document; the body of a nested `for_each` item and its
        `when` from the selected element; everything else from the record."""
        if at == ("for_each",) or at[:1] == ("ignore",) and at[2:] == ("for_each",):
            return self.root
        if at[:1] == ("ignore",):
            return _list_scope(self.root, self.each_for.get(at[:2]))
        scope = self.record
        for i in range(1, len(at)):
            if at[:i] in self.each_for and at[i] in ("item", "when"):
                scope = _inner(scope, self.each_for[at[:i]])
        return scope

    def run(self) -> None:
        for op, text, at in self.cc.expressions:
            scope = self.scope_of(at)
            loc = self.cc.loc(at)
            if op == "for_each" and NESTED in text:  # an ignore rule's nested list
                _list_scope(scope, text, self.report, loc)
            elif op in ("path", "for_each"):
                parsed = compile_path(text)
                if parsed is not None:
                    _resolve(parsed, scope, self.report, loc)
            elif op in ("fhirpath", "when"):
                _FhirPath(scope, self.report, loc).check(text)
            elif op in ("template", "xhtml"):
                _template(text, loc, scope, VALUE_TEMPLATE_VARIABLES, self.issues)


def _template(source: str, loc: SourceLocation | None, scope: Scope, variables: tuple[str, ...],
              issues: list[Issue]) -> None:
    try:
        free, reads = template_reads(source)
    except TemplateProblem:
        return  # reported by the compiler (MAP_TEMPLATE_SYNTAX)

    def at_line(line: int) -> SourceLocation | None:
        if loc is None or loc.line is None or line <= 1:
            return loc
        return SourceLocation(loc.file, loc.line + line - 1, None)

    for name in sorted(free - set(variables)):
        line = next((r.line for r in reads if r.variable == name), 1)
        issues.append(error(IssueCode.INVALID, f"template variable '{name}' does not exist here (there are "
                            f"{', '.join(variables)}){suggest(name, variables)}", "MAP_TEMPLATE_VARIABLE",
                            location=at_line(line)))
    fields = {"item": scope.item, "doc": _root(scope).item,
              "parent": scope.parent.item if scope.parent is not None else None}
    for r in reads:
        current = fields.get(r.variable)
        for step in r.steps:
            if current is None:
                break
            if isinstance(step, int):
                current = current.items if current.is_("array") else None
                continue
            found, problem = _member(current, step)
            if problem is not None:
                issues.append(error(IssueCode.INVALID, f"template reads {r.text}: {problem}", "MAP_FIELD_UNKNOWN",
                                    location=at_line(r.line)))
                break
            current = found


class _FhirPath:
    """Reads a FHIRPath expression against the Fields of its scope, reporting what cannot work."""

    def __init__(self, scope: Scope, report: Any, loc: SourceLocation | None):
        self.scope, self.report, self.loc, self.text = scope, report, loc, ""
        self.known = _functions()

    def check(self, text: str) -> None:
        self.text = text
        try:
            ast = parse_strict(text)
        except FhirPathError:
            return  # reported by the compiler (MAP_FHIRPATH_SYNTAX)
        for node in ast["children"]:
            self.expr(node, self.scope.item)

    def say(self, message_id: str, message: str) -> None:
        self.report(message_id, f"in {self.text!r}: {message}", self.loc)

    def expr(self, node: dict[str, Any], focus: Field | None) -> Field | None:
        kind = node.get("type")
        children = node.get("children") or []
        if kind in ("TermExpression", "ParenthesizedTerm") and children:
            return self.expr(children[0], focus)
        if kind == "InvocationTerm":
            return self.invoke(children[0], focus, focus)
        if kind == "LiteralTerm":
            return _literal(children[0])
        if kind == "ExternalConstantTerm":
            name = children[0]["children"][0].get("text", "").strip("`'")
            if name == "doc":
                doc: Field | None = _root(self.scope).item  # the static check's scopes hold Fields
                return doc
            if name == "parent":
                return self.scope.parent.item if self.scope.parent is not None else None
            if name not in FHIRPATH_VARIABLES:
                self.say("MAP_FHIRPATH_VARIABLE", f"variable %{name} does not exist here (there are "
                         f"%{', %'.join(FHIRPATH_VARIABLES)}){suggest(name, FHIRPATH_VARIABLES)}")
            return Field("string", frozenset({"string"})) if name in ("ucum", "sct", "loinc") else None
        if kind == "InvocationExpression":
            base = self.expr(children[0], focus)
            return self.invoke(children[1], focus, base)
        if kind == "IndexerExpression":
            base = self.expr(children[0], focus)
            self.expr(children[1], focus)
            return _element(base) if base is not None else None
        if kind == "EqualityExpression":
            left, right = (self.expr(c, focus) for c in children)
            op = (node.get("terminalNodeText") or ["="])[0]
            if op in ("=", "!="):
                self.compare(left, right, children, op)
            return Field("boolean", frozenset({"boolean"}))
        if kind == "InequalityExpression":
            left, right = (self.expr(c, focus) for c in children)
            if _clash(left, right):
                self.say("MAP_FHIRPATH_TYPE", f"{_show(left)} and {_show(right)} cannot be ordered")
            return Field("boolean", frozenset({"boolean"}))
        if kind in ("AdditiveExpression", "MultiplicativeExpression"):
            left, right = (self.expr(c, focus) for c in children)
            op = (node.get("terminalNodeText") or ["+"])[0]
            strings = [f for f in (left, right) if f is not None and f.is_("string")]
            numbers = [f for f in (left, right) if f is not None and f.is_(*_NUMBERS)]
            if op != "&" and strings and (numbers or op != "+"):
                self.say("MAP_FHIRPATH_TYPE", f"'{op}' cannot combine {_show(left)} and {_show(right)}"
                         + ("; join strings with '&'" if op == "+" else ""))
                return None
            if op == "&":
                return Field("string", frozenset({"string"}))
            return Field("number", frozenset(_NUMBERS)) if len(numbers) == 2 else None
        for child in children:
            if isinstance(child, dict):
                self.expr(child, focus)
        if kind in ("AndExpression", "OrExpression", "ImpliesExpression", "MembershipExpression"):
            return Field("boolean", frozenset({"boolean"}))
        return None

    def invoke(self, inv: dict[str, Any], focus: Field | None, base: Field | None) -> Field | None:
        kind = inv.get("type")
        if kind == "MemberInvocation":
            name = inv["children"][0].get("text", "").strip("`")
            if base is None:
                return None
            found, problem = _member(base, name)
            if problem is not None:
                self.say("MAP_FIELD_UNKNOWN", problem)
            return found
        if kind == "ThisInvocation":
            return focus
        if kind == "FunctionInvocation":
            return self.function(inv["children"][0], focus, base)
        return None

    def function(self, functn: dict[str, Any], focus: Field | None, base: Field | None) -> Field | None:
        name = functn["children"][0].get("text", "")
        params = functn["children"][1]["children"] if len(functn["children"]) > 1 else []
        if name not in self.known:
            self.say("MAP_FHIRPATH_FUNCTION", f"there is no FHIRPath function {name}(){suggest(name, self.known)}")
            return None
        arities = self.known[name]
        if arities is not None and len(params) not in arities:
            counts = " or ".join(str(n) for n in sorted(arities))
            self.say("MAP_FHIRPATH_FUNCTION", f"{name}() takes {counts} argument(s), not {len(params)}")
            return None
        kinds = arities[len(params)] if arities is not None else ("Expr",) * len(params)
        each = _element(base) if base is not None else None
        results = []
        # a function may declare more parameter kinds than a call passes arguments (optional ones)
        for param, k in zip(params, kinds, strict=False):
            if k != "TypeSpecifier":  # ofType(Quantity) names a type, not a field
                results.append(self.expr(param, each if k == "Expr" else focus))
        if base is not None and base.types:
            element = _element(base)
            if name in _STRING_FUNCTIONS and element.types and not element.may_be("string"):
                self.say("MAP_FHIRPATH_TYPE", f"{name}() works on strings, {_show(element)} is not one")
            if name in _MATH_FUNCTIONS and element.types and not element.may_be(*_NUMBERS):
                self.say("MAP_FHIRPATH_TYPE", f"{name}() works on numbers, {_show(element)} is not one")
        if name in _BOOLEAN_FUNCTIONS or name == "contains" and base is not None and _element(base).is_("string"):
            return Field("boolean", frozenset({"boolean"}))
        if name in _RESULT:
            return Field(_RESULT[name], frozenset({_RESULT[name]}))
        if name in _SAME_FUNCTIONS:
            return base
        if name == "select" and results:
            return results[0]
        return None

    def compare(self, left: Field | None, right: Field | None, nodes: list[dict[str, Any]], op: str) -> None:
        if _clash(left, right):
            self.say("MAP_FHIRPATH_TYPE", f"{_show(left)} is compared with {_show(right)}: "
                     f"{'never equal' if op == '=' else 'always different'}")
            return
        for field, other in ((left, right), (right, left)):
            if isinstance(other, _Literal) and field is not None and not isinstance(field, _Literal):
                allowed = _element(field).values
                value = other.values[0] if other.values else None
                if allowed is not None and value not in allowed:
                    shown = ", ".join(repr(v) for v in allowed)
                    self.say("MAP_CONDITION_NEVER", f"'{_element(field).name}' is never {value!r} (the domain schema "
                             f"allows {shown}), so this comparison is {'never true' if op == '=' else 'always true'}"
                             f"{suggest(value, allowed)}")


@lru_cache(maxsize=1)
def _functions() -> dict[str, dict[int, tuple[str, ...]] | None]:
    return functions()


def _literal(node: dict[str, Any]) -> Field | None:
    kind, text = node.get("type"), node.get("text", "")
    if kind == "StringLiteral":
        return _Literal(text, frozenset({"string"}), values=(text[1:-1].replace("\\'", "'"),))
    if kind == "NumberLiteral":
        value: Any = int(text) if text.isdigit() else float(text)
        return _Literal(text, frozenset({"integer", "number"} if isinstance(value, int) else {"number"}), values=(value,))
    if kind == "BooleanLiteral":
        return _Literal(text, frozenset({"boolean"}), values=(text == "true",))
    return None


def _kind(f: Field) -> str | None:
    """'string', 'number' or 'boolean' when `f` (or its elements) can only be that, else None."""
    f = _element(f)
    for kind, types in (("string", ("string",)), ("number", _NUMBERS), ("boolean", ("boolean",))):
        if f.is_(*types):
            return kind
    return None


def _clash(a: Field | None, b: Field | None) -> bool:
    """Two known scalar kinds that never compare equal (a date string with a date literal is a
    string here: FHIRPath compares those, so they never clash)."""
    if a is None or b is None:
        return False
    ka, kb = _kind(a), _kind(b)
    return ka is not None and kb is not None and ka != kb


def _show(f: Field | None) -> str:
    if f is None:
        return "a value"
    if isinstance(f, _Literal):
        return f"the {_kind(f) or 'value'} {f.name}"
    return f"'{_element(f).name}' (a {_kind(f) or 'value'})"


# -- records no mapping selects --------------------------------------------------------------------
def _coverage(engine: Engine, root: Scope) -> list[Issue]:
    """Lists of the document read by no mapping; records of a list (or elements of a nested list,
    see coverage.py) whose conditions are all `field = 'literal'` / `field != 'literal'` tests on one
    field that no reader (and no ignore rule) selects; two readers, or a reader and an ignore rule,
    that select the same records. Nothing is said while a mapping file did not load: it may read
    any list, and its own errors come first."""
    issues: list[Issue] = []
    ms = engine.ms
    if ms.unreadable or not ms.root.is_dir():
        return issues
    compiled = {c.m.id for c in engine.compiled}
    uncompiled = [m for m in ms.mappings if m.id not in compiled]  # e.g. an unknown profile: reported already
    texts = [str(text) for _, cc in engine.contexts for _, text, _ in cc.expressions]
    texts += [m.for_each for m in uncompiled if isinstance(m.for_each, str)]
    for name, f in root.item.properties.items():
        if f.is_("array") and not any(re.search(rf"\b{re.escape(name)}\b", t) for t in texts):
            issues.append(error(IssueCode.INVALID, f"the domain schema's list '{name}' is read by no mapping: its "
                                "records would be left out of every export; map it, or add an `ignore:` rule with "
                                "a reason to bundle.yaml", "MAP_LIST_UNMAPPED", location=engine.coverage.layout))
    undecided = {NESTED.join(list_key((), m.for_each) or ()) for m in uncompiled}  # their records: once they load
    groups = [g for g in engine.coverage.lists.values() if not g.unconditional and g.readers]
    for group in groups + list(engine.coverage.nested.values()):
        if group.key not in undecided:
            issues += _list_coverage(engine, root, group)
    return issues


def _list_coverage(engine: Engine, root: Scope, group: ListGroup) -> list[Issue]:
    tests = [(r, literal_test(r.when)) for r in group.readers]
    ignores = [(r, literal_test(r.when) if r.when is not None else None) for r in engine.coverage.ignores
               if r.list == group.key]
    if any(r.when is None for r, _ in ignores):
        return []  # every record not mapped is ignored
    names = {t[0] for _, t in tests + ignores if t is not None}
    if len(names) != 1 or any(t is None for _, t in tests + ignores):
        return []  # decided per record at run time (coverage.py)
    (name,) = names
    known = [(r, t) for r, t in tests if t is not None]  # all of them (checked above)
    known_ignores = [(r, t) for r, t in ignores if t is not None]
    element = _list_scope(root, group.key).item
    allowed = element.values if name == "$this" else getattr(_member(element, name)[0], "values", None)

    def covers(test: tuple[str, str, str]) -> list[Any] | None:
        """The values a test selects (None: not known)."""
        if test[1] == "=":
            return [test[2]]
        return [v for v in allowed if v != test[2]] if allowed is not None else None
    covered = [(r, covers(t)) for r, t in known]
    ignored = [(r, covers(t)) for r, t in known_ignores]
    if any(values is None for _, values in covered + ignored):
        return []
    issues: list[Issue] = []
    shown_name = "" if name == "$this" else f"{name} "
    seen: dict[Any, Reader] = {}
    for r, values in covered:
        twice = [v for v in values or () if v in seen]
        if twice:
            issues.append(error(IssueCode.INVALID, f"{r.name} selects the same records of '{group.key}' as "
                                f"{seen[twice[0]].name} ({shown_name}{twice[0]!r}): each record must be selected by "
                                "exactly one reader with a `when`", "MAP_RECORDS_OVERLAP", location=r.location))
        for v in values or ():
            seen.setdefault(v, r)
    for rule, values in ignored:
        twice = [v for v in values or () if v in seen]
        if twice:
            issues.append(error(IssueCode.INVALID, f"the ignore rule for {shown_name}{twice[0]!r} contradicts "
                                f"{seen[twice[0]].name}, which exports those records; remove one of them",
                                "MAP_IGNORE_MAPPED", location=rule.location))
        for v in values or ():
            seen.setdefault(v, rule)  # type: ignore[arg-type]
    missing = [v for v in allowed or () if v not in seen]
    if not missing:
        return issues
    shown = ", ".join(repr(v) for v in missing)
    # who to blame: the one reader no allowed value can satisfy (`kind = 'spo2'`), or one whose literal is
    # close to a missing value (`kind = 'Weight'`), or the only item reading a nested list; else nobody
    never = [(r, t) for r, t in known if allowed is not None and not set(covers(t) or ()) & set(allowed)]
    close = [r for r, t in never if any(difflib.get_close_matches(str(v), [t[2]], n=1) for v in missing)]
    suspect = never[0][0] if len(never) == 1 else close[0] if close else \
        group.readers[0] if group.nested and len(group.readers) == 1 else None
    reader = "nested `for_each` item" if group.nested else "mapping"
    what = f"records of '{group.key}' with {name} {shown}" if name != "$this" else f"elements {shown} of '{group.key}'"
    text = f"{what} (allowed by the domain schema) are selected by no {reader}: an export with one would fail; "
    if suspect is not None and group.nested and len(group.readers) == 1:
        text += (f"{suspect.name} leaves them out (`when: {suspect.when}`): select them, or, if leaving them out is "
                 f"intended, add an `ignore:` rule for '{group.key}' with a reason to bundle.yaml")
    elif group.nested:
        text += (f"{suspect.name} (`when: {suspect.when}`) looks meant for them: check its condition, or add "
                 if suspect is not None else "add ")
        text += f"a `for_each` item that selects them, or an `ignore:` rule for '{group.key}' with a reason to bundle.yaml"
    else:
        text += (f"{suspect.name} (`when: {suspect.when}`) looks meant for them: check its condition, or add "
                 if suspect is not None else "add ")
        text += f"a mapping (`when: \"{name} = '{missing[0]}'\"`) or an `ignore:` rule with a reason to bundle.yaml"
    issues.append(error(IssueCode.INVALID, text, "MAP_RECORDS_UNMAPPED",
                        location=suspect.location if suspect is not None else engine.coverage.layout))
    return issues


# -- code table targets ----------------------------------------------------------------------------
def check_table_targets(engine: Engine) -> list[Issue]:
    """Each `target` of a code table names a profile we have and one of its snapshot element ids."""
    issues: list[Issue] = []
    for table in engine.ms.tables.values():
        for i, target in enumerate(table.targets):
            at = ("target", i)
            if not isinstance(target, dict):
                continue
            profile = str(target.get("profile", "")).split("|")[0]
            sd = engine.store.structure(profile) if profile else None
            if sd is None:
                issues.append(error(IssueCode.NOT_FOUND, f"target profile '{profile}' is not in igs/ or the FHIR core "
                                    "package", "MAP_TABLE_TARGET", location=position(table.positions, at + ("profile",))))
                continue
            element = str(target.get("element", ""))
            ids = [e.get("id", "") for e in (sd.get("snapshot") or {}).get("element", [])]
            if element not in ids:
                issues.append(error(IssueCode.VALUE, f"'{element}' is not an element id of {profile}; "
                                    f"{_closest_id(element, ids)}", "MAP_TABLE_TARGET",
                                    location=position(table.positions, at + ("element",))))
            for key in target.get("keys") or []:
                if str(key) not in table.entries:
                    issues.append(error(IssueCode.VALUE, f"target key '{key}' is not an entry of table '{table.id}'"
                                        f"{suggest(key, table.entries)}", "MAP_TABLE_TARGET",
                                        location=position(table.positions, at + ("keys",))))
    return issues


def _unsliced(element_id: str) -> str:
    return re.sub(r":[^.]+", "", element_id)


def _closest_id(element: str, ids: Iterable[str]) -> str:
    ids = list(ids)
    same = [i for i in ids if _unsliced(i) == _unsliced(element)]
    if same:
        return f"did you mean '{same[0]}'? (write the snapshot id, with the slice name)"
    hint = suggest(element, ids)
    return hint.removeprefix("; ") if hint else "element ids are listed in the profile's snapshot"
