"""The kinds of check a rule in `mappings/rules.yaml` can make (layer L1; stdlib and terminology only).

Each kind declares its arguments once (name, type, required) and compiles them into a closure
`run(items, doc) -> [(i, (field, reason)), ...]` over the records a rule applies to (`items` are
`(index, record)` pairs; a document rule gets `[(0, doc)]`): one entry per record that breaks the rule,
with the field the fault is at and a reason that names fields and rule data, never a value. Each kind
loops itself, reading document-level values once per run (a rule costs well under a microsecond per
record). The loader checks a rule's arguments against `Kind.args` — a field argument's type in the
domain schema against its `Arg.value` (VALUES) — and the docs and `fhir-export check` describe a
rule with `Kind.explain`. A value of another type met at run time is a failure of its own ("cannot be
checked"), never a rule that holds.

Fields are dotted paths relative to the record (or to the document, for a rule without `records`),
or from the document root when they start with `$.`; `[*]` (only in `unique`) means every item.
Dates and date-times compare as instants when both carry a time, else by their calendar date as
written (a date-only bound covers its whole day in the record's own offset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from exporter.issues import IssueCode
from exporter.terminology.checkdigits import kvid10_ok, loinc_check_digit_ok, pzn_ok, snomed_verhoeff_ok

Failure = tuple[str, str]  # (field as written in the rule, reason without values)
Items = list[tuple[int, Any]]
CheckFn = Callable[[Items, Any], list[tuple[int, Failure]]]
_MISSING = object()

CHECK_DIGITS: dict[str, Callable[[str], bool]] = {
    "kvid10": kvid10_ok, "pzn": pzn_ok, "snomed": snomed_verhoeff_ok, "loinc": loinc_check_digit_ok}


@dataclass(frozen=True)
class ValueType:
    """What a field argument must hold: `text` for messages, `schema` the kinds of value the domain
    schema may declare for it (exporter/rules/ruleset.py `schema_kind`), `test` the same at run time."""

    text: str
    schema: frozenset[str]
    test: Callable[[Any], bool]


TIMES = frozenset({"date", "date-time", "date or date-time"})
VALUES: dict[str, ValueType] = {
    "number": ValueType("a number", frozenset({"integer", "number"}), lambda v: type(v) in (int, float)),
    "integer": ValueType("an integer", frozenset({"integer"}), lambda v: type(v) is int),
    "numbers": ValueType("a list of numbers", frozenset({"numbers"}),
                         lambda v: type(v) is list and all(type(x) in (int, float) for x in v)),
    "time": ValueType("a date or date-time", TIMES, lambda v: _is_time(v)),
    "period": ValueType("a period (an object with 'from' and 'to', each a date or date-time)", frozenset({"period"}),
                        lambda v: type(v) is dict and _is_time(v.get("from")) and _is_time(v.get("to"))),
    "string": ValueType("a text", TIMES | {"string"}, lambda v: type(v) is str),
}
"""The value types of field arguments: the loader checks them against the domain schema, the checks
against the values they meet (a value of another type is reported, never read as "the rule holds")."""


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # field | fields | number | integer | ranges | choice
    required: bool = True
    choices: tuple[str, ...] = ()
    value: str = ""  # field and fields: what the field holds (a key of VALUES)


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


_NUM = (int, float)


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
    except (ValueError, TypeError):  # not a date-time, or one without an offset
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


def _each(fails: Callable[[Any, Any], Failure | None]) -> CheckFn:
    """The run of a rule judged record by record (`fails` gives the failure, or None: the rule holds)."""
    return lambda items, doc: [(i, f) for i, record in items if (f := fails(record, doc)) is not None]


def mistyped(field: str, value: str) -> Failure:
    """A value the check cannot judge: not of the type the rule needs (VALUES[value])."""
    return field, f"{field} is not {VALUES[value].text}, so the rule cannot be checked"


def _first_mistyped(*given: tuple[Any, str, str]) -> Failure | None:
    """For (value, field text, value type) triples: the failure of the first present value of the
    wrong type; None if all present values fit (an absent optional field: the rule does not apply)."""
    for v, text, value in given:
        if v is not _MISSING and not VALUES[value].test(v):
            return mistyped(text, value)
    return None


def _is_time(v: Any) -> bool:
    """A date (YYYY-MM-DD) or a date-time with offset, as the comparisons read them."""
    if type(v) is not str or len(v) < 10:
        return False
    try:
        return len(v) == 10 and bool(date.fromisoformat(v)) or datetime.fromisoformat(v).tzinfo is not None
    except ValueError:
        return False


class Greater(Kind):
    name = "greater"
    args = (Arg("field", "field", value="number"), Arg("than", "field", value="number"))

    def explain(self, a):
        return f"`{a['field'].text}` > `{a['than'].text}`"

    def compile(self, a):
        x, y, fx, fy = a["field"].get, a["than"].get, a["field"].text, a["than"].text
        broken = (fx, f"{fx} is not greater than {fy}")

        def fails(record, doc):
            v, w = x(record, doc), y(record, doc)
            if type(v) in _NUM and type(w) in _NUM:
                return None if v > w else broken
            return _first_mistyped((v, fx, "number"), (w, fy, "number"))
        return _each(fails)


class SumEquals(Kind):
    name = "sum_equals"
    args = (Arg("items", "field", value="numbers"), Arg("total", "field", value="number"))

    def explain(self, a):
        return f"`{a['total'].text}` = sum of `{a['items'].text}`"

    def compile(self, a):
        items, total, fi, ft = a["items"].get, a["total"].get, a["items"].text, a["total"].text
        broken = (ft, f"{ft} is not the sum of {fi}")

        def fails(record, doc):
            xs, t = items(record, doc), total(record, doc)
            if type(xs) is list and type(t) in _NUM and all(type(x) in _NUM for x in xs):
                return None if sum(xs) == t else broken
            return _first_mistyped((xs, fi, "numbers"), (t, ft, "number"))
        return _each(fails)


class InsidePeriod(Kind):
    name = "inside_period"
    args = (Arg("field", "field", value="time"), Arg("period", "field", value="period"))

    def explain(self, a):
        p = a["period"].text
        return f"`{p}.from` ≤ `{a['field'].text}` ≤ `{p}.to`"

    def compile(self, a):
        field, period = a["field"], a["period"]
        get, text = field.get, field.text
        lo = Field(period.text + ".from", period.root, period.steps + ("from",)).get
        hi = Field(period.text + ".to", period.root, period.steps + ("to",)).get
        outside = (text, f"{text} lies outside {period.text}")
        no_period = mistyped(period.text, "period")

        def judge(value, start, end) -> Failure | None:
            """None: inside, or nothing to judge (no value; a period ending before it starts, which a
            rule of its own reports)."""
            if value is _MISSING:
                return None
            order = _not_after(start, end)
            if order is None:
                return no_period
            if not order:
                return None
            after_start, before_end = _not_after(start, value), _not_after(value, end)
            if after_start is None or before_end is None:
                return mistyped(text, "time")
            return None if after_start and before_end else outside

        def run(items, doc):
            if not period.root:
                return [(i, f) for i, r in items if (f := judge(get(r, doc), lo(r, doc), hi(r, doc))) is not None]
            start, end = lo(None, doc), hi(None, doc)
            order = _not_after(start, end)
            if order is None:  # no readable period: said once, at the period
                return [(0, no_period)] if any(get(r, doc) is not _MISSING for _, r in items) else []
            if not order:
                return []  # a period that ends before it starts: a rule of its own says so
            if len(start) == len(end) == 10:  # two dates: compare the records' dates as written
                return [(i, outside if _is_time(v) else mistyped(text, "time")) for i, r in items
                        if (v := get(r, doc)) is not _MISSING
                        and not (type(v) is str and len(v) >= 10 and start <= v[:10] <= end)]
            return [(i, f) for i, r in items if (f := judge(get(r, doc), start, end)) is not None]
        return run


class NotAfter(Kind):
    name = "not_after"
    args = (Arg("field", "field", value="time"), Arg("than", "field", value="time"))

    def explain(self, a):
        return f"`{a['field'].text}` ≤ `{a['than'].text}`"

    def compile(self, a):
        x, y, fx, fy = a["field"].get, a["than"].get, a["field"].text, a["than"].text
        broken = (fx, f"{fx} is after {fy}")

        def fails(record, doc):
            v, w = x(record, doc), y(record, doc)
            order = _not_after(v, w)
            if order is not None:
                return None if order else broken
            return _first_mistyped((v, fx, "time"), (w, fy, "time"))
        return _each(fails)


class Unique(Kind):
    name = "unique"
    args = (Arg("fields", "fields", value="string"),)
    record_level = False

    def explain(self, a):
        return "no two of " + ", ".join(f"`{text}`" for text, _ in a["fields"]) + " are equal"

    def compile(self, a):
        paths = a["fields"]

        def run(items, doc):
            values = [v for _, parts in paths for v in _values(doc, parts)]
            if len(set(values)) == len(values) and all(type(v) is str for v in values):
                return []
            seen: dict[str, str] = {}  # only now: the paths of a repeated value
            out = []
            for _, parts in paths:
                for where, value in _walk(doc, parts, "$"):
                    if type(value) is not str:
                        out.append((0, mistyped(where, "string")))
                    elif value in seen:
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
    args = (Arg("field", "field", value="number"), Arg("min", "number"), Arg("max", "number"))
    code = IssueCode.VALUE

    def explain(self, a):
        return f"{a['min']:g} ≤ `{a['field'].text}` ≤ {a['max']:g}"

    def compile(self, a):
        get, lo, hi, text = a["field"].get, a["min"], a["max"], a["field"].text
        failure = (text, f"{text} is outside the plausible range {lo:g} to {hi:g}")
        wrong = mistyped(text, "number")
        return lambda items, doc: [(i, failure if type(v) in _NUM else wrong) for i, r in items
                                   if not (type(v := get(r, doc)) in _NUM and lo <= v <= hi) and v is not _MISSING]


class CheckDigit(Kind):
    name = "check_digit"
    args = (Arg("field", "field", value="string"), Arg("algorithm", "choice", choices=tuple(CHECK_DIGITS)))
    code = IssueCode.VALUE

    def explain(self, a):
        return f"`{a['field'].text}` has a valid {a['algorithm']} check digit"

    def compile(self, a):
        get, ok, text = a["field"].get, CHECK_DIGITS[a["algorithm"]], a["field"].text
        broken = (text, f"{text} has a wrong {a['algorithm']} check digit")
        return _each(lambda record, doc: None if (v := get(record, doc)) is _MISSING or ok(v)
                     else broken if type(v) is str else mistyped(text, "string"))


class CategoryIn(Kind):
    name = "category_in"
    args = (Arg("field", "field", value="string"), Arg("ranges", "ranges"))
    code = IssueCode.CODE_INVALID

    def explain(self, a):
        return f"the first three characters of `{a['field'].text}` lie in " + ", ".join(a["ranges"])

    def compile(self, a):
        get, text = a["field"].get, a["field"].text
        bounds = tuple(tuple(r.split("-")) for r in a["ranges"])
        broken = (text, f"{text} is not in any of the listed category ranges")
        return _each(lambda record, doc: None if (v := get(record, doc)) is _MISSING
                     else mistyped(text, "string") if type(v) is not str
                     else None if any(lo <= v[:3] <= hi for lo, hi in bounds) else broken)


class YearAtMost(Kind):
    name = "year_at_most"
    args = (Arg("field", "field", value="integer"), Arg("than", "field", value="time"),
            Arg("plus", "integer", required=False))

    def explain(self, a):
        plus = a.get("plus", 0)
        return f"`{a['field'].text}` ≤ year of `{a['than'].text}`" + (f" + {plus}" if plus else "")

    def compile(self, a):
        x, y, plus, fx, fy = a["field"].get, a["than"].get, a.get("plus", 0), a["field"].text, a["than"].text
        broken = (fx, f"{fx} is later than the year of {fy}" + (f" + {plus}" if plus else ""))

        def fails(record, doc):
            v, w = x(record, doc), y(record, doc)
            if type(v) is int and type(w) is str and w[:4].isdigit() and _is_time(w):
                return None if v <= int(w[:4]) + plus else broken
            return _first_mistyped((v, fx, "integer"), (w, fy, "time"))
        return _each(fails)


KINDS: dict[str, Kind] = {k.name: k for k in (Greater(), SumEquals(), InsidePeriod(), NotAfter(), Unique(), Range(),
                                                CheckDigit(), CategoryIn(), YearAtMost())}
