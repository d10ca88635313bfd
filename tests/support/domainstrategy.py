"""Hypothesis strategies for domain documents, derived from schemas/domain-patient.schema.json.

`schema_documents()` draws documents the schema accepts — any of them: every enum value, optional
property, string shape, number range and list length the schema allows. It walks the schema itself:
`$ref`s are followed; a `$defs` entry with `if` rules on a discriminator (kind, then unit; instrument)
is first decided for a drawn value by the same partial evaluation the fast checker uses
(exporter.domainschema `_split`), `allOf` entries and one drawn `anyOf` branch are merged into the
object's own properties; strings come from their pattern (read as the fast checker reads `$`), then
must pass their format function (exporter.domainschema.FORMATS), so the draws are exactly
schema-valid. jsonschema is not consulted: the tests compare its verdict with the fast checker's.

Random documents break the cross-field rules almost always (a random PZN has a wrong check digit
with probability 10/11), so `documents()` repairs some of them: with a drawn choice, each rule's
fault is mended (check digits, sums, pressure order, times into the period, unique ids), keeping the
document schema-valid. Both kinds of document must export or fail with issues — never raise.
"""

from __future__ import annotations

import json
import math
import random
from functools import cache
from typing import Any

from hypothesis import strategies as st

from exporter.domainschema import FORMATS, _flatten, _pattern, _Split, _split
from exporter.settings import get_settings
from exporter.terminology.checkdigits import kvid10_check_digit, pzn_check_digit


@cache
def schema() -> dict[str, Any]:
    return json.loads((get_settings().root / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        extra = {k: v for k, v in node.items() if k not in ("$ref", "description")}
        target = schema()["$defs"][node["$ref"].split("/")[-1]]
        node = _merge(target, extra) if extra else target
    return node


def _merge(a: Any, b: Any) -> Any:
    """A schema for instances valid under both a and b (for the keywords this schema uses)."""
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    a, b = _resolve(a), _resolve(b)
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key in ("minimum", "exclusiveMinimum", "minItems", "minLength"):
            out[key] = max(out[key], value)
        elif key in ("maximum", "exclusiveMaximum", "maxItems", "maxLength"):
            out[key] = min(out[key], value)
        elif key == "enum":
            out[key] = [v for v in out[key] if v in value]
        elif key == "const":
            if out[key] != value:
                return False
        elif key == "required":
            out[key] = list(dict.fromkeys(out[key] + value))
        elif key == "properties":
            props = dict(out[key])
            for name, sub in value.items():
                props[name] = _merge(props[name], sub) if name in props else sub
            out[key] = props
        elif key == "allOf":
            out[key] = out[key] + value
        elif key in ("description", "title", "type", "format", "pattern", "items", "additionalProperties",
                     "uniqueItems"):
            if out[key] != value and key not in ("description", "title"):
                out["allOf"] = out.get("allOf", []) + [{key: value}]
        else:
            raise NotImplementedError(f"merge of {key}")
    if "const" in out and "enum" in out:
        out["enum"] = [v for v in out["enum"] if v == out["const"]]
    if out.get("enum") == []:
        return False
    return out


@st.composite
def _instance(draw: Any, node: Any) -> Any:
    node = _resolve(node)
    if node is True:
        return draw(st.none())
    if isinstance(node.get("allOf"), list) or "anyOf" in node or "if" in node:
        node = draw(_decided(node))
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    kind = node.get("type")
    if kind == "object":
        return draw(_object(node))
    if kind == "array":
        items = node.get("items", True)
        lo = node.get("minItems", 0)
        hi = node.get("maxItems", lo + 4)
        return draw(st.lists(_instance(items), min_size=lo, max_size=hi,
                             unique_by=(lambda x: json.dumps(x, sort_keys=True)) if node.get("uniqueItems") else None))
    if kind == "string":
        return draw(_string(node))
    if kind in ("integer", "number"):
        return draw(_number(node))
    raise NotImplementedError(f"no strategy for {node}")


@st.composite
def _decided(draw: Any, node: dict[str, Any]) -> Any:
    """`node` with its conditions settled: a split on discriminators, allOf merged, one anyOf branch."""
    if node.get("type") == "object" and ("allOf" in node or "anyOf" in node):
        tree, pinned = _split(node, {}, [64]), {}
        while isinstance(tree, _Split):  # the branch of a drawn discriminator value (kind, then unit)
            live = {v: b for v, b in tree.branches.items() if b is not False}
            value = draw(st.sampled_from(sorted(live)))
            pinned[tree.prop] = {"const": value}
            tree = live[value]
        node = _merge(_flatten(tree), {"properties": pinned}) if pinned else _flatten(tree)
    out = {k: v for k, v in node.items() if k not in ("allOf", "anyOf")}
    for entry in node.get("allOf", []):
        out = _merge(out, _decided_entry(entry))
    if "anyOf" in node:
        branches = [b for b in (_merge(out, _resolve(b)) for b in node["anyOf"]) if b is not False]
        out = draw(st.sampled_from(branches))
    if "not" in out:  # not: {required: [a]} / not: {anyOf: [{required: [a]}, ...]} on an object: a is absent
        negated = out.pop("not")
        names = [n for b in negated.get("anyOf", [negated]) for n in b["required"]]
        out = _merge(out, {"properties": {n: False for n in names}})
    return out


def _decided_entry(entry: Any) -> Any:
    entry = _resolve(entry)
    if isinstance(entry, dict) and "not" in entry and entry.keys() <= {"not", "description"}:
        negated = entry["not"]
        names = [n for b in negated.get("anyOf", [negated]) for n in b["required"]]
        return {"properties": {n: False for n in names}}
    if isinstance(entry, dict) and ("if" in entry):
        raise NotImplementedError("an undecided if")
    return entry


@st.composite
def _object(draw: Any, node: dict[str, Any]) -> dict[str, Any]:
    required = node.get("required", [])
    out = {}
    for name, sub in node.get("properties", {}).items():
        if sub is False:
            continue
        if name in required or draw(st.booleans()):
            out[name] = draw(_instance(sub))
    return out


def _texts(lo: int, hi: int) -> st.SearchStrategy[str]:
    """Any Unicode text FHIR allows: no surrogates, no control characters but tab, LF, CR."""
    alphabet = st.one_of(st.characters(exclude_categories=("Cs", "Cc")), st.sampled_from("\t\n\r "))
    return st.text(alphabet, min_size=lo, max_size=min(hi, 60))


_DATES = st.dates().map(lambda d: d.isoformat())
_OFFSETS = st.one_of(st.just("Z"), st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"),
                                             st.integers(0, 14), st.sampled_from([0, 30, 45, 59])))
_FRACTIONS = st.one_of(st.just(""), st.integers(1, 9).flatmap(lambda n: st.from_regex(rf"\.[0-9]{{{n}}}", fullmatch=True)))
_FORMAT_STRATEGIES = {
    "uuid": st.uuids().map(str),
    "date": _DATES,
    "date-time": st.builds(lambda d, h, m, sec, f, o: f"{d}T{h:02d}:{m:02d}:{sec:02d}{f}{o}", _DATES,
                           st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), _FRACTIONS, _OFFSETS),
}
_STRINGS: dict[str, st.SearchStrategy[str]] = {}


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    """Strings of `node`: from its pattern (or any FHIR text), kept if length, pattern and format agree."""
    key = json.dumps(node, sort_keys=True)
    if key not in _STRINGS:
        lo, hi = node.get("minLength", 0), node.get("maxLength", 10_000)
        checks = [_pattern(p).search for p in [node.get("pattern")] + [e.get("pattern") for e in node.get("allOf", [])]
                  if p]
        fmt = FORMATS.get(node.get("format", ""), lambda v: True)
        pattern = node.get("pattern")
        if node.get("format") in _FORMAT_STRATEGIES:  # far faster than from_regex; the filter still decides
            base = _FORMAT_STRATEGIES[node["format"]]
        elif pattern and pattern.startswith("^"):
            base = st.from_regex(_pattern(pattern))
        else:
            base = _texts(max(lo, 1), hi)
        _STRINGS[key] = base.filter(lambda s: lo <= len(s) <= hi and fmt(s) and all(c(s) for c in checks))
    return _STRINGS[key]


@st.composite
def _number(draw: Any, node: dict[str, Any]) -> Any:
    lo, hi = node.get("minimum"), node.get("maximum")
    xlo = node.get("exclusiveMinimum")
    if node["type"] == "integer":
        return draw(st.integers(lo if lo is not None else -10, hi if hi is not None else 10_000))
    lo = xlo if xlo is not None else (lo if lo is not None else -1e6)
    hi = hi if hi is not None else 1e6
    value = draw(st.one_of(st.floats(lo, hi, allow_nan=False, allow_infinity=False, exclude_min=xlo is not None),
                           st.integers(math.floor(lo) + 1, math.floor(hi)), st.sampled_from([hi, 1e-9])))
    return value if (xlo is None or value > xlo) and value <= hi else hi


def schema_documents() -> st.SearchStrategy[dict[str, Any]]:
    """Any document the schema accepts."""
    return _instance(schema())


# ----------------------------------------------------------------------------- repairs: documents the rules accept

PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


def repaired(doc: dict[str, Any], seed: int) -> dict[str, Any]:
    """`doc` mended so that no error rule of mappings/rules.yaml objects (the schema still accepts it)."""
    rng = random.Random(seed)
    doc = json.loads(json.dumps(doc))
    doc["export_period"] = dict(PERIOD)
    doc["patient"]["birth_date"] = "19" + doc["patient"]["birth_date"][2:] if doc["patient"]["birth_date"] > "2000" \
        else doc["patient"]["birth_date"]
    if doc["patient"]["birth_date"][5:] == "02-29":
        doc["patient"]["birth_date"] = doc["patient"]["birth_date"][:5] + "02-28"
    if "kvnr" in doc["patient"]:
        body = doc["patient"]["kvnr"][:9]
        doc["patient"]["kvnr"] = body + str(kvid10_check_digit(body))
    body = doc["diga"]["pzn"][:7]
    while pzn_check_digit(body) is None:
        body = f"{(int(body) + 1) % 10_000_000:07d}"
    doc["diga"]["pzn"] = body + str(pzn_check_digit(body))

    def when() -> str:
        return f"2026-03-{rng.randint(1, 31):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+01:00"

    for m in doc["measurements"]:
        m["measured_at"] = when()
        if m["kind"] == "blood_pressure" and not m["systolic"] > m["diastolic"]:
            m["systolic"], m["diastolic"] = min(400, m["diastolic"] + 1), max(1, min(m["systolic"], 299))
            if not m["systolic"] > m["diastolic"]:
                m["systolic"], m["diastolic"] = 120, 80
        for fld, lo, hi, when_ in _error_ranges():  # the impossible-* ranges: clamp into them
            if all(m.get(k) in v for k, v in when_) and isinstance(m.get(fld), (int, float)):
                m[fld] = min(max(m[fld], lo), hi)
        if m["kind"] == "blood_pressure" and not m["systolic"] > m["diastolic"]:
            m["systolic"], m["diastolic"] = 120, 80
    for e in doc["diary_entries"]:
        e["recorded_at"] = when()
    for q in doc["questionnaires"]:
        q["completed_at"] = when()
        q["total_score"] = sum(q["answers"])
    for d in doc["diagnoses"]:
        d["recorded_at"] = min(d["recorded_at"], PERIOD["to"])
        d["icd10gm_version"] = min(d["icd10gm_version"], 2027)
        if not any(lo <= d["icd10gm_code"][:3] <= hi for lo, hi in (("A00", "D48"), ("F00", "G99"), ("I00", "T98"))):
            d["icd10gm_code"] = "F32" + d["icd10gm_code"][3:]
        if "snomed_code" in d:  # the mapping knows the codes of its table only
            d["snomed_code"] = rng.choice(sorted(_snomed_table()))
    ids = set()
    for record in [doc["patient"]] + [r for k in ("measurements", "diary_entries", "questionnaires", "diagnoses")
                                      for r in doc[k]]:
        while record["id"] in ids:
            record["id"] = record["id"][:-1] + "0123456789abcdef"[("0123456789abcdef".index(record["id"][-1]) + 1) % 16]
        ids.add(record["id"])
    return doc


@cache
def _error_ranges() -> list[tuple[str, Any, Any, tuple[tuple[str, frozenset[Any]], ...]]]:
    """(field, min, max, when) of every `range` rule of mappings/rules.yaml that is an error."""
    from exporter.issues import Severity
    from exporter.rules import load_rules

    root = get_settings().root
    rules = load_rules(root / "mappings" / "rules.yaml", "mappings/rules.yaml",
                       json.loads((root / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))).rules
    return [(r.args["field"].text, r.args["min"], r.args["max"], r.when)
            for r in rules if r.kind.name == "range" and r.records == "measurements" and r.severity is Severity.ERROR]


@cache
def _snomed_table() -> set[str]:
    import yaml

    path = get_settings().root / "mappings" / "codes" / "condition-snomed.yaml"
    return {str(k) for k in yaml.safe_load(path.read_text(encoding="utf-8"))["entries"]}


@st.composite
def documents(draw: Any) -> dict[str, Any]:
    """A schema-valid document, repaired for the error rules about two times in three."""
    doc = draw(schema_documents())
    if draw(st.integers(0, 2)):
        doc = repaired(doc, draw(st.integers(0, 2**32)))
    return doc
