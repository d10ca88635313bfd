"""Declared dependencies match the code: every third-party library exporter/ imports is a direct, exactly
pinned dependency in pyproject.toml (at the version requirements.lock installs), and every declared runtime
dependency is imported somewhere (a library only the tests use belongs in the `test` extra)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from tests.unit.test_layers import third_party_imports

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;]+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        m = _PIN.match(req)
        assert m, f"{req!r} is not an exact pin (name==version)"
        pins[_norm(m.group(1))] = m.group(3)
    return pins


def _lock() -> dict[str, str]:
    lines = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
    return _pins([line for line in lines if line.strip() and not line.startswith("#")])


def _distributions(top: str) -> set[str]:
    dists = importlib.metadata.packages_distributions().get(top)
    assert dists, f"no installed distribution provides the import {top!r}"
    return {_norm(d) for d in dists if not _norm(d).startswith("types-") and not _norm(d).endswith("-stubs")}


def test_every_imported_library_is_declared():
    declared = _pins(PROJECT["dependencies"])
    missing: dict[str, str] = {}
    for _, path, line, top in third_party_imports():
        if not _distributions(top) & declared.keys():
            missing.setdefault(top, f"{top} ({', '.join(sorted(_distributions(top)))}), imported at {path}:{line}")
    assert sorted(missing.values()) == []


def test_every_declared_dependency_is_imported():
    imported = {d for _, _, _, top in third_party_imports() for d in _distributions(top)}
    unused = sorted(set(_pins(PROJECT["dependencies"])) - imported)
    assert unused == []


def test_declared_pins_match_the_lock():
    lock = _lock()
    declared = {**_pins(PROJECT["dependencies"]),
                **{k: v for extra in PROJECT["optional-dependencies"].values() for k, v in _pins(extra).items()}}
    mismatched = sorted(f"{name}=={version} (lock: {lock.get(name)})" for name, version in declared.items()
                        if lock.get(name) != version)
    assert mismatched == []


def test_installed_versions_match_the_lock():
    """The environment the tests run in is the locked one (a stale venv would check the wrong tools)."""
    wrong = []
    for name, version in _lock().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} not installed")
            continue
        if installed != version:
            wrong.append(f"{name}: installed {installed}, locked {version}")
    assert wrong == []


def test_the_lock_is_closed():
    """Every requirement of a locked distribution (for this Python, without extras) is locked too, so
    `pip install -r requirements.lock` installs exactly the lock."""
    from packaging.requirements import Requirement

    lock = _lock()
    missing = []
    for name in lock:
        for text in importlib.metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if _norm(req.name) not in lock:
                missing.append(f"{name} needs {req}")
    assert missing == []
