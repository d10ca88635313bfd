"""No record is dropped silently (layer L2).

Several mappings read the same list (one per kind of measurement, each with a `when`). A record no
mapping selects would simply be missing from the document — the data loss a misspelt condition
(`kindd = 'spo2'`) causes. So every record of a list that mappings read must be selected by exactly
one mapping with a `when`, or by a mapping without one (it maps every record, as the
QuestionnaireResponse beside its score), or by an `ignore:` rule of bundle.yaml: the records a DiGA
deliberately does not export, with the reason. Anything else is an error of the export
(`MAP_RECORD_UNMAPPED`, `MAP_RECORD_MAPPED_TWICE`), naming the record's JSON path and the mapping
that looks meant for it.

Clean path: when every condition of a list is a `field = 'literal'` test, the engine has grouped the
records by that field already; the records are all mapped when the groups of the literals add up to
the list (no record is looked at again). Only otherwise — or when they do not add up — is each
record's selection decided again, here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from exporter.engine.values import CompileContext, RunContext, Scope, condition, item_test, selector
from exporter.issues import IssueCode, SourceLocation
from exporter.mapping.yamlsrc import position

MAX_REPORTED = 10  # records reported per list; the rest are counted in one more issue
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")


@dataclass
class IgnoreRule:
    """`ignore:` in bundle.yaml: records of `for_each` (those `when` holds for) not exported, on purpose."""

    list: str  # the `for_each` path, without `$.`
    when: str | None
    reason: str
    condition: Any  # compiled `when`, or None: every record of the list
    location: SourceLocation | None


@dataclass
class ListGroup:
    """The mappings reading one list (by their `for_each` text)."""

    path: str  # the `for_each` path as the mappings write it (the engine's key of the selected records)
    mappings: list[Any] = field(default_factory=list)  # compiled mappings with a `when`
    unconditional: bool = False  # a mapping without `when` maps every record
    test_field: str | None = None  # the field every `when` tests against a literal, if there is one
    literals: frozenset[str] = frozenset()


class Coverage:
    def __init__(self, compiled: list[Any], ignore: Any, cc: CompileContext):
        self.lists: dict[str, ListGroup] = {}
        for c in compiled:
            if c.m.for_each is None or c.select is None:
                continue
            group = self.lists.setdefault(c.m.for_each, ListGroup(c.m.for_each))
            if c.when is None:
                group.unconditional = True
            else:
                group.mappings.append(c)
        for group in self.lists.values():
            tests = [c.prefilter for c in group.mappings]
            if tests and all(t is not None for t in tests) and len({t.name for t in tests}) == 1:
                group.test_field = tests[0].name
                group.literals = frozenset(t.literal for t in tests)
        self.ignores: list[IgnoreRule] = []
        for i, spec in enumerate(ignore if isinstance(ignore, list) else []):
            if not isinstance(spec, dict) or not isinstance(spec.get("for_each"), str):
                continue  # reported by the registry
            at = ("ignore", i)
            when = spec.get("when")
            selector(spec["for_each"], at + ("for_each",), cc)  # the same paths as a mapping's for_each
            self.ignores.append(IgnoreRule(
                spec["for_each"].removeprefix("$."), when if isinstance(when, str) else None, str(spec.get("reason", "")),
                condition(when, at + ("when",), cc) if isinstance(when, str) else None, cc.loc(at)))
        self.checked = [g for g in self.lists.values() if not g.unconditional and g.mappings]

    def check(self, selections: dict[str, list[tuple[Any, Any]]],
              groupings: dict[tuple[str, str], dict[str, list[tuple[Any, Any]]] | None], root: Scope,
              run: RunContext) -> None:
        """Report the records of `selections` (the engine's, by for_each text) no mapping or ignore
        rule selects, or two mappings with a `when` select."""
        for group in self.checked:
            records = selections.get(group.path)
            if not records:
                continue
            if group.test_field is not None:
                groups = groupings.get((group.path, group.test_field))
                if groups is not None and sum(len(groups.get(v, ())) for v in group.literals) == len(records):
                    continue  # the groups of the literals are the whole list: each record mapped once
            self._per_record(group, records, root, run)

    def _per_record(self, group: ListGroup, records: list[tuple[Any, Any]], root: Scope, run: RunContext) -> None:
        scratch = RunContext(run.doc, run.export_time, run.ref_resolver)  # a condition's own errors: reported by its mapping
        ignores = [r for r in self.ignores if r.list == group.path.removeprefix("$.")]
        unmapped = 0
        for item, data_path in records:
            scope = Scope(item, data_path, root, scratch)
            hits = [c for c in group.mappings if _holds(c, item, scope)]
            if len(hits) > 1:
                second = hits[1].m
                run.report("MAP_RECORD_MAPPED_TWICE", f"mappings '{hits[0].m.id}' and '{second.id}' both select this "
                           f"record of '{group.path}'; each record is mapped by exactly one mapping with a `when`: "
                           "make the conditions exclusive", position(second.positions, ("when",)), data_path,
                           IssueCode.INVALID)
                continue
            if hits or any(r.condition is None or r.condition(scope) for r in ignores):
                continue
            unmapped += 1
            if unmapped > MAX_REPORTED:
                continue
            suspect = _suspect(group, item)
            if suspect is not None:
                hint = (f"mapping '{suspect.m.id}' (`when: {suspect.m.when}`) looks meant for it but does not "
                        "select it: check its condition")
                loc = position(suspect.m.positions, ("when",))
            else:
                hint = "add a mapping for it, or an `ignore:` rule with a reason to bundle.yaml"
                loc = position(group.mappings[0].m.positions, ("for_each",))
            run.report("MAP_RECORD_UNMAPPED", f"no mapping selects this record of '{group.path}', so it would be "
                       f"left out; {hint}", loc, data_path, IssueCode.INVALID)
        if unmapped > MAX_REPORTED:
            run.report("MAP_RECORD_UNMAPPED", f"{unmapped - MAX_REPORTED} more records of '{group.path}' are selected "
                       "by no mapping", position(group.mappings[0].m.positions, ("for_each",)), f"$.{group.path}",
                       IssueCode.INVALID)


def _holds(c: Any, item: Any, scope: Scope) -> bool:
    verdict = c.prefilter(item) if c.prefilter is not None else None
    return bool(c.when(scope)) if verdict is None else verdict


def _suspect(group: ListGroup, item: Any) -> Any:
    """The mapping whose `when` names a string value of the record (`kindd = 'spo2'` for a record
    with kind spo2), or None. Only the mapping's own text is quoted, never the record."""
    if not isinstance(item, dict):
        return None
    values = {v for v in item.values() if isinstance(v, str)}
    for c in group.mappings:
        literals = set(_LITERAL.findall(c.m.when or ""))
        test = item_test(c.m.when or "")
        if literals & values and (test is None or test.name not in item):
            return c
    return None
