"""The measurement kinds as the project defines them — the domain schema (kinds, units, possible maxima)
and the mapping set (plausible ranges in rules.yaml, the mapping that selects each kind) — for tests
that must not hard-code them: a kind added with `fhir-export new-kind` (docs/extending.md) is picked up
without touching a test. Also `pick`, a seeded choice of a record by its stable id, so a seeded test
chooses the same records however many others a sample gains."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from exporter.mapping.yamlsrc import load_yaml
from exporter.settings import get_settings

T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    name: str
    scalar: bool
    """Carries one `value` (every kind but blood pressure, which carries systolic and diastolic)."""
    units: tuple[str, ...]
    maximum: dict[str, float | None] = field(default_factory=dict)
    """unit → the schema's largest possible value (inclusive; every value is above 0), None when open."""
    plausible: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """(unit, field) → the range of its plausible-* rule in rules.yaml."""

    def valid_range(self, unit: str, name: str = "value") -> tuple[float, float]:
        """A range of values the schema accepts and no plausibility rule warns about."""
        if (unit, name) in self.plausible:
            return self.plausible[(unit, name)]
        top = self.maximum.get(unit)
        return (top / 10, top / 2) if top else (1.0, 100.0)


def _root(root: Path | None) -> Path:
    return root or get_settings().root


@cache
def schema(root: Path | None = None) -> dict[str, Any]:
    return json.loads((_root(root) / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))


def _units_and_maxima(then: dict[str, Any]) -> dict[str, float | None]:
    props = then.get("properties", {})
    unit = props.get("unit", {})
    if "anyOf" in then:  # one alternative per unit, each with its maximum
        return {alt["properties"]["unit"]["const"]: alt["properties"].get("value", {}).get("maximum")
                for alt in then["anyOf"]}
    units = [unit["const"]] if "const" in unit else list(unit.get("enum", []))
    return {u: props.get("value", {}).get("maximum") for u in units}


@cache
def kinds(root: Path | None = None) -> dict[str, Kind]:
    """Every measurement kind of the schema, in the schema's order."""
    defs = schema(root)["$defs"]
    branches = defs["measurement"]["allOf"]
    scalar: set[str] = set()
    per_kind: dict[str, dict[str, float | None]] = {}
    for b in branches:
        cond = b["if"]["properties"]["kind"]
        if "enum" in cond and b["then"].get("required") == ["value"]:
            scalar |= set(cond["enum"])
        elif "const" in cond:
            per_kind[cond["const"]] = _units_and_maxima(b["then"])
    rules = load_yaml(_root(root) / "mappings" / "rules.yaml")[0]["rules"]
    out: dict[str, Kind] = {}
    for name in defs["measurement_kind"]["enum"]:
        units = per_kind.get(name) or {u: None for u in defs["measurement_unit"]["enum"]}
        plausible: dict[tuple[str, str], tuple[float, float]] = {}
        for r in rules:
            when, rng = r.get("when") or {}, (r.get("check") or {}).get("range")
            if r.get("records") != "measurements" or rng is None or when.get("kind") != name:
                continue
            for unit in units if "unit" not in when else [when["unit"]]:
                plausible[(unit, rng["field"])] = (rng["min"], rng["max"])
        out[name] = Kind(name, name in scalar, tuple(units), dict(units), plausible)
    return out


def unit_maxima(root: Path | None = None) -> list[float]:
    """Every possible maximum the schema sets on a measurement value, ascending."""
    return sorted({m for k in kinds(root).values() for m in k.maximum.values() if m is not None})


def pick(items: Sequence[T], rng: random.Random, key: Callable[[T], Any] = lambda r: r["id"]) -> T:
    """One of `items`, chosen by `rng` and each item's stable `key` (rendezvous hashing): adding items
    changes the choice only when a new item wins, and never shifts `rng` (one draw either way)."""
    token = rng.getrandbits(64)

    def weight(item: T) -> bytes:
        try:
            k = key(item)
        except (KeyError, TypeError, IndexError):
            k = repr(item)
        return hashlib.sha256(f"{token}:{k}".encode()).digest()

    return max(items, key=weight)
