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

from typing import Any, Callable, Sequence

from exporter import deadline
from exporter.fhir.definitions import DefinitionStore
from exporter.issues import Issue, IssueCode, Severity
from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import binding, cardinality, codes, extensions, fastpath, questionnaire, references, slicing, xhtml
from exporter.validation import messages as M
from exporter.validation.bundle import BundleIndex, entry_issues
from exporter.validation.invariants import unmet
from exporter.validation.compiler import Compiler
from exporter.validation.fixed_pattern import describe, equals_fixed, matches_pattern
from exporter.validation.model import (KIND_COMPLEX, KIND_EXTENSION, KIND_PRIMITIVE, KIND_REFERENCE,
                                       KIND_RESOURCE, Constraint, Member, Node, ObjectRule)
from exporter.validation.primitives import PRIMITIVE_CHECKS, json_kind
from exporter.validation.structure import parse_json, unknown_element_message

_SEV = {"fatal": Severity.FATAL, "error": Severity.ERROR, "warning": Severity.WARNING,
        "information": Severity.INFORMATION}
_CODE_FOR = {
    M.UNKNOWN_ELEMENT: IssueCode.STRUCTURE, M.JSON_ARRAY_EXPECTED: IssueCode.STRUCTURE,
    M.JSON_ARRAY_UNEXPECTED: IssueCode.STRUCTURE, M.JSON_NULL: IssueCode.STRUCTURE, M.EMPTY_ARRAY: IssueCode.STRUCTURE,
    M.EMPTY_OBJECT: IssueCode.STRUCTURE, M.WRONG_JSON_TYPE: IssueCode.STRUCTURE, M.NOT_JSON: IssueCode.STRUCTURE,
    M.NOT_OBJECT: IssueCode.STRUCTURE, M.PRIMITIVE_INVALID: IssueCode.VALUE, M.CARD_MIN: IssueCode.REQUIRED,
    M.CARD_MAX: IssueCode.STRUCTURE, M.FIXED_MISMATCH: IssueCode.VALUE, M.PATTERN_MISMATCH: IssueCode.VALUE,
    M.BINDING_REQUIRED: IssueCode.CODE_INVALID, M.BINDING_EXTENSIBLE: IssueCode.CODE_INVALID,
    M.BINDING_NO_CODE: IssueCode.CODE_INVALID, M.BINDING_UNCHECKED: IssueCode.NOT_SUPPORTED,
    M.INVARIANT: IssueCode.INVARIANT, M.INVARIANT_ERROR: IssueCode.NOT_SUPPORTED,
    M.TOO_DEEP: IssueCode.TOO_COSTLY, M.TOO_LARGE: IssueCode.TOO_COSTLY,
    M.PROFILE_UNKNOWN: IssueCode.NOT_FOUND, M.EXTENSION_UNKNOWN: IssueCode.NOT_FOUND,
    M.REFERENCE_UNRESOLVED: IssueCode.NOT_FOUND, M.CODE_UNKNOWN: IssueCode.CODE_INVALID,
    M.DISPLAY_WRONG: IssueCode.CODE_INVALID, M.QUESTIONNAIRE: IssueCode.VALUE, M.EXAMPLE_URL: IssueCode.VALUE, M.UNKNOWN_RESOURCE_TYPE: IssueCode.NOT_SUPPORTED,
}


class _Abort(Exception):
    pass


class _Ctx:
    """Per-call state: collected issues, the resource being walked, the enclosing Bundle."""

    __slots__ = ("v", "issues", "seen", "resource", "root_resource", "bundle", "deadline", "max_issues",
                 "conformance_cache", "focus_type", "walked", "references", "probing")

    def __init__(self, validator: "Validator", deadline: float, max_issues: int):
        self.v = validator
        self.issues: list[Issue] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.resource: dict[str, Any] | None = None
        self.root_resource: dict[str, Any] | None = None
        self.bundle: BundleIndex | None = None
        self.deadline = deadline
        self.max_issues = max_issues
        self.conformance_cache: dict[tuple[int, str], bool] = {}
        self.focus_type: str | None = None
        self.walked: set[tuple[int, int]] = set()  # (resource, profile root) pairs already validated
        self.references: dict[tuple[str, tuple[str, ...], int], list[tuple[str, str, str]]] = {}
        self.probing = False  # inside the clean path (fastpath): add() raises instead of recording

    def add(self, severity: str, mid: str, message: str, expression: str) -> None:
        if self.probing:
            raise fastpath.Dirty  # the clean path was wrong to hope: the walk will report this
        key = (mid, message, expression)
        if key in self.seen:
            return
        self.seen.add(key)
        self.issues.append(Issue(_SEV[severity], _CODE_FOR.get(mid, IssueCode.PROCESSING), message, mid,
                                 expression=(expression,) if expression else ()))
        if len(self.issues) >= self.max_issues:
            raise _Abort(f"more than {self.max_issues} issues")

    # services used by invariants and slicing
    def resolve(self, ref: str) -> dict[str, Any] | None:
        if ref.startswith("#"):
            root = self.root_resource or {}
            for c in root.get("contained") or []:
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    return c
            return None
        return self.bundle.resolve(ref, self.resource) if self.bundle is not None else None

    def member_of(self, value: Any, vs_url: str) -> bool | None:
        exp = self.v.expander.expand(vs_url)
        if isinstance(value, str):
            return exp.contains(None, value)
        if isinstance(value, dict):
            pairs = binding.codings_of(value, "CodeableConcept" if "coding" in value else "Coding") or []
            verdicts = [exp.contains(s, c) for s, c in pairs]
            if any(v is True for v in verdicts):
                return True
            return None if any(v is None for v in verdicts) else False
        return False

    def conforms_to(self, resource: Any, url: str) -> bool:
        if not isinstance(resource, dict):
            return False
        claims = ((resource.get("meta") or {}).get("profile") or []) if isinstance(resource.get("meta"), dict) else []
        bare = url.split("|", 1)[0]
        if any(isinstance(c, str) and c.split("|", 1)[0] == bare for c in claims):
            return True  # claimed profiles are validated on their own; do not walk twice
        key = (id(resource), url)
        hit = self.conformance_cache.get(key)
        if hit is None:
            sub = _Ctx(self.v, self.deadline, self.max_issues)
            sub.bundle, sub.conformance_cache = self.bundle, self.conformance_cache
            self.conformance_cache[key] = True  # provisional, breaks cycles
            self.v._validate_resource(resource, resource.get("resourceType", "Resource"), sub, extra_profiles=(url,),
                                      claims_too=False)
            hit = not any(i.is_error for i in sub.issues)
            self.conformance_cache[key] = hit
        return hit


class Validator:
    def __init__(self, store: DefinitionStore, *, max_issues: int = 10_000, time_limit_s: float = 10.0,
                 max_depth: int = 64, max_bytes: int = 64 * 1024 * 1024, memo_size: int = 50_000,
                 clean_path: bool = True):
        self.store = store
        self.compiler = Compiler(store)
        self.expander = ValueSetExpander(store)
        self.max_issues = max_issues
        self.time_limit_s = time_limit_s
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self._slice_members: dict[tuple[int, str], Member] = {}
        self.memo_size = memo_size
        # content memo of clean context-free values, one table per element; only the clean path
        # consults it (the walk runs where something is to be reported)
        self.memo = fastpath.Memo(memo_size)
        self.clean_path = clean_path  # try fastpath first (False: the walk only — for equivalence tests)
        self._resource_types: dict[str, bool] = {}
        self._slice_memo_ok: dict[int, bool] = {}
        self._covering: dict[tuple[int, int], bool] = {}
        self._clean_values: dict[tuple[int, int], Any] = {}  # (member, host rule) -> fastpath value check
        # (base, slice, value type, base member) -> (slice member, validate against the base too?);
        # nodes and members live as long as the compiler, so their ids stay theirs
        self._slice_plans: dict[tuple[int, int, Any, int], tuple[Member | None, bool]] = {}
        self._roots_for: dict[tuple[Any, ...], tuple[list[Node], list[tuple[str, str, int | None]],
                                                      list[tuple[Node, ObjectRule, Any]]]] = {}
        self._targets: dict[tuple[str, ...], tuple[set[str], list[str]]] = {}
        self._candidates: dict[tuple[tuple[str, ...], Any], tuple[list[str], bool]] = {}
        self._profiles: dict[str, tuple[Node | None, str | None]] = {}

    def forget(self) -> None:
        """Drop what validations remember of content: the memo of clean values and the analysed
        narratives (benchmarks start each run from none, as the export of an unseen patient does)."""
        self.memo.clear()
        xhtml.forget()

    @classmethod
    def from_settings(cls, settings: Any, extra_sources: Sequence[Any] = (), **kw: Any) -> "Validator":
        from exporter.fhir.definitions import default_store
        return cls(default_store(settings, extra_sources), **kw)

    # -- entry points -------------------------------------------------------------------------
    def validate_json(self, data: bytes | str, profiles: Sequence[str] = ()) -> list[Issue]:
        if len(data) > self.max_bytes:
            return [Issue(Severity.FATAL, IssueCode.TOO_COSTLY, f"input exceeds {self.max_bytes} bytes", M.TOO_LARGE)]
        value, problem = parse_json(data)
        if problem is not None:
            return [Issue(Severity.FATAL, IssueCode.STRUCTURE, problem, M.NOT_JSON)]
        return self.validate(value, profiles)

    def validate(self, resource: Any, profiles: Sequence[str] = ()) -> list[Issue]:
        if not isinstance(resource, dict):
            return [Issue(Severity.FATAL, IssueCode.STRUCTURE,
                          f"a FHIR resource must be a JSON object, not {json_kind(resource)}", M.NOT_OBJECT)]
        ctx = _Ctx(self, min(time.monotonic() + self.time_limit_s, deadline.at()), self.max_issues)  # or the request's
        try:
            self._validate_resource(resource, str(resource.get("resourceType", "Resource")), ctx,
                                    extra_profiles=tuple(profiles))
        except _Abort as exc:
            ctx.issues.append(Issue(Severity.ERROR, IssueCode.TOO_COSTLY, f"validation stopped: {exc}", M.TOO_LARGE))
        except RecursionError:
            ctx.issues.append(Issue(Severity.FATAL, IssueCode.TOO_COSTLY, "input nested too deeply", M.TOO_DEEP))
        return ctx.issues

    # -- resources ----------------------------------------------------------------------------
    def _validate_resource(self, res: Any, path: str, ctx: _Ctx, *, extra_profiles: Sequence[str] = (),
                           contained: bool = False, claims_too: bool = True) -> None:
        if not isinstance(res, dict):
            ctx.add("error", M.NOT_OBJECT, f"a resource must be a JSON object, not {json_kind(res)}", path)
            return
        rt = res.get("resourceType")
        if not isinstance(rt, str):
            ctx.add("error", M.NO_RESOURCE_TYPE, "resource has no resourceType", path)
            return
        if time.monotonic() > ctx.deadline:
            raise _Abort(f"time limit of {self.time_limit_s} s exceeded")
        if not (self._resource_types.get(rt) or self._is_resource_type(rt)):
            ctx.add("error", M.UNKNOWN_RESOURCE_TYPE, f"unknown resourceType '{rt}'", path)
            return
        if path == "Resource" or path == rt:
            path = rt
        meta = res.get("meta")
        claims = meta.get("profile") if claims_too and isinstance(meta, dict) else None
        claims = tuple(claims) if isinstance(claims, list) else ()
        key = (rt, claims, extra_profiles if type(extra_profiles) is tuple else tuple(extra_profiles))
        try:
            found = self._roots_for.get(key)
        except TypeError:  # a claim that is not a string (an object): not hashable, not cached
            key, found = None, None
        if found is None:
            found = self._resolve_roots(rt, claims, extra_profiles)
            if key is not None and len(self._roots_for) < 10_000:
                self._roots_for[key] = found
        roots, problems, rules = found
        for mid, message, i in problems:
            ctx.add("error", mid, message, f"{path}.meta.profile[{i}]" if i is not None else path)

        saved = (ctx.resource, ctx.root_resource, ctx.bundle)
        ctx.resource = res
        if not contained:
            ctx.root_resource = res
        if rt == "Bundle":
            ctx.bundle = BundleIndex.build(res)
        try:
            for root, rule, invariants_hold in rules:
                done = (id(res), id(root))
                if done in ctx.walked:
                    continue
                ctx.walked.add(done)
                if not (self.clean_path and self._clean_walk(res, rule, path, ctx, 1)):
                    self._full_walk(res, rule, path, ctx, 1)
                if invariants_hold is not None and not invariants_hold(res, ctx):
                    self._constraints(root.constraints, res, path, ctx, rt)
            if rt == "QuestionnaireResponse":
                questionnaire.check(res, self.store, ctx.member_of, path, ctx.add)
            if rt == "Bundle":
                for _, msg, expr in entry_issues(res):
                    ctx.add("error", M.BUNDLE_RULE, msg, expr)
        finally:
            ctx.resource, ctx.root_resource, ctx.bundle = saved

    def _resolve_roots(self, rt: str, claims: tuple[Any, ...], extra_profiles: Sequence[str]
                       ) -> tuple[list[Node], list[tuple[str, str, int | None]], list[tuple[Node, ObjectRule, Any]]]:
        """The profile roots a resource is walked against (its claims, then profiles named by the
        caller or by its element's type; core when there are none), the problems with them, as
        (message id, message, index of the meta.profile claim or None), and per root what the walk needs."""
        roots: list[Node] = []
        problems: list[tuple[str, str, int | None]] = []
        named: list[tuple[str, int | None]] = [(c, i) for i, c in enumerate(claims) if isinstance(c, str)]
        named += [(p, None) for p in extra_profiles]
        for canonical, where in named:
            root, sd_type = self._profile(canonical)
            if root is None:
                problems.append((M.PROFILE_UNKNOWN, f"profile {canonical} is not known to this validator", where))
                continue
            if sd_type != rt:
                problems.append((M.PROFILE_WRONG_TYPE, f"profile {canonical} is for {sd_type}, not {rt}", where))
                continue
            if all(root is not r for r in roots):
                roots.append(root)
        if not roots:
            core_root = self.compiler.type_root(rt)
            assert core_root is not None
            roots.append(core_root)
        # per root: its object rule and its invariants as one generated function (False: let
        # _constraints report)
        return roots, problems, [(root, self.compiler.object_rule(root, rt),
                                  fastpath.constraints_fn(root.constraints, rt, True) if root.constraints else None)
                                 for root in roots]

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
    def _walk(self, obj: dict[str, Any], rule: ObjectRule, path: str, ctx: _Ctx, depth: int) -> None:
        if self.clean_path:
            if not self._clean_walk(obj, rule, path, ctx, depth):
                self._full_walk(obj, rule, path, ctx, depth)
        else:
            self._full_walk(obj, rule, path, ctx, depth)

    def _clean_walk(self, obj: dict[str, Any], rule: ObjectRule, path: str, ctx: _Ctx, depth: int) -> bool:
        """Try the clean path (fastpath); True when it proved the object clean. While already probing,
        a failure propagates as Dirty to the outermost probe."""
        fast = rule.fast or fastpath.compile_rule(self, rule)
        if ctx.probing:
            if not fast(obj, path, ctx, depth):
                raise fastpath.Dirty
            return True
        ctx.probing = True
        try:
            return fast(obj, path, ctx, depth)
        except fastpath.Dirty:
            return False
        finally:
            ctx.probing = False

    def _full_walk(self, obj: dict[str, Any], rule: ObjectRule, path: str, ctx: _Ctx, depth: int) -> None:
        """The walk proper: reports every problem of this object (nested objects try the clean path again)."""
        if depth > self.max_depth:
            ctx.add("fatal", M.TOO_DEEP, f"nesting deeper than {self.max_depth} levels", path)
            return
        if not obj:
            ctx.add("error", M.EMPTY_OBJECT, "empty object: an element must have a value or children (ele-1)", path)
            return
        members = rule.members
        counts: dict[Node, int] = {}
        sliced: dict[Node, list[tuple[Any, str | None, str, Member | None]]] | None = None
        for key, val in obj.items():
            m = members.get(key)
            if m is None:
                if key == "resourceType" and rule.is_resource:
                    continue
                ctx.add("error", M.UNKNOWN_ELEMENT, unknown_element_message(key, members, rule.node.path or rule.type_code),
                        f"{path}.{key}")
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
                if isinstance(val, list):
                    ctx.add("error", M.JSON_ARRAY_UNEXPECTED, f"{key} must not be a JSON array (max 1)", f"{path}.{key}")
                    continue
                if val is None:
                    ctx.add("error", M.JSON_NULL, f"{key}: null is not allowed", f"{path}.{key}")
                    continue
                if m.counted:
                    counts[cnode] = counts.get(cnode, 0) + 1
                sliced = self._member_value(val, m, f"{path}.{key}", ctx, depth, rule, sliced)
                continue
            items = self._shape(val, m, key, path, ctx)
            if items is None:
                continue
            if len(items) > 256 and time.monotonic() > ctx.deadline:
                raise _Abort(f"time limit of {self.time_limit_s} s exceeded")
            n = 0
            for i, item in enumerate(items):
                if item is None:
                    if check is not None and self._aligned_ext(obj, key, i):
                        continue
                    ctx.add("error", M.JSON_NULL, f"{key}: null is not allowed", f"{path}.{key}[{i}]")
                    continue
                n += 1
                sliced = self._member_value(item, m, f"{path}.{key}[{i}]", ctx, depth, rule, sliced)
            if m.counted:
                counts[cnode] = counts.get(cnode, 0) + n
        for cnode in rule.counted:
            found = counts.get(cnode, 0)
            if found < cnode.min or (cnode.max is not None and found > cnode.max):
                problem = cardinality.check(cnode, found, f"{path}.{cnode.name.replace('[x]', '')}")
                if problem is not None:
                    ctx.add("error", *problem)
            if cnode.slicing is not None and cnode.slices:
                self._slices(cnode, (sliced or {}).get(cnode, []), path, ctx, depth, rule)

    def _member_value(self, v: Any, m: Member, path: str, ctx: _Ctx, depth: int, rule: ObjectRule,
                      sliced: dict[Node, list[tuple[Any, str | None, str, Member | None]]] | None
                      ) -> dict[Node, list[tuple[Any, str | None, str, Member | None]]] | None:
        """One value of member `m` in the walk (a single value or one array item): a primitive is
        checked here; a complex value of a sliced element is only collected — _slices validates it
        once its slice is known (the member goes along); any other is validated now. Returns the
        sliced items collected so far."""
        if m.check is not None:
            reason = m.check(v)
            if reason is not None:
                ctx.add("error", M.PRIMITIVE_INVALID, f"{m.type.code} value {reason}", path)
            elif m.more:
                self._primitive_more(v, m, path, ctx)
        elif not m.sliced:
            self._value(v, m, path, ctx, depth, rule)
        if m.sliced:
            sliced = sliced if sliced is not None else {}
            sliced.setdefault(m.count_node, []).append((v, m.type.code, path, None if m.check is not None else m))
        return sliced

    @staticmethod
    def _shape(val: Any, m: Member, key: str, path: str, ctx: _Ctx) -> list[Any] | None:
        if m.many:
            if not isinstance(val, list):
                ctx.add("error", M.JSON_ARRAY_EXPECTED, f"{key} must be a JSON array (max > 1)", f"{path}.{key}")
                return [val]
            if not val:
                ctx.add("error", M.EMPTY_ARRAY, f"{key}: empty arrays are not allowed", f"{path}.{key}")
                return None
            return val
        if isinstance(val, list):
            ctx.add("error", M.JSON_ARRAY_UNEXPECTED, f"{key} must not be a JSON array (max 1)", f"{path}.{key}")
            return None
        return [val]

    def _primitive_more(self, item: Any, m: Member, path: str, ctx: _Ctx) -> None:
        node = m.node
        if m.type.code in ("uri", "url") and ("example.org" in item or "acme.com" in item) \
                and not node.path.endswith(".system") and not (node.path.count(".") == 1 and node.name == "url") \
                and self.store.get(item) is None:
            ctx.add("error", M.EXAMPLE_URL, "example URLs are not allowed here: nothing is known at "
                    "that address; use the real canonical of the resource", path)
        if node.has_fixed or node.has_pattern:
            self._fixed_pattern(item, node, path, ctx)
        if node.binding_strength:
            binding.check(item, m.type.code, node.binding_strength, node.binding_vs, self.expander, path, ctx.add)
        if node.constraints:
            self._constraints(node.constraints, item, path, ctx, m.type.code)

    def _aligned_ext(self, obj: dict[str, Any], key: str, i: int) -> bool:
        ext = obj.get("_" + key)
        return isinstance(ext, list) and i < len(ext) and isinstance(ext[i], dict)

    def _primitive_ext(self, obj: dict[str, Any], key: str, items: list[Any], m: Member, path: str, ctx: _Ctx,
                       depth: int) -> None:
        base = obj.get(key[1:])
        for i, item in enumerate(items):
            ipath = f"{path}.{key[1:]}[{i}]" if m.many else f"{path}.{key[1:]}"
            if item is None:
                if not (isinstance(base, list) and i < len(base) and base[i] is not None):
                    ctx.add("error", M.JSON_NULL, f"{key}: null without a value at the same position", ipath)
                continue
            if not isinstance(item, dict):
                ctx.add("error", M.WRONG_JSON_TYPE, f"{key} must be an object with id/extension", ipath)
                continue
            element_rule = self.compiler.object_rule(self.compiler.type_root("Element"), "Element")  # type: ignore[arg-type]
            self._walk(item, element_rule, ipath, ctx, depth + 1)

    # -- values -------------------------------------------------------------------------------
    def _value(self, item: Any, m: Member, path: str, ctx: _Ctx, depth: int, host: ObjectRule) -> None:
        node, t, kind = m.node, m.type, m.kind
        if kind == KIND_PRIMITIVE:
            reason = m.check(item) if m.check is not None else None
            if reason is not None:
                ctx.add("error", M.PRIMITIVE_INVALID, f"{t.code} value {reason}", path)
            elif m.more:
                self._primitive_more(item, m, path, ctx)
            return
        if kind == KIND_RESOURCE:
            if t.code not in ("Resource", "DomainResource") and isinstance(item, dict) \
                    and item.get("resourceType") != t.code:
                ctx.add("error", M.TYPE_NOT_ALLOWED, f"a {item.get('resourceType')} is not allowed here, only {t.code}", path)
                return
            probing, ctx.probing = ctx.probing, False  # a resource's issues are its own: never probed
            try:
                self._validate_resource(item, path, ctx, extra_profiles=t.profiles, contained=m.key == "contained")
            finally:
                ctx.probing = probing
            return
        if not isinstance(item, dict):
            ctx.add("error", M.WRONG_JSON_TYPE, f"{m.key} must be a JSON object ({t.code}), not {json_kind(item)}", path)
            return
        self._complex(item, m, path, ctx, depth, host)

    def _complex(self, item: dict[str, Any], m: Member, path: str, ctx: _Ctx, depth: int, host: ObjectRule) -> None:
        node, t, kind = m.node, m.type, m.kind
        if node.has_fixed or node.has_pattern:
            self._fixed_pattern(item, node, path, ctx)
        if kind == KIND_EXTENSION:
            self._extension(item, m, path, ctx, depth, host)
        else:
            self._walk(item, self.compiler.object_rule(node, t.code), path, ctx, depth + 1)
        if node.binding_strength:
            binding.check(item, t.code, node.binding_strength, node.binding_vs, self.expander, path, ctx.add)
        if kind == KIND_REFERENCE:
            self._reference(item, t.target_profiles or _target_profiles(node), path, ctx)
        elif t.code == "Coding":
            codes.check_coding(item, self.expander, path, ctx.add)
        constraints = m.constraints if m.constraints is not None else self.compiler.constraints_for(m)
        if constraints:
            self._constraints(constraints, item, path, ctx, t.code)

    def _fixed_pattern(self, item: Any, node: Node, path: str, ctx: _Ctx) -> None:
        if node.has_fixed and not equals_fixed(item, node.fixed):
            ctx.add("error", M.FIXED_MISMATCH, f"the value must be exactly {describe(node.fixed)} "
                    f"(fixed in {node.sd_url})", path)
        if node.has_pattern and not matches_pattern(item, node.pattern):
            ctx.add("error", M.PATTERN_MISMATCH, f"the value does not match the pattern {describe(node.pattern)} "
                    f"required by {node.sd_url}", path)

    def _extension(self, item: dict[str, Any], m: Member, path: str, ctx: _Ctx, depth: int, host: ObjectRule) -> None:
        url = item.get("url")
        if not isinstance(url, str) or not url:
            ctx.add("error", M.EXTENSION_NO_URL, "extension without url", path)
            self._walk(item, self.compiler.object_rule(m.node, "Extension"), path, ctx, depth + 1)
            return
        sd = self.store.structure(url)
        if sd is None or sd.get("type") != "Extension":
            ctx.add("error", M.EXTENSION_UNKNOWN, f"unknown extension {url}: no definition is loaded for it", path)
            self._walk(item, self.compiler.object_rule(m.node, "Extension"), path, ctx, depth + 1)
            return
        host_is_resource = host.is_resource
        host_path = host.node.path if "." in host.node.path or host_is_resource else host.type_code
        # context type "extension" needs the enclosing extension's URL, which the walk does not track:
        # such contexts are not matched (the extension is then reported as out of context)
        if not extensions.context_allows(sd, host.type_code, host_path, host_is_resource, None):
            ctx.add("error", M.EXTENSION_CONTEXT, f"extension {url} is not allowed on {host_path} "
                    f"(its contexts: {extensions.describe_contexts(sd)})", path)
        root = self.compiler.root(url)
        if root is None:
            return
        self._walk(item, self.compiler.object_rule(root, "Extension"), path, ctx, depth + 1)
        if root.constraints:
            self._constraints(root.constraints, item, path, ctx, "Extension")

    def _reference(self, item: dict[str, Any], target_profiles: tuple[str, ...], path: str, ctx: _Ctx) -> None:
        ref = item.get("reference")
        if not isinstance(ref, str):
            return
        where = path + ".reference"
        if ctx.bundle is not None and ref.startswith("urn:"):
            # an absolute reference inside a Bundle resolves the same way wherever it occurs, so its
            # verdict for these target profiles is worked out once per Bundle (a document refers to
            # its Patient from every Observation)
            key = (ref, target_profiles, id(ctx.bundle))
            found = ctx.references.get(key)
            if found is None:
                found = []
                self._reference_checks(ref, target_profiles, ctx, lambda sev, mid, msg: found.append((sev, mid, msg)))
                ctx.references[key] = found
            for sev, mid, msg in found:
                ctx.add(sev, mid, msg, where)
            return
        self._reference_checks(ref, target_profiles, ctx, lambda sev, mid, msg: ctx.add(sev, mid, msg, where))

    def _reference_checks(self, ref: str, target_profiles: tuple[str, ...], ctx: _Ctx,
                          report: Callable[[str, str, str], None]) -> None:
        problem = references.format_problem(ref)
        if problem is not None:
            report("error", M.REFERENCE_FORMAT, f"the reference {problem}")
            return
        target = ctx.resolve(ref)
        if target is None:
            if ctx.bundle is not None and ref.startswith("urn:"):
                report("error", M.REFERENCE_UNRESOLVED, f"reference {ref} does not resolve to an entry of this Bundle")
            elif ctx.bundle is not None and ctx.bundle.is_document and not ref.startswith("#"):
                report("warning", M.REFERENCE_UNRESOLVED, f"reference {ref} does not resolve inside the document")
            declared = references.referenced_type(ref)
            if declared and target_profiles:
                types, _ = self._allowed_targets(target_profiles)
                if types and declared not in types and "Resource" not in types:
                    report("error", M.REFERENCE_TARGET_TYPE, f"reference to {declared} where only "
                           f"{', '.join(sorted(types))} is allowed")
            return
        if not target_profiles:
            return
        types, profiles = self._allowed_targets(target_profiles)
        rt = target.get("resourceType")
        if types and rt not in types and "Resource" not in types:
            report("error", M.REFERENCE_TARGET_TYPE, f"reference to a {rt} where only {', '.join(sorted(types))} "
                   f"is allowed")
            return
        candidates, core_ok, bare = self._target_candidates(target_profiles, profiles, rt)
        if candidates and not core_ok and not references.claims_any(target, bare) \
                and not any(ctx.conforms_to(target, p) for p in candidates):
            report("error", M.REFERENCE_TARGET_PROFILE, f"referenced {rt} does not conform to "
                   f"{' or '.join(candidates)}")

    def _target_candidates(self, target_profiles: tuple[str, ...], profiles: list[str],
                           rt: Any) -> tuple[list[str], bool, frozenset[str]]:
        """(profiles of the target's type it must conform to, core type allowed as such?, those
        profiles' canonicals without version), cached."""
        key = (target_profiles, rt)
        hit = self._candidates.get(key)
        if hit is None:
            candidates = [p for p in profiles if (self.store.structure(p) or {}).get("type") == rt]
            hit = (candidates, any(p.split("|")[0] == references.CORE_PREFIX + str(rt) for p in target_profiles),
                   frozenset(p.split("|", 1)[0] for p in candidates))
            if len(self._candidates) < 10_000:
                self._candidates[key] = hit
        return hit

    def _allowed_targets(self, target_profiles: tuple[str, ...]) -> tuple[set[str], list[str]]:
        hit = self._targets.get(target_profiles)
        if hit is None:
            hit = self._targets[target_profiles] = references.allowed_target_types(target_profiles, self.store)
        return hit

    def _slices(self, base: Node, items: list[tuple[Any, str | None, str, Member | None]], path: str, ctx: _Ctx,
                depth: int, host: ObjectRule) -> None:
        """Assign the items of a sliced element to slices, check the slice rules, then validate each
        item: against its slice, and against the base element unless the slice covers it (see
        `_covers`). Items with a member were not validated by the walk yet (complex values); items
        without one (primitives) were. (The clean path memoises clean slices: fastpath._slices_fn.)"""
        values = [(v, t) for v, t, _, _ in items]
        where = (lambda i: items[i][2] if i < len(items) else f"{path}.{base.name}")
        assigned = slicing.check(values, base, ctx, where, ctx.add)
        for (value, vtype, ipath, m), sl in zip(items, assigned):
            sm, with_base = self._slice_plan(base, sl, vtype, m)
            if with_base:
                self._item(value, m, ipath, ctx, depth, host)  # type: ignore[arg-type]
            if sm is not None:
                self._item(value, sm, ipath, ctx, depth, host)

    def _slice_plan(self, base: Node, sl: Node | None, vtype: str | None, m: Member | None) -> tuple[Member | None, bool]:
        """How an item of `base` assigned to slice `sl` is validated: (the slice's member or None,
        validate against the base member `m` too?). Cached in _slice_plans."""
        key = (id(base), id(sl), vtype, id(m))
        plan = self._slice_plans.get(key)
        if plan is not None:
            return plan
        sm = None
        if sl is not None:
            t = next((x for x in sl.types if x.code == vtype), sl.types[0] if sl.types else None)
            if t is not None:
                sm = self._slice_member(base, sl, t)
        plan = self._slice_plans[key] = (sm, m is not None and (sm is None or not self._covers(sm, m)))
        return plan

    def _slice_member(self, base: Node, sl: Node, t: Any) -> Member:
        key = (id(sl), t.code)
        m = self._slice_members.get(key)
        if m is None:
            m = self._slice_members[key] = self.compiler.member(base.name, base, sl, t)
        return m

    def _item(self, value: Any, m: Member, path: str, ctx: _Ctx, depth: int, host: ObjectRule) -> None:
        """One sliced item against a member: while probing, a complex value takes the clean path's
        checks for that member (Bundle entries pass here); otherwise Validator._value."""
        if ctx.probing and type(value) is dict and m.kind not in (KIND_PRIMITIVE, KIND_RESOURCE):
            if not self.clean_value_fn(m, host)(value, path, ctx, depth):
                raise fastpath.Dirty
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
        of the same type, carries the base's fixed value, pattern, binding, invariants and target
        profiles, and its children are unfolded whenever the base's are (else the slice's object rule
        would fall back to the bare datatype). Otherwise the item is validated against both."""
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
                       and (bool(sm.type.target_profiles) or not m.type.target_profiles))))
            self._covering[key] = hit
        return hit

    def _slices_memoisable(self, base: Node) -> bool:
        """Slice assignment and slice validation depend on the items' content only: discriminators
        without profile/resolve(), and every slice's content is context-free."""
        hit = self._slice_memo_ok.get(id(base))
        if hit is None:
            assert base.slicing is not None
            hit = all(d.type in ("value", "pattern", "type", "exists") and "resolve()" not in d.path
                      for d in base.slicing.discriminators) and all(
                self.compiler.context_free(self._slice_member(base, sl, t)) for sl in base.slices for t in sl.types)
            self._slice_memo_ok[id(base)] = hit
        return hit

    # -- invariants ---------------------------------------------------------------------------
    def _constraints(self, constraints: list[Constraint], value: Any, path: str, ctx: _Ctx,
                     type_code: str | None = None) -> None:
        for c, exc in unmet(constraints, value, ctx, type_code):
            if c.check is None:
                ctx.add("warning", M.INVARIANT_ERROR, f"constraint {c.key} could not be compiled: {c.compile_error}", path)
            elif exc is not None:
                ctx.add("warning", M.INVARIANT_ERROR, f"constraint {c.key} could not be evaluated: {exc}", path)
            else:
                sev = "error" if c.severity == "error" else "warning"
                ctx.add(sev, M.INVARIANT, f"constraint {c.key} failed: {c.human}", path)


def _target_profiles(node: Node) -> tuple[str, ...]:
    return tuple(p for t in node.types for p in t.target_profiles)

