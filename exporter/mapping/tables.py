"""Code tables (layer L1): `mappings/codes/<id>.yaml` — internal value → one or more Codings.

A lookup of a value that is not in the table is an error naming the table and the value, never a
passthrough. Tables are also published as FHIR ConceptMaps (`to_concept_map`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.issues import Issue, IssueCode, error
from exporter.mapping.yamlsrc import MappingSourceError, Positions, load_yaml, position

TABLE_KEYS = {"id", "title", "description", "key", "target", "entries"}
ENTRY_KEYS = {"codings", "equivalence", "comment", "attributes"}
CODING_KEYS = {"system", "code", "display", "version"}


@dataclass
class CodeTable:
    id: str
    file: str
    title: str
    entries: dict[str, list[dict[str, Any]]]
    description: str = ""
    targets: list[dict[str, Any]] = field(default_factory=list)
    equivalence: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    positions: Positions = field(default_factory=dict)  # file:line:column of every node of the file

    def lookup(self, key: Any) -> list[dict[str, Any]] | None:
        return self.entries.get(str(key)) if key is not None else None


def suggest(word: object, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def load_table(path: Path, display: str) -> tuple[CodeTable | None, list[Issue]]:
    issues: list[Issue] = []
    try:
        data, pos = load_yaml(path, display)
    except MappingSourceError as exc:
        return None, exc.issues
    if not isinstance(data, dict):
        return None, [error(IssueCode.STRUCTURE, "a code table must be a YAML mapping", "MAP_TABLE_SHAPE",
                            location=position(pos, ()))]
    for key in data:
        if key not in TABLE_KEYS:
            issues.append(error(IssueCode.STRUCTURE, f"unknown key '{key}' in code table{suggest(key, TABLE_KEYS)}",
                                "MAP_UNKNOWN_KEY", location=position(pos, (key,))))
    tid = data.get("id")
    if not isinstance(tid, str) or not tid:
        issues.append(error(IssueCode.REQUIRED, "code table needs an 'id'", "MAP_TABLE_SHAPE", location=position(pos, ())))
        return None, issues
    if tid != path.stem:
        issues.append(error(IssueCode.VALUE, f"table id '{tid}' must equal the file name '{path.stem}'",
                            "MAP_TABLE_SHAPE", location=position(pos, ("id",))))
    entries: dict[str, list[dict[str, Any]]] = {}
    equivalence: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    comments: dict[str, str] = {}
    raw = data.get("entries")
    if not isinstance(raw, dict) or not raw:
        issues.append(error(IssueCode.REQUIRED, "code table needs non-empty 'entries'", "MAP_TABLE_SHAPE",
                            location=position(pos, ("entries",))))
        raw = {}
    for key, entry in raw.items():
        where = ("entries", key)
        if not isinstance(entry, dict):
            issues.append(error(IssueCode.STRUCTURE, f"entry '{key}' must be a mapping with 'codings'",
                                "MAP_TABLE_SHAPE", location=position(pos, where)))
            continue
        for k in entry:
            if k not in ENTRY_KEYS:
                issues.append(error(IssueCode.STRUCTURE, f"unknown key '{k}' in entry '{key}'{suggest(k, ENTRY_KEYS)}",
                                    "MAP_UNKNOWN_KEY", location=position(pos, where + (k,))))
        codings = entry.get("codings")
        if not isinstance(codings, list) or not codings:
            issues.append(error(IssueCode.REQUIRED, f"entry '{key}' needs at least one coding", "MAP_TABLE_SHAPE",
                                location=position(pos, where)))
            continue
        good = []
        for i, c in enumerate(codings):
            if not isinstance(c, dict) or not isinstance(c.get("system"), str) or not isinstance(c.get("code"), (str, int)):
                issues.append(error(IssueCode.REQUIRED, f"coding {i} of entry '{key}' needs a system and a code",
                                    "MAP_TABLE_SHAPE", location=position(pos, where + ("codings", i))))
                continue
            for k in c:
                if k not in CODING_KEYS:
                    issues.append(error(IssueCode.STRUCTURE, f"unknown key '{k}' in a coding{suggest(k, CODING_KEYS)}",
                                        "MAP_UNKNOWN_KEY", location=position(pos, where + ("codings", i, k))))
            good.append({k: (str(v) if k in ("code", "version") else v) for k, v in c.items() if k in CODING_KEYS})
        if not good:
            continue  # every coding was reported above: an entry with none would be a code without codings
        entries[str(key)] = good
        if isinstance(entry.get("equivalence"), str):
            equivalence[str(key)] = entry["equivalence"]
        if isinstance(entry.get("comment"), str):
            comments[str(key)] = entry["comment"]
        if isinstance(entry.get("attributes"), dict):
            attributes[str(key)] = {str(k): str(v) for k, v in entry["attributes"].items()}
    table = CodeTable(tid, display, str(data.get("title", tid)), entries, str(data.get("description", "")),
                      target if isinstance(target := data.get("target"), list) else [], equivalence, attributes, comments,
                      pos)
    return table, issues


def to_concept_map(table: CodeTable, canonical_base: str, version: str) -> dict[str, Any]:
    """The table as an R4 ConceptMap: source = the DiGA's internal values, target = the codings."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, codings in sorted(table.entries.items()):
        for c in codings:
            groups.setdefault(c["system"], []).append({
                "code": key,
                "target": [{k: v for k, v in (("code", c["code"]), ("display", c.get("display")),
                                              ("equivalence", table.equivalence.get(key, "equivalent")),
                                              ("comment", table.comments.get(key))) if v}],
            })
    return {
        "resourceType": "ConceptMap",
        "id": table.id,
        "url": f"{canonical_base}/ConceptMap/{table.id}",
        "version": version,
        "name": "".join(p.capitalize() for p in table.id.replace("_", "-").split("-")),
        "title": table.title,
        "status": "active",
        "description": table.description or table.title,
        "group": [{"source": f"urn:diga-exporter:internal:{table.id}", "target": system, "element": elements}
                  for system, elements in groups.items()],
    }
