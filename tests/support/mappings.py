"""Fixture `scratch_mappings`: a scratch copy of mappings/ for a test to break (every test package)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.settings import get_settings


@pytest.fixture()
def scratch_mappings(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(get_settings().root / "mappings", target)
    return target
