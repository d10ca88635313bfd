"""The validator (layer L2): walks plain JSON against compiled profiles and collects issues.

    v = Validator(default_store(settings))
    issues = v.validate(resource_dict)              # against core + every meta.profile claim
    issues = v.validate(resource_dict, profiles=[canonical])   # also against named profiles
    issues = v.validate_json(raw_bytes)             # parse with limits, then validate

A resource claiming profiles is validated against each claimed profile; a profile's snapshot
contains every core rule of its type, so core is walked separately only for unprofiled resources.
Validation never raises for bad input: not-JSON, wrong shapes, unknown types, excessive depth or
size all come back as issues; the work per call is bounded by `max_issues` and `time_limit_s`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from exporter import deadline
from exporter.fhir.definitions import DefinitionStore
from exporter.issues import Issue
from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import cardinality, fastpath, invariants, slicing, xhtml
from exporter.validation import messages as M
from exporter.validation import structure as S
from exporter.validation.bundle import BundleIndex
from exporter.validation.compiler import Compiler
from exporter.validation.context import Abort, Ctx, Dirty
from exporter.validation.model import KIND_EXTENSION, KIND_PRIMITIVE, KIND_RESOURCE, Member, Node, ObjectRule
from exporter.validation.policy import Policy
from exporter.validation.primitives import json_kind
from exporter.validation.rules import CHILDREN
from exporter.validation.structure import parse_json, unknown_element_hint


class Validator:
    def __init__(self, store: DefinitionStore, *, max_issues: int = 10_000, time_limit_s: float = 10.0,
                 max_depth: int = 64, max_bytes: int = 64 * 1024 * 1024, memo_size: int = 50_000,
                 clean_path: bool = True, policy: Policy | None = None):
        self.store = store
        self.policy = policy or Policy()
        self.expander = ValueSetExpander(store)
        self.memo_size = memo_size
        # content memo of clean context-free values, one table per element; the clean path consults it
        # (the walk runs where something is to be reported), and invariants remember true verdicts in it
        self.memo = fastpath.Memo(memo_size)
        self.compiler = Compiler(store, self.policy, self.expander, self.memo)
        self.max_issues = max_issues
        self.time_limit_s = time_limit_s
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self._slice_members: dict[tuple[int, str, int], Member] = {}
        self.clean_path = clean_path  # try fastpath first (False: the walk only — for equivalence tests)
        self._resource_types: dict[str, bool] = {}
        self._slice_memo_ok: dict[int, bool] = {}
        self._covering: dict[tuple[int, int], bool] = {}
        self._clean_values: dict[tuple[int, int], Any] = {}  # (member, host rule) -> fastpath value check
        # (base, slice, value type, base member) -> (slice member, validate against the base too?);
        # nodes and members live as long as the compiler, so their ids stay theirs
        self._slice_plans: dict[tuple[int, int, Any, int], tuple[Member | None, bool]] = {}
        self._roots_for: dict[tuple[Any, ...], tuple[list[tuple[str, dict[str, Any], int | None]],
                                                      list[tuple[Node, ObjectRule, Member, Any]]]] = {}
        self._profiles: dict[str, tuple[Node | None, str | None]] = {}

    def forget(self) -> None:
        """Drop what validations remember of content: the memo of clean values, the analysed
        narratives and the key sequences of objects (benchmarks start each run from none, as the
        export of an unseen patient does)."""
        self.memo.clear()
        xhtml.forget()
        invariants.forget()

    @classmethod
    def from_settings(cls, settings: Any, extra_sources: Sequence[Any] = (), **kw: Any) -> Validator:
        """The validator of the service: definitions and policy from the settings (`policy=` overrides)."""
        from exporter.fhir.definitions import default_store
        kw.setdefault("policy", Policy.from_settings(settings))
        return cls(default_store(settings, extra_sources), **kw)

    # -- entry points -------------------------------------------------------------------------
    def validate_json(self, data: bytes | str, profiles: Sequence[str] = ()) -> list[Issue]:
        if len(data) > self.max_bytes:
            return [M.issue(M.TOO_LARGE, severity="fatal", variant="bytes", limit=self.max_bytes)]
        value, problem = parse_json(data)
        if problem is not None:
            return [M.issue(M.NOT_JSON, reason=problem)]
        return self.validate(value, profiles)

    def validate(self, resource: Any, profiles: Sequence[str] = ()) -> list[Issue]:
        if S.NOT_A_RESOURCE.broken(resource):
            return [M.issue(S.NOT_A_RESOURCE.message, severity="fatal", variant="top", kind=json_kind(resource))]
        ctx = Ctx(self, min(time.monotonic() + self.time_limit_s, deadline.at()), self.max_issues)  # or the request's
        try:
            self.validate_resource(resource, str(resource.get("resourceType", "Resource")), ctx,
                                   extra_profiles=tuple(profiles))
        except Abort as exc:
            ctx.cap.close()  # the count of unlisted warnings, then why the walk stopped
            ctx.issues.append(M.issue(M.TOO_LARGE, reason=exc))
        except RecursionError:
            ctx.issues.append(M.issue(M.TOO_DEEP, variant="recursion"))
        return ctx.cap.close()

    # -- resources ----------------------------------------------------------------------------
    def validate_resource(self, res: Any, path: str, ctx: Ctx, *, extra_profiles: Sequence[str] = (),
                          contained: bool = False, claims_too: bool = True) -> None:
        """Validate one resource (top-level or nested) against its claims and `extra_profiles`."""
        if S.NOT_A_RESOURCE.broken(res):
            ctx.add(S.NOT_A_RESOURCE.message, path, kind=json_kind(res))
            return
        rt = res.get("resourceType")
        if not isinstance(rt, str):
            ctx.add(M.NO_RESOURCE_TYPE, path)
            return
        if time.monotonic() > ctx.deadline:
            raise Abort(f"time limit of {self.time_limit_s} s exceeded")
        if not (self._resource_types.get(rt) or self._is_resource_type(rt)):
            ctx.add(M.UNKNOWN_RESOURCE_TYPE, path, rt=rt)
            return
        if path == "Resource" or path == rt:
            path = rt
        meta = res.get("meta")
        claims = meta.get("profile") if claims_too and isinstance(meta, dict) else None
        claims = tuple(claims) if isinstance(claims, list) else ()
        key = (rt, claims, extra_profiles if type(extra_profiles) is tuple else tuple(extra_profiles))
        cacheable = True
        try:
            found = self._roots_for.get(key)
        except TypeError:  # a claim that is not a string (an object): not hashable, not cached
            cacheable, found = False, None
        if found is None:
            found = self._resolve_roots(rt, claims, extra_profiles)
            if cacheable and len(self._roots_for) < 10_000:
                self._roots_for[key] = found
        problems, rules = found
        for mid, args, i in problems:
            ctx.add(mid, f"{path}.meta.profile[{i}]" if i is not None else path, **args)

        saved = (ctx.resource, ctx.root_resource, ctx.bundle)
        ctx.resource = res
        if not contained:
            ctx.root_resource = res
        if rt == "Bundle":
            ctx.bundle = BundleIndex.build(res)
        try:
            for root, rule, whole, checks in rules:
                done = (id(res), id(root))
                if done in ctx.walked:
                    continue
                ctx.walked.add(done)
                if not (self.clean_path and self._clean_walk(res, rule, path, ctx, 1)):
                    self._full_walk(res, rule, path, ctx, 1)
                for test, r in checks:  # the rules of the resource as a whole
                    if not test(res, ctx):
                        r.report(res, whole, path, ctx)
        finally:
            ctx.resource, ctx.root_resource, ctx.bundle = saved

    def _resolve_roots(self, rt: str, claims: tuple[Any, ...], extra_profiles: Sequence[str]
                       ) -> tuple[list[tuple[str, dict[str, Any], int | None]], list[tuple[Node, ObjectRule, Member, Any]]]:
        """The problems with the profiles a resource claims or is named (message id, arguments,
        index of the meta.profile claim or None), and the profile roots it is walked against (its
        claims, then profiles named by the caller or by its element's type; core when there are
        none) with their object rule, the member standing for the resource as a whole and its rules
        as (test, rule) pairs."""
        roots: list[Node] = []
        problems: list[tuple[str, dict[str, Any], int | None]] = []
        named: list[tuple[str, int | None]] = [(c, i) for i, c in enumerate(claims) if isinstance(c, str)]
        named += [(p, None) for p in extra_profiles]
        for canonical, where in named:
            root, sd_type = self._profile(canonical)
            if root is None:
                problems.append((M.PROFILE_UNKNOWN, {"profile": canonical}, where))
                continue
            if sd_type != rt:
                problems.append((M.PROFILE_WRONG_TYPE, {"profile": canonical, "sd_type": sd_type, "rt": rt}, where))
                continue
            if all(root is not r for r in roots):
                roots.append(root)
        if not roots:
            core_root = self.compiler.type_root(rt)
            assert core_root is not None
            roots.append(core_root)
        out = []
        for root in roots:
            whole = self.compiler.root_member(root, rt)
            out.append((root, self.compiler.object_rule(root, rt), whole,
                        tuple((r.test(whole), r) for r in self.compiler.rules_for(whole))))
        return problems, out

    def _is_resource_type(self, rt: str) -> bool:
        hit = self._resource_types.get(rt)
        if hit is None:
            core = self.store.structure_for_type(rt) if rt[:1].isupper() and rt.isalnum() else None
            hit = bool(core and core.get("kind") == "resource" and core.get("derivation") != "constraint")
            if len(self._resource_types) < 10_000:
                self._resource_types[rt] = hit
        return hit

    def _profile(self, canonical: str) -> tuple[Node | None, str | None]:
        hit = self._profiles.get(canonical)
        if hit is None:
            sd = self.store.structure(canonical)
            hit = (self.compiler.root(canonical), sd.get("type")) if sd is not None else (None, None)
            if len(self._profiles) < 10_000:
                self._profiles[canonical] = hit
        return hit

    # -- objects ------------------------------------------------------------------------------
    def _walk(self, obj: dict[str, Any], rule: ObjectRule, path: str, ctx: Ctx, depth: int) -> None:
        if self.clean_path:
            if not self._clean_walk(obj, rule, path, ctx, depth):
                self._full_walk(obj, rule, path, ctx, depth)
        else:
            self._full_walk(obj, rule, path, ctx, depth)

    def _clean_walk(self, obj: dict[str, Any], rule: ObjectRule, path: str, ctx: Ctx, depth: int) -> bool:
        """Try the clean path (fastpath); True when it proved the object clean. While already probing,
        a failure propagates as Dirty to the outermost probe."""
        fast = rule.fast or fastpath.compile_rule(self, rule)
        if ctx.probing:
            if not fast(obj, path, ctx, depth):
                raise Dirty
            return True
        ctx.probing = True
        try:
            return fast(obj, path, ctx, depth)
        except Dirty:
            return False
        finally:
            ctx.probing = False

    def _full_walk(self, obj: dict[str, Any], rule: ObjectRule, path: str, ctx: Ctx, depth: int) -> None:
        """The walk proper: reports every problem of this object (nested objects try the clean path again)."""
        if S.TOO_DEEP.broken(depth, self.max_depth):
            ctx.add(S.TOO_DEEP.message, path, limit=self.max_depth)
            return
        if S.EMPTY_OBJECT.broken(obj):
            ctx.add(S.EMPTY_OBJECT.message, path)
            return
        members = rule.members
        unmodelled = S.unmodelled(rule.is_resource)
        counts: dict[Node, int] = {}
        sliced: dict[Node, list[tuple[Any, str | None, str, Member | None]]] | None = None
        for key, val in obj.items():
            m = members.get(key)
            if m is None:
                if key in unmodelled:
                    continue
                ctx.add(M.UNKNOWN_ELEMENT, f"{path}.{key}", key=key, where=rule.node.path or rule.type_code,
                        hint=unknown_element_hint(key, members))
                continue
            cnode = m.count_node
            if m.primitive_ext:
                items = self._shape(val, m, key, path, ctx)
                if items is None:
                    continue
                self._primitive_ext(obj, key, items, m, path, ctx, depth)
                if key[1:] not in obj and m.counted:
                    counts[cnode] = counts.get(cnode, 0) + sum(1 for i in items if i is not None)
                continue
            check = m.check
            if not m.many:
                bad = S.first_broken(S.SINGLE, val)
                if bad is not None:
                    ctx.add(bad.message, f"{path}.{key}", variant=bad.variant, key=key)
                    continue
                if m.counted:
                    counts[cnode] = counts.get(cnode, 0) + 1
                sliced = self._member_value(val, m, f"{path}.{key}", ctx, depth, rule, sliced)
                continue
            items = self._shape(val, m, key, path, ctx)
            if items is None:
                continue
            if len(items) > S.LONG_ARRAY and time.monotonic() > ctx.deadline:
                raise Abort(f"time limit of {self.time_limit_s} s exceeded")
            n = 0
            for i, item in enumerate(items):
                bad = S.first_broken(S.ITEM, item)
                if bad is not None:
                    if check is not None and self._aligned_ext(obj, key, i):
                        continue
                    ctx.add(bad.message, f"{path}.{key}[{i}]", variant=bad.variant, key=key)
                    continue
                n += 1
                sliced = self._member_value(item, m, f"{path}.{key}[{i}]", ctx, depth, rule, sliced)
            if m.counted:
                counts[cnode] = counts.get(cnode, 0) + n
        for cnode in rule.counted:
            problem = cardinality.check(cnode, counts.get(cnode, 0), f"{path}.{cnode.name.replace('[x]', '')}")
            if problem is not None:
                mid, where, variant, args = problem
                ctx.add(mid, where, variant=variant, **args)
            if cnode.slicing is not None and cnode.slices:
                self.walk_slices(cnode, (sliced or {}).get(cnode, []), path, ctx, depth, rule)

    def _member_value(self, v: Any, m: Member, path: str, ctx: Ctx, depth: int, rule: ObjectRule,
                      sliced: dict[Node, list[tuple[Any, str | None, str, Member | None]]] | None
                      ) -> dict[Node, list[tuple[Any, str | None, str, Member | None]]] | None:
        """One value of member `m` in the walk (a single value or one array item): a primitive is
        checked here; a complex value of a sliced element is only collected — walk_slices validates
        it once its slice is known (the member goes along); any other is validated now. Returns the
        sliced items collected so far."""
        if m.check is not None:
            self._primitive(v, m, path, ctx)
        elif not m.sliced:
            self._value(v, m, path, ctx, depth, rule)
        if m.sliced:
            sliced = sliced if sliced is not None else {}
            sliced.setdefault(m.count_node, []).append((v, m.type.code, path, None if m.check is not None else m))
        return sliced

    @staticmethod
    def _shape(val: Any, m: Member, key: str, path: str, ctx: Ctx) -> list[Any] | None:
        """The items of member `m`'s value, reporting its shape: a single value where an array is
        expected is still walked as the one item; an empty array or an unexpected one is not."""
        bad = S.first_broken(S.MANY if m.many else (S.ARRAY_UNEXPECTED,), val)
        if bad is not None:
            ctx.add(bad.message, f"{path}.{key}", variant=bad.variant, key=key)
            return [val] if bad is S.ARRAY_EXPECTED else None
        return val if m.many else [val]

    def _apply(self, rules: Sequence[Any], value: Any, m: Member, path: str, ctx: Ctx) -> None:
        """The walk's way of running rules: each that does not hold reports."""
        for r in rules:
            if not r.holds(value, m, ctx):
                r.report(value, m, path, ctx)

    def _primitive(self, item: Any, m: Member, path: str, ctx: Ctx) -> None:
        """A primitive value: its format, then the rules of its element."""
        reason = m.check(item) if m.check is not None else None
        if reason is not None:
            ctx.add(M.PRIMITIVE_INVALID, path, type=m.type.code, reason=reason)
            return
        rules = m.rules if m.rules is not None else self.compiler.rules_for(m)
        if rules:
            self._apply(rules, item, m, path, ctx)

    def _aligned_ext(self, obj: dict[str, Any], key: str, i: int) -> bool:
        ext = obj.get("_" + key)
        return isinstance(ext, list) and i < len(ext) and isinstance(ext[i], dict)

    def _primitive_ext(self, obj: dict[str, Any], key: str, items: list[Any], m: Member, path: str, ctx: Ctx,
                       depth: int) -> None:
        base = obj.get(key[1:])
        for i, item in enumerate(items):
            ipath = f"{path}.{key[1:]}[{i}]" if m.many else f"{path}.{key[1:]}"
            bad = S.first_broken(S.COMPANION, item)
            if bad is S.COMPANION_NULL:
                if not (isinstance(base, list) and i < len(base) and base[i] is not None):
                    ctx.add(bad.message, ipath, variant=bad.variant, key=key)
                continue
            if bad is not None:
                ctx.add(bad.message, ipath, variant=bad.variant, key=key)
                continue
            self._walk(item, self.compiler.companion_rule(m.node), ipath, ctx, depth + 1)

    # -- values -------------------------------------------------------------------------------
    def _value(self, item: Any, m: Member, path: str, ctx: Ctx, depth: int, host: ObjectRule) -> None:
        kind = m.kind
        if kind == KIND_PRIMITIVE:
            self._primitive(item, m, path, ctx)
            return
        if kind == KIND_RESOURCE:
            t = m.type
            wrong = S.wrong_resource_type(t.code)
            if wrong is not None and wrong.broken(item, t.code):
                ctx.add(wrong.message, path, rt=item.get("resourceType"), type=t.code)
                return
            probing, ctx.probing = ctx.probing, False  # a resource's issues are its own: never probed
            try:
                self.validate_resource(item, path, ctx, extra_profiles=t.profiles, contained=m.key == "contained")
            finally:
                ctx.probing = probing
            return
        bad = S.first_broken(S.COMPLEX, item)
        if bad is not None:
            ctx.add(bad.message, path, variant=bad.variant, key=m.key, type=m.type.code, kind=json_kind(item))
            return
        rules = m.rules if m.rules is not None else self.compiler.rules_for(m)
        before = 0
        for r in rules:  # the rules to run before the value's own elements are walked
            if r.stage >= CHILDREN:
                break
            before += 1
        if before:
            self._apply(rules[:before], item, m, path, ctx)
        if kind == KIND_EXTENSION:
            sub = self.compiler.extension_rule(item.get("url"), m.node)
        else:
            sub = self.compiler.object_rule(m.node, m.type.code)
        self._walk(item, sub, path, ctx, depth + 1)
        self._apply(rules[before:], item, m, path, ctx)

    # -- slices -------------------------------------------------------------------------------
    def walk_slices(self, base: Node, items: list[tuple[Any, str | None, str, Member | None]], path: str,
                    ctx: Ctx, depth: int, host: ObjectRule) -> None:
        """Assign the items of a sliced element to slices, check the slice rules, then validate each
        item: against its slice, and against the base element unless the slice covers it (see
        `_covers`). Items with a member were not validated by the walk yet (complex values); items
        without one (primitives) were. (The clean path memoises clean slices: fastpath._slices_fn.)"""
        values = [(v, t) for v, t, _, _ in items]

        def where(i: int) -> str:
            return items[i][2] if i < len(items) else f"{path}.{base.name}"
        assigned = slicing.check(values, base, ctx, where, ctx.add)
        for (value, vtype, ipath, m), sl in zip(items, assigned, strict=True):
            sm, with_base = self.slice_plan(base, sl, vtype, m, host)
            if with_base:
                self._item(value, m, ipath, ctx, depth, host)  # type: ignore[arg-type]
            if sm is not None:
                self._item(value, sm, ipath, ctx, depth, host)

    def slice_plan(self, base: Node, sl: Node | None, vtype: str | None, m: Member | None,
                   host: ObjectRule) -> tuple[Member | None, bool]:
        """How an item of `base` assigned to slice `sl` is validated: (the slice's member or None,
        validate against the base member `m` too?). Cached."""
        key = (id(base), id(sl), vtype, id(m))
        plan = self._slice_plans.get(key)
        if plan is not None:
            return plan
        sm = None
        if sl is not None:
            t = next((x for x in sl.types if x.code == vtype), sl.types[0] if sl.types else None)
            if t is not None:
                sm = self._slice_member(base, sl, t, host)
        plan = self._slice_plans[key] = (sm, m is not None and (sm is None or not self._covers(sm, m)))
        return plan

    def _slice_member(self, base: Node, sl: Node, t: Any, host: ObjectRule) -> Member:
        key = (id(sl), t.code, id(host))
        m = self._slice_members.get(key)
        if m is None:
            m = self._slice_members[key] = self.compiler.member(base.name, base, sl, t, host)
        return m

    def _item(self, value: Any, m: Member, path: str, ctx: Ctx, depth: int, host: ObjectRule) -> None:
        """One sliced item against a member: while probing, a complex value takes the clean path's
        checks for that member (Bundle entries pass here); otherwise Validator._value."""
        if ctx.probing and type(value) is dict and m.kind not in (KIND_PRIMITIVE, KIND_RESOURCE):
            if not self.clean_value_fn(m, host)(value, path, ctx, depth):
                raise Dirty
            return
        self._value(value, m, path, ctx, depth, host)

    def clean_value_fn(self, m: Member, host: ObjectRule) -> Any:
        """The clean path's check of one complex value of `m` in an object of `host` (cached)."""
        key = (id(m), id(host))
        fn = self._clean_values.get(key)
        if fn is None:
            fn = self._clean_values[key] = fastpath.value_fn(self, m, host)
        return fn

    def _covers(self, sm: Member, m: Member) -> bool:
        """Does validating a value against slice member `sm` imply every check of base member `m`?
        A snapshot copies the base element's rules into each slice (tightening, never loosening), so
        an item assigned to a slice needs validating against the slice only — provided the slice is
        of the same type, its children are unfolded whenever the base's are (else the slice's object
        rule would fall back to the bare datatype), and every rule of the base applies to the slice
        with what the base gives it (fixed value, pattern, binding, invariants, target profiles).
        Otherwise the item is validated against both."""
        key = (id(sm), id(m))
        hit = self._covering.get(key)
        if hit is None:
            s, b = sm.node, m.node
            hit = (sm.type.code == m.type.code and sm.kind == m.kind and sm.kind != KIND_RESOURCE
                   and (s is b or (
                       (bool((s.content_ref or s).children) or not (b.content_ref or b).children)
                       and (s.has_fixed or not b.has_fixed) and (s.has_pattern or not b.has_pattern)
                       and (s.binding_strength is not None or b.binding_strength is None)
                       and {c.key for c in b.constraints} <= {c.key for c in s.constraints}
                       and (bool(sm.type.target_profiles) or not m.type.target_profiles)
                       and {type(r) for r in self.compiler.rules_for(m)} <= {type(r) for r in self.compiler.rules_for(sm)})))
            self._covering[key] = hit
        return hit

    def slices_memoisable(self, base: Node) -> bool:
        """Slice assignment and slice validation depend on the items' content only: discriminators
        without profile/resolve(), and every slice's content is context-free."""
        hit = self._slice_memo_ok.get(id(base))
        if hit is None:
            assert base.slicing is not None
            hit = all(d.type in ("value", "pattern", "type", "exists") and "resolve()" not in d.path
                      for d in base.slicing.discriminators) and all(
                self.compiler.context_free(self._slice_member(base, sl, t, None)) for sl in base.slices for t in sl.types)  # type: ignore[arg-type]
            self._slice_memo_ok[id(base)] = hit
        return hit

