"""Local ValueSet expansion and membership, offline (layer L1).

A ValueSet is expanded from its compose: includes that enumerate concepts, whole code systems we
hold locally with content `complete`, `is-a`/`descendent-of`/`=` filters over local hierarchical
code systems, and other ValueSets (intersected within one include), minus excludes. Whatever cannot
be enumerated here (SNOMED CT as a whole, an unknown code system, an unsupported filter) is recorded
as an *open system*: membership of a code from an open system is unknown (None) — callers report it
as a warning rather than passing it silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.fhir.definitions import DefinitionStore


@dataclass(frozen=True)
class Expansion:
    url: str
    codes: frozenset[tuple[str, str]]
    open_systems: frozenset[str] = frozenset()
    displays: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, hash=False)
    problem: str | None = None  # the ValueSet itself could not be found or read
    bare_codes: frozenset[str] = field(default=frozenset(), compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bare_codes", frozenset(c for _, c in self.codes))

    def contains(self, system: str | None, code: str | None) -> bool | None:
        """True / False, or None when this expansion cannot tell (open system, unknown ValueSet)."""
        if self.problem is not None:
            return None
        if code is None:
            return False
        if system is None:
            # a bare code (type `code`): member if any system of the set has it
            if code in self.bare_codes:
                return True
            return None if self.open_systems else False
        if (system, code) in self.codes:
            return True
        if system in self.open_systems:
            return None
        return False


def _strip_version(url: str) -> str:
    return url.split("|", 1)[0]


def _flatten(concepts: Iterable[dict[str, Any]], out: dict[str, str], parent_of: dict[str, str | None],
             parent: str | None = None, designations: dict[str, tuple[str, ...]] | None = None) -> None:
    for c in concepts or []:
        code = c.get("code")
        if code is None:
            continue
        out[code] = c.get("display", "")
        parent_of[code] = parent
        if designations is not None:
            designations[code] = tuple(d.get("value", "") for d in c.get("designation", []) if isinstance(d, dict))
        _flatten(c.get("concept", []), out, parent_of, code, designations)


class ValueSetExpander:
    def __init__(self, store: DefinitionStore):
        self.store = store
        self._cache: dict[str, Expansion] = {}
        self._cs_cache: dict[str, tuple[dict[str, str], dict[str, str | None]] | None] = {}
        self._designations: dict[str, dict[str, tuple[str, ...]]] = {}

    def code_system(self, url: str) -> tuple[dict[str, str], dict[str, str | None]] | None:
        """(code → display, code → parent) for a local, complete CodeSystem; None if not enumerable."""
        url = _strip_version(url)
        if url in self._cs_cache:
            return self._cs_cache[url]
        cs = self.store.code_system(url)
        result = None
        if cs is not None and cs.get("content", "complete") in ("complete", "fragment") and cs.get("concept"):
            codes: dict[str, str] = {}
            parents: dict[str, str | None] = {}
            designations: dict[str, tuple[str, ...]] = {}
            _flatten(cs.get("concept", []), codes, parents, None, designations)
            self._designations[url] = designations
            result = (codes, parents) if cs.get("content", "complete") == "complete" or codes else None
            if cs.get("content") == "fragment":
                result = None  # a fragment cannot prove that a code is absent
        self._cs_cache[url] = result
        return result

    def lookup(self, system: str, code: str) -> tuple[bool, tuple[str, ...]] | None:
        """(code exists?, acceptable displays) in a local complete CodeSystem; None if not local."""
        cs = self.code_system(system)
        if cs is None:
            return None
        codes = cs[0]
        if code not in codes:
            return (False, ())
        url = _strip_version(system)
        return (True, (codes[code],) + self._designations.get(url, {}).get(code, ()))

    def expand(self, url: str) -> Expansion:
        key = _strip_version(url)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        self._cache[key] = Expansion(key, frozenset(), problem="recursive ValueSet definition")
        vs = self.store.value_set(url) or self.store.value_set(key)
        if vs is None:
            exp = Expansion(key, frozenset(), problem=f"ValueSet {url} is not available locally")
        else:
            exp = self._expand(key, vs)
        self._cache[key] = exp
        return exp

    def _expand(self, url: str, vs: dict[str, Any]) -> Expansion:
        codes: set[tuple[str, str]] = set()
        displays: dict[tuple[str, str], str] = {}
        open_systems: set[str] = set()
        compose = vs.get("compose") or {}
        if not compose and (vs.get("expansion") or {}).get("contains"):
            for c in _walk_contains(vs["expansion"]["contains"]):
                codes.add((c.get("system") or "", c["code"]))  # no system: found by code alone (bare_codes)
            return Expansion(url, frozenset(codes))
        for inc in compose.get("include", []):
            part, part_open = self._include(inc, displays)
            codes |= part
            open_systems |= part_open
        for exc in compose.get("exclude", []):
            part, part_open = self._include(exc, {})
            codes -= part
            open_systems |= part_open  # an exclusion we cannot enumerate makes membership uncertain
        return Expansion(url, frozenset(codes), frozenset(open_systems), displays)

    def _include(self, inc: dict[str, Any], displays: dict[tuple[str, str], str]) -> tuple[set[tuple[str, str]], set[str]]:
        """Codes of one include/exclude: its system part and each of its ValueSets, intersected."""
        system = inc.get("system")
        opened: set[str] = set()
        parts: list[set[tuple[str, str]]] = []
        if system is not None:
            if inc.get("concept"):
                part = set()
                for c in inc["concept"]:
                    part.add((system, c.get("code")))
                    if c.get("display"):
                        displays[(system, c["code"])] = c["display"]
                parts.append(part)
            else:
                cs = self.code_system(system)
                selected = None if cs is None else (self._filter(cs, inc["filter"]) if inc.get("filter") else set(cs[0]))
                if selected is None:
                    opened.add(system)
                parts.append({(system, c) for c in selected or ()})
        for ref in inc.get("valueSet", []):
            sub = self.expand(ref)
            if sub.problem is not None:
                opened.add(system or f"<ValueSet {ref}>")
            opened |= set(sub.open_systems)
            parts.append(set(sub.codes))
        result = set.intersection(*parts) if parts else set()
        return result, opened

    @staticmethod
    def _filter(cs: tuple[dict[str, str], dict[str, str | None]], filters: list[dict[str, Any]]) -> set[str] | None:
        codes, parents = cs
        selected = set(codes)
        for f in filters:
            op, value, prop = f.get("op"), f.get("value"), f.get("property")
            if prop != "concept" or op not in ("is-a", "descendent-of", "="):
                return None
            if op == "=":
                selected &= {value} if value in codes else set()
                continue
            keep = set()
            for c in codes:
                cur: str | None = c if op == "is-a" else parents.get(c)
                while cur is not None:
                    if cur == value:
                        keep.add(c)
                        break
                    cur = parents.get(cur)
            selected &= keep
        return selected


def _walk_contains(items: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for c in items:
        if c.get("code"):
            yield c
        yield from _walk_contains(c.get("contains", []))
