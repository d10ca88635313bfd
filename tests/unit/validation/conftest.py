"""Fixtures for validator tests: one Validator over core + igs/, and the IG's examples as bases."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from exporter.settings import get_settings
from exporter.validation.validator import Validator

IG = "https://diga-exporter.example.org/fhir/StructureDefinition/"


@pytest.fixture()
def walked(monkeypatch) -> list[str]:
    """The paths of the objects the walk (not the clean path) goes through during the test."""
    paths: list[str] = []
    original = Validator._full_walk

    def counting(self, obj, rule, path, ctx, depth):
        paths.append(path)
        return original(self, obj, rule, path, ctx, depth)
    monkeypatch.setattr(Validator, "_full_walk", counting)
    return paths


def errors_in_both_paths(pair: tuple[Validator, Validator], resource: dict) -> list[tuple[str, str]]:
    """(message id, expression) of the errors the walk reports, asserting the validator with the
    clean path reports the same issues."""
    fast, walk = pair
    found = walk.validate(copy.deepcopy(resource))
    assert fast.validate(copy.deepcopy(resource)) == found
    return [(i.message_id, i.expression[0] if i.expression else "") for i in found if i.is_error]


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator.from_settings(get_settings())


@pytest.fixture(scope="session")
def ig_dir() -> Path:
    s = get_settings()
    return next(p for p in sorted(s.igs_dir.iterdir()) if p.is_dir() and not p.name.startswith("."))


@pytest.fixture()
def example(ig_dir):
    def load(name: str) -> dict:
        return copy.deepcopy(json.loads((ig_dir / f"{name}.json").read_text(encoding="utf-8")))
    return load


def ids(issues, *, errors_only: bool = True) -> list[str]:
    return [i.message_id for i in issues if i.is_error or not errors_only]


def at(issues, message_id: str) -> list[str]:
    return [e for i in issues if i.message_id == message_id for e in i.expression]
