"""The kinds of check a rule in `mappings/rules.yaml` can make (layer L1; stdlib and terminology only).

Each kind declares its arguments once (name, type, required) and compiles them into a closure
`run(items, doc) -> [(i, (field, reason)), ...]` over the records a rule applies to (`items` are
`(index, record)` pairs; a document rule gets `[(0, doc)]`): one entry per record that breaks the rule,
with the field the fault is at and a reason that names fields and rule data, never a value. Each kind
loops itself, reading document-level values once per run (a rule costs well under a microsecond per
record). The loader checks a rule's arguments against `Kind.args`; the docs and `fhir-export check`
describe a rule with `Kind.explain`.

Fields are dotted paths relative to the record (or to the document, for a rule without `records`),
or from the document root when they start with `$.`; `[*]` (only in `unique`) means every item.
Dates and date-times compare as instants when both carry a time, else by their calendar date as
written (a date-only bound covers its whole day in the record's own offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from exporter.issues import IssueCode
from exporter.terminology.checkdigits import kvid10_ok, loinc_check_digit_ok, pzn_ok, snomed_verhoeff_ok

Failure = tuple[str, str]  # (field as written in the rule, reason without values)
Items = list[tuple[int, Any]]
CheckFn = Callable[[Items, Any], list[tuple[int, Failure]]]
_MISSING = object()

CHECK_DIGITS: dict[str, Callable[[str], bool]] = {
    "kvid10": kvid10_ok, "pzn": pzn_ok, "snomed": snomed_verhoeff_ok, "loinc": loinc_check_digit_ok}


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # field | fields | number | integer | ranges | choice
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    """A compiled field path: `text` as written, `root` if it starts at the document root.
    `field.get(record, doc)` is the value there, or _MISSING."""

    text: str
    root: bool
    steps: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "get", _getter(self.root, self.steps))


def _getter(root: bool, steps: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    """A getter specialised for one or two steps (the common paths), a loop otherwise."""
    if len(steps) == 1:
        [a] = steps
        if root:
            return lambda record, doc: doc.get(a, _MISSING) if type(doc) is dict else _MISSING
        return lambda record, doc: record.get(a, _MISSING) if type(record) is dict else _MISSING
    if len(steps) == 2:
        a, b = steps

        def two(record: Any, doc: Any) -> Any:
            node = (doc if root else record)
            node = node.get(a) if type(node) is dict else None
            return node.get(b, _MISSING) if type(node) is dict else _MISSING
        return two

    def many(record: Any, doc: Any) -> Any:
        node = doc if root else record
        for step in steps:
            if type(node) is not dict:
                return _MISSING
            node = node.get(step, _MISSING)
            if node is _MISSING:
                return _MISSING
        return node
    return many


def parse_field(text: str) -> Field | None:
    """`a.b` or `$.a.b` → Field; None if it is not such a path (also for `[*]`)."""
    root = text.startswith("$.")
    steps = tuple((text[2:] if root else text).split("."))
    if not all(s.isidentifier() for s in steps):
        return None
    return Field(text, root, steps)


def parse_items_path(text: str) -> tuple[tuple[str, ...], ...] | None:
    """`measurements[*].id` → (("measurements",), ("id",)): the steps between the `[*]`s (from the root)."""
    parts = []
    for chunk in text.split("[*]"):
        chunk = chunk.strip(".")
        steps = tuple(chunk.split(".")) if chunk else ()
        if not all(s.isidentifier() for s in steps):
            return None
        parts.append(steps)
    return tuple(parts) if parts[0] else None


def _number(v: Any) -> bool:
    return type(v) in (int, float)


def _not_after(a: Any, b: Any) -> bool | None:
    """a <= b for dates / date-times as the schema writes them (None: not both such texts).

    Two date-times compare as instants; if either is a date, their calendar dates as written compare
    (a date-only bound covers its whole day in the record's own offset). Texts of equal length and
    equal offset compare as text, without parsing."""
    if type(a) is not str or type(b) is not str or len(a) < 10 or len(b) < 10:
        return None
    if len(a) == 10 or len(b) == 10:
        return a[:10] <= b[:10]
    if len(a) == len(b) and (a[-1] == b[-1] == "Z" or a[-6:] == b[-6:]):
        return a <= b
    try:
        return datetime.fromisoformat(a) <= datetime.fromisoformat(b)
    except ValueError:
        return None


class Kind:
    name = ""
    args: tuple[Arg, ...] = ()
    code = IssueCode.INVARIANT
    record_level = True   # may the rule have `records`?

    def explain(self, a: dict[str, Any]) -> str:  # what holds, for people
        raise NotImplementedError

    def compile(self, a: dict[str, Any]) -> CheckFn:
        raise NotImplementedError


def _each(fails: Callable[[Any, Any], bool], failure: Failure) -> CheckFn:
    """The run of a rule whose failure is the same for every record."""
    return lambda items, doc: [(i, failure) for i, record in items if fails(record, doc)]


class Greater(Kind):
    name = "greater"
    args = (Arg("field", "field"), Arg("than", "field"))

    def explain(self, a):
        return f"`{a['field'].text}` > `{a['than'].text}`"

    def compile(self, a):
        x, y = a["field"].get, a["than"].get

        def fails(record, doc):
            v, w = x(record, doc), y(record, doc)
            return _number(v) and _number(w) and not v > w
        return _each(fails, (a["field"].text, f"{a['field'].text} is not greater than {a['than'].text}"))


class SumEquals(Kind):
    name = "sum_equals"
    args = (Arg("items", "field"), Arg("total", "field"))

    def explain(self, a):
        return f"`{a['total'].text}` = sum of `{a['items'].text}`"

    def compile(self, a):
        items, total = a["items"].get, a["total"].get

        def fails(record, doc):
            xs, t = items(record, doc), total(record, doc)
            return type(xs) is list and _number(t) and all(_number(x) for x in xs) and sum(xs) != t
        return _each(fails, (a["total"].text, f"{a['total'].text} is not the sum of {a['items'].text}"))


class InsidePeriod(Kind):
    name = "inside_period"
    args = (Arg("field", "field"), Arg("period", "field"))

    def explain(self, a):
        p = a["period"].text
        return f"`{p}.from` ≤ `{a['field'].text}` ≤ `{p}.to`"

    def compile(self, a):
        field, period = a["field"], a["period"]
        get = field.get
        lo = Field(period.text + ".from", period.root, period.steps + ("from",)).get
        hi = Field(period.text + ".to", period.root, period.steps + ("to",)).get
        failure = (field.text, f"{field.text} lies outside {period.text} (or is not a date or date-time)")

        def inside(value, start, end) -> bool:
            return value is _MISSING or not _not_after(start, end) or bool(
                _not_after(start, value) and _not_after(value, end))

        def run(items, doc):
            if not period.root:
                return [(i, failure) for i, r in items if not inside(get(r, doc), lo(r, doc), hi(r, doc))]
            start, end = lo(None, doc), hi(None, doc)
            if not _not_after(start, end):
                return []  # no readable period, or one that ends before it starts: a rule of its own says so
            if len(start) == len(end) == 10:  # two dates: compare the records' dates as written
                return [(i, failure) for i, r in items
                        if (v := get(r, doc)) is not _MISSING
                        and not (type(v) is str and len(v) >= 10 and start <= v[:10] <= end)]
            return [(i, failure) for i, r in items if not inside(get(r, doc), start, end)]
        return run


class NotAfter(Kind):
    name = "not_after"
    args = (Arg("field", "field"), Arg("than", "field"))

    def explain(self, a):
        return f"`{a['field'].text}` ≤ `{a['than'].text}`"

    def compile(self, a):
        x, y = a["field"].get, a["than"].get
        return _each(lambda record, doc: _not_after(x(record, doc), y(record, doc)) is False,
                     (a["field"].text, f"{a['field'].text} is after {a['than'].text}"))


class Unique(Kind):
    name = "unique"
    args = (Arg("fields", "fields"),)
    record_level = False

    def explain(self, a):
        return "no two of " + ", ".join(f"`{text}`" for text, _ in a["fields"]) + " are equal"

    def compile(self, a):
        paths = a["fields"]

        def run(items, doc):
            values = [v for _, parts in paths for v in _values(doc, parts) if type(v) is str]
            if len(set(values)) == len(values):
                return []
            seen: dict[str, str] = {}  # only now: the paths of a repeated value
            out = []
            for _, parts in paths:
                for where, value in _walk(doc, parts, "$"):
                    if type(value) is not str:
                        continue
                    if value in seen:
                        out.append((0, (where, f"{where} repeats the value of {seen[value]}")))
                    else:
                        seen[value] = where
            return out
        return run


def _values(node: Any, parts: tuple[tuple[str, ...], ...]) -> list[Any]:
    """The values at `parts` (steps, then every item, then steps, ...), without their paths."""
    for step in parts[0]:
        if type(node) is not dict or step not in node:
            return []
        node = node[step]
    if len(parts) == 1:
        return [node]
    if type(node) is not list:
        return []
    if len(parts) == 2 and len(parts[1]) == 1:
        key = parts[1][0]
        return [item[key] for item in node if type(item) is dict and key in item]
    return [v for item in node for v in _values(item, parts[1:])]


def _walk(node: Any, parts: tuple[tuple[str, ...], ...], where: str):
    """(JSON path, value) at `parts`, in document order."""
    for step in parts[0]:
        if type(node) is not dict or step not in node:
            return
        node, where = node[step], f"{where}.{step}"
    if len(parts) == 1:
        yield where, node
    elif type(node) is list:
        for i, item in enumerate(node):
            yield from _walk(item, parts[1:], f"{where}[{i}]")


class Range(Kind):
    name = "range"
    args = (Arg("field", "field"), Arg("min", "number"), Arg("max", "number"))
    code = IssueCode.VALUE

    def explain(self, a):
        return f"{a['min']:g} ≤ `{a['field'].text}` ≤ {a['max']:g}"

    def compile(self, a):
        get, lo, hi = a["field"].get, a["min"], a["max"]
        failure = (a["field"].text, f"{a['field'].text} is outside the plausible range {lo:g} to {hi:g}")
        return lambda items, doc: [(i, failure) for i, r in items
                                   if type(v := get(r, doc)) in (int, float) and not lo <= v <= hi]


class CheckDigit(Kind):
    name = "check_digit"
    args = (Arg("field", "field"), Arg("algorithm", "choice", choices=tuple(CHECK_DIGITS)))
    code = IssueCode.VALUE

    def explain(self, a):
        return f"`{a['field'].text}` has a valid {a['algorithm']} check digit"

    def compile(self, a):
        get, ok = a["field"].get, CHECK_DIGITS[a["algorithm"]]
        return _each(lambda record, doc: (v := get(record, doc)) is not _MISSING and not ok(v),
                     (a["field"].text, f"{a['field'].text} has a wrong {a['algorithm']} check digit"))


class CategoryIn(Kind):
    name = "category_in"
    args = (Arg("field", "field"), Arg("ranges", "ranges"))
    code = IssueCode.CODE_INVALID

    def explain(self, a):
        return f"the first three characters of `{a['field'].text}` lie in " + ", ".join(a["ranges"])

    def compile(self, a):
        get = a["field"].get
        bounds = tuple(tuple(r.split("-")) for r in a["ranges"])
        return _each(lambda record, doc: type(v := get(record, doc)) is str
                     and not any(lo <= v[:3] <= hi for lo, hi in bounds),
                     (a["field"].text, f"{a['field'].text} is not in any of the listed category ranges"))


class YearAtMost(Kind):
    name = "year_at_most"
    args = (Arg("field", "field"), Arg("than", "field"), Arg("plus", "integer", required=False))

    def explain(self, a):
        plus = a.get("plus", 0)
        return f"`{a['field'].text}` ≤ year of `{a['than'].text}`" + (f" + {plus}" if plus else "")

    def compile(self, a):
        x, y, plus = a["field"].get, a["than"].get, a.get("plus", 0)

        def fails(record, doc):
            v, w = x(record, doc), y(record, doc)
            return type(v) is int and type(w) is str and w[:4].isdigit() and v > int(w[:4]) + plus
        return _each(fails, (a["field"].text, f"{a['field'].text} is later than the year of {a['than'].text}"
                             + (f" + {plus}" if plus else "")))


KINDS: dict[str, Kind] = {k.name: k for k in (Greater(), SumEquals(), InsidePeriod(), NotAfter(), Unique(), Range(),
                                                CheckDigit(), CategoryIn(), YearAtMost())}
