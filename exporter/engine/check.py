"""`fhir-export check`: does every code a mapping can emit fit the element it lands in? (layer L2)

For each code-table lookup in a mapping, the YAML path is turned into the FHIR element path
(`resource.component[0].code` → `Observation.component.code`) and looked up in the compiled profile.
Every coding the lookup can produce (the literal key's entry, or the entries the table's `target`
list declares for that profile element, else every entry) must satisfy the element's fixed/pattern
value and its required binding (checked against the local expansion; a ValueSet we cannot expand
offline is reported as a warning). Slices are not followed: the element's base definition is used.
"""

from __future__ import annotations

from typing import Any

from exporter.engine.builder import Engine
from exporter.engine.values import CompileContext
from exporter.issues import Issue, IssueCode, Severity, error
from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation.compiler import Compiler
from exporter.validation.fixed_pattern import equals_fixed, matches_pattern
from exporter.validation.model import Node

_FIELD_TYPE = {"codeable": "CodeableConcept", "codings": "Coding", "coding": "Coding", "code": "code"}


def fhir_steps(at: tuple[Any, ...], cc: CompileContext) -> list[str]:
    steps: list[str] = []
    for i, part in enumerate(at):
        if i == 0 and part == "resource":
            continue
        if isinstance(part, int):
            continue
        if part == "item" and at[: i + 1] in cc.each_items:
            continue
        steps.append(str(part))
    return steps


def element_at(compiler: Compiler, root: Node, steps: list[str]) -> tuple[Node | None, str | None, str]:
    """(element definition, its type, its path in the profile) for FHIR element steps below root.
    Below an element whose children the snapshot does not unfold, the datatype's definitions are used."""
    node: Node | None = root
    type_code: str | None = root.path
    path = root.path
    for step in steps:
        if node is None:
            return None, None, path
        own = bool((node.content_ref or node).children)
        source = node.content_ref or node
        troot = compiler.type_root(type_code) if type_code else None
        children = source.children or (troot.children if troot is not None else {})
        child = children.get(step)
        if child is not None:
            node = child
            type_code = child.types[0].code if len(child.types) == 1 else None
            path = child.path if own else f"{path}.{step}"
            continue
        match = None
        for name, c in children.items():
            if name.endswith("[x]") and step.startswith(name[:-3]):
                suffix = step[len(name) - 3:]
                t = next((t for t in c.types if t.code[0].upper() + t.code[1:] == suffix), None)
                if t is not None:
                    match = next((s for s in c.slices if s.slice_name == step), c), t.code
                    break
        if match is None:
            return None, None, path
        node, type_code = match
        path = node.path if own else f"{path}.{step}"
    return node, type_code, path


def check_bindings(engine: Engine, compiler: Compiler, expander: ValueSetExpander) -> list[Issue]:
    issues: list[Issue] = []
    for _mapping, profile_url, cc in engine.table_uses:
        root = compiler.root(profile_url)
        if root is None:
            continue
        for table, fld, at, literal_key in cc.table_uses:
            if fld not in _FIELD_TYPE:
                continue
            steps = fhir_steps(at, cc)
            node, _, element_path = element_at(compiler, root, steps)
            loc = cc.loc(at + ("table",))
            if node is None:
                issues.append(error(IssueCode.STRUCTURE, f"{'.'.join(steps)} is not an element of {profile_url}",
                                    "MAP_ELEMENT_UNKNOWN", location=loc))
                continue
            keys = [str(literal_key)] if literal_key is not None else _declared_keys(table, profile_url, element_path)
            if keys is None:
                issues.append(Issue(Severity.WARNING, IssueCode.INFORMATIONAL,
                                    f"code table '{table.id}' does not declare {profile_url} {element_path} among its "
                                    "targets; all its entries are checked", "MAP_TABLE_TARGET", location=loc))
                keys = sorted(table.entries)
            for key in keys:
                codings = table.entries.get(key)
                if codings is None:
                    issues.append(error(IssueCode.CODE_INVALID, f"value '{key}' is not in code table '{table.id}'",
                                        "MAP_CODE_UNMAPPED", location=loc))
                    continue
                value = _as_value(codings, fld)
                problem = _violates(value, fld, node, expander)
                if problem is not None:
                    sev, text = problem
                    issues.append(Issue(sev, IssueCode.CODE_INVALID,
                                        f"table '{table.id}' entry '{key}' → {text} at {element_path}",
                                        "MAP_CODE_NOT_ALLOWED" if sev is Severity.ERROR else "MAP_CODE_UNCHECKED",
                                        location=loc))
    return issues


def _declared_keys(table: Any, profile_url: str, element_path: str) -> list[str] | None:
    """Keys the table declares for this profile element (its `target` list), all keys when the
    matching target names none, None when the table declares targets but not this one."""
    if not table.targets:
        return sorted(table.entries)
    keys: set[str] = set()
    matched = False
    for t in table.targets:
        if not isinstance(t, dict) or str(t.get("profile", "")).split("|")[0] != profile_url:
            continue
        element = ".".join(part.split(":")[0] for part in str(t.get("element", "")).split("."))
        if element != element_path:
            continue
        matched = True
        if t.get("keys"):
            keys |= {str(k) for k in t["keys"]}
        else:
            return sorted(table.entries)
    return sorted(keys) if matched else None


def _as_value(codings: list[dict[str, Any]], fld: str) -> Any:
    if fld == "codeable":
        return {"coding": codings}
    if fld == "code":
        return codings[0]["code"]
    return codings[0]


def _violates(value: Any, fld: str, node: Node, expander: ValueSetExpander) -> tuple[Severity, str] | None:
    if node.has_fixed and not equals_fixed(value, node.fixed) and not (fld == "codings" and matches_pattern(value, node.fixed)):
        return Severity.ERROR, f"{value!r} differs from the fixed value"
    if node.has_pattern and not matches_pattern(value, node.pattern):
        return Severity.ERROR, "does not match the element's pattern"
    if node.binding_strength == "required" and node.binding_vs:
        exp = expander.expand(node.binding_vs)
        pairs = ([(None, value)] if isinstance(value, str) else
                 [(c.get("system"), c.get("code")) for c in (value.get("coding") if "coding" in value else [value])])
        verdicts = [exp.contains(s, c) for s, c in pairs]
        if any(v is True for v in verdicts):
            return None
        shown = ", ".join(f"{s}#{c}" if s else str(c) for s, c in pairs)
        if any(v is None for v in verdicts):
            return Severity.WARNING, f"{shown} cannot be checked offline against {node.binding_vs}"
        return Severity.ERROR, f"{shown} is not in the required ValueSet {node.binding_vs}"
    return None
