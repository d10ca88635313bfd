"""The clean path of the walker (layer L2): each ObjectRule compiled once into a closure that
answers "is this object clean?" — cheaper than the walk, because it builds no messages and decides
every per-member question (array or not, primitive or complex, counted, sliced, which checks apply)
once at compile time instead of per value.

    fast = compile_rule(validator, rule)        # cached on rule.fast
    fast(obj, path, ctx, depth) -> bool          # True: the walk would report nothing

`path` is the object's own path only where it can hold a resource (Compiler.holds_resource): a
resource inside is validated for real and reports under it; anywhere else a probe's problem only
raises Dirty, so values that hold no resource are handed their parent's path, never building one.

How it is used (Validator._walk): the clean path runs first with `ctx.probing` set. It defines no
check of its own: the rules of each member (rules.py; fixed/pattern, bindings, codes, references,
extensions, bounds, invariants, …) are asked `holds`, cardinality is `cardinality.violated`
inlined, slices are assigned with slicing's matchers and judged by `slicing.findings`. While
probing, `ctx.add` raises `Dirty` instead of recording an issue. If the clean path returns False or
meets `Dirty`, the ordinary walk runs over the same object and reports exactly what it always did:
every message, path and code comes from the walker and the rules' `report`; this module only makes
the common case, an export without issues, cheap. Nested resources are validated for real even
while probing (their issues belong to them, and each resource is walked once per profile), so a probe never discards a resource's issues.

Equivalence is tested by running the validator with and without this path over the IG examples,
the invalid cases and mutations (tests/unit/validation/test_fastpath.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from exporter.validation import cardinality, slicing
from exporter.validation import structure as S
from exporter.validation.context import Dirty, Engine
from exporter.validation.fhirpath_native import UNDECIDED
from exporter.validation.model import KIND_EXTENSION, KIND_PRIMITIVE, KIND_REFERENCE, KIND_RESOURCE, Member, ObjectRule
from exporter.validation.primitives import PRIMITIVE_CHECKS
from exporter.validation.references import Reference
from exporter.validation.rules import CHILDREN, Rule

FastFn = Callable[[dict[str, Any], str, Any, int], bool]
Handler = Callable[[Any, str, Any, int], bool]


_SCALARS = (str, int, float, bool)
# a memo table whose first MEMO_TRIAL look-ups found fewer than MEMO_MIN_HITS values seen before
# stops storing: that element's values hardly repeat (times, measured values, narrative divs)
MEMO_TRIAL, MEMO_MIN_HITS = 200, 20
_REFERENCE_KEY = b'"reference"'
_dumps = orjson.dumps  # a memo key per look-up: one global, not a module attribute, to find


class _Trial:
    """The look-ups of one memo table. A table whose first MEMO_TRIAL look-ups found fewer than
    MEMO_MIN_HITS values seen before is given up (`on` False): its values hardly repeat, and keys
    would cost more than they save. `look` counts its own hits and misses; a table keyed by the
    value itself (_more_fn) counts a hit with `hits += 1` and a miss with `missed`, which decides.
    `off`, when given, is called once as the table is given up: with what the memo wrapped, so that
    generated code calls that directly from then on (see `rewire`)."""

    __slots__ = ("on", "hits", "misses", "off")

    def __init__(self, on: bool = True, off: Callable[[], None] | None = None):
        self.on, self.hits, self.misses, self.off = on, 0, 0, off

    def missed(self) -> None:
        self.misses += 1
        if self.misses + self.hits == MEMO_TRIAL and self.hits < MEMO_MIN_HITS:
            self.on = False
            if self.off is not None:
                self.off()

    def look(self, seen: dict[bytes, Any], value: Any) -> Any:
        """Look `value` up in `seen` by its canonical JSON (ask only while `on`): what `seen` holds
        under it when found (_HIT in a table that only remembers clean values; never bytes or None),
        else the key (bytes) to store a clean verdict under, or None when orjson does not serialise
        it (deeper than it goes: just validate it)."""
        try:
            raw = _dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            return None
        found = seen.get(raw)
        if found is None:
            self.missed()
            return raw
        self.hits += 1
        return found


_HIT: Any = object()  # what a table that only remembers clean values holds under their keys


def rewire(env: dict[str, Any], name: str) -> Callable[[Callable[..., Any]], None]:
    """How a memoising wrapper stored as global `name` of a generated function (its `env`) gives way
    to the function it wraps once its table is given up: the generated code looks its globals up on
    every call, so it calls the unwrapped function from then on (the same verdicts: a given-up
    wrapper only calls through)."""
    def replace(fn: Callable[..., Any]) -> None:
        env[name] = fn
    return replace


def _unmarked(raw: bytes, markers: tuple[bytes, ...]) -> bool:
    """Holds the JSON no string starting with a context marker (Compiler.memo_markers)?"""
    for marker in markers:
        if raw.find(marker) >= 0:
            return False
    return True


class Memo:
    """The clean path's content memo: one table per element (key: the value's canonical JSON, or the
    scalar itself), bounded as a whole — when `limit` entries are stored, every table is emptied.
    A value is stored only after it validated clean, and only when its validation depends on nothing
    but its content (no "reference" in it), so a hit needs no further test. Tables of the same kind
    keep clean slice assignments (_clean_slices_fn) and true invariant verdicts (remembered_test),
    each under the parts of the value that decide it."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.tables: list[dict[Any, Any]] = []

    def table(self) -> dict[Any, Any]:
        t: dict[Any, Any] = {}
        self.tables.append(t)
        return t

    def stored(self) -> None:
        self.size += 1
        if self.size >= self.limit:
            self.clear()

    def clear(self) -> None:
        for t in self.tables:
            t.clear()
        self.size = 0


def _no_problem(v: Any, arg: Any = None) -> None:
    return None


# what compile_rule's key loop does with a value `v` of key `k` per kind of table entry (kind, fn):
# 1 a primitive's format check, 2 one complex value, 3 one complex value that can hold a resource
# (its own path), 0 a generated handler (_handler)
_BRANCH = {1: f"{S.broken_source(S.SINGLE)} or fn(v) is not None",
           2: f"{S.broken_source(S.SINGLE + S.COMPLEX)} or not fn(v, path, ctx, depth)",
           3: f"{S.broken_source(S.SINGLE + S.COMPLEX)} or not fn(v, f'{{path}}.{{k}}', ctx, depth)",
           0: "not fn(v, path, ctx, depth)"}


def compile_rule(val: Engine, rule: ObjectRule) -> FastFn:
    """Generate (once per rule) straight-line Python for the object-level work: the key loop with
    the common members inlined, then one line per cardinality rule, then the slice checks."""
    if rule.fast is not None:
        return rule.fast
    table: dict[str, tuple[int, Any]] = {}
    for key, m in rule.members.items():
        if m.primitive_ext:
            continue  # `_key` companions are rare: their presence sends the object down the walk
        if m.kind == KIND_PRIMITIVE and m.check is not None and not val.compiler.rules_for(m) and not m.many:
            table[key] = (1, m.check)  # inlined: format check only
        elif m.kind != KIND_PRIMITIVE and not m.many and not m.sliced:
            # inlined: one complex value or resource (as _handler checks it); its own path only where it
            # can hold a resource (Compiler.holds_resource: nothing else in a probe reads a path)
            table[key] = (3 if val.compiler.holds_resource(m) else 2, value_fn(val, m, rule))
        else:
            table[key] = (0, _handler(val, key, m, rule))
    unmodelled = S.unmodelled(rule.is_resource)
    env: dict[str, Any] = {"H": table, "MAX_DEPTH": val.max_depth, "UNMODELLED": unmodelled}
    lines = ["def fast(obj, path, ctx, depth):",
             f"    if {S.TOO_DEEP.source('depth', 'MAX_DEPTH')} or {S.EMPTY_OBJECT.source('obj')}:",
             "        return False",
             "    for k, v in obj.items():",
             "        e = H.get(k)",
             "        if e is None:"]
    if unmodelled:
        lines += ["            if k in UNMODELLED:",
                  "                continue"]
    lines += ["            return False",
              "        kind, fn = e"]
    # one branch per kind of entry the table holds (a rule without resources has no kind 3), the
    # kind most members take first, the last one unconditional: fewer comparisons per key
    held: dict[int, int] = {}
    for kind, _ in table.values():
        held[kind] = held.get(kind, 0) + 1
    order = sorted(held, key=lambda kind: (-held[kind], kind))
    for i, kind in enumerate(order):
        test = "else:" if i == len(order) - 1 else f"{'if' if i == 0 else 'elif'} kind == {kind}:"
        lines += [f"        {test}" if len(order) > 1 else "        if True:",
                  f"            if {_BRANCH[kind]}:", "                return False"]
    for i, cnode in enumerate(rule.counted):
        keys = [(k, m.many) for k, m in rule.members.items() if m.count_node is cnode and not m.primitive_ext]
        broken = cardinality.violated(cnode, "n")  # the bounds, inlined
        if not keys:
            if broken is not None and eval(f"lambda n: {broken}")(0):  # noqa: S307 (our own expression)
                lines.append("    return False")
            continue
        if len(keys) == 1 and not keys[0][1]:
            if broken is not None:  # one key, counted 0 or 1: the bounds decided for both counts now
                at = eval(f"lambda n: {broken}")  # noqa: S307 (our own expression)
                absent, present = at(0), at(1)
                if absent and present:
                    lines.append("    return False")
                elif absent or present:
                    lines += [f"    if {keys[0][0]!r} {'not in' if absent else 'in'} obj:", "        return False"]
            continue
        if len(keys) == 1:
            lines.append(f"    n = len(obj.get({keys[0][0]!r}) or ())")
        elif not any(many for _, many in keys):
            env[f"K{i}"] = frozenset(k for k, _ in keys)
            lines.append(f"    n = len(obj.keys() & K{i})")
        else:
            env[f"K{i}"] = tuple(keys)
            lines += ["    n = 0", f"    for k, many in K{i}:", "        v = obj.get(k)", "        if v is not None:",
                      "            n += len(v) if many else 1"]
        if broken is not None:
            lines += [f"    if {broken}:", "        return False"]
    for i, cnode in enumerate(rule.counted):
        if cnode.slicing is not None and cnode.slices:
            env[f"SLICES{i}"] = _slices_fn(val, cnode, rule)
            lines.append(f"    SLICES{i}(obj, path, ctx, depth)")
    lines.append("    return True")
    exec(compile("\n".join(lines), f"<clean path of {rule.node.id}:{rule.type_code}>", "exec"), env)  # noqa: S102
    fast: FastFn = env["fast"]
    rule.fast = fast
    return fast


def _slices_fn(val: Engine, cnode: Any, rule: ObjectRule) -> Callable[[dict[str, Any], str, Any, int], None]:
    """Slice assignment and slice validation of one sliced element of `rule`, memoised on the raw
    content of its keys when the outcome depends on nothing else (as Validator.walk_slices does, but
    without building the item list first: in an export the same category or code recurs)."""
    keys = tuple((k, m) for k, m in rule.members.items() if m.count_node is cnode and not m.primitive_ext)
    memo_ok = val.slices_memoisable(cnode) and all(m.check is not None or val.compiler.context_free(m)
                                                   for _, m in keys)
    memo, slices = val.memo, val.walk_slices
    seen = memo.table()  # this (element, host rule) pair's memo
    markers = val.compiler.memo_markers()
    clean = _clean_slices_fn(val, cnode, rule, keys)
    trial = _Trial(memo_ok)  # given up where the items hardly repeat as a whole (measured components)

    single = keys[0][0] if len(keys) == 1 else None

    def run(obj: dict[str, Any], path: str, ctx: Any, depth: int) -> None:
        raw = None
        if trial.on:
            raw = trial.look(seen, [obj.get(single)] if single is not None else [obj.get(k) for k, _ in keys])
            if raw is _HIT:
                return
        if clean is None or not clean(obj, path, ctx, depth):
            slices(cnode, _gather(obj, keys, path), path, ctx, depth, rule)
        if raw is not None and raw.find(_REFERENCE_KEY) < 0 and _unmarked(raw, markers):  # nothing was reported
            seen[raw] = _HIT
            memo.stored()
    return run


def _clean_slices_fn(val: Engine, cnode: Any, rule: ObjectRule, keys: tuple[tuple[str, Member], ...]
                     ) -> Callable[[dict[str, Any], str, Any, int], bool] | None:
    """Validator.walk_slices for the clean case of complex items (an array, or the keys of a sliced
    choice element such as value[x]): assign each item (type dispatch or the compiled matchers), ask
    slicing.findings whether a slice rule is broken, then validate each item through the value
    checks its slice plan names. True: all clean (an item's problem raises Dirty, as Validator._item
    does); False: something to report, or a case this does not decide (a discriminator that cannot
    be evaluated, a non-object item) — then Validator.walk_slices runs and reports. None when the
    element is not of that kind.

    An assignment found clean is remembered (in the content memo) under what decides it: each
    item's key and the parts of the item its slices' matchers read (slicing.projections) — the
    components of a blood pressure are assigned by their codes, whatever their measured values."""
    if not keys or any(m.kind in (KIND_PRIMITIVE, KIND_RESOURCE) or m.check is not None for _, m in keys):
        return None
    assign, findings = slicing.assign, slicing.findings

    def checks_for(sl: Any, m: Member) -> tuple[Handler, ...] | None:
        sm, with_base = val.slice_plan(cnode, sl, m.type.code, m, rule)
        if sm is not None and sm.kind in (KIND_PRIMITIVE, KIND_RESOURCE):
            return None  # Validator._item validates such a member with the walk
        fns = [val.clean_value_fn(m, rule)] if with_base else []
        if sm is not None:
            fns.append(val.clean_value_fn(sm, rule))
        return tuple(fns)

    many_broken, items_broken = S.any_broken(S.MANY), S.items_broken(S.ITEM + S.COMPLEX)
    projections = slicing.projections(cnode)
    memo, seen = val.memo, val.memo.table()  # projection key -> a clean assignment
    trial = _Trial(projections is not None)  # given up where the decisive parts hardly repeat
    plans: dict[int, dict[int, tuple[Handler, ...] | None]] = {id(m): {} for _, m in keys}  # member -> slice -> checks
    # each item's own path only where an item can hold a resource (Bundle.entry): see compile_rule
    paths = any(val.compiler.holds_resource(m) for _, m in keys)

    def clean(obj: dict[str, Any], path: str, ctx: Any, depth: int) -> bool:
        groups: list[tuple[str, Member, list[Any], bool]] = []  # the items of each key, as _gather takes them
        typed: list[tuple[Any, str]] = []
        for k, m in keys:
            v = obj.get(k)
            if v is None:
                continue
            if m.many:
                if many_broken(v) or items_broken(v):
                    return False  # the walk reports it
                groups.append((k, m, v, True))
                t = m.type.code
                typed.extend([(it, t) for it in v])
            elif items_broken([v]):
                return False
            else:
                groups.append((k, m, [v], False))
                typed.append((v, m.type.code))
        found = trial.look(seen, [(k, [p(it) for p in projections])  # type: ignore[union-attr]
                                  for k, _, items, _ in groups for it in items]) if trial.on else None
        if found is None or type(found) is bytes:  # not remembered: assign, and remember a clean one
            assigned, problems = assign(typed, cnode, ctx)
            if problems or next(findings(assigned, cnode), None) is not None:
                return False
            if found is not None:
                seen[found] = assigned
                memo.stored()
        else:
            assigned = found
        todo: list[tuple[Handler, ...]] = []  # every item's checks first: a case this does not decide walks
        pos = 0
        for _, m, items, _ in groups:
            known = plans[id(m)]
            for sl in assigned[pos:pos + len(items)]:
                if id(sl) in known:
                    fns = known[id(sl)]
                else:
                    fns = known[id(sl)] = checks_for(sl, m)
                if fns is None:
                    return False
                todo.append(fns)
            pos += len(items)
        pos = 0
        for k, _, items, many in groups:
            for i, it in enumerate(items):
                where = (f"{path}.{k}[{i}]" if many else f"{path}.{k}") if paths else path
                for fn in todo[pos]:
                    if not fn(it, where, ctx, depth):
                        raise Dirty
                pos += 1
        return True
    return clean


def _gather(obj: dict[str, Any], keys: tuple[tuple[str, Member], ...], path: str) -> list[Any]:
    """The items of one sliced element, in the form Validator.walk_slices takes."""
    items: list[tuple[Any, str | None, str, Member | None]] = []
    for k, m in keys:
        v = obj.get(k)
        if v is None:
            continue
        deferred = m if m.check is None else None  # primitives were checked by their handler
        if m.many:
            items.extend((it, m.type.code, f"{path}.{k}[{i}]", deferred) for i, it in enumerate(v))
        else:
            items.append((v, m.type.code, f"{path}.{k}", deferred))
    return items


_HANDLER_CODE: dict[str, Any] = {}  # source -> compiled code: most members share a handler's source


def _generated(name: str, lines: list[str], env: dict[str, Any]) -> Any:
    """The function `fn` of `lines` (its free names from `env`); the source is compiled once for all
    members whose handlers read alike (the first one's `name` labels it)."""
    source = "\n".join(lines)
    code = _HANDLER_CODE.get(source)
    if code is None:
        code = _HANDLER_CODE[source] = compile(source, name, "exec")
    exec(code, env)  # noqa: S102 (source built from our definitions)
    return env["fn"]


def _handler(val: Engine, key: str, m: Member, host: ObjectRule) -> Handler:
    """The clean path's check of member `m`'s value where compile_rule does not inline it: generated
    with the shape conditions of structure.py inlined, then the format check, the rules or the
    complex value's own check (value_fn)."""
    name = f"<clean path of {m.node.id}>"
    many = S.broken_source(S.MANY)
    if m.kind == KIND_PRIMITIVE and not (m.sliced and m.check is None):
        env: dict[str, Any] = {"check": m.check or _no_problem}
        more = bool(val.compiler.rules_for(m))
        if more:
            env["more_fn"] = _more_fn(val, m, rewire(env, "more_fn"))
        if m.many:
            lines = ["def fn(v, path, ctx, depth):",
                     f"    if {many}:",
                     "        return False",
                     "    for it in v:",
                     f"        if {S.broken_source(S.ITEM, 'it')} or check(it) is not None:",
                     "            return False"]
            if more:
                lines += ["    for it in v:",
                          "        if not more_fn(it, ctx):",
                          "            return False"]
            return _generated(name, lines + ["    return True"], env)  # type: ignore[no-any-return]
        known = getattr(env["more_fn"], "seen", None) if more else None  # values found clean before
        lines = ["def fn(v, path, ctx, depth):"]
        if known is not None:
            env["known"] = known
            lines += ["    t = type(v)",
                      "    if (t is str or t is bool or t is int or t is float) and known.get(v) is t:",
                      "        return True  # it passed its format check too"]
        lines += [f"    if {S.broken_source(S.SINGLE)} or check(v) is not None:",
                  "        return False",
                  "    return " + ("more_fn(v, ctx)" if more else "True")]
        return _generated(name, lines, env)  # type: ignore[no-any-return]

    if m.sliced:  # shape only: the items are validated by _slices once assigned
        shapes = S.ITEM if m.kind == KIND_PRIMITIVE else S.ITEM + S.COMPLEX
        if m.many:
            lines = ["def fn(v, path, ctx, depth):",
                     f"    if {many}:",
                     "        return False",
                     "    for it in v:",
                     f"        if {S.broken_source(shapes, 'it')}:",
                     "            return False",
                     "    return True"]
        else:
            lines = ["def fn(v, path, ctx, depth):",
                     f"    return not ({S.broken_source(S.SINGLE)})"]
        return _generated(name, lines, {})  # type: ignore[no-any-return]

    env = {"value": value_fn(val, m, host), "key": key, "LONG_ARRAY": S.LONG_ARRAY, "monotonic": time.monotonic}
    item = S.broken_source(S.ITEM + S.COMPLEX, "it")
    if m.many:
        # an item that holds no resource (Compiler.holds_resource: a Reference, a CodeableConcept …)
        # has nothing validated for real inside it that needs the item's own path; while probing a
        # problem only raises Dirty: the walk then reports with real paths
        lines = ["def fn(v, path, ctx, depth):",
                 f"    if {many}:",
                 "        return False",
                 "    if len(v) > LONG_ARRAY and monotonic() > ctx.deadline:",
                 "        return False  # the walk raises the time-limit abort"]
        if not val.compiler.holds_resource(m):
            lines += ["    for it in v:",
                      f"        if {item} or not value(it, path, ctx, depth):",
                      "            return False"]
        else:
            lines += ["    where = f'{path}.{key}'",
                      "    for i, it in enumerate(v):",
                      f"        if {item} or not value(it, f'{{where}}[{{i}}]', ctx, depth):",
                      "            return False"]
        return _generated(name, lines + ["    return True"], env)  # type: ignore[no-any-return]
    lines = ["def fn(v, path, ctx, depth):",
             f"    return not ({S.broken_source(S.SINGLE + S.COMPLEX)}) and value(v, f'{{path}}.{{key}}', ctx, depth)"]
    return _generated(name, lines, env)  # type: ignore[no-any-return]


def all_hold(rules: tuple[Any, ...], m: Member, name: str) -> Callable[[Any, Any], bool]:
    """One generated function (value, ctx) -> do all `rules` hold for a value of `m`? Each rule is
    one line: its `holds` called with the member, or its per-member specialisation (Rule.compile)."""
    if len(rules) == 1 and type(rules[0]).compile is not Rule.compile:
        return rules[0].test(m)  # type: ignore[no-any-return]
    env: dict[str, Any] = {"M": m}
    lines = ["def all_hold(v, ctx):"]
    for i, r in enumerate(rules):
        if type(r).compile is Rule.compile:  # defines holds itself: call it, no wrapper in between
            env[f"R{i}"] = r.holds
            lines.append(f"    if not R{i}(v, M, ctx):")
        else:
            env[f"R{i}"] = r.test(m)
            lines.append(f"    if not R{i}(v, ctx):")
        lines.append("        return False")
    lines.append("    return True")
    exec(compile("\n".join(lines), name, "exec"), env)
    return env["all_hold"]  # type: ignore[no-any-return]


def _more_fn(val: Engine, m: Member, given_up: Callable[[Callable[..., Any]], None] | None = None
             ) -> Callable[[Any, Any], bool]:
    """The rules of a primitive member (fixed/pattern, binding, bounds, invariants, example URLs …)
    for one value whose format is valid: True when all hold. Memoised per (member, type, value) when
    the verdict depends on nothing but the value: codes and systems recur throughout an export."""
    rules = val.compiler.rules_for(m)
    one = all_hold(rules, m, f"<rules of {m.node.id}>")
    memo_ok = val.compiler.context_free(m) and any(r.costly for r in rules)
    if not memo_ok:
        return one
    memo = val.memo
    seen = memo.table()  # value -> its type (1 and True are equal keys; the type tells them apart)
    trial = _Trial(off=(lambda: given_up(one)) if given_up is not None else None)  # given up for values
    # that hardly repeat (narrative divs)
    markers = tuple(r.context_marker for r in rules if r.context_marker)  # such strings are never stored

    def run(v: Any, ctx: Any) -> bool:
        kind = type(v)
        memo_on = trial.on and kind in _SCALARS
        if memo_on:
            if seen.get(v) is kind:
                trial.hits += 1
                return True
            trial.missed()
        if not one(v, ctx):
            return False
        if memo_on and not (markers and kind is str and v.startswith(markers)):
            seen[v] = kind
            memo.stored()
        return True
    run.seen = seen  # type: ignore[attr-defined]  # (every caller checks the format first: see _handler)
    return run


def worth_remembering(reads: tuple[Callable[[Any, Any], Any], ...]) -> bool:
    """Can remembering a test's true verdicts under its `reads` pay? Not when it reads only whether
    navigations find anything (each read a fhirpath_native `_found`, as of `component.exists() or
    note.exists()`): the key would cost those navigations, a serialisation and a look-up, the test
    itself no more than those navigations."""
    for r in reads:
        if not getattr(r, "presence", False):
            return True
    return False


def remembered_test(test: Callable[[Any, Any], Any], reads: tuple[Callable[[Any, Any], Any], ...], memo: Any,
                    given_up: Callable[[Callable[..., Any]], None] | None = None) -> Callable[[Any, Any], Any]:
    """`test` remembering the focuses it found true (in the validator's content memo) under what it
    reads of them: the results of its navigations from the focus (Constraint.reads) — whatever else
    the focus holds, equal results give the same verdict. A profile's `resource.meta.profile…` on
    each Bundle entry, or `code.coding.where(…)` on each Observation, is then evaluated once per
    distinct code, not once per resource. Verdicts that are not true are never remembered.

    Where every navigation takes its direct way (fhirpath_native `raw`: one object, a chain of keys)
    the key is the JSON values they end at, which decide their results — no result collection built;
    such keys live in a table of their own, apart from keys of results."""
    seen, by_value = memo.table(), memo.table()
    trial = _Trial(off=(lambda: given_up(test)) if given_up is not None else None)  # given up where what it
    # reads hardly repeats (a fullUrl)
    found = tuple(getattr(r, "raw", None) for r in reads)
    raws: tuple[Callable[[Any], Any], ...] | None = found if all(r is not None for r in found) else None  # type: ignore[assignment]
    only = reads[0] if len(reads) == 1 else None  # the common case: one navigation, its result the key
    only_raw = raws[0] if raws is not None and len(raws) == 1 else None

    def run(focus: Any, env: Any) -> Any:
        if not trial.on:
            return test(focus, env)
        table, key = seen, None
        if only_raw is not None:
            key = only_raw(focus)
            if key is not UNDECIDED:
                table = by_value
        elif raws is not None:
            key = [raw(focus) for raw in raws]
            if UNDECIDED not in key:
                table = by_value
        if table is seen:
            key = only(focus, env) if only is not None else [read(focus, env) for read in reads]
        raw = trial.look(table, key)
        if raw is _HIT:
            return True
        verdict = test(focus, env)
        if verdict is True and raw is not None:
            table[raw] = _HIT
            memo.stored()
        return verdict
    return run


_STRING_CHECK = PRIMITIVE_CHECKS["string"]


def _bare_reference_ok(val: Engine, m: Member, sub_rule: ObjectRule | None) -> bool:
    """True when a Reference value that is exactly {"reference": <urn:uuid:…>} is clean as soon as its
    reference resolves (Reference.bundle_urn): every rule of the element holds whatever the uuid
    (Rule.uuid_blind), its `reference` member takes any string (a urn:uuid always is one) and the
    object's cardinalities hold for that one key."""
    if sub_rule is None or not all(r.uuid_blind(m) for r in val.compiler.rules_for(m)):
        return False
    ref = sub_rule.members.get("reference")
    if ref is None or ref.kind != KIND_PRIMITIVE or ref.many or val.compiler.rules_for(ref) or ref.sliced \
            or ref.check is not _STRING_CHECK:
        return False
    for cnode in sub_rule.counted:
        n = sum(1 for k, mm in sub_rule.members.items() if mm.count_node is cnode and k == "reference")
        if cardinality.check(cnode, n, "") is not None or (cnode.slicing is not None and cnode.slices):
            return False
    return True


def value_fn(val: Engine, m: Member, host: ObjectRule) -> Handler:
    """The clean path's check of one complex value of member `m`: the rules before its children,
    its own elements (the clean path of their object rule), the rules after them."""
    if m.kind == KIND_RESOURCE:  # what Validator._value does for a resource, without its dispatch
        code, wrong = m.type.code, S.wrong_resource_type(m.type.code)
        wrong_type = wrong.broken if wrong is not None else None  # none for Resource (Bundle.entry.resource)
        profiles, contained = m.type.profiles, m.key == "contained"
        validate_resource = val.validate_resource

        def resource(v: Any, path: str, ctx: Any, depth: int) -> bool:
            if wrong_type is not None and wrong_type(v, code):
                return False  # the walk reports the type
            ctx.probing = False  # validated for real: see the module docstring
            try:
                validate_resource(v, path, ctx, extra_profiles=profiles, contained=contained)
            finally:
                ctx.probing = True
            return True
        return resource
    compiler = val.compiler
    node, t = m.node, m.type
    context_free = compiler.context_free(m)
    rules = compiler.rules_for(m)
    early = tuple(r for r in rules if r.stage < CHILDREN)
    late = tuple(r for r in rules if r.stage >= CHILDREN)
    before = all_hold(early, m, f"<rules before the children of {node.id}>") if early else None
    after = all_hold(late, m, f"<rules after the children of {node.id}>") if late else None
    is_extension = m.kind == KIND_EXTENSION
    extension_rule = compiler.extension_rule
    sub_rule = None if is_extension else compiler.object_rule(node, t.code)
    bare_urn = None
    if m.kind == KIND_REFERENCE and _bare_reference_ok(val, m, sub_rule):
        reference = next(r for r in rules if type(r) is Reference)
        plan = reference.plan(m)
        bare_urn = reference.bundle_urn
    memo = val.memo
    seen = memo.table()
    markers = compiler.memo_markers()

    # a Reference always holds a "reference": never memoised; given up for values that hardly repeat
    # (measured values, times)
    trial = _Trial(context_free and m.kind != KIND_REFERENCE)

    def value(v: dict[str, Any], path: str, ctx: Any, depth: int) -> bool:
        raw = trial.look(seen, v) if trial.on else None
        if raw is _HIT:
            return True
        if before is not None and not before(v, ctx):
            return False
        sub = extension_rule(v.get("url"), node) if is_extension else sub_rule
        fast = sub.fast or compile_rule(val, sub)  # type: ignore[union-attr, arg-type]
        if not fast(v, path, ctx, depth + 1):
            return False
        if after is not None and not after(v, ctx):
            return False
        # a reference's verdict depends on the Bundle, a '#id' on the resource (Rule.context_marker)
        if raw is not None and raw.find(_REFERENCE_KEY) < 0 and _unmarked(raw, markers):
            seen[raw] = _HIT
            memo.stored()
        return True
    if bare_urn is None:
        return value

    def bare_or_value(v: dict[str, Any], path: str, ctx: Any, depth: int) -> bool:
        """A Reference value: exactly {"reference": "urn:uuid:…"} is decided by the Bundle (see
        _bare_reference_ok), anything else as any other value (only references ask this first)."""
        if len(v) == 1:
            ref = v.get("reference")
            if type(ref) is str:
                verdict = bare_urn(ref, plan, ctx)  # (first of all: was it found clean before?)
                if verdict is not None:
                    return verdict
        return value(v, path, ctx, depth)
    return bare_or_value
