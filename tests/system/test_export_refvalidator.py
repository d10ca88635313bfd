"""Every golden export Bundle is accepted by the HL7 reference validator with 0 errors."""

from __future__ import annotations

import json

import pytest

from exporter.settings import get_settings
from tools.devstack.refvalidator import errors

pytestmark = pytest.mark.refvalidator

CASES = sorted(p for p in (get_settings().root / "tests" / "cases" / "export").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_bundle_accepted_by_hl7_validator(case, refvalidator):
    bundle = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    outcome = refvalidator.validate(bundle)
    assert errors(outcome) == []
