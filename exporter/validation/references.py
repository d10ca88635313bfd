"""Reference checks (layer L2): format, resolution inside the Bundle, target type and profile.

The `Reference` rule decides the common clean case — a urn:uuid that is the fullUrl of an entry of
the enclosing Bundle, whose resource has an allowed type and claims an allowed profile — without
building findings, and remembers it per Bundle; anything else goes through `findings`, which the
walk reports from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import KIND_REFERENCE, Member
from exporter.validation.primitives import UUID_RE
from exporter.validation.rules import CHILDREN, Rule, rule

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[A-Za-z0-9\-\.]{1,64})?\Z")
_ABSOLUTE = re.compile(r"https?://\S+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[A-Za-z0-9\-\.]{1,64})?\Z")
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+\Z")


def format_problem(ref: str) -> str | None:
    """None when `ref` is a well-formed reference string, else the reason."""
    if ref.startswith("#"):
        return None  # '#id' a contained resource, '#' alone the resource containing this one
    if ref.startswith("urn:uuid:"):
        return None if UUID_RE.match(ref) else "urn:uuid reference is not a lower-case UUID"
    if ref.startswith("urn:oid:"):
        return None if _OID.match(ref) else "urn:oid reference is malformed"
    if _RELATIVE.match(ref) or _ABSOLUTE.match(ref):
        return None
    if re.match(r"[a-z][a-z0-9+.-]*:", ref):
        return None  # other absolute URIs (logical references) cannot be checked further
    return "is neither a relative reference (Type/id), an absolute URL, a urn:uuid/urn:oid nor #contained"


def referenced_type(ref: str) -> str | None:
    m = _RELATIVE.match(ref) or _ABSOLUTE.match(ref)
    return m.group(1) if m else None


def allowed_target_types(target_profiles: tuple[str, ...], store: Any) -> tuple[set[str], list[str]]:
    """(resource types allowed, non-core profiles to conform to) for Reference(...) targets."""
    types: set[str] = set()
    profiles: list[str] = []
    for p in target_profiles:
        url = p.split("|", 1)[0]
        sd = store.structure(p)
        if url.startswith(CORE_PREFIX) and (sd is None or sd.get("derivation") != "constraint"):
            types.add(url[len(CORE_PREFIX):])  # a base resource type (core profiles such as vitalsigns are profiles)
            continue
        if sd is not None:
            types.add(sd.get("type", ""))
        profiles.append(p)
    return types, profiles


def claims_any(resource: dict[str, Any], bare: frozenset[str]) -> bool:
    """A claimed profile is validated on its own, so a claim of any candidate (`bare`: canonicals
    without version) settles a target check without walking the resource against every candidate."""
    meta = resource.get("meta")
    claims = meta.get("profile") if isinstance(meta, dict) else None
    if not isinstance(claims, list):
        return False
    for c in claims:
        if isinstance(c, str):
            unversioned = _UNVERSIONED.get(c)
            if unversioned is None:
                unversioned = c.split("|", 1)[0]
                if len(_UNVERSIONED) < 10_000:
                    _UNVERSIONED[c] = unversioned
            if unversioned in bare:
                return True
    return False


_UNVERSIONED: dict[str, str] = {}  # claimed canonical -> without |version (a handful per export, met thousands of times)


Finding = tuple[str, str | None, str | None, dict[str, Any]]  # (message id, severity, variant, arguments)


class _Plan:
    """What a member's references are checked against, worked out once per member."""

    __slots__ = ("targets", "types", "profiles", "any_type", "by_type")

    def __init__(self, targets: tuple[str, ...], types: set[str], profiles: list[str]):
        self.targets, self.types, self.profiles = targets, types, profiles
        self.any_type = not types or "Resource" in types
        # target type -> (profiles of that type it must conform to, core type allowed as such?, those
        # profiles' canonicals without version)
        self.by_type: dict[Any, tuple[list[str], bool, frozenset[str]]] = {}


@rule
class Reference(Rule):
    """Reference.reference: well-formed, resolvable inside the Bundle, of an allowed target type,
    conforming to an allowed target profile."""

    messages = (M.REFERENCE_FORMAT, M.REFERENCE_UNRESOLVED, M.REFERENCE_TARGET_TYPE, M.REFERENCE_TARGET_PROFILE,
                M.FRAGMENT_UNRESOLVED)
    stage = CHILDREN + 10

    def __init__(self, env: Any):
        super().__init__(env)
        self._plans: dict[int, _Plan] = {}
        self._by_targets: dict[tuple[str, ...], _Plan] = {}

    def applies(self, m: Member) -> bool:
        return m.kind == KIND_REFERENCE

    def uuid_blind(self, m: Member) -> bool:
        return True  # it is the rule that resolves the uuid

    def plan(self, m: Member) -> _Plan:
        plan = self._plans.get(id(m))
        if plan is None:
            targets = m.type.target_profiles or tuple(p for t in m.node.types for p in t.target_profiles)
            plan = self._by_targets.get(targets)
            if plan is None:
                types, profiles = allowed_target_types(targets, self.env.store) if targets else (set(), [])
                plan = self._by_targets[targets] = _Plan(targets, types, profiles)
            self._plans[id(m)] = plan
        return plan

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        plan, bundle_urn, findings = self.plan(m), self.bundle_urn, self._findings

        def holds(value: Any, ctx: Any) -> bool:
            ref = value.get("reference") if isinstance(value, dict) else None
            if not isinstance(ref, str):
                return True  # no reference string: nothing to check
            if type(ref) is str:
                verdict = bundle_urn(ref, plan, ctx)
                if verdict is not None:
                    return verdict
            return not findings(ref, plan, ctx)
        return holds

    def bundle_urn(self, ref: str, plan: _Plan, ctx: Any) -> bool | None:
        """The verdict on `ref` when it is a well-formed urn:uuid inside a Bundle (cached per Bundle
        when clean); None when it is not (the general check decides)."""
        bundle = ctx.bundle
        if bundle is None:
            return None
        clean = bundle.clean_references.get(plan)
        if clean is None:
            clean = bundle.clean_references[plan] = set()
        elif ref in clean:
            return True  # found clean before: a urn:uuid, resolved, an allowed target
        well_formed = bundle.uuid_urns.get(ref)  # shared by all target profiles (Composition, Provenance)
        if well_formed is None:
            well_formed = bundle.uuid_urns[ref] = ref.startswith("urn:uuid:") and UUID_RE.match(ref) is not None
        if not well_formed:
            return None
        target = bundle.by_full_url.get(ref)
        if target is None:
            return False
        if plan.targets:
            rt = target.get("resourceType")
            if not plan.any_type and rt not in plan.types:
                return False
            known = plan.by_type.get(rt) if type(rt) is str else None
            candidates, core_ok, claimed = known if known is not None else self._candidates(plan, rt)
            if candidates and not core_ok and not claims_any(target, claimed) and self._findings(ref, plan, ctx):
                return False
        clean.add(ref)
        return True

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str):
            where = path + ".reference"
            for mid, severity, variant, args in self._findings(ref, self.plan(m), ctx):
                ctx.add(mid, where, severity, variant, **args)

    def _findings(self, ref: str, plan: _Plan, ctx: Any) -> list[Finding]:
        if ctx.bundle is not None and ref.startswith("urn:"):
            # an absolute reference inside a Bundle resolves the same way wherever it occurs, so its
            # verdict for these target profiles is worked out once per Bundle (a document refers to
            # its Patient from every Observation)
            key = (ref, plan, id(ctx.bundle))
            found: list[Finding] | None = ctx.references.get(key)
            if found is None:
                found = ctx.references[key] = self._check(ref, plan, ctx)
            return found
        return self._check(ref, plan, ctx)

    def _check(self, ref: str, plan: _Plan, ctx: Any) -> list[Finding]:
        problem = format_problem(ref)
        if problem is not None:
            return [(M.REFERENCE_FORMAT, None, None, {"problem": problem})]
        out: list[Finding] = []
        target = ctx.resolve(ref)
        types = plan.types
        if target is None:
            if ref.startswith("#"):
                out.append((M.FRAGMENT_UNRESOLVED, None, "container" if ref == "#" else None, {}))
            elif ctx.bundle is not None and ref.startswith("urn:"):
                out.append((M.REFERENCE_UNRESOLVED, "error", None, {"ref": ref}))
            elif ctx.bundle is not None and ctx.bundle.is_document and not ref.startswith("#"):
                out.append((M.REFERENCE_UNRESOLVED, "warning", "document", {"ref": ref}))
            declared = referenced_type(ref) if self.env.policy.unresolved_reference_types == "check" else None
            if declared and plan.targets and types and declared not in types and "Resource" not in types:
                out.append((M.REFERENCE_TARGET_TYPE, None, "declared", {"rt": declared, "types": ", ".join(sorted(types))}))
            return out
        if not plan.targets:
            return out
        rt = target.get("resourceType")
        if types and rt not in types and "Resource" not in types:
            return [(M.REFERENCE_TARGET_TYPE, None, None, {"rt": rt, "types": ", ".join(sorted(types))})]
        candidates, core_ok, bare = self._candidates(plan, rt)
        if candidates and not core_ok and not claims_any(target, bare) \
                and not any(ctx.conforms_to(target, p) for p in candidates):
            out.append((M.REFERENCE_TARGET_PROFILE, None, None, {"rt": rt, "profiles": " or ".join(candidates)}))
        return out

    def _candidates(self, plan: _Plan, rt: Any) -> tuple[list[str], bool, frozenset[str]]:
        hit = plan.by_type.get(rt) if isinstance(rt, str) else None
        if hit is None:
            candidates = [p for p in plan.profiles if (self.env.store.structure(p) or {}).get("type") == rt]
            hit = (candidates, any(p.split("|")[0] == CORE_PREFIX + str(rt) for p in plan.targets),
                   frozenset(p.split("|", 1)[0] for p in candidates))
            if isinstance(rt, str) and len(plan.by_type) < 1000:
                plan.by_type[rt] = hit
        return hit
