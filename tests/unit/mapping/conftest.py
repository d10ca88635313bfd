"""Fixtures for mapping tests: the real Exporter (the scratch copy of mappings/ to break: tests/support/mappings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.pipeline import Exporter
from exporter.settings import get_settings

EXPORT_TIME = "2026-04-06T10:00:00+02:00"


@pytest.fixture(scope="session")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


def load(mappings: Path) -> Exporter:
    return Exporter.from_settings(get_settings(), mappings)
