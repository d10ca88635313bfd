"""Conformance resources by canonical URL, from FHIR packages on disk (layer L1).

Sources are package folders (a folder with package.json, as in igs/ and the package cache),
package tarballs (.tgz) or plain folders of JSON files. hl7.fhir.r4.core is indexed from its
.index.json and its files are parsed only when first asked for, so start-up stays fast.

Only these resource types are kept: StructureDefinition, ValueSet, CodeSystem, Questionnaire and
ImplementationGuide (what validation needs); other files are ignored. A later source overrides an earlier one for the same URL|version.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from exporter.fhir.snapshot import generate_snapshot
from exporter.issues import ConfigurationError, IssueCode, SourceLocation, error

CONFORMANCE_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "Questionnaire", "ImplementationGuide"})
CORE_SD_BASE = "http://hl7.org/fhir/StructureDefinition/"


@dataclass
class _Entry:
    resource_type: str
    url: str
    version: str | None
    origin: str
    path: Path | None = None
    resource: dict[str, Any] | None = None

    def load(self) -> dict[str, Any]:
        if self.resource is None:
            assert self.path is not None
            self.resource = json.loads(self.path.read_text(encoding="utf-8"))
        return self.resource


@dataclass
class DefinitionStore:
    """Canonical URL → conformance resource, across all loaded sources."""

    _by_url: dict[str, _Entry] = field(default_factory=dict)
    _by_versioned: dict[str, _Entry] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    # -- loading -----------------------------------------------------------------------------
    def add_source(self, path: Path) -> int:
        """Add a package folder, package .tgz or folder of JSON files. Returns resources added."""
        if not path.exists():
            raise ConfigurationError(error(IssueCode.NOT_FOUND, f"conformance source {path} does not exist",
                                           "DEF_SOURCE_MISSING", location=SourceLocation(str(path))))
        self.sources.append(str(path))
        if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
            return self._add_tarball(path)
        if path.is_file() and path.suffix == ".json":
            return self._add_resource(self._read(path), str(path))
        if path.is_dir():
            package_dir = path / "package" if (path / "package" / "package.json").is_file() else path
            index = package_dir / ".index.json"
            if index.is_file():
                return self._add_indexed(package_dir, index)
            return sum(self._add_resource(self._read(p), str(p)) for p in sorted(package_dir.glob("*.json"))
                       if p.name != "package.json")
        raise ConfigurationError(error(IssueCode.NOT_SUPPORTED,
                                       f"{path} is neither a folder, a .json file nor a package .tgz",
                                       "DEF_SOURCE_KIND", location=SourceLocation(str(path))))

    def add_resource(self, resource: dict[str, Any], origin: str = "<memory>") -> int:
        return self._add_resource(resource, origin)

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigurationError(error(IssueCode.STRUCTURE, f"{path} is not valid JSON: {exc}",
                                           "DEF_SOURCE_JSON", location=SourceLocation(str(path)))) from exc

    def _add_indexed(self, folder: Path, index: Path) -> int:
        count = 0
        for f in json.loads(index.read_text(encoding="utf-8")).get("files", []):
            if f.get("resourceType") in CONFORMANCE_TYPES and f.get("url"):
                self._put(_Entry(f["resourceType"], f["url"], f.get("version"), str(folder / f["filename"]),
                                 path=folder / f["filename"]))
                count += 1
        return count

    def _add_tarball(self, path: Path) -> int:
        count = 0
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile() or not member.name.endswith(".json") or member.name.endswith("package.json"):
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                try:
                    res = json.load(io.TextIOWrapper(fh, encoding="utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue
                count += self._add_resource(res, f"{path}!{member.name}")
        return count

    def _add_resource(self, res: Any, origin: str) -> int:
        if not isinstance(res, dict):
            return 0
        if res.get("resourceType") == "Bundle":  # a Bundle of definitions (e.g. profiles-resources.json)
            return sum(self._add_resource(e.get("resource"), origin) for e in res.get("entry", []) if isinstance(e, dict))
        if res.get("resourceType") not in CONFORMANCE_TYPES or not isinstance(res.get("url"), str):
            return 0
        self._put(_Entry(res["resourceType"], res["url"], res.get("version"), origin, resource=res))
        return 1

    def _put(self, entry: _Entry) -> None:
        self._by_url[entry.url] = entry
        if entry.version:
            self._by_versioned[f"{entry.url}|{entry.version}"] = entry

    # -- lookup ------------------------------------------------------------------------------
    def _entry(self, canonical: str) -> _Entry | None:
        if "|" in canonical:
            hit = self._by_versioned.get(canonical)
            if hit is not None:
                return hit
            url, _, version = canonical.partition("|")
            entry = self._by_url.get(url)
            # a version-specific reference must not silently resolve to another version
            return entry if entry is not None and (entry.version is None or entry.version == version) else None
        return self._by_url.get(canonical)

    def get(self, canonical: str, resource_type: str | None = None) -> dict[str, Any] | None:
        entry = self._entry(canonical)
        if entry is None or (resource_type and entry.resource_type != resource_type):
            return None
        return entry.load()

    def structure(self, canonical: str) -> dict[str, Any] | None:
        return self.get(canonical, "StructureDefinition")

    def snapshot(self, sd: dict[str, Any]) -> list[dict[str, Any]]:
        """The snapshot elements of `sd`; generated from its differential (and kept on it) when it has
        none. Raises `snapshot.SnapshotError` naming the definition and element when that fails."""
        elements = (sd.get("snapshot") or {}).get("element")
        if not elements:
            elements = generate_snapshot(sd, self.structure, self.origin)
            sd["snapshot"] = {"element": elements}
        return elements

    def structure_for_type(self, type_code: str) -> dict[str, Any] | None:
        return self.structure(type_code if ":" in type_code else CORE_SD_BASE + type_code)

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        return self.get(canonical, "ValueSet")

    def code_system(self, canonical: str) -> dict[str, Any] | None:
        return self.get(canonical, "CodeSystem")

    def urls(self, resource_type: str | None = None) -> Iterable[str]:
        return [u for u, e in self._by_url.items() if resource_type is None or e.resource_type == resource_type]

    def origin(self, canonical: str) -> str | None:
        entry = self._entry(canonical)
        return entry.origin if entry else None


def default_store(settings: Any, extra: Iterable[Path] = ()) -> DefinitionStore:
    """Core package from the cache, every package under igs/, then any extra sources (--ig)."""
    from exporter.fhir.packages import check_package

    store = DefinitionStore()
    store.add_source(check_package(settings.package_cache))
    if settings.igs_dir.is_dir():
        for pkg in sorted(p for p in settings.igs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            store.add_source(pkg)
    for src in extra:
        store.add_source(Path(src))
    return store
