"""Fixtures for mapping tests: the real Exporter, and a scratch copy of mappings/ to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.pipeline import Exporter
from exporter.settings import get_settings

EXPORT_TIME = "2026-04-06T10:00:00+02:00"


@pytest.fixture(scope="session")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


@pytest.fixture()
def scratch_mappings(tmp_path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(get_settings().root / "mappings", target)
    return target


def load(mappings: Path) -> Exporter:
    return Exporter.from_settings(get_settings(), mappings)
