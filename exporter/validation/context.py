"""Per-call validation state (layer L2): the issues collected so far, the resource and Bundle being
walked, and the services rules use (reference resolution, ValueSet membership, conformance).

`Engine` is what the walk offers the clean path and the rules (validator.Validator implements it);
both depend on this module, not on each other, so the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from exporter.issues import Issue, IssueCap
from exporter.validation import messages as M
from exporter.validation.binding import codings_of
from exporter.validation.bundle import BundleIndex

if TYPE_CHECKING:
    from exporter.terminology.valuesets import ValueSetExpander


class Dirty(BaseException):
    """Raised by Ctx.add while probing (the clean path runs): something would be reported. A
    BaseException, so that the `except Exception` around invariant evaluation cannot swallow it."""


class Abort(Exception):
    """The work bound of one call (issue count, time) is reached."""


class Engine(Protocol):
    """The walk's services used by the clean path and by rules."""

    compiler: Any  # exporter.validation.compiler.Compiler (which imports this module: no import cycle)
    expander: ValueSetExpander
    memo: Any
    max_depth: int
    time_limit_s: float

    def validate_resource(self, res: Any, path: str, ctx: Ctx, *, extra_profiles: Sequence[str] = (),
                          contained: bool = False, claims_too: bool = True) -> None: ...

    def walk_slices(self, base: Any, items: list[Any], path: str, ctx: Ctx, depth: int, host: Any) -> None: ...

    def slice_plan(self, base: Any, sl: Any, vtype: str | None, m: Any, host: Any) -> tuple[Any, bool]: ...

    def slices_memoisable(self, base: Any) -> bool: ...

    def clean_value_fn(self, m: Any, host: Any) -> Any: ...


class Ctx:
    """Per-call state: collected issues, the resource being walked, the enclosing Bundle."""

    __slots__ = ("v", "issues", "seen", "resource", "root_resource", "bundle", "deadline", "max_issues",
                 "conformance_cache", "focus_type", "walked", "references", "probing", "cap")

    def __init__(self, engine: Engine, deadline: float, max_issues: int):
        self.v = engine
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
        # (reference, target profiles, bundle) -> its findings (references.Reference)
        self.references: dict[Any, list[tuple[str, str | None, str | None, dict[str, Any]]]] = {}
        self.probing = False  # inside the clean path (fastpath): add() raises instead of recording
        self.cap = IssueCap(max_issues, self.issues)  # errors stop the walk; warnings past the cap are counted

    def add(self, mid: str, expression: str, severity: str | None = None, variant: str | None = None,
            **args: Any) -> None:
        """Report message `mid` (a row of messages.TABLE) at `expression`, its text filled from `args`."""
        if self.probing:
            raise Dirty  # the clean path was wrong to hope: the walk will report this
        issue = M.issue(mid, expression, severity, variant, **args)
        key = (mid, issue.message, expression)
        if key in self.seen:
            return
        self.seen.add(key)
        if self.cap.add(issue):
            raise Abort(f"{self.max_issues} errors reached")

    # services used by invariants, slicing and rules
    def resolve(self, ref: str) -> dict[str, Any] | None:
        if ref.startswith("#"):
            root = self.root_resource or {}
            if ref == "#":  # the containing resource, seen from a resource it contains
                return root if root and self.resource is not root else None
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
            pairs = codings_of(value, "CodeableConcept" if "coding" in value else "Coding") or []
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
            sub = Ctx(self.v, self.deadline, self.max_issues)
            sub.bundle, sub.conformance_cache = self.bundle, self.conformance_cache
            self.conformance_cache[key] = True  # provisional, breaks cycles
            self.v.validate_resource(resource, resource.get("resourceType", "Resource"), sub, extra_profiles=(url,),
                                     claims_too=False)
            hit = not any(i.is_error for i in sub.issues)
            self.conformance_cache[key] = hit
        return hit
