"""A copy of the project's sources in a temporary folder, for tests that change them (build the IG, add a
kind) without touching the checkout, and a digest of a folder to prove that nothing in it changed."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

from exporter.settings import get_settings


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in a stable order."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def copy_project(root: Path, names: Iterable[str]) -> dict[str, str]:
    """Copy the named files and folders of the project into `root`; returns the environment that points
    the exporter at the copy (with the shared toolchain and SUSHI of the checkout)."""
    s = get_settings()
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = s.root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    return {"DIGA_EXPORTER_ROOT": str(root), "DIGA_EXPORTER_TOOLS_DIR": str(s.tools),
            "DIGA_EXPORTER_SUSHI_PATH": str(s.sushi_bin)}
