"""Conformance resources by canonical URL, from FHIR packages on disk (layer L1).

Sources are package folders (a folder with package.json, as in igs/ and the package cache),
package tarballs (.tgz) or plain folders of JSON files. hl7.fhir.r4.core is indexed from its
.index.json and its files are parsed only when first asked for, so start-up stays fast.

Only these resource types are kept: StructureDefinition, ValueSet, CodeSystem, Questionnaire and
ImplementationGuide (what validation needs); other files are ignored. A later source overrides an earlier one for the same URL|version.

A broken source (not a tgz, a file that is not JSON or cannot be read, a malformed package index) is
one `DEF_SOURCE_*` ConfigurationError naming it — when it is added, or for lazily read files when the
file is first needed. `snapshot()` hands out only well-formed snapshot elements (checked once, or
generated). Message ids: defmessages.py.
"""

from __future__ import annotations

import json
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.fhir.defmessages import MESSAGES
from exporter.fhir.snapshot import carried_elements, check_snapshot, generate_snapshot
from exporter.issues import ConfigurationError, SourceLocation, error

CONFORMANCE_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "Questionnaire", "ImplementationGuide"})
CORE_SD_BASE = "http://hl7.org/fhir/StructureDefinition/"


def _source_error(message_id: str, where: str, message: str) -> ConfigurationError:
    return ConfigurationError(error(MESSAGES[message_id][0], message, message_id, location=SourceLocation(where)))


def _parse(data: bytes, where: str) -> Any:
    """One JSON file of a source (DEF_SOURCE_JSON naming it when it is not UTF-8 JSON)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise _source_error("DEF_SOURCE_JSON", where, f"{where} is not valid JSON: {reason}") from None


def _read_file(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _source_error("DEF_SOURCE_READ", str(path), f"cannot read {path}: {exc.strerror or exc}") from None
    return _parse(data, str(path))


def _is_conformance(res: dict[str, Any]) -> bool:
    """A resource (or index entry) of a kept type, with a url."""
    rt, url = res.get("resourceType"), res.get("url")
    return isinstance(rt, str) and rt in CONFORMANCE_TYPES and isinstance(url, str) and bool(url)


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
            res = _read_file(self.path)
            if not isinstance(res, dict) or res.get("resourceType") != self.resource_type or res.get("url") != self.url:
                raise _source_error("DEF_SOURCE_INDEX", self.origin, f"{self.origin} does not hold the {self.resource_type} "
                                    f"{self.url} its package's .index.json names")
            self.resource = res
        return self.resource


@dataclass
class DefinitionStore:
    """Canonical URL → conformance resource, across all loaded sources."""

    _by_url: dict[str, _Entry] = field(default_factory=dict)
    _by_versioned: dict[str, _Entry] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    _checked: dict[int, dict[str, Any]] = field(default_factory=dict)  # carried snapshots found well-formed

    # -- loading -----------------------------------------------------------------------------
    def add_source(self, path: Path) -> int:
        """Add a package folder, package .tgz or folder of JSON files. Returns resources added."""
        if not path.exists():
            raise _source_error("DEF_SOURCE_MISSING", str(path), f"conformance source {path} does not exist")
        self.sources.append(str(path))
        if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
            return self._add_tarball(path)
        if path.is_file() and path.suffix == ".json":
            return self._add_resource(_read_file(path), str(path))
        if path.is_dir():
            package_dir = path / "package" if (path / "package" / "package.json").is_file() else path
            index = package_dir / ".index.json"
            if index.is_file():
                return self._add_indexed(package_dir, index)
            return sum(self._add_resource(_read_file(p), str(p)) for p in sorted(package_dir.glob("*.json"))
                       if p.name != "package.json")
        raise _source_error("DEF_SOURCE_KIND", str(path), f"{path} is neither a folder, a .json file nor a package .tgz")

    def add_resource(self, resource: dict[str, Any], origin: str = "<memory>") -> int:
        return self._add_resource(resource, origin)

    def _add_indexed(self, folder: Path, index: Path) -> int:
        files = _read_file(index)
        files = files.get("files") if isinstance(files, dict) else None
        if not isinstance(files, list):
            raise _source_error("DEF_SOURCE_INDEX", str(index), f"{index} has no list of files")
        count = 0
        for f in files:
            name = f.get("filename") if isinstance(f, dict) else None
            if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
                raise _source_error("DEF_SOURCE_INDEX", str(index), f"{index} lists a file without a plain file name")
            if _is_conformance(f):
                version = f.get("version")
                self._put(_Entry(f["resourceType"], f["url"], version if isinstance(version, str) else None,
                                 str(folder / name), path=folder / name))
                count += 1
        return count

    def _add_tarball(self, path: Path) -> int:
        count = 0
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tar.getmembers():
                    if not member.isfile() or not member.name.endswith(".json") or member.name.endswith("package.json"):
                        continue
                    fh = tar.extractfile(member)
                    if fh is not None:
                        count += self._add_resource(_parse(fh.read(), f"{path}!{member.name}"), f"{path}!{member.name}")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise _source_error("DEF_SOURCE_ARCHIVE", str(path),
                                f"{path} is not a readable package .tgz: {exc}") from None
        return count

    def _add_resource(self, res: Any, origin: str) -> int:
        if not isinstance(res, dict):
            return 0
        if res.get("resourceType") == "Bundle":  # a Bundle of definitions (e.g. profiles-resources.json)
            entries = res.get("entry")
            return sum(self._add_resource(e.get("resource"), origin) for e in entries if isinstance(e, dict)) \
                if isinstance(entries, list) else 0
        if not _is_conformance(res):
            return 0
        version = res.get("version")
        self._put(_Entry(res["resourceType"], res["url"], version if isinstance(version, str) else None, origin, resource=res))
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
        """The snapshot elements of `sd`, always well-formed: the snapshot it carries, once checked
        (`snapshot.check_snapshot`), or one generated from its differential (and kept on it) when it
        has none. Raises `snapshot.SnapshotError` naming the definition, its file and the element
        when the carried snapshot is malformed or generation fails."""
        if not carried_elements(sd):
            sd["snapshot"] = {"element": generate_snapshot(sd, self.structure, self.origin)}
        elif id(sd) not in self._checked:
            check_snapshot(sd, self.origin)
            self._checked[id(sd)] = sd
        return sd["snapshot"]["element"]

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
