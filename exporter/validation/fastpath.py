"""The clean path of the walker (layer L2): each ObjectRule compiled once into a closure that
answers "is this object clean?" — cheaper than the walk, because it builds no messages and decides
every per-member question (array or not, primitive or complex, counted, sliced, which checks apply)
once at compile time instead of per value.

    fast = compile_rule(validator, rule)        # cached on rule.fast
    fast(obj, path, ctx, depth) -> bool          # True: the walk would report nothing

How it is used (Validator._walk): the clean path runs first with `ctx.probing` set. While probing,
`ctx.add` raises `Dirty` instead of recording an issue — leaf checks that are not worth
duplicating (bindings, references, invariants, extensions, slices) are simply called and "raise if
anything would be reported". If the clean path returns False or meets `Dirty`, the ordinary walk
runs over the same object and reports exactly what it always did: every message, path and code
still comes from the walker; this module only makes the common case, an export without issues,
cheap. Nested resources are validated for real even while probing (their issues belong to them, and
each resource is walked once per profile), so a probe never discards a resource's issues.

Equivalence is tested by running the validator with and without this path over the IG examples,
the invalid cases and mutations (tests/unit/validation/test_fastpath.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import orjson

from exporter.validation import binding, codes, slicing
from exporter.validation.invariants import NATIVE, unmet
from exporter.validation.primitives import PRIMITIVE_CHECKS, UUID_RE
from exporter.validation.references import claims_any
from exporter.validation.fixed_pattern import equals_fixed, pattern_matcher
from exporter.validation.model import KIND_EXTENSION, KIND_PRIMITIVE, KIND_REFERENCE, KIND_RESOURCE, Member, ObjectRule

if TYPE_CHECKING:
    from exporter.validation.validator import Validator

FastFn = Callable[[dict[str, Any], str, Any, int], bool]
Handler = Callable[[Any, str, Any, int], bool]


class Dirty(BaseException):
    """Raised by ctx.add while probing: something would be reported. A BaseException, so that the
    `except Exception` around invariant evaluation cannot swallow it."""


_SCALARS = (str, int, float, bool)
# a memo table whose first MEMO_TRIAL look-ups found fewer than MEMO_MIN_HITS values seen before
# stops storing: that element's values hardly repeat (times, measured values, narrative divs)
MEMO_TRIAL, MEMO_MIN_HITS = 200, 20
_REFERENCE_KEY = b'"reference"'


class Memo:
    """The clean path's content memo: one table per element (key: the value's canonical JSON, or the
    scalar itself), bounded as a whole — when `limit` entries are stored, every table is emptied.
    A value is stored only after it validated clean, and only when its validation depends on nothing
    but its content (no "reference" in it), so a hit needs no further test."""

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


def _no_problem(v: Any) -> None:
    return None


def compile_rule(val: "Validator", rule: ObjectRule) -> FastFn:
    """Generate (once per rule) straight-line Python for the object-level work: the key loop with
    the common members inlined, then one line per cardinality rule, then the slice checks."""
    if rule.fast is not None:
        return rule.fast
    table: dict[str, tuple[int, Any]] = {}
    for key, m in rule.members.items():
        if m.primitive_ext:
            continue  # `_key` companions are rare: their presence sends the object down the walk
        if m.kind == KIND_PRIMITIVE and m.check is not None and not m.more and not m.many:
            table[key] = (1, m.check)  # inlined: format check only
        elif m.kind not in (KIND_PRIMITIVE, KIND_RESOURCE) and not m.many and not m.sliced:
            table[key] = (2, value_fn(val, m, rule))  # inlined: one complex value
        else:
            table[key] = (0, _handler(val, key, m, rule))
    env: dict[str, Any] = {"H": table, "MAX_DEPTH": val.max_depth}
    lines = ["def fast(obj, path, ctx, depth):",
             "    if depth > MAX_DEPTH or not obj:",
             "        return False",
             "    for k, v in obj.items():",
             "        e = H.get(k)",
             "        if e is None:"]
    if rule.is_resource:
        lines += ["            if k == 'resourceType':",
                  "                continue"]
    lines += ["            return False",
              "        kind, fn = e",
              "        if kind == 1:",
              "            if v is None or type(v) is list or fn(v) is not None:",
              "                return False",
              "        elif kind == 2:",
              "            if type(v) is not dict or not fn(v, f'{path}.{k}', ctx, depth):",
              "                return False",
              "        elif not fn(v, path, ctx, depth):",
              "            return False"]
    for i, cnode in enumerate(rule.counted):
        keys = [(k, m.many) for k, m in rule.members.items() if m.count_node is cnode and not m.primitive_ext]
        lo, hi = cnode.min, cnode.max
        if not keys:
            if lo > 0:
                lines.append("    return False")
            continue
        if len(keys) == 1 and not keys[0][1]:
            k = keys[0][0]
            if lo > 0:
                lines += [f"    if {k!r} not in obj:", "        return False"]
            if hi == 0:
                lines += [f"    if {k!r} in obj:", "        return False"]
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
        cond = [f"n < {lo}"] if lo > 0 else []
        if hi is not None:
            cond.append(f"n > {hi}")
        if cond:
            lines += [f"    if {' or '.join(cond)}:", "        return False"]
    for i, cnode in enumerate(rule.counted):
        if cnode.slicing is not None and cnode.slices:
            env[f"SLICES{i}"] = _slices_fn(val, cnode, rule)
            lines.append(f"    SLICES{i}(obj, path, ctx, depth)")
    lines.append("    return True")
    exec(compile("\n".join(lines), f"<clean path of {rule.node.id}:{rule.type_code}>", "exec"), env)
    fast = env["fast"]
    rule.fast = fast
    return fast


def _slices_fn(val: "Validator", cnode: Any, rule: ObjectRule) -> Callable[[dict[str, Any], str, Any, int], None]:
    """Slice assignment and slice validation of one sliced element of `rule`, memoised on the raw
    content of its keys when the outcome depends on nothing else (as Validator._slices does, but
    without building the item list first: in an export the same category or code recurs)."""
    keys = tuple((k, m) for k, m in rule.members.items() if m.count_node is cnode and not m.primitive_ext)
    memo_ok = val._slices_memoisable(cnode) and all(m.check is not None or val.compiler.context_free(m)
                                                    for _, m in keys)
    memo, slices = val.memo, val._slices
    seen = memo.table()  # this (element, host rule) pair's memo
    clean = _clean_slices_fn(val, cnode, rule, keys)
    tries = hits = 0

    single = keys[0][0] if len(keys) == 1 else None

    def run(obj: dict[str, Any], path: str, ctx: Any, depth: int) -> None:
        nonlocal memo_ok, tries, hits
        raw = None
        if memo_ok:
            try:
                raw = orjson.dumps([obj.get(single)] if single is not None else [obj.get(k) for k, _ in keys])
            except (TypeError, orjson.JSONEncodeError):
                raw = None
            else:
                tries += 1
                if raw in seen:
                    hits += 1
                    return
                if tries == MEMO_TRIAL and hits < MEMO_MIN_HITS:
                    memo_ok = False  # these items hardly repeat as a whole (measured components)
        if clean is None or not clean(obj, path, ctx, depth):
            slices(cnode, _gather(obj, keys, path), path, ctx, depth, rule)
        if raw is not None and raw.find(_REFERENCE_KEY) < 0:  # reached only when nothing was reported
            seen[raw] = None
            memo.stored()
    return run


def _clean_slices_fn(val: "Validator", cnode: Any, rule: ObjectRule, keys: tuple[tuple[str, Member], ...]
                     ) -> Callable[[dict[str, Any], str, Any, int], bool] | None:
    """Validator._slices for the clean case of one array of complex items: assign each item (type
    dispatch or the compiled matchers), check the slices' cardinalities, closed/openAtEnd and order,
    then validate each item through the value checks its slice plan names. True: all clean (an
    item's problem raises Dirty, as Validator._item does); False: something to report, or a case
    this does not decide (a discriminator that cannot be evaluated, a non-object item) — then
    Validator._slices runs and reports. None when the element is not of that kind."""
    if len(keys) != 1:
        return None
    key, m = keys[0]
    if not m.many or m.kind in (KIND_PRIMITIVE, KIND_RESOURCE) or m.check is not None:
        return None
    compiled = slicing.matchers(cnode)
    dispatch = slicing.type_dispatch(cnode)
    one_step = dispatch[0][0] if dispatch is not None and len(dispatch[0]) == 1 else None
    rules, ordered = cnode.slicing.rules, cnode.slicing.ordered
    closed, open_at_end = rules == "closed", rules == "openAtEnd"
    positions = {id(sl): i for i, sl in enumerate(cnode.slices)}
    bounds = [(id(sl), sl.min, sl.max) for sl in cnode.slices if sl.min > 0 or sl.max is not None]
    vtype = m.type.code
    plans: dict[int, tuple[Handler, ...] | None] = {}  # id(slice or None) -> the value checks of its items

    def checks_for(sl: Any) -> tuple[Handler, ...] | None:
        sm, with_base = val._slice_plan(cnode, sl, vtype, m)
        if sm is not None and sm.kind in (KIND_PRIMITIVE, KIND_RESOURCE):
            return None  # Validator._item validates such a member with the walk
        fns = [val.clean_value_fn(m, rule)] if with_base else []
        if sm is not None:
            fns.append(val.clean_value_fn(sm, rule))
        return tuple(fns)

    def clean(obj: dict[str, Any], path: str, ctx: Any, depth: int) -> bool:
        items = obj.get(key)
        if type(items) is not list:
            return False
        assigned = []
        for it in items:
            if type(it) is not dict:
                return False
            if dispatch is not None:
                if one_step:  # `resource`: the item's own key, no collection
                    target = it.get(one_step)
                else:
                    found = slicing.simple_values(it, dispatch[0])
                    target = found[0] if len(found) == 1 else None
                if type(target) is not dict:
                    return False  # no value, several, a list or a non-object: Validator._slices decides
                rt = target.get("resourceType")
                chosen = dispatch[1].get(rt) if type(rt) is str else None
            else:
                chosen = None
                for sl, fns in compiled:
                    if len(fns) == 1:  # one discriminator, the common case
                        verdict = fns[0](it, vtype, ctx)
                        if verdict is None:
                            return False
                        if verdict:
                            chosen = sl
                            break
                        continue
                    if not fns:
                        return False
                    verdicts = [fn(it, vtype, ctx) for fn in fns]
                    if None in verdicts:
                        return False
                    if all(verdicts):
                        chosen = sl
                        break
            assigned.append(chosen)
        counts: dict[int, int] = {}
        last, unmatched = -1, False
        for sl in assigned:
            if sl is None:
                if closed:
                    return False
                unmatched = True
                continue
            if open_at_end and unmatched:
                return False
            pos = positions[id(sl)]
            if ordered and pos < last:
                return False
            last = pos if pos > last else last
            counts[id(sl)] = counts.get(id(sl), 0) + 1
        for sid, lo, hi in bounds:
            n = counts.get(sid, 0)
            if n < lo or (hi is not None and n > hi):
                return False
        todo = []
        for sl in assigned:
            fns = plans.get(id(sl), False)
            if fns is False:
                fns = plans[id(sl)] = checks_for(sl)
            if fns is None:
                return False
            todo.append(fns)
        for i, (it, fns) in enumerate(zip(items, todo)):
            where = f"{path}.{key}[{i}]"
            for fn in fns:
                if not fn(it, where, ctx, depth):
                    raise Dirty
        return True
    return clean


def _gather(obj: dict[str, Any], keys: tuple[tuple[str, Member], ...], path: str) -> list[Any]:
    """The items of one sliced element, in the form Validator._slices takes."""
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


def _handler(val: "Validator", key: str, m: Member, host: ObjectRule) -> Handler:
    deadline_guard = 256
    if m.kind == KIND_PRIMITIVE and not (m.sliced and m.check is None):
        check = m.check or _no_problem
        more = m.more
        if more:
            more_fn = _more_fn(val, m)
        if m.many:
            def primitives(v: Any, path: str, ctx: Any, depth: int) -> bool:
                if type(v) is not list or not v:
                    return False
                for it in v:
                    if it is None or check(it) is not None:
                        return False
                if more:
                    for i, it in enumerate(v):
                        more_fn(it, path, key, i, ctx)
                return True
            return primitives

        known = getattr(more_fn, "seen", None) if more else None  # values found clean before

        def primitive(v: Any, path: str, ctx: Any, depth: int) -> bool:
            if known is not None:
                t = type(v)
                if (t is str or t is bool or t is int or t is float) and known.get(v) is t:
                    return True  # it passed its format check too
            if v is None or type(v) is list or check(v) is not None:
                return False
            if more:
                more_fn(v, path, key, None, ctx)
            return True
        return primitive

    if m.sliced:  # shape only: the items are validated by _slices once assigned
        if m.many:
            def shape(v: Any, path: str, ctx: Any, depth: int) -> bool:
                if type(v) is not list or not v:
                    return False
                for it in v:
                    if it is None or type(it) is list:
                        return False
                return True
            return shape
        return lambda v, path, ctx, depth: v is not None and type(v) is not list

    value = value_fn(val, m, host)
    if m.many:
        # a Reference holds no resource, so nothing validated for real inside it needs the item's
        # own path; while probing a problem only raises Dirty: the walk then reports with real paths
        item_paths = m.kind != KIND_REFERENCE

        def values(v: Any, path: str, ctx: Any, depth: int) -> bool:
            if type(v) is not list or not v:
                return False
            if len(v) > deadline_guard and time.monotonic() > ctx.deadline:
                return False  # the walk raises the time-limit abort
            where = f"{path}.{key}"
            if not item_paths:
                for it in v:
                    if type(it) is not dict or not value(it, where, ctx, depth):
                        return False
                return True
            for i, it in enumerate(v):
                if type(it) is not dict or not value(it, f"{where}[{i}]", ctx, depth):
                    return False
            return True
        return values

    def single(v: Any, path: str, ctx: Any, depth: int) -> bool:
        return type(v) is dict and value(v, f"{path}.{key}", ctx, depth)
    return single


def constraints_fn(constraints: list[Any], type_code: str | None, objects: bool) -> Callable[[Any, Any], bool]:
    """The invariants of an element as one generated function: True when all hold (what
    Validator._constraints would report nothing for); False sends the caller to _constraints,
    which reports. `objects`: the values are JSON objects, so guards (see invariants.GUARDS) apply."""
    if any(c.check is None for c in constraints):
        return lambda v, ctx: False  # a constraint that could not be compiled is always reported
    env: dict[str, Any] = {"T": type_code, "NO_ENV": {}}
    lines = ["def holds(v, ctx):", "    ctx.focus_type = T"]
    if any(c.test is not None for c in constraints):
        lines.append("    F = [(v, T)]  # the focus of every translated test (each reads, none changes it)")
    lines.append("    try:")
    for i, c in enumerate(constraints):
        if c.test is not None:  # the translated test itself; where it declines, _constraints decides
            env[f"C{i}"] = c.test
            call = f"C{i}(F, NO_ENV) is not True"
        else:
            env[f"C{i}"] = c.check
            call = f"not C{i}(v, ctx)"
        if objects and c.guard is not None:
            lines.append(f"        if {c.guard!r} in v and {call}:")
        else:
            lines.append(f"        if {call}:")
        lines.append("            return False")
    # a translated test that declines at run time (fhirpath_native.Unsupported, e.g. a temporal
    # comparison) is no finding: every invariant is then decided the way _constraints decides it
    env["SLOW"] = _constraints_slowly(constraints, type_code)
    lines += ["    except Exception:", "        return SLOW(v, ctx)", "    return True"]
    exec(compile("\n".join(lines), f"<invariants of {type_code}>", "exec"), env)
    return env["holds"]


def _constraints_slowly(constraints: list[Any], type_code: str | None) -> Callable[[Any, Any], bool]:
    """What Validator._constraints decides, without reporting: True when every invariant holds
    (each through its full check, which falls back to fhirpathpy where the translation declines)."""
    def slowly(v: Any, ctx: Any) -> bool:
        return next(unmet(constraints, v, ctx, type_code), None) is None
    return slowly


def _more_fn(val: "Validator", m: Member) -> Callable[[Any, str, str, int | None, Any], None]:
    """Validator._primitive_more (fixed/pattern, binding, invariants, example URLs) for one value,
    memoised per (member, type, value) when it depends on nothing but the value: codes and systems
    recur throughout an export."""
    memo_ok = val.compiler.context_free(m)
    memo, more = val.memo, val._primitive_more
    seen = memo.table()  # value -> its type (1 and True are equal keys; the type tells them apart)
    node = m.node
    if not (node.has_fixed or node.has_pattern or node.binding_strength or node.constraints):
        # only the example-URL rule applies (a uri such as Bundle.entry.fullUrl): two substring tests
        # decide it, cheaper than any memo
        def url_only(v: Any, path: str, key: str, index: int | None, ctx: Any) -> None:
            if type(v) is not str or "example.org" in v or "acme.com" in v:
                more(v, m, f"{path}.{key}[{index}]" if index is not None else f"{path}.{key}", ctx)
        return url_only

    storing, tries, hits = memo_ok, 0, 0
    # only invariants (a narrative's div: txt-1, txt-2): their generated function decides, and
    # _primitive_more runs only to report
    only_invariants = not (node.has_fixed or node.has_pattern or node.binding_strength) and m.type.code not in ("uri", "url")
    holds = constraints_fn(node.constraints, m.type.code, False) if only_invariants and node.constraints else None

    def run(v: Any, path: str, key: str, index: int | None, ctx: Any) -> None:
        nonlocal storing, tries, hits
        kind = type(v)
        memo_on = storing and kind in _SCALARS
        if memo_on:
            tries += 1
            if seen.get(v) is kind:
                hits += 1
                return
            if tries == MEMO_TRIAL and hits < MEMO_MIN_HITS:
                storing = False  # values that hardly repeat (narrative divs): stop storing them
        if holds is None or not holds(v, ctx):
            more(v, m, f"{path}.{key}[{index}]" if index is not None else f"{path}.{key}", ctx)
        if memo_on:  # reached only when nothing was reported (probing raises)
            seen[v] = kind
            memo.stored()
    if memo_ok:
        run.seen = seen  # type: ignore[attr-defined]  # (every caller checks the format first: see _handler)
    return run


def _reference_fn(val: "Validator", target_profiles: tuple[str, ...]) -> Callable[[dict[str, Any], str, Any], None]:
    """Validator._reference for the common clean case — a urn:uuid that is the fullUrl of an entry
    of the enclosing Bundle, whose resource has an allowed type and claims an allowed profile —
    without its message machinery; anything else is handed to Validator._reference."""
    types, profiles = val._allowed_targets(target_profiles) if target_profiles else (set(), [])
    any_type = not types or "Resource" in types
    uuid_match = UUID_RE.match
    full, candidates_of = val._reference, val._target_candidates

    token = object()  # these target profiles, in the per-validation set of references found clean
    by_type: dict[str, tuple[list[str], bool, frozenset[str]]] = {}  # target type -> candidates (fixed per validator)

    def check(v: dict[str, Any], path: str, ctx: Any) -> None:
        ref = v.get("reference")
        if type(ref) is not str:
            if isinstance(ref, str):  # a str subclass: the general check
                full(v, target_profiles, path, ctx)
            return  # no reference string: nothing to check (as Validator._reference)
        if not bare(v, ref, path, ctx):
            full(v, target_profiles, path, ctx)

    def bare(v: dict[str, Any], ref: str, path: str, ctx: Any) -> bool:
        """The check of reference string `ref` of value `v`: True when it is a urn:uuid of the
        enclosing Bundle, checked here (a problem with its target raises Dirty); False when it is no
        urn:uuid of a Bundle (the caller takes the general path)."""
        bundle = ctx.bundle
        if bundle is None:
            return False
        key = (ref, token)
        if key in bundle.clean_references:
            return True  # found clean before: a urn:uuid, resolved, an allowed target
        well_formed = bundle.uuid_urns.get(ref)  # shared by all target profiles (Composition, Provenance)
        if well_formed is None:
            well_formed = bundle.uuid_urns[ref] = ref.startswith("urn:uuid:") and uuid_match(ref) is not None
        if not well_formed:
            return False
        resolves(v, ref, key, bundle, path, ctx)
        return True

    def resolves(v: dict[str, Any], ref: str, key: tuple[str, object], bundle: Any, path: str, ctx: Any) -> None:
        target = bundle.by_full_url.get(ref)
        if target is None:
            full(v, target_profiles, path, ctx)
            return
        if target_profiles:
            rt = target.get("resourceType")
            if not any_type and rt not in types:
                full(v, target_profiles, path, ctx)
                return
            found = by_type.get(rt) if type(rt) is str else None
            if found is None:
                found = candidates_of(target_profiles, profiles, rt)
                if type(rt) is str:
                    by_type[rt] = found
            candidates, core_ok, claimed = found
            if candidates and not core_ok and not claims_any(target, claimed):
                full(v, target_profiles, path, ctx)  # raises Dirty when it finds a problem
        bundle.clean_references.add(key)
    check.bare = bare  # type: ignore[attr-defined]
    return check


_STRING_CHECK = PRIMITIVE_CHECKS["string"]
# the invariants a bare urn:uuid Reference satisfies whatever its uuid: ref-1 only constrains
# references that start with '#'
_BARE_REFERENCE_HOLDS = frozenset({("ref-1", next(e for k, e in NATIVE if k == "ref-1"))})


def _bare_reference_ok(node: Any, sub_rule: ObjectRule | None, constraints: list[Any], strength: str | None) -> bool:
    """True when a Reference value that is exactly {"reference": <urn:uuid:…>} is clean as soon as its
    reference resolves (what _reference_fn checks): nothing on the element depends on the uuid (no
    fixed value, pattern, binding, or invariant other than ref-1), its `reference` member takes any
    string (a urn:uuid always is one) and the object's cardinalities hold for that one key."""
    if sub_rule is None or node.has_fixed or node.has_pattern or strength is not None:
        return False
    if any((c.key, c.expression) not in _BARE_REFERENCE_HOLDS for c in constraints):
        return False
    ref = sub_rule.members.get("reference")
    if ref is None or ref.kind != KIND_PRIMITIVE or ref.many or ref.more or ref.sliced or ref.check is not _STRING_CHECK:
        return False
    for cnode in sub_rule.counted:
        n = sum(1 for k, mm in sub_rule.members.items() if mm.count_node is cnode and k == "reference")
        if n < cnode.min or (cnode.max is not None and n > cnode.max) or (cnode.slicing is not None and cnode.slices):
            return False
    return True


def value_fn(val: "Validator", m: Member, host: ObjectRule) -> Handler:
    """The checks of Validator._value/_complex for one complex value of member `m`."""
    if m.kind == KIND_RESOURCE:  # what Validator._value does for a resource, without its dispatch
        any_type = m.type.code in ("Resource", "DomainResource")
        code, profiles, contained = m.type.code, m.type.profiles, m.key == "contained"
        validate_resource = val._validate_resource

        def resource(v: Any, path: str, ctx: Any, depth: int) -> bool:
            if not any_type and type(v) is dict and v.get("resourceType") != code:
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
    has_fixed, fixed, has_pattern, pattern = node.has_fixed, node.fixed, node.has_pattern, node.pattern
    pattern_holds = pattern_matcher(pattern) if has_pattern else None
    is_extension = m.kind == KIND_EXTENSION
    sub_rule = None if is_extension else compiler.object_rule(node, t.code)
    strength = node.binding_strength if node.binding_strength in binding.CHECKED_STRENGTHS and node.binding_vs else None
    reference = None
    if m.kind == KIND_REFERENCE:
        reference = _reference_fn(val, t.target_profiles or tuple(p for x in node.types for p in x.target_profiles))
    is_coding = t.code == "Coding"
    constraints = compiler.constraints_for(m)
    bare_ok = reference is not None and _bare_reference_ok(node, sub_rule, constraints, strength)
    invariants_hold = constraints_fn(constraints, t.code, True) if constraints else None
    memo = val.memo
    seen = memo.table()
    expander = val.expander
    bare_reference = reference.bare if bare_ok else None  # type: ignore[union-attr]

    memo_on = context_free and m.kind != KIND_REFERENCE  # a Reference always holds a "reference": never memoised
    tries = hits = 0

    def value(v: dict[str, Any], path: str, ctx: Any, depth: int) -> bool:
        nonlocal memo_on, tries, hits
        if bare_ok and len(v) == 1:  # {"reference": "urn:uuid:…"}: see _bare_reference_ok
            ref = v.get("reference")
            if type(ref) is str and bare_reference(v, ref, path, ctx):
                return True
        raw = None
        if memo_on:
            try:
                raw = orjson.dumps(v)
            except (TypeError, orjson.JSONEncodeError):  # deeper than orjson serialises: just walk it
                raw = None
            else:
                tries += 1
                if raw in seen:
                    hits += 1
                    return True
                if tries == MEMO_TRIAL and hits < MEMO_MIN_HITS:
                    memo_on = False  # this element's values hardly repeat (measured values, times): stop paying for keys
        if has_fixed and not equals_fixed(v, fixed):
            return False
        if has_pattern and not pattern_holds(v):
            return False
        if is_extension:
            val._extension(v, m, path, ctx, depth, host)
        else:
            fast = sub_rule.fast or compile_rule(val, sub_rule)  # type: ignore[union-attr]
            if not fast(v, path, ctx, depth + 1):
                return False
        if strength is not None:
            binding.check(v, t.code, strength, node.binding_vs, expander, path, ctx.add)
        if reference is not None:
            reference(v, path, ctx)
        elif is_coding:
            codes.check_coding(v, expander, path, ctx.add)
        if invariants_hold is not None and not invariants_hold(v, ctx):
            return False
        if raw is not None and raw.find(_REFERENCE_KEY) < 0:  # a reference's verdict depends on the Bundle
            seen[raw] = None
            memo.stored()
        return True
    return value
