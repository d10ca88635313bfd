"""Load a mapping set (layer L1): `mappings/resources/*.yaml`, `mappings/codes/*.yaml`,
`mappings/bundle.yaml`. Every problem is collected with file:line:column; nothing is compiled here
(engine/ does that), but every file's top-level shape is checked and unknown keys are rejected with a
suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.issues import Issue, IssueCode, SourceLocation, error
from exporter.mapping.tables import CodeTable, load_table, suggest
from exporter.mapping.templates import TemplateSources, load_templates
from exporter.mapping.yamlsrc import MappingSourceError, Positions, load_yaml, position

MAPPING_KEYS = {"mapping", "description", "profile", "section", "for_each", "when", "source_id", "origin", "resource"}
BUNDLE_KEYS = {"mapping_set", "id_namespace", "default_timezone", "bundle", "composition", "provenance", "ignore",
               "questionnaires"}
PART_KEYS = {"profile", "resource", "sections", "origins"}
SECTION_KEYS = {"key", "code", "title", "sections", "empty_reason"}
IGNORE_KEYS = {"for_each", "when", "reason"}


@dataclass
class MappingFile:
    id: str
    file: str
    positions: Positions
    profile: str
    resource: dict[str, Any]
    section: str | None = None
    for_each: str | None = None
    when: str | None = None
    source_id: Any = None
    origin: Any = None  # where its records' values come from: a key of bundle.yaml provenance.origins (or a value giving one)


@dataclass
class MappingSet:
    root: Path
    mappings: list[MappingFile] = field(default_factory=list)
    tables: dict[str, CodeTable] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)
    layout_file: str = ""
    layout_positions: Positions = field(default_factory=dict)
    templates: TemplateSources | None = None
    issues: list[Issue] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # mapping files left out (not loadable, or a duplicate id)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def root_problem(root: Path) -> Issue | None:
    """MAP_ROOT when `root` is not a folder (nothing below it can be loaded), else None."""
    if root.is_dir():
        return None
    what = "is not a folder" if root.exists() else "does not exist"
    return error(IssueCode.NOT_FOUND, f"mapping folder {root} {what}", "MAP_ROOT")


def load_mapping_set(root: Path) -> MappingSet:
    """Load everything below `root` (the mappings/ folder); problems go to `.issues`."""
    ms = MappingSet(root)
    missing = root_problem(root)
    if missing is not None:
        ms.issues.append(missing)
        return ms
    for path in sorted((root / "codes").glob("*.yaml")):
        table, issues = load_table(path, _rel(path, root))
        ms.issues.extend(issues)
        if table is not None:
            if table.id in ms.tables:
                ms.issues.append(error(IssueCode.INVALID, f"duplicate table id '{table.id}'", "MAP_DUPLICATE_ID",
                                       location=SourceLocation(table.file)))
            ms.tables[table.id] = table
    seen: dict[str, str] = {}
    for path in sorted((root / "resources").glob("*.yaml")):
        m = _load_mapping(path, _rel(path, root), ms.issues)
        if m is None:
            ms.unreadable.append(_rel(path, root))
            continue
        if m.id in seen:
            ms.issues.append(error(IssueCode.INVALID, f"mapping id '{m.id}' is already used by {seen[m.id]}",
                                   "MAP_DUPLICATE_ID", location=position(m.positions, ("mapping",))))
            ms.unreadable.append(m.file)
            continue
        seen[m.id] = m.file
        ms.mappings.append(m)
    ms.templates = load_templates(root / "templates", _rel(root / "templates", root))
    ms.issues.extend(ms.templates.issues)
    layout_path = root / "bundle.yaml"
    ms.layout_file = _rel(layout_path, root)
    try:
        layout, pos = load_yaml(layout_path, ms.layout_file)
    except MappingSourceError as exc:
        ms.issues.extend(exc.issues)
        return ms
    ms.layout_positions = pos
    if not isinstance(layout, dict):
        ms.issues.append(error(IssueCode.STRUCTURE, "bundle.yaml must be a YAML mapping", "MAP_SHAPE",
                               location=position(pos, ())))
        return ms
    _unknown(layout, BUNDLE_KEYS, (), pos, "bundle.yaml", ms.issues)
    for part in ("bundle", "composition", "provenance"):
        value = layout.get(part)
        if not isinstance(value, dict) or "profile" not in value:
            ms.issues.append(error(IssueCode.REQUIRED, f"bundle.yaml needs '{part}' with a 'profile'", "MAP_SHAPE",
                                   location=position(pos, (part,))))
            continue
        _unknown(value, PART_KEYS, (part,), pos, part, ms.issues)
    _check_sections(layout.get("composition", {}).get("sections") if isinstance(layout.get("composition"), dict) else None,
                    ("composition", "sections"), pos, ms.issues)
    _check_ignore(layout.get("ignore"), pos, ms.issues)
    origins = layout.get("provenance", {}).get("origins") if isinstance(layout.get("provenance"), dict) else None
    if origins is not None and (not isinstance(origins, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                                         for k, v in origins.items())):
        ms.issues.append(error(IssueCode.STRUCTURE, "'origins' maps each origin key to what its Provenance adds "
                               "(a mapping of FHIR elements)", "MAP_SHAPE",
                               location=position(pos, ("provenance", "origins"))))
    ms.layout = layout
    return ms


def _check_sections(sections: Any, at: tuple[Any, ...], pos: Positions, issues: list[Issue]) -> None:
    if sections is None:
        return
    if not isinstance(sections, list):
        issues.append(error(IssueCode.STRUCTURE, "'sections' must be a list", "MAP_SHAPE", location=position(pos, at)))
        return
    for i, s in enumerate(sections):
        if not isinstance(s, dict) or not isinstance(s.get("key"), str):
            issues.append(error(IssueCode.REQUIRED, "each section needs a 'key'", "MAP_SHAPE",
                                location=position(pos, at + (i,))))
            continue
        _unknown(s, SECTION_KEYS, at + (i,), pos, f"section '{s['key']}'", issues)
        _check_sections(s.get("sections"), at + (i, "sections"), pos, issues)


def _check_ignore(rules: Any, pos: Positions, issues: list[Issue]) -> None:
    """`ignore:` — records a DiGA deliberately does not export: `for_each` (a list), optional `when`,
    and the `reason` (required: the decision is documented where it is made)."""
    if rules is None:
        return
    if not isinstance(rules, list):
        issues.append(error(IssueCode.STRUCTURE, "'ignore' must be a list of rules", "MAP_SHAPE",
                            location=position(pos, ("ignore",))))
        return
    for i, rule in enumerate(rules):
        at = ("ignore", i)
        if not isinstance(rule, dict):
            issues.append(error(IssueCode.STRUCTURE, "an ignore rule is a mapping with 'for_each', 'when' and 'reason'",
                                "MAP_SHAPE", location=position(pos, at)))
            continue
        _unknown(rule, IGNORE_KEYS, at, pos, "ignore rule", issues)
        for key in ("for_each", "reason"):
            if not isinstance(rule.get(key), str) or not rule[key].strip():
                issues.append(error(IssueCode.REQUIRED, f"an ignore rule needs '{key}' (a non-empty string)",
                                    "MAP_SHAPE", location=position(pos, at + ((key,) if key in rule else ()))))
        if "when" in rule and not isinstance(rule["when"], str):
            issues.append(error(IssueCode.STRUCTURE, "'when' must be a FHIRPath string", "MAP_SHAPE",
                                location=position(pos, at + ("when",))))


def _unknown(data: dict[str, Any], allowed: set[str], at: tuple[Any, ...], pos: Positions, what: str,
             issues: list[Issue]) -> None:
    for k in data:
        if k not in allowed:
            issues.append(error(IssueCode.STRUCTURE, f"unknown key '{k}' in {what}{suggest(k, allowed)}",
                                "MAP_UNKNOWN_KEY", location=position(pos, at + (k,))))


def _load_mapping(path: Path, display: str, issues: list[Issue]) -> MappingFile | None:
    try:
        data, pos = load_yaml(path, display)
    except MappingSourceError as exc:
        issues.extend(exc.issues)
        return None
    if not isinstance(data, dict):
        issues.append(error(IssueCode.STRUCTURE, "a mapping file must be a YAML mapping", "MAP_SHAPE",
                            location=position(pos, ())))
        return None
    _unknown(data, MAPPING_KEYS, (), pos, "mapping", issues)
    ok = True
    for key in ("mapping", "profile", "resource"):
        if key not in data:
            issues.append(error(IssueCode.REQUIRED, f"mapping needs '{key}'", "MAP_SHAPE", location=position(pos, ())))
            ok = False
    for key in ("mapping", "profile", "section", "for_each", "when"):
        if key in data and not isinstance(data[key], str):
            issues.append(error(IssueCode.STRUCTURE, f"'{key}' must be a string", "MAP_SHAPE",
                                location=position(pos, (key,))))
            ok = False
    if "resource" in data and not isinstance(data["resource"], dict):
        issues.append(error(IssueCode.STRUCTURE, "'resource' must be a mapping of FHIR elements", "MAP_SHAPE",
                            location=position(pos, ("resource",))))
        ok = False
    if not ok:
        return None
    return MappingFile(id=data["mapping"], file=display, positions=pos, profile=data["profile"],
                       resource=data["resource"], section=data.get("section"), for_each=data.get("for_each"),
                       when=data.get("when"), source_id=data.get("source_id"), origin=data.get("origin"))
