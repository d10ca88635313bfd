"""Compiled rule trees (layer L2): what a StructureDefinition snapshot becomes after compilation.

`Node` is one ElementDefinition (cardinality, types, fixed/pattern, binding, invariants, slicing,
its slices and children). `ObjectRule` is what the walker needs to check one JSON object of a given
complex type at a node: JSON key → `Member` (which child it counts for, which node and type it is
validated against), computed once per (node, type) and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.validation.primitives import PRIMITIVE_TYPES

KIND_PRIMITIVE, KIND_COMPLEX, KIND_RESOURCE, KIND_EXTENSION, KIND_REFERENCE = range(5)
RESOURCE_TYPE_CODES = frozenset({"Resource", "DomainResource"})


@dataclass(frozen=True)
class TypeRef:
    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()

    @property
    def kind(self) -> int:
        if self.code in PRIMITIVE_TYPES or self.code.startswith("http://hl7.org/fhirpath/System."):
            return KIND_PRIMITIVE
        if self.code in RESOURCE_TYPE_CODES:
            return KIND_RESOURCE
        if self.code == "Extension":
            return KIND_EXTENSION
        if self.code == "Reference":
            return KIND_REFERENCE
        return KIND_COMPLEX


@dataclass(frozen=True)
class Discriminator:
    type: str  # value | pattern | type | profile | exists
    path: str


@dataclass(frozen=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # open | closed | openAtEnd
    ordered: bool


@dataclass(eq=False)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str
    check: Callable[[Any, Any], bool] | None = None  # (value, ctx) -> holds?; None = could not compile
    compile_error: str | None = None
    guard: str | None = None  # the check can only fail when the value (an object) has this key
    # the translated boolean test (focus collection, env) -> True/False/None, when the expression
    # needs no environment; raises fhirpath_native.Unsupported where it declines (see invariants)
    test: Callable[[Any, Any], Any] | None = None
    # the navigations from the focus whose results are all `test` reads (fhirpath_native `reads`)
    reads: tuple[Callable[[Any, Any], Any], ...] | None = None
    best_practice: bool = False  # marked with the elementdefinition-bestpractice extension (see policy.py)

    @property
    def uses_context(self) -> bool:
        """Depends on more than the focus value (the resource, the Bundle, other resources)."""
        e = self.expression
        return "%resource" in e or "%rootResource" in e or "resolve()" in e or "conformsTo(" in e


@dataclass(eq=False)
class Node:
    sd_url: str
    id: str
    path: str
    name: str
    slice_name: str | None
    min: int
    max: int | None  # None = *
    many: bool  # JSON array? decided by the base definition's max, not the profile's
    types: tuple[TypeRef, ...]
    fixed: Any = None
    has_fixed: bool = False
    pattern: Any = None
    has_pattern: bool = False
    binding_strength: str | None = None
    binding_vs: str | None = None
    constraints: list[Constraint] = field(default_factory=list)
    slicing: Slicing | None = None
    slices: list[Node] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    content_ref: Node | None = None
    object_rules: dict[str, ObjectRule] = field(default_factory=dict, repr=False)  # by type code (Compiler.object_rule)
    element: dict[str, Any] = field(default_factory=dict, repr=False)  # the ElementDefinition itself, for rules
    slice_matchers: list[Any] | None = field(default=None, repr=False)  # compiled by slicing.matchers

    @property
    def is_choice(self) -> bool:
        return self.name.endswith("[x]")

    def label(self) -> str:
        return self.id

    def child_at(self, dotted: str) -> Node | None:
        """Descend own children (not type children) along a dotted path; '$this' is the node itself."""
        node: Node | None = self
        if dotted in ("$this", ""):
            return self
        for part in dotted.split("."):
            if node is None:
                return None
            target = node.content_ref or node
            nxt = target.children.get(part)
            if nxt is None and part + "[x]" in target.children:
                nxt = target.children[part + "[x]"]
            node = nxt
        return node


@dataclass(eq=False)
class Member:
    key: str
    count_node: Node  # the element this key counts towards (cardinality, slicing)
    node: Node  # the element the value is validated against (a type slice of a choice, a contentReference target…)
    type: TypeRef
    kind: int
    many: bool
    primitive_ext: bool = False  # the `_key` companion object of a primitive
    # precomputed by the compiler so the walker does no look-ups per value
    check: Callable[[Any], str | None] | None = None  # primitive format check
    sliced: bool = False
    counted: bool = True  # its element has cardinality or slices to check (else counting is skipped)
    constraints: list[Constraint] | None = None  # node + datatype invariants, filled on first use
    context_free: bool | None = None  # result depends only on the value itself (see Compiler.context_free)
    rules: tuple[Any, ...] | None = None  # the rules.Rule objects that apply, filled on first use (Compiler.rules_for)
    host: ObjectRule | None = None  # the object rule this member belongs to (None for a resource's root)
    is_root: bool = False  # the member standing for a resource as a whole (Compiler.root_member)


@dataclass(eq=False)
class ObjectRule:
    node: Node
    type_code: str
    members: dict[str, Member]
    counted: list[Node]  # child elements with cardinality or slicing to check
    is_resource: bool = False
    keys_by_node: dict[int, list[str]] = field(default_factory=dict)
    # the clean-path closure (fastpath.compile_rule), built on first use
    fast: Callable[[dict[str, Any], str, Any, int], bool] | None = field(default=None, repr=False)
