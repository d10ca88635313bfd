"""Compile StructureDefinition snapshots into rule trees, once per profile (layer L2).

`Compiler.root(url)` returns the root `Node` of a profile (cached); `Compiler.object_rule(node,
type_code)` returns the `ObjectRule` used to walk one JSON object — for elements whose children the
snapshot does not unfold (a plain `Quantity`), the children come from the compiled core datatype.
Constraints are compiled here too (invariants.compile_constraint), so no expression is parsed
during validation.
"""

from __future__ import annotations

from typing import Any, TypeVar

from exporter.fhir.definitions import DefinitionStore
from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import invariants
from exporter.validation.model import (
    KIND_COMPLEX,
    KIND_EXTENSION,
    KIND_PRIMITIVE,
    KIND_RESOURCE,
    Constraint,
    Discriminator,
    Member,
    Node,
    ObjectRule,
    Slicing,
    TypeRef,
)
from exporter.validation.policy import Policy
from exporter.validation.primitives import PRIMITIVE_CHECKS
from exporter.validation.rules import Rule, RuleEnv, RuleSet

_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_BEST_PRACTICE = "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"


R = TypeVar("R", bound=Rule)


class CompileError(Exception):
    pass


def _type_code(t: dict[str, Any]) -> str:
    code: str = t.get("code", "")
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == _FHIR_TYPE_EXT:
                url: str = ext.get("valueUrl") or ext.get("valueUri") or "string"
                return url
        return "string"
    return code


def _fixed_pattern(e: dict[str, Any]) -> tuple[Any, bool, Any, bool]:
    fixed = pattern = None
    has_fixed = has_pattern = False
    for k, v in e.items():
        if k.startswith("fixed"):
            fixed, has_fixed = v, True
        elif k.startswith("pattern"):
            pattern, has_pattern = v, True
    return fixed, has_fixed, pattern, has_pattern


def _extensible(node: Node) -> bool:
    """May the primitive element carry id/extension (`_key` in JSON)? Not when the snapshot types it
    as a FHIRPath System type: Resource.id, Element.id, Extension.url hold bare values."""
    return not any(str(t.get("code", "")).startswith("http://hl7.org/fhirpath/System.")
                   for t in node.element.get("type") or [] if isinstance(t, dict))


def _split_id(eid: str) -> tuple[str, str]:
    """'Obs.component:sys.code' -> ('Obs.component:sys', 'code'). A '.' inside a slice name would be
    taken for a separator; such names do not occur in the profiles we compile."""
    parent, dot, last = eid.rpartition(".")
    return (parent, last) if dot else ("", eid)


class Compiler:
    def __init__(self, store: DefinitionStore, policy: Policy | None = None,
                 expander: ValueSetExpander | None = None, memo: Any = None):
        self.store = store
        self.memo = memo  # the validator's content memo (fastpath.Memo), for rules that remember verdicts
        self.policy = policy or Policy()
        self.expander = expander or ValueSetExpander(store)
        self._roots: dict[str, Node] = {}
        self._nodes_by_sd: dict[str, dict[str, Node]] = {}
        self._resource_types: dict[str, bool] = {}
        self._rule_set: RuleSet | None = None
        self._root_members: dict[tuple[int, str], Member] = {}
        # (node, type code) of an element with children of its own, or a datatype's code -> holds_resource
        self._holding: dict[Any, bool] = {}

    # -- rules ------------------------------------------------------------------------------
    def rules_for(self, m: Member) -> tuple[Rule, ...]:
        """The rules (rules.Rule) that apply to values of member `m`, decided once."""
        if m.rules is None:
            if self._rule_set is None:
                self._rule_set = RuleSet(RuleEnv(self.store, self.expander, self, self.policy))
            self._rule_set.for_member(m)
        return m.rules  # type: ignore[return-value]


    def memo_markers(self) -> tuple[bytes, ...]:
        """The starts of JSON strings (`"#`) that keep a value out of the clean path's memo (Rule.context_marker)."""
        if self._rule_set is None:
            self._rule_set = RuleSet(RuleEnv(self.store, self.expander, self, self.policy))
        return tuple(b'"' + m.encode() for m in self._rule_set.markers)

    def root_member(self, root: Node, type_code: str) -> Member:
        """The member standing for a whole resource validated against profile root `root`: the
        rules of a resource as such (its invariants, Bundle and questionnaire rules) apply to it."""
        key = (id(root), type_code)
        m = self._root_members.get(key)
        if m is None:
            m = self._root_members[key] = Member(type_code, root, root, TypeRef(type_code), KIND_RESOURCE, False,
                                                 is_root=True)
        return m

    def rule(self, cls: type[R]) -> R:
        """This compiler's instance of rule class `cls` (a rule that builds on another's verdicts)."""
        if self._rule_set is None:
            self._rule_set = RuleSet(RuleEnv(self.store, self.expander, self, self.policy))
        return next(r for r in self._rule_set.rules if type(r) is cls)

    def companion_rule(self, node: Node) -> ObjectRule:
        """The object rule of the `_key` companion (id, extension) of a primitive at element `node`:
        the element's own children where the profile unfolds them (extension slices), and the
        element as the host its extensions' contexts are checked against."""
        return self.object_rule(node, "Element")

    def extension_root(self, url: Any) -> Node | None:
        """The root of the extension definition `url` names, or None when none is loaded."""
        if not isinstance(url, str) or not url:
            return None
        sd = self.store.structure(url)
        return self.root(url) if sd is not None and sd.get("type") == "Extension" else None

    def extension_rule(self, url: Any, node: Node) -> ObjectRule:
        """The object rule an extension value with `url` at element `node` is walked with: its
        definition's, or the plain Extension rule when `url` names no loaded definition (the
        extension rules report that)."""
        root = self.extension_root(url)
        return self.object_rule(root if root is not None else node, "Extension")

    # -- profiles ---------------------------------------------------------------------------
    def root(self, url: str) -> Node | None:
        hit = self._roots.get(url)
        if hit is not None:
            return hit
        sd = self.store.structure(url)
        if sd is None:
            return None
        # `url` and `url|version` name the same definition: one compiled tree, so a resource that
        # claims `url|version` and sits in a slice typed with `url` is walked once, not twice
        same = f"{sd['url']}|{sd.get('version', '')}"
        root = self._roots.get(same)
        if root is None:
            root = self._roots[same] = self._compile_sd(sd)
        self._roots[url] = root
        return root

    def type_root(self, type_code: str) -> Node | None:
        return self.root(type_code if ":" in type_code else "http://hl7.org/fhir/StructureDefinition/" + type_code)

    def _compile_sd(self, sd: dict[str, Any]) -> Node:
        elements = self.store.snapshot(sd)
        if not elements:
            raise CompileError(f"StructureDefinition {sd.get('url')} has no snapshot")
        url = sd["url"]
        by_id: dict[str, Node] = {}
        root: Node | None = None
        pending_refs: list[tuple[Node, str]] = []
        for e in elements:
            node = self._node(url, e)
            eid = node.id
            if root is None:
                root = node
            else:
                parent_id, last = _split_id(eid)
                name, _, slice_name = last.partition(":")
                if slice_name and "/" not in slice_name:
                    base = by_id.get(f"{parent_id}.{name}" if parent_id else name)
                    if base is not None:
                        base.slices.append(node)
                elif not slice_name:
                    parent = by_id.get(parent_id)
                    if parent is not None:
                        parent.children[name] = node
            by_id[eid] = node
            if e.get("contentReference"):
                pending_refs.append((node, e["contentReference"]))
        assert root is not None
        for node, ref in pending_refs:
            target_id = ref.split("#", 1)[-1]
            node.content_ref = by_id.get(target_id) or self._by_path(by_id, target_id)
        self._nodes_by_sd[url] = by_id
        return root

    @staticmethod
    def _by_path(by_id: dict[str, Node], path: str) -> Node | None:
        for n in by_id.values():
            if n.path == path and n.slice_name is None:
                return n
        return None

    def _node(self, sd_url: str, e: dict[str, Any]) -> Node:
        eid = e.get("id") or e["path"]
        path = e["path"]
        last = path.rsplit(".", 1)[-1]
        max_raw = e.get("max", "*")
        base_max = (e.get("base") or {}).get("max", max_raw)
        fixed, has_fixed, pattern, has_pattern = _fixed_pattern(e)
        binding = e.get("binding") or {}
        slicing = None
        if e.get("slicing"):
            s = e["slicing"]
            slicing = Slicing(tuple(Discriminator(d.get("type", "value"), d.get("path", "$this"))
                                    for d in s.get("discriminator", [])),
                              s.get("rules", "open"), bool(s.get("ordered", False)))
        types = tuple(TypeRef(_type_code(t), tuple(t.get("profile", [])), tuple(t.get("targetProfile", [])))
                      for t in e.get("type", []))
        if path.count(".") == 1 and last == "id" and (e.get("base") or {}).get("path") == "Resource.id":
            types = (TypeRef("id"),)  # R4 snapshots type Resource.id as System.String; its rules are those of id
        node = Node(
            sd_url=sd_url, id=eid, path=path, name=last, slice_name=e.get("sliceName"),
            min=int(e.get("min", 0)), max=None if max_raw == "*" else int(max_raw),
            many=base_max not in ("0", "1") and "." in path,
            types=types,
            fixed=fixed, has_fixed=has_fixed, pattern=pattern, has_pattern=has_pattern,
            binding_strength=binding.get("strength"), binding_vs=binding.get("valueSet"),
            slicing=slicing, element=e,
        )
        for c in e.get("constraint", []):
            if c.get("key") == "ele-1":  # checked natively: no empty objects/arrays, no nulls
                continue
            best_practice = any(x.get("url") == _BEST_PRACTICE and x.get("valueBoolean") is True
                                for x in c.get("extension") or [] if isinstance(x, dict))
            node.constraints.append(invariants.compile_constraint(
                Constraint(c.get("key", "?"), c.get("severity", "error"), c.get("human", ""),
                           c.get("expression", ""), best_practice=best_practice)))
        return node

    # -- object rules -----------------------------------------------------------------------
    def object_rule(self, node: Node, type_code: str) -> ObjectRule:
        rule = node.object_rules.get(type_code)
        if rule is not None:
            return rule
        source = node.content_ref or node
        children = source.children
        if not children:
            troot = self.type_root(type_code)
            children = troot.children if troot is not None else {}
        rule = self._build_rule(node, type_code, children)
        node.object_rules[type_code] = rule
        return rule

    def _prepare(self, m: Member) -> None:
        if m.kind == KIND_COMPLEX and self._is_resource_type(m.type.code):
            m.kind = KIND_RESOURCE  # e.g. Bundle.entry.resource restricted to Composition
        m.check = PRIMITIVE_CHECKS.get(m.type.code) if m.kind == KIND_PRIMITIVE else None
        m.sliced = m.count_node.slicing is not None and bool(m.count_node.slices)

    def _is_resource_type(self, code: str) -> bool:
        hit = self._resource_types.get(code)
        if hit is None:
            sd = self.store.structure_for_type(code) if code[:1].isupper() else None
            hit = self._resource_types[code] = bool(sd and sd.get("kind") == "resource" and sd.get("derivation") != "constraint")
        return hit

    def member(self, key: str, count_node: Node, node: Node, t: TypeRef, host: ObjectRule) -> Member:
        m = Member(key, count_node, node, t, t.kind, False, host=host)
        self._prepare(m)
        return m

    def constraints_for(self, m: Member) -> list[Constraint]:
        """Invariants of the element plus those of its datatype (qty-3, ref-1, per-1 …), once per member."""
        if m.constraints is None:
            own = list(m.node.constraints)
            if not m.is_root and m.kind not in (KIND_PRIMITIVE,) and m.type.code not in ("Resource", "DomainResource"):
                troot = self.type_root(m.type.code)
                keys = {c.key for c in own}
                own += [c for c in (troot.constraints if troot is not None else []) if c.key not in keys]
            m.constraints = own
        return m.constraints

    def context_free(self, m: Member) -> bool:
        """True when validating a value of this member depends on nothing but the value, apart from
        references: no nested Resource, no invariant reading %resource/%rootResource/resolve().
        References (the one kind of data whose check depends on the enclosing Bundle) are excluded
        at run time instead: the walker never memoises a value whose JSON contains "reference".
        Such results can be memoised by content (the walker does so for clean values)."""
        if m.context_free is None:
            m.context_free = self._context_free(m, set())
        return m.context_free

    def _context_free(self, m: Member, seen: set[int]) -> bool:
        if m.kind == KIND_RESOURCE:
            return False
        if any(c.uses_context for c in self.constraints_for(m)):
            return False
        if not all(r.context_free for r in self.rules_for(m)):
            return False  # a rule that looks beyond the value (e.g. a '#id' naming a contained resource)
        if m.kind == KIND_PRIMITIVE:
            return True
        if m.kind == KIND_EXTENSION:
            return True  # the definition is chosen by the url inside the value; references are excluded at run time
        key = id(m.node)
        if key in seen:
            return True  # a cycle (item.item) adds nothing new: decided by the other members
        seen.add(key)
        rule = self.object_rule(m.node, m.type.code)
        return all(self._context_free(sub, seen) for sub in rule.members.values())

    def holds_resource(self, m: Member) -> bool:
        """Can a value of member `m` contain a resource (one validated for real, whose issues carry
        its path)? An element with children of its own (a backbone element, a constrained datatype)
        is decided from its object rule's members; a datatype as defined (the children it takes from
        its type, an extension's value of a type Extension.value[x] admits) from the element types in
        its StructureDefinition, once per type. Where it cannot, the clean path passes no path of its
        own to the value's check (fastpath.compile_rule): while probing, a problem raises Dirty and
        the walk reports with real paths."""
        seen: set[Any] = set()
        hit = self._reaches_resource(m, seen)
        if not hit:  # everything met was explored in full, and none of it can hold one either
            for key in seen:
                self._holding[key] = False
        return hit

    def _reaches_resource(self, m: Member, seen: set[Any]) -> bool:
        if m.kind == KIND_RESOURCE:
            return True
        if m.kind == KIND_PRIMITIVE:
            return False
        code = "Extension" if m.kind == KIND_EXTENSION else m.type.code
        if m.kind == KIND_EXTENSION or not (m.node.content_ref or m.node).children:
            return self._type_reaches_resource(code, seen)
        key: Any = (id(m.node), code)
        hit = self._holding.get(key)
        if hit is not None:
            return hit
        if key in seen:
            return False  # a cycle (item.item): the other members decide
        seen.add(key)
        for sub in self.object_rule(m.node, code).members.values():
            if not sub.primitive_ext and self._reaches_resource(sub, seen):
                self._holding[key] = True  # certain: a resource is reached from here
                return True
        return False  # for now: a cycle back to an element still being explored may yet reach one

    def _type_reaches_resource(self, code: str, seen: set[Any]) -> bool:
        hit = self._holding.get(code)
        if hit is not None:
            return hit
        if code in seen:
            return False  # a cycle (Identifier.assigner.identifier): the other element types decide
        seen.add(code)
        sd = self.store.structure_for_type(code)
        for e in self.store.snapshot(sd) if sd is not None else []:
            for t in e.get("type") or []:
                tcode = _type_code(t)
                kind = TypeRef(tcode).kind
                if kind == KIND_PRIMITIVE or tcode == code:
                    continue
                if kind == KIND_RESOURCE or self._is_resource_type(tcode) or self._type_reaches_resource(tcode, seen):
                    self._holding[code] = True
                    return True
        return False  # for now, as above

    def _build_rule(self, node: Node, type_code: str, children: dict[str, Node]) -> ObjectRule:
        members: dict[str, Member] = {}
        counted: list[Node] = []
        for name, child in children.items():
            if type_code == "Element" and name == "value":
                continue  # a primitive's unfolded value: in JSON the primitive itself, not a companion key
            target = child.content_ref or child
            if child.is_choice:
                base = name[:-3]
                type_slices = {s.slice_name: s for s in child.slices if s.slice_name}
                for t in child.types:
                    key = base + t.code[0].upper() + t.code[1:]
                    tnode = type_slices.get(key, child)
                    members[key] = Member(key, child, tnode, t, t.kind, False)
                    if t.kind == KIND_PRIMITIVE:
                        members["_" + key] = Member("_" + key, child, tnode, t, t.kind, False, primitive_ext=True)
            else:
                # a contentReference takes the referenced element's type; several types without [x]
                # (e.g. Reference/canonical): the first wins
                types = target.types if child.content_ref is not None else child.types
                t = types[0] if types else TypeRef("BackboneElement")
                members[name] = Member(name, child, child, t, t.kind, child.many)
                if t.kind == KIND_PRIMITIVE and _extensible(child):
                    members["_" + name] = Member("_" + name, child, child, t, t.kind, child.many, primitive_ext=True)
            # a single-valued element (base max 1, not a choice) cannot occur twice in JSON: the
            # array-shape check already bounds it, so only these need counting
            if child.min > 0 or child.slices or (child.max is not None and (child.many or child.is_choice or child.max == 0)):
                counted.append(child)
        counted_ids = {id(n) for n in counted}
        for m in members.values():
            self._prepare(m)
            m.counted = id(m.count_node) in counted_ids
        is_resource = "." not in node.path and node.path[:1].isupper() and type_code == node.path
        rule = ObjectRule(node, type_code, members, counted, is_resource)
        for m in members.values():
            m.host = rule
        return rule
