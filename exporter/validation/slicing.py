"""Slicing (layer L2): assign each item of a sliced element to its slice first, then check slice
cardinality, closed / openAtEnd rules and order; matched items are then validated against their
slice by the walker.

Discriminators: value, pattern (fixed/pattern/required binding of the element at the path), type,
profile (conformance of the value at the path), exists. Paths: `$this`, dotted element names,
`resolve()`, `extension('url')`, `ofType(Type)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from exporter.validation import messages as M
from exporter.validation.fixed_pattern import equals_fixed, matches_pattern, pattern_matcher
from exporter.validation.model import Discriminator, Node

_EXT = re.compile(r"extension\(['\"](.+)['\"]\)\Z")
_OFTYPE = re.compile(r"ofType\((\w+)\)\Z")


def _segments(path: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def values_at(item: Any, item_type: str | None, path: str, ctx: Any) -> list[tuple[Any, str | None]]:
    """Evaluate a discriminator path on one item: [(value, type-if-known)]."""
    current: list[tuple[Any, str | None]] = [(item, item_type)]
    for seg in _segments(path):
        if seg == "$this":
            continue
        nxt: list[tuple[Any, str | None]] = []
        m_ext = _EXT.match(seg)
        m_of = _OFTYPE.match(seg)
        for value, vtype in current:
            if seg == "resolve()":
                ref = value.get("reference") if isinstance(value, dict) else None
                res = ctx.resolve(ref) if isinstance(ref, str) else None
                if res is not None:
                    nxt.append((res, res.get("resourceType")))
            elif m_ext:
                for ext in (value.get("extension") or []) if isinstance(value, dict) else []:
                    if isinstance(ext, dict) and ext.get("url") == m_ext.group(1):
                        nxt.append((ext, "Extension"))
            elif m_of:
                if vtype == m_of.group(1) or (isinstance(value, dict) and value.get("resourceType") == m_of.group(1)):
                    nxt.append((value, m_of.group(1)))
            elif isinstance(value, dict):
                if seg in value:
                    v = value[seg]
                    sub_type = v.get("resourceType") if isinstance(v, dict) and "resourceType" in v else None
                    for x in v if isinstance(v, list) else [v]:
                        nxt.append((x, sub_type))
                else:  # a choice element named without its type suffix
                    for k, v in value.items():
                        if k.startswith(seg) and k[len(seg):len(seg) + 1].isupper():
                            for x in v if isinstance(v, list) else [v]:
                                nxt.append((x, k[len(seg):]))
        current = nxt
    return current


def _def_path(path: str) -> str:
    return ".".join(s for s in _segments(path) if s not in ("$this", "resolve()") and not _OFTYPE.match(s)
                    and not _EXT.match(s))


def definitions_at(node: Node, dotted: str) -> list[Node]:
    """Element definitions at a dotted path below a slice, following into slices of intermediate
    elements (e.g. code.coding:SBPCode.code) — where profiles put the fixed values."""
    current = [node]
    if dotted in ("", "$this"):
        return current
    for part in dotted.split("."):
        nxt: list[Node] = []
        for n in current:
            target = n.content_ref or n
            child = target.children.get(part) or target.children.get(part + "[x]")
            if child is not None:
                nxt.append(child)
                nxt.extend(child.slices)
        current = nxt
    return current


def _value_verdict(defs: list[Node], values: list[tuple[Any, str | None]], ctx: Any) -> bool | None:
    decisive = [d for d in defs if d.has_fixed or d.has_pattern
                or (d.binding_strength == "required" and d.binding_vs)]
    if not decisive:
        return None
    for d in decisive:
        for v, _ in values:
            if d.has_fixed and equals_fixed(v, d.fixed):
                return True
            if d.has_pattern and matches_pattern(v, d.pattern):
                return True
            if not d.has_fixed and not d.has_pattern and ctx.member_of(v, d.binding_vs):
                return True
    return False


def slice_matches(item: Any, item_type: str | None, sl: Node, disc: Discriminator, ctx: Any) -> bool | None:
    """Does `item` belong to slice `sl` under one discriminator? None = cannot be decided."""
    values = values_at(item, item_type, disc.path, ctx)
    definition = sl.child_at(_def_path(disc.path)) if "resolve()" not in disc.path else None
    if disc.type in ("value", "pattern"):
        if definition is None and disc.path == "url" and sl.types and sl.types[0].profiles:
            return any(v == sl.types[0].profiles[0].split("|")[0] for v, _ in values)
        if "resolve()" in disc.path:
            return None
        return _value_verdict(definitions_at(sl, _def_path(disc.path)), values, ctx)
    if disc.type == "exists":
        if definition is None:
            return None
        exists = bool(values)
        if definition.min >= 1:
            return exists
        if definition.max == 0:
            return not exists
        return None
    if disc.type == "type":
        target = definition if definition is not None else sl
        allowed = {t.code for t in target.types}
        return any((vt or (v.get("resourceType") if isinstance(v, dict) else None)) in allowed for v, vt in values)
    if disc.type == "profile":
        target = definition if definition is not None else sl
        if "resolve()" in disc.path:
            target = sl.child_at(_def_path(disc.path)) or sl
            profiles = [p for t in target.types for p in t.target_profiles]
        else:
            profiles = [p for t in target.types for p in t.profiles]
        if not profiles:
            return None
        return any(any(ctx.conforms_to(v, p) for p in profiles) for v, _ in values if isinstance(v, dict))
    return None


_SIMPLE = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*\Z")


def simple_values(item: Any, parts: tuple[str, ...]) -> list[Any]:
    current = [item]
    for part in parts:
        nxt = []
        for v in current:
            if isinstance(v, dict):
                x = v.get(part)
                if x is None:
                    continue
                if isinstance(x, list):
                    nxt.extend(x)
                else:
                    nxt.append(x)
        current = nxt
    return current


def _compile_one(sl: Node, disc: Discriminator) -> Callable[[Any, str | None, Any], bool | None]:
    """A matcher for one (slice, discriminator), specialised once; the general path otherwise."""
    if disc.type in ("value", "pattern") and disc.path != "url" and (_SIMPLE.match(disc.path) or disc.path == "$this"):
        parts = () if disc.path == "$this" else tuple(disc.path.split("."))
        defs = definitions_at(sl, "" if disc.path == "$this" else disc.path)
        fixed = [d.fixed for d in defs if d.has_fixed]
        patterns = [d.pattern for d in defs if d.has_pattern and not d.has_fixed]
        if (fixed or patterns) and not any(d.binding_strength == "required" and not d.has_fixed and not d.has_pattern
                                           for d in defs):
            tests = tuple([lambda v, f=f: equals_fixed(v, f) for f in fixed] + [pattern_matcher(p) for p in patterns])

            def match(item: Any, item_type: str | None, ctx: Any) -> bool | None:
                for v in simple_values(item, parts) if parts else [item]:
                    for test in tests:
                        if test(v):
                            return True
                return False
            match.projection = (lambda item: simple_values(item, parts)) if parts else _itself  # type: ignore[attr-defined]
            return match
    if disc.type == "type" and disc.path == "$this":
        allowed_here = frozenset(t.code for t in sl.types)  # slice_matches: `$this` is the slice itself

        def this_type(item: Any, item_type: str | None, ctx: Any) -> bool | None:
            return (item_type or (item.get("resourceType") if isinstance(item, dict) else None)) in allowed_here
        this_type.projection = _resource_type  # type: ignore[attr-defined]  # with the item's type, all it reads
        return this_type
    if disc.type == "type" and _SIMPLE.match(disc.path):
        definition = sl.child_at(disc.path)
        if definition is not None and definition.types:
            allowed = frozenset(t.code for t in definition.types)
            parts = tuple(disc.path.split("."))

            def type_match(item: Any, item_type: str | None, ctx: Any) -> bool | None:
                return any(isinstance(v, dict) and v.get("resourceType") in allowed for v in simple_values(item, parts))
            type_match.by_type = (parts, allowed)  # type: ignore[attr-defined]  # see type_dispatch
            return type_match
    return lambda item, item_type, ctx: slice_matches(item, item_type, sl, disc, ctx)


def _itself(item: Any) -> Any:
    return item


def _resource_type(item: Any) -> Any:
    return item.get("resourceType") if isinstance(item, dict) else None


def projections(base: Node) -> tuple[Callable[[Any], Any], ...] | None:
    """What decides `assign` for one item of `base` besides the item's type: one function per
    discriminator giving the part of the item its matchers read (`projection` of each compiled
    matcher), when every slice is told apart by such matchers; None otherwise (a discriminator
    left to slice_matches, or the type dispatch of Bundle.entry). Items of one type whose
    projections are equal are assigned alike."""
    if type_dispatch(base) is not None:
        return None
    compiled = matchers(base)
    if not compiled or not compiled[0][1]:
        return None
    found: list[Callable[[Any], Any]] = []
    for j in range(len(compiled[0][1])):  # discriminator j: the same path for every slice
        fns = [getattr(fns[j], "projection", None) for _, fns in compiled]
        if any(f is None for f in fns):
            return None
        found.append(fns[0])  # type: ignore[arg-type]
    return tuple(found)


def matchers(base: Node) -> list[tuple[Node, list[Callable[[Any, str | None, Any], bool | None]]]]:
    """The compiled (slice, discriminator matchers) list of a sliced element, built on first use."""
    if base.slice_matchers is None:
        assert base.slicing is not None
        base.slice_matchers = [(sl, [_compile_one(sl, d) for d in base.slicing.discriminators]) for sl in base.slices]
    return base.slice_matchers


_DISPATCH: dict[int, tuple[Node, Any]] = {}


def type_dispatch(base: Node) -> tuple[tuple[str, ...], dict[str, Node]] | None:
    """When every slice is told apart by one `type` discriminator on the same path (Bundle.entry by
    resource type), a map resource type -> first slice allowing it decides like the matchers do,
    in one look-up per item instead of one matcher call per slice."""
    hit = _DISPATCH.get(id(base))
    if hit is None or hit[0] is not base:
        compiled = matchers(base)
        plan = None
        found = [getattr(fns[0], "by_type", None) if len(fns) == 1 else None for _, fns in compiled]
        specs = [sp for sp in found if sp]
        if compiled and len(specs) == len(found) and len({sp[0] for sp in specs}) == 1:
            by_type: dict[str, Node] = {}
            for (sl, _), (_, allowed) in zip(compiled, specs, strict=True):
                for t in sorted(allowed):
                    by_type.setdefault(t, sl)
            plan = (specs[0][0], by_type)
        hit = _DISPATCH[id(base)] = (base, plan)
    return hit[1]


def assign(items: Sequence[tuple[Any, str | None]], base: Node, ctx: Any) -> tuple[list[Node | None], list[str]]:
    """Slice of each item (None = no slice) and problems deciding it. The one assignment both paths
    use: the clean path takes it when there are no problems."""
    assert base.slicing is not None
    problems: list[str] = []
    result: list[Node | None] = []
    compiled = matchers(base)
    dispatch = type_dispatch(base)
    if dispatch is not None:
        parts, by_type = dispatch
        one = parts[0] if len(parts) == 1 else None
        for item, _ in items:
            x = item.get(one) if one is not None and type(item) is dict else None
            found = [x] if type(x) is dict else simple_values(item, parts)  # `resource`: the item's own key
            if len(found) == 1:
                rt = found[0].get("resourceType") if isinstance(found[0], dict) else None
                result.append(by_type.get(rt) if isinstance(rt, str) else None)
            else:  # no value or several: the matchers decide
                result.append(next((sl for sl, fns in compiled if all(fn(item, None, ctx) for fn in fns)), None))
        return result, problems
    for item, item_type in items:
        chosen = None
        for sl, fns in compiled:
            if len(fns) == 1:  # one discriminator, the common case
                verdict = fns[0](item, item_type, ctx)
                if verdict is None:
                    if sl.slice_name:
                        problems.append(f"cannot evaluate the discriminator of slice {sl.slice_name}")
                elif verdict:
                    chosen = sl
                    break
                continue
            verdicts = [fn(item, item_type, ctx) for fn in fns] if fns else [None]
            if any(v is None for v in verdicts):
                if sl.slice_name and not any(v is False for v in verdicts):
                    problems.append(f"cannot evaluate the discriminator of slice {sl.slice_name}")
                continue
            if all(verdicts):
                chosen = sl
                break
        result.append(chosen)
    return result, problems


def findings(assigned: Sequence[Node | None], base: Node) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """The slice rules broken by an assignment of items to slices, as (message id, index of the item
    to report at or None for the first, message arguments): slice cardinality, closed, openAtEnd,
    ordered. The walk reports them all; the clean path asks whether there is one."""
    slicing = base.slicing
    assert slicing is not None
    counts: dict[int, int] = {}
    for sl in assigned:
        if sl is not None:
            counts[id(sl)] = counts.get(id(sl), 0) + 1
    for sl in base.slices:
        n = counts.get(id(sl), 0)
        if n < sl.min:
            yield M.SLICE_MIN, None, {"slice": sl.slice_name, "path": base.path, "min": sl.min, "count": n}
        if sl.max is not None and n > sl.max:
            yield M.SLICE_MAX, 0, {"slice": sl.slice_name, "path": base.path, "max": sl.max, "count": n}
    positions = {id(sl): i for i, sl in enumerate(base.slices)}
    last = -1
    seen_unmatched = False
    for i, sl in enumerate(assigned):
        if sl is None:
            seen_unmatched = True
            if slicing.rules == "closed":
                yield M.SLICE_CLOSED, i, {"path": base.path,
                                          "slices": ", ".join(s.slice_name or "?" for s in base.slices)}
            continue
        if slicing.rules == "openAtEnd" and seen_unmatched:
            yield M.SLICE_OPEN_AT_END, i, {"path": base.path}
        pos = positions[id(sl)]
        if slicing.ordered and pos < last:
            yield M.SLICE_ORDER, i, {"path": base.path, "slice": sl.slice_name}
        last = max(last, pos)


def check(items: Sequence[tuple[Any, str | None]], base: Node, ctx: Any, where: Callable[[int], str],
          report: Callable[..., None]) -> list[Node | None]:
    """Assign, then report the discriminators that cannot be evaluated and the `findings` through
    `report(message_id, expression, **arguments)`. Returns the assignment."""
    assigned, problems = assign(items, base, ctx)
    for p in sorted(set(problems)):
        report(M.SLICE_DISCRIMINATOR, where(0) if items else base.path, path=base.path, problem=p)
    for mid, i, args in findings(assigned, base):
        report(mid, where(i if i is not None else 0) if items else base.path, **args)
    return assigned
