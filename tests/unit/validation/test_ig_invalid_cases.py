"""Our validator also rejects every deliberately invalid IG instance (tests/cases/ig-invalid), and for
cases defined only by invariants it names them (the HL7 validator's verdicts are checked in
tests/system/test_ig_invalid.py)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from exporter.settings import get_settings

ROOT = get_settings().root
PACKAGE = json.loads(next(p for p in sorted((ROOT / "igs").glob("*/package.json"))).read_text(encoding="utf-8"))
MANIFEST = yaml.safe_load((ROOT / "tests" / "cases" / "ig-invalid" / "cases.yaml").read_text(encoding="utf-8"))
INVARIANT_KEY = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*-\d+$")


def _load(name: str) -> dict:
    raw = (ROOT / "tests" / "cases" / "ig-invalid" / name).read_text(encoding="utf-8")
    for k, v in {"{canonical}": PACKAGE["canonical"], "{version}": PACKAGE["version"], "{package}": PACKAGE["name"]}.items():
        raw = raw.replace(k, v)
    return json.loads(raw)


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=[c["file"] for c in MANIFEST["cases"]])
def test_rejected_by_our_validator(case, validator):
    errors = [i for i in validator.validate(_load(case["file"])) if i.is_error]
    assert errors, f"{case['file']}: {case['reason']}"
    keys = [str(spec.get("id", "")) for spec in case.get("expect", [])]
    if keys and all(INVARIANT_KEY.match(k) for k in keys):  # the case is defined by its invariant(s)
        for key in keys:
            assert any(f"constraint {key} " in i.message for i in errors), [i.format() for i in errors]
