"""Load, check and run `mappings/rules.yaml` (layer L1).

A rule file is YAML with one key, `rules`, a list of rules::

    - id: blood-pressure-order            # unique, lower-case words joined by '-'
      description: Systolic above diastolic.
      records: measurements               # optional: run per item of this list (else once on the document)
      when: {kind: blood_pressure}        # optional: only records whose fields have these values (or lists)
      check: {greater: {field: systolic, than: diastolic}}   # one kind of exporter/rules/checks.py
      severity: error                     # optional: error (default) or warning
      configurable: true                  # optional: a deployment may change the severity (settings)

The file is required (`RULE_FILE_MISSING`; `rules: []` for a set without rules). Loading collects
every problem with file:line:column (unknown keys with a suggestion, unknown check kinds, missing or
mistyped arguments, and — given the domain schema — fields, lists and `when` values the schema does
not know, and fields whose schema type the check cannot judge: `RULE_TYPE`, checks.VALUES). Running is
cheap: each list's rules are indexed by the `when` field they test first, so a record only meets the
rules that apply to it; errors and warnings are capped separately (issues.IssueCap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.issues import Issue, IssueCap, IssueCode, Severity, SourceLocation, error, issues_stopped
from exporter.mapping.tables import suggest
from exporter.mapping.yamlsrc import MappingSourceError, Positions, load_yaml, position
from exporter.rules.checks import KINDS, TIMES, VALUES, CheckFn, Kind, parse_field, parse_items_path
from exporter.settings import Settings

RULE_KEYS = ("id", "description", "records", "when", "check", "severity", "configurable")
SEVERITIES = {"error": Severity.ERROR, "warning": Severity.WARNING}
MAX_ISSUES: int = Settings.model_fields["max_issues"].default  # the one cap (settings), for callers without settings
_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")
_RANGE = re.compile(r"[A-Z][0-9]{2}-[A-Z][0-9]{2}\Z")


@dataclass
class Rule:
    id: str
    description: str
    kind: Kind
    args: dict[str, Any]
    fn: CheckFn
    location: SourceLocation | None
    records: str | None = None
    when: tuple[tuple[str, frozenset[Any]], ...] = ()
    severity: Severity = Severity.ERROR
    configurable: bool = False

    def explain(self) -> str:
        """What the rule requires, in one line (for `fhir-export check` and the docs)."""
        scope = f"each of `{self.records}`" if self.records else "the document"
        if self.when:
            scope += " where " + " and ".join(
                f"{k} = {'|'.join(sorted(map(str, v)))}" for k, v in self.when)
        return f"{scope}: {self.kind.explain(self.args)}"


@dataclass
class RuleSet:
    file: str = ""
    rules: list[Rule] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._plan()

    def set_severities(self, overrides: dict[str, str]) -> list[Issue]:
        """Apply a deployment's severities (settings `rule_severity`); problems are returned, not applied."""
        by_id = {r.id: r for r in self.rules}
        problems = []
        for rule_id, level in overrides.items():
            rule = by_id.get(rule_id)
            if rule is None:
                problems.append(error(IssueCode.NOT_FOUND, f"rule_severity names no rule '{rule_id}'"
                                      f"{suggest(rule_id, by_id)}", "RULE_SEVERITY"))
            elif not rule.configurable:
                problems.append(error(IssueCode.NOT_SUPPORTED, f"rule '{rule_id}' is not configurable", "RULE_SEVERITY",
                                      location=rule.location))
            elif level not in SEVERITIES:
                problems.append(error(IssueCode.INVALID, f"rule_severity of '{rule_id}' must be error or warning",
                                      "RULE_SEVERITY"))
        if not problems:
            for rule_id, level in overrides.items():
                by_id[rule_id].severity = SEVERITIES[level]
        return problems

    def _plan(self) -> None:
        """Index the rules: document rules; per list, rules without `when` and rules by their first `when` field."""
        self._document = [r for r in self.rules if r.records is None]
        self._lists: dict[str, tuple[list[Rule], dict[str, list[Rule]]]] = {}
        for r in self.rules:
            if r.records is None:
                continue
            always, indexed = self._lists.setdefault(r.records, ([], {}))
            if r.when:
                indexed.setdefault(r.when[0][0], []).append(r)
            else:
                always.append(r)

    def check(self, doc: Any, max_issues: int = MAX_ISSUES) -> list[Issue]:
        """Every broken rule of a schema-valid document, errors and warnings, capped per severity
        (exporter/issues.py IssueCap): at `max_issues` errors the check stops and a last error says
        so; warnings beyond `max_issues` are counted in one information issue, and every error rule
        still runs, however many warnings came first."""
        cap = IssueCap(max_issues)
        if type(doc) is not dict:
            return cap.issues
        for rule in self._document:
            for _, failure in rule.fn([(0, doc)], doc):
                if self._report(cap, rule, "$", failure):
                    return cap.issues
        for name, (always, indexed) in self._lists.items():
            records = doc.get(name)
            if type(records) is not list:
                continue
            items = [(i, r) for i, r in enumerate(records) if type(r) is dict]
            runs = [(rule, items) for rule in always]
            for key, rules in indexed.items():
                groups: dict[Any, list[tuple[int, Any]]] = {}
                for pair in items:
                    value = pair[1].get(key)
                    if type(value) in (str, int, bool):
                        groups.setdefault(value, []).append(pair)
                picked: dict[Any, list[tuple[int, Any]]] = {}  # rules with the same `when` check the same records
                for rule in rules:
                    chosen = picked.get(rule.when)
                    if chosen is None:
                        chosen = [p for v in rule.when[0][1] for p in groups.get(v, ())]
                        if len(rule.when) > 1:
                            chosen = [p for p in chosen if _matches(p[1], rule.when[1:])]
                        if len(rule.when[0][1]) > 1:
                            chosen.sort(key=lambda p: p[0])
                        picked[rule.when] = chosen
                    runs.append((rule, chosen))
            for rule, chosen in runs:
                for i, failure in rule.fn(chosen, doc):
                    if self._report(cap, rule, f"$.{name}[{i}]", failure):
                        return cap.issues
        return cap.close()

    @staticmethod
    def _report(cap: IssueCap, rule: Rule, at: str, failure: tuple[str, str]) -> bool:
        """Add the issue; True once the errors reached the cap (then a last issue says so)."""
        where, reason = failure
        path = where if where.startswith("$") else f"{at}.{where}"
        if cap.add(Issue(rule.severity, rule.kind.code, f"rule {rule.id}: {reason}", "DOMAIN_RULE",
                         expression=(path,), location=rule.location)):
            cap.close()
            cap.issues.append(issues_stopped(cap.limit))
            return True
        return False


def _matches(record: dict[str, Any], when: tuple[tuple[str, frozenset[Any]], ...]) -> bool:
    for key, values in when:
        v = record.get(key)
        if type(v) not in (str, int, bool) or v not in values:
            return False
    return True


# ----------------------------------------------------------------------------- loading

def load_rules(path: Path, display: str | None = None, schema: dict[str, Any] | None = None) -> RuleSet:
    """The rules of `path`; problems go to `.issues`. The file is required: a mapping set without it
    would export without a single cross-field rule and nobody would notice; a set that really wants
    none says so with `rules: []`. (A missing mapping folder is its loader's error, not repeated here.)"""
    file = display or str(path)
    if not path.is_file():
        if not path.parent.is_dir():
            return RuleSet(file)
        return RuleSet(file, issues=[error(
            IssueCode.NOT_FOUND, "the mapping set has no rule file, so no cross-field rule (unique ids, records "
            "inside the period, score sums, check digits, plausible ranges) would be checked: copy "
            "mappings/rules.yaml and adapt it, or write 'rules: []' to check none", "RULE_FILE_MISSING",
            location=SourceLocation(file))])
    try:
        data, pos = load_yaml(path, file)
    except MappingSourceError as exc:
        return RuleSet(file, issues=list(exc.issues))
    return parse_rules(data, pos, file, schema)


def parse_rules(data: Any, pos: Positions, file: str, schema: dict[str, Any] | None = None) -> RuleSet:
    issues: list[Issue] = []
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        issues.append(_bad("a rule file is a YAML mapping with a list 'rules'", "RULE_SHAPE", pos, ()))
        return RuleSet(file, issues=issues)
    for k in data:
        if k != "rules":
            issues.append(_bad(f"unknown key '{k}' in the rule file{suggest(k, ['rules'])}", "RULE_UNKNOWN_KEY",
                               pos, (k,)))
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["rules"]):
        rule = _parse_rule(raw, ("rules", i), pos, schema, issues)
        if rule is None:
            continue
        if rule.id in seen:
            issues.append(_bad(f"rule id '{rule.id}' is used twice", "RULE_DUPLICATE_ID", pos, ("rules", i, "id")))
            continue
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(file, rules, issues)


def _bad(message: str, message_id: str, pos: Positions, at: tuple[Any, ...],
         code: IssueCode = IssueCode.STRUCTURE) -> Issue:
    return error(code, message, message_id, location=position(pos, at))


def _parse_rule(raw: Any, at: tuple[Any, ...], pos: Positions, schema: dict[str, Any] | None,
                issues: list[Issue]) -> Rule | None:
    if not isinstance(raw, dict):
        issues.append(_bad("a rule is a YAML mapping", "RULE_SHAPE", pos, at))
        return None
    before = len(issues)
    for k in raw:
        if k not in RULE_KEYS:
            issues.append(_bad(f"unknown key '{k}' in a rule{suggest(k, RULE_KEYS)}", "RULE_UNKNOWN_KEY", pos, at + (k,)))
    rule_id, description = raw.get("id"), raw.get("description")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        issues.append(_bad("a rule needs an 'id' of lower-case words joined by '-'", "RULE_SHAPE", pos, at + ("id",)))
    if not isinstance(description, str) or not description.strip():
        issues.append(_bad("a rule needs a 'description'", "RULE_SHAPE", pos, at + ("description",)))
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        issues.append(_bad("'severity' is error or warning", "RULE_SHAPE", pos, at + ("severity",)))
    if not isinstance(raw.get("configurable", False), bool):
        issues.append(_bad("'configurable' is true or false", "RULE_SHAPE", pos, at + ("configurable",)))

    scope = _Scope(schema if len(issues) == before else None)  # after an unknown key, fields would only echo it
    records = raw.get("records")
    if records is not None:
        if not isinstance(records, str) or not records.isidentifier():
            issues.append(_bad("'records' names a list of the document", "RULE_SHAPE", pos, at + ("records",)))
        elif not scope.enter(records):
            issues.append(_bad(f"the domain schema has no list '{records}'{suggest(records, scope.lists())}",
                               "RULE_FIELD", pos, at + ("records",), IssueCode.NOT_FOUND))
            scope = _Scope(None)
    when = _parse_when(raw.get("when"), records, scope, at + ("when",), pos, issues)

    check = raw.get("check")
    kind: Kind | None = None
    args: dict[str, Any] = {}
    if not isinstance(check, dict) or len(check) != 1 or not isinstance(next(iter(check.values())), dict):
        issues.append(_bad(f"'check' is one of {', '.join(KINDS)} with its arguments, e.g. "
                           "{greater: {field: a, than: b}}", "RULE_SHAPE", pos, at + ("check",)))
    else:
        [(name, given)] = check.items()
        kind = KINDS.get(name)
        if kind is None:
            issues.append(_bad(f"unknown check '{name}'{suggest(name, KINDS)}", "RULE_UNKNOWN_CHECK", pos,
                               at + ("check", name)))
        else:
            args = _parse_args(kind, given, records, scope, at + ("check", name), pos, issues)
    if len(issues) > before or kind is None or not isinstance(rule_id, str) or not isinstance(description, str):
        return None  # (the last two were reported above)
    return Rule(rule_id, description.strip(), kind, args, kind.compile(args), position(pos, at), records, when,
                SEVERITIES[severity], raw.get("configurable", False))


def _parse_when(raw: Any, records: Any, scope: _Scope, at: tuple[Any, ...], pos: Positions,
                issues: list[Issue]) -> tuple[tuple[str, frozenset[Any]], ...]:
    if raw is None:
        return ()
    if records is None or not isinstance(raw, dict) or not raw:
        issues.append(_bad("'when' is a mapping of record fields to a value or a list of values, and needs 'records'",
                           "RULE_SHAPE", pos, at))
        return ()
    out = []
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(type(v) in (str, int, bool) for v in values):
            issues.append(_bad(f"'when.{key}' is a value or a list of values", "RULE_SHAPE", pos, at + (key,)))
            continue
        problem = scope.check_field((key,), values)
        if problem:
            issues.append(_bad(problem, "RULE_FIELD", pos, at + (key,), IssueCode.NOT_FOUND))
            continue
        out.append((key, frozenset(values)))
    return tuple(out)


def _parse_args(kind: Kind, given: dict[str, Any], records: Any, scope: _Scope, at: tuple[Any, ...],
                pos: Positions, issues: list[Issue]) -> dict[str, Any]:
    if records is not None and not kind.record_level:
        issues.append(_bad(f"'{kind.name}' checks the whole document: leave out 'records'", "RULE_SHAPE", pos, at))
        return {}
    names = [a.name for a in kind.args]
    for k in given:
        if k not in names:
            issues.append(_bad(f"unknown argument '{k}' of '{kind.name}'{suggest(k, names)}", "RULE_UNKNOWN_KEY",
                               pos, at + (k,)))
    args: dict[str, Any] = {}
    for arg in kind.args:
        where = at + (arg.name,)
        if arg.name not in given:
            if arg.required:
                issues.append(_bad(f"'{kind.name}' needs '{arg.name}'", "RULE_SHAPE", pos, at))
            continue
        value = given[arg.name]
        if arg.type == "field":
            parsed = parse_field(value) if isinstance(value, str) else None
            problem = "a field path (a.b, or $.a.b from the document root)" if parsed is None else \
                scope.check_field(parsed.steps, root=parsed.root)
            if problem is None and parsed is not None and arg.value == "period":  # the fields the check derives: <period>.from, .to
                problem = next((f"{p} ('{arg.name}' names an object with 'from' and 'to')" for end in ("from", "to")
                                if (p := scope.check_field(parsed.steps + (end,), root=parsed.root))), None)
            if problem:
                issues.append(_bad(f"'{arg.name}': {problem}", "RULE_FIELD", pos, where, IssueCode.NOT_FOUND))
                continue
            args[arg.name] = parsed
        elif arg.type == "fields":
            paths = [(v, parse_items_path(v)) if isinstance(v, str) else (v, None) for v in value] \
                if isinstance(value, list) and value else [(value, None)]
            bad = [str(v) for v, p in paths if p is None or scope.items_kind(p) is _UNKNOWN]
            if bad:
                issues.append(_bad(f"'{arg.name}' lists paths from the document root (a.b, list[*].c) the schema "
                                   f"knows; not: {', '.join(bad)}", "RULE_FIELD", pos, where, IssueCode.NOT_FOUND))
                continue
            wanted = VALUES[arg.value]
            typed = [(str(v), k) for v, p in paths
                     if p is not None and (k := scope.items_kind(p)) is not None and k not in wanted.schema]
            if typed:
                issues.append(_bad(f"'{arg.name}' of '{kind.name}' lists fields that are {wanted.text}; the domain "
                                   "schema makes " + ", ".join(f"{v} {KIND_TEXT.get(k, k)}" for v, k in typed),
                                   "RULE_TYPE", pos, where, IssueCode.INVALID))
                continue
            args[arg.name] = paths
        elif arg.type in ("number", "integer"):
            types = (int,) if arg.type == "integer" else (int, float)
            if type(value) not in types:
                issues.append(_bad(f"'{arg.name}' is {'an integer' if arg.type == 'integer' else 'a number'}",
                                   "RULE_SHAPE", pos, where))
                continue
            args[arg.name] = value
        elif arg.type == "ranges":
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, str) and _RANGE.match(v) and v[:3] <= v[4:] for v in value):
                issues.append(_bad(f"'{arg.name}' lists ranges like A00-B99 (first ≤ last)", "RULE_SHAPE", pos, where))
                continue
            args[arg.name] = value
        elif arg.type == "choice":
            if value not in arg.choices:
                issues.append(_bad(f"'{arg.name}' is one of {', '.join(arg.choices)}{suggest(value, arg.choices)}",
                                   "RULE_SHAPE", pos, where))
                continue
            args[arg.name] = value
    if kind.name == "range" and {"min", "max"} <= args.keys() and args["min"] > args["max"]:
        issues.append(_bad("'min' is above 'max'", "RULE_SHAPE", pos, at))
    _check_types(kind, args, scope, at, pos, issues)
    return args


def _check_types(kind: Kind, args: dict[str, Any], scope: _Scope, at: tuple[Any, ...], pos: Positions,
                 issues: list[Issue]) -> None:
    """Each field argument names a field whose schema type the check can judge (a rule that cannot
    apply is refused here, not left to pass every record at run time)."""
    fields = {a.name: a for a in kind.args if a.type == "field" and a.name in args}
    kinds = {name: scope.kind_of(args[name].steps, args[name].root) for name in fields}
    for name, arg in fields.items():
        got, wanted = kinds[name], VALUES[arg.value]
        if got is None or got in wanted.schema:
            continue
        text = args[name].text
        swap = next((other for other, o in fields.items() if other != name and kinds[other] in wanted.schema
                     and got in VALUES[o.value].schema), None)
        if swap:
            hint = f"; did you swap '{name}' and '{swap}'?"
        else:
            fitting = scope.fields_of(wanted.schema, root=args[name].root)
            hint = f"; such fields here: {', '.join(fitting)}" if fitting else ""
        issues.append(_bad(f"'{name}' of '{kind.name}' must name {wanted.text}, but the domain schema "
                           f"makes '{text}' {KIND_TEXT.get(got, got)}{hint}", "RULE_TYPE", pos, at + (name,),
                           IssueCode.INVALID))


class _Scope:
    """What the domain schema knows at a rule's place: the document, or the items of one of its lists.
    Without a schema everything is accepted."""

    def __init__(self, schema: dict[str, Any] | None):
        self.schema = schema
        self.root = schema
        self.here = schema

    def _resolve(self, node: Any) -> Any:
        for _ in range(16):
            if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
                return node
            ref = node["$ref"]
            if not ref.startswith("#/$defs/"):
                return None
            node = (self.schema or {}).get("$defs", {}).get(ref[len("#/$defs/"):])
        return None

    def _child(self, node: Any, step: str) -> Any:
        node = self._resolve(node)
        props = node.get("properties") if isinstance(node, dict) else None
        return self._resolve(props.get(step)) if isinstance(props, dict) and step in props else None

    def lists(self) -> list[str]:
        props = (self.root or {}).get("properties") or {}
        return [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "array"]

    def enter(self, name: str) -> bool:
        if self.schema is None:
            return True
        node = self._child(self.root, name)
        if not isinstance(node, dict) or node.get("type") != "array":
            return False
        self.here = self._resolve(node.get("items"))
        return True

    def check_field(self, steps: tuple[str, ...], values: list[Any] | None = None, root: bool = False) -> str | None:
        if self.schema is None:
            return None
        node = self.root if root else self.here
        for step in steps:
            child = self._child(node, step)
            if child is None:
                known = list((self._resolve(node) or {}).get("properties") or {})
                return f"the domain schema has no field '{'.'.join(steps)}'{suggest(step, known)}"
            node = child
        allowed = node.get("enum") if isinstance(node, dict) else None
        if values and isinstance(allowed, list):
            unknown = [str(v) for v in values if v not in allowed]
            if unknown:
                return f"'{'.'.join(steps)}' is never {', '.join(unknown)}{suggest(unknown[0], allowed)}"
        return None

    def _node(self, steps: tuple[str, ...], root: bool) -> Any:
        node = self.root if root else self.here
        for step in steps:
            node = self._child(node, step)
        return node

    def kind_of(self, steps: tuple[str, ...], root: bool = False) -> str | None:
        """The kind of value the schema allows at a known field (`schema_kind`); None without a schema."""
        return None if self.schema is None else self.schema_kind(self._node(steps, root))

    def items_kind(self, parts: tuple[tuple[str, ...], ...]) -> Any:
        """The kind of value at an `a[*].b` path from the root: _UNKNOWN if the schema does not know
        the path, None without a schema."""
        if self.schema is None:
            return None
        node = self.root
        for n, steps in enumerate(parts):
            for step in steps:
                node = self._child(node, step)
                if node is None:
                    return _UNKNOWN
            if n < len(parts) - 1:
                if not isinstance(node, dict) or node.get("type") != "array":
                    return _UNKNOWN
                node = self._resolve(node.get("items"))
        return self.schema_kind(node)

    def fields_of(self, kinds: frozenset[str], root: bool = False, limit: int = 8) -> list[str]:
        """Fields at this place (nested objects included, lists not) whose kind is one of `kinds`."""
        out: list[str] = []
        todo: list[tuple[str, Any]] = [("$." if root else "", self.root if root else self.here)]
        while todo and len(out) < limit:
            prefix, node = todo.pop(0)
            props = (self._resolve(node) or {}).get("properties") or {}
            for name in props:
                child, path = self._child(node, name), prefix + name
                kind = self.schema_kind(child)
                if kind in kinds:
                    out.append(path)
                elif kind in ("object", "period"):
                    todo.append((path + ".", child))
        return out[:limit]

    def schema_kind(self, node: Any, depth: int = 0) -> str:
        """What a schema node holds, in the words of checks.VALUES: integer, number, numbers, date,
        date-time, date or date-time, period (an object with from and to, both dates or date-times),
        string, object, list, boolean — or unknown (several or none)."""
        node = self._resolve(node)
        if not isinstance(node, dict) or depth > 8:
            return "unknown"
        if node.get("format") in ("date", "date-time"):
            return node["format"]
        choices = node.get("anyOf") or node.get("oneOf")
        if "type" not in node and isinstance(choices, list) and choices:
            kinds = {self.schema_kind(c, depth + 1) for c in choices}
            if len(kinds) == 1:
                return kinds.pop()
            return "date or date-time" if kinds <= TIMES else "unknown"
        kind = node.get("type")
        if kind in ("integer", "number", "string", "boolean"):
            return kind
        if kind == "array":
            return "numbers" if self.schema_kind(node.get("items"), depth + 1) in ("integer", "number") else "list"
        if kind == "object":
            ends = [self._child(node, end) for end in ("from", "to")]
            return "period" if all(self.schema_kind(e, depth + 1) in TIMES for e in ends) else "object"
        return "unknown"


_UNKNOWN = "(not in the schema)"
KIND_TEXT = {"integer": "an integer", "number": "a number", "numbers": "a list of numbers", "date": "a date",
             "date-time": "a date-time", "date or date-time": "a date or date-time", "period": "a period",
             "string": "a text", "object": "an object", "list": "a list", "boolean": "true or false",
             "unknown": "of no single type"}
"""How a message names a schema kind (`_Scope.schema_kind`)."""
