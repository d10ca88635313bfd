"""No record is dropped silently (layer L2).

Several mappings read the same list (one per kind of measurement, each with a `when`). A record no
mapping selects would simply be missing from the document — the data loss a misspelt condition
(`kindd = 'spo2'`) causes. So every record of a list that mappings read must be selected by exactly
one mapping with a `when`, or by a mapping without one (it maps every record, as the
QuestionnaireResponse beside its score), or by an `ignore:` rule of bundle.yaml: the records a DiGA
deliberately does not export, with the reason. Anything else is an error of the export
(`MAP_RECORD_UNMAPPED`, `MAP_RECORD_MAPPED_TWICE`), naming the record's JSON path and the mapping
that looks meant for it — or bundle.yaml, where the fix goes, when no mapping does.

The same holds one level down. A list that no mapping's `for_each` reads, but nested `for_each`
list items do (a diary entry's `symptoms`, a questionnaire's `answers`), is exported by those items:
its elements are its records, keyed `diary_entries[].symptoms`, and an item's `when` that leaves an
element out needs another item that selects it, or an ignore rule for that key. (A nested `for_each`
over a list that mappings export record by record — `$.measurements` inside a singleton — is a
view of records exported anyway, and is not counted.)

Clean path: when every condition of a list is a `field = 'literal'` test, the engine has grouped the
records by that field already; the records are all mapped when the groups of the literals add up to
the list (no record is looked at again). Only otherwise — or when they do not add up — is each
record's selection decided again, here. Nested items are recorded only where one of their `when`s
can leave an element out; the reference mappings have none, so an export pays nothing for them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.engine.values import (
    CompileContext,
    EachItem,
    RunContext,
    Scope,
    compile_path,
    condition,
    item_test,
    selector,
)
from exporter.issues import IssueCode, SourceLocation
from exporter.mapping.yamlsrc import position

MAX_REPORTED = 10  # records reported per list; the rest are counted in one more issue
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
NESTED = "[]."  # joins the lists of a nested list's key: "diary_entries[].symptoms"


@dataclass
class IgnoreRule:
    """`ignore:` in bundle.yaml: records of `for_each` (those `when` holds for) not exported, on purpose."""

    list: str  # the list's key (its `for_each` path without `$.`; nested: "diary_entries[].symptoms")
    when: str | None
    reason: str
    condition: Any  # compiled `when`, or None: every record of the list
    location: SourceLocation | None


@dataclass(eq=False)
class Reader:
    """What reads a list with a `when`: a mapping, or a nested `for_each` list item."""

    name: str  # how messages name it: "mapping 'body-weight'"
    when: str
    holds: Callable[[Any, Scope], bool]  # (record, its scope) -> selected?
    location: SourceLocation | None  # of its `when`


@dataclass
class ListGroup:
    """The readers of one list."""

    path: str  # the engine's key of the selected records: a mapping's `for_each` as written, or a nested key
    nested: bool = False
    mappings: list[Any] = field(default_factory=list)  # compiled mappings with a `when` (top-level lists)
    readers: list[Reader] = field(default_factory=list)  # those with a `when`
    unconditional: bool = False  # a reader without `when` maps every record
    test_field: str | None = None  # the field every `when` tests against a literal, if there is one
    literals: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """What an ignore rule's `for_each` names."""
        return self.path.removeprefix("$.")


def list_key(outer: tuple[str, ...], text: Any) -> tuple[str, ...] | None:
    """The lists (outermost first) the elements a `for_each: text` selects belong to, evaluated on an
    element of `outer` (() : the document); None when it does not select elements of a list path."""
    parsed = compile_path(text) if isinstance(text, str) else None
    if parsed is None or not parsed[2]:
        return None
    up, from_root, steps = parsed
    base = () if from_root else outer[:max(len(outer) - up, 0)]
    return base + (".".join(name if index is None else f"{name}[{index}]" for name, index in steps),)


class Coverage:
    def __init__(self, compiled: list[Any], ignore: Any, cc: CompileContext,
                 contexts: list[tuple[Any, CompileContext]] = ()):  # type: ignore[assignment]
        self.lists: dict[str, ListGroup] = {}
        for c in compiled:
            if c.m.for_each is None or c.select is None:
                continue
            group = self.lists.setdefault(c.m.for_each, ListGroup(c.m.for_each))
            if c.when is None:
                group.unconditional = True
            else:
                group.mappings.append(c)
                group.readers.append(Reader(f"mapping '{c.m.id}'", c.m.when, _mapping_holds(c),
                                            position(c.m.positions, ("when",))))
        for group in self.lists.values():
            tests = [c.prefilter for c in group.mappings]
            if tests and all(t is not None for t in tests) and len({t.name for t in tests}) == 1:
                group.test_field = tests[0].name
                group.literals = frozenset(t.literal for t in tests)
        self.nested = self._nested(contexts, {g.key for g in self.lists.values()})
        self.layout = cc.loc(("ignore",)) or cc.loc(())  # where records no mapping can be blamed for are reported
        self.ignores: list[IgnoreRule] = []
        for i, spec in enumerate(ignore if isinstance(ignore, list) else []):
            if not isinstance(spec, dict) or not isinstance(spec.get("for_each"), str):
                continue  # reported by the registry
            at = ("ignore", i)
            when = spec.get("when")
            _ignore_selector(spec["for_each"], at + ("for_each",), cc)
            self.ignores.append(IgnoreRule(
                spec["for_each"].removeprefix("$."), when if isinstance(when, str) else None, str(spec.get("reason", "")),
                condition(when, at + ("when",), cc) if isinstance(when, str) else None, cc.loc(at)))
        self.checked = [g for g in self.lists.values() if not g.unconditional and g.mappings]

    def _nested(self, contexts: Any, exported: set[str]) -> dict[str, ListGroup]:
        """The lists only nested `for_each` items read, by key; sets `key` on every item and `checked`
        on the items whose selections an export must record."""
        groups: dict[str, ListGroup] = {}
        self._reader_of: dict[EachItem, Reader] = {}
        for m, cc in contexts:
            if m is None:
                continue
            outer = list_key((), m.for_each) or () if m.for_each is not None else ()
            done: list[tuple[EachItem, tuple[str, ...]]] = []
            for each in sorted(cc.eaches, key=lambda e: len(e.at)):
                enclosing = [lists for e, lists in done if each.at[:len(e.at) + 1] == e.at + ("item",)]
                if enclosing:  # the innermost item this one lies in (its key unknown: so is this one's)
                    lists = list_key(enclosing[-1], each.for_each) if enclosing[-1] else None
                else:
                    lists = list_key(outer, each.for_each)
                done.append((each, lists or ()))
                if not lists:
                    continue
                each.key = NESTED.join(lists)
                if each.key in exported:
                    continue  # a view of records their own mappings export
                group = groups.setdefault(each.key, ListGroup(each.key, nested=True))
                if each.when is None:
                    group.unconditional = True
                elif isinstance(each.when_text, str):
                    reader = Reader(f"the `for_each: {each.for_each}` item of mapping '{m.id}'", each.when_text,
                                    _item_holds(each.when), each.location)
                    group.readers.append(reader)
                    group.mappings.append(each)
                    self._reader_of[each] = reader
        for group in groups.values():
            for each in group.mappings:
                each.checked = not group.unconditional
        return {k: g for k, g in groups.items() if not g.unconditional and g.readers}

    def check(self, selections: dict[str, list[tuple[Any, Any]]],
              groupings: dict[tuple[str, str], dict[str, list[tuple[Any, Any]]] | None], root: Scope,
              run: RunContext) -> None:
        """Report the records of `selections` (the engine's, by for_each text) and the elements the
        checked nested items met (`run.nested`) no reader or ignore rule selects, or two readers with
        a `when` select."""
        scratch = RunContext(run.doc, run.export_time, run.ref_resolver)  # a condition's own errors: reported by its mapping
        for group in self.checked:
            records = selections.get(group.path)
            if not records:
                continue
            if group.test_field is not None:
                groups = groupings.get((group.path, group.test_field))
                if groups is not None and sum(len(groups.get(v, ())) for v in group.literals) == len(records):
                    continue  # the groups of the literals are the whole list: each record mapped once
            judged = []
            for item, data_path in records:
                scope = Scope(item, data_path, root, scratch)
                judged.append((item, data_path, scope, [r for r in group.readers if r.holds(item, scope)]))
            self._report(group, judged, run)
        for key, group in self.nested.items():
            met = run.nested.get(key)
            if met:  # data path -> [the element's scope, the items that selected it]
                self._report(group, [(e[0].item, path, Scope(e[0].item, path, e[0].parent, scratch),
                                      [self._reader_of[each] for each in e[1:]]) for path, e in met.items()], run)

    def _report(self, group: ListGroup, judged: list[tuple[Any, Any, Scope, list[Reader]]], run: RunContext) -> None:
        ignores = [r for r in self.ignores if r.list == group.key]
        working = {r for _, _, _, hits in judged for r in hits}
        idle = [r for r in group.readers if r not in working]  # selected nothing: a broken condition, or absent data
        unmapped = 0
        blamed: set[Any] = set()  # the locations the unmapped records were reported at
        for item, data_path, scope, hits in judged:
            if len(hits) > 1:
                run.report("MAP_RECORD_MAPPED_TWICE", f"{hits[0].name} and {hits[1].name} both select this "
                           f"record of '{group.key}'; each record is selected by exactly one reader with a `when`: "
                           "make the conditions exclusive", hits[1].location, data_path, IssueCode.INVALID)
                continue
            if hits or any(r.condition is None or r.condition(scope) for r in ignores):
                continue
            unmapped += 1
            if unmapped > MAX_REPORTED:
                continue
            suspect = _suspect(group, item, idle)
            if suspect is not None and group.nested and len(group.readers) == 1:
                hint = (f"{suspect.name} leaves it out (`when: {suspect.when}`): select it, or, if leaving it out is "
                        f"intended, add an `ignore:` rule for '{group.key}' with a reason to bundle.yaml")
                loc = suspect.location
            elif suspect is not None:
                hint = f"{suspect.name} (`when: {suspect.when}`) looks meant for it but does not select it: check its condition"
                loc = suspect.location
            else:
                hint = _ADD[group.nested].format(key=group.key)
                loc = self.layout
            blamed.add(loc)
            run.report("MAP_RECORD_UNMAPPED", f"no {_READER[group.nested]} selects this record of '{group.key}', so it "
                       f"would be left out; {hint}", loc, data_path, IssueCode.INVALID)
        if unmapped > MAX_REPORTED:
            run.report("MAP_RECORD_UNMAPPED", f"{unmapped - MAX_REPORTED} more records of '{group.key}' are selected "
                       f"by no {_READER[group.nested]}", blamed.pop() if len(blamed) == 1 else self.layout,
                       f"$.{group.key}", IssueCode.INVALID)


_READER = {False: "mapping", True: "nested `for_each` item"}
_ADD = {False: "add a mapping for it, or an `ignore:` rule with a reason to bundle.yaml",
        True: "add a `for_each` item that selects it, or an `ignore:` rule for '{key}' with a reason to bundle.yaml"}


def _mapping_holds(c: Any) -> Callable[[Any, Scope], bool]:
    def holds(item: Any, scope: Scope) -> bool:
        verdict = c.prefilter(item) if c.prefilter is not None else None
        return bool(c.when(scope)) if verdict is None else verdict
    return holds


def _item_holds(when: Any) -> Callable[[Any, Scope], bool]:
    return lambda item, scope: bool(when(scope))


def _ignore_selector(text: str, at: tuple[Any, ...], cc: CompileContext) -> None:
    """An ignore rule's `for_each`: a mapping's (`measurements`), or a nested list's key
    (`diary_entries[].symptoms`, each part a simple path)."""
    if NESTED not in text:
        selector(text, at, cc)  # the same paths as a mapping's for_each
        return
    parts = text.removeprefix("$.").split(NESTED)
    if all(compile_path(p) is not None and not p.startswith(("$", "^")) for p in parts):
        cc.expressions.append(("for_each", text, at))
    else:
        cc.fail("MAP_PATH_SYNTAX", f"a nested list is named by the lists it lies in, joined by '[].', such as "
                f"'diary_entries[].symptoms', not {text!r}", at)


def _suspect(group: ListGroup, item: Any, idle: list[Reader]) -> Reader | None:
    """The reader whose `when` names a string value of the record (`kindd = 'spo2'` for a record
    with kind spo2); else, of the readers that selected nothing in this export, the one whose literal
    is closest to a value of the record (`kind.startsWith('weigth')`); the only reader of a nested
    list; else None. Only the reader's own text is quoted, never the record."""
    values = {item} if isinstance(item, str) else {v for v in item.values() if isinstance(v, str)} \
        if isinstance(item, dict) else set()
    for r in group.readers:
        literals = set(_LITERAL.findall(r.when))
        test = item_test(r.when)
        if literals & values and (test is None or not isinstance(item, dict) or test.name not in item):
            return r
    best, closest = 0.8, None  # a ratio below 0.8 is no more than chance between short words
    for r in idle:
        for literal in _LITERAL.findall(r.when):
            for v in values:
                ratio = difflib.SequenceMatcher(None, literal, v).ratio() if len(v) < 64 else 0.0
                if ratio >= best:
                    best, closest = ratio, r
    if closest is not None:
        return closest
    return group.readers[0] if group.nested and len(group.readers) == 1 else None
