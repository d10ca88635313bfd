"""Deliberately invalid instances (tests/cases/ig-invalid/) are rejected by the HL7 reference validator,
each for its intended reason and for no other.

The manifest `cases.yaml` names every case file, its defect and the issues the validator must report
(message id or invariant key, location, message text). Every error reported must be one of them (or a
documented `tolerated` artefact), so a case cannot pass by failing for an accidental reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.settings import get_settings
from tools.devstack.refvalidator import ReferenceValidator, errors, expression, message_id, summarize, text

pytestmark = pytest.mark.refvalidator

CASES_DIR = Path(__file__).resolve().parent.parent / "cases" / "ig-invalid"
MANIFEST = yaml.safe_load((CASES_DIR / "cases.yaml").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]
TOLERATED = MANIFEST.get("tolerated", [])
SEED_PACKAGE = "de.diga.export.r4"


PACKAGE = json.loads((get_settings().igs_dir / SEED_PACKAGE / "package.json").read_text(encoding="utf-8"))
CANONICAL = PACKAGE["canonical"].rstrip("/")
PLACEHOLDERS = {"{canonical}": CANONICAL, "{version}": PACKAGE["version"], "{package}": PACKAGE["name"]}


def _load_case(name: str) -> dict[str, Any]:
    """A case file with its placeholders filled in: the cases do not hard-code the IG's canonical, package
    id or version, so an adopting DiGA that changes them in sushi-config.yaml keeps its cases."""
    raw = (CASES_DIR / name).read_text(encoding="utf-8")
    for token, value in PLACEHOLDERS.items():
        raw = raw.replace(token, value)
    return json.loads(raw)


def _location(issue: dict[str, Any]) -> str:
    """The issue's FHIRPath without the validator's inline comments (`.resource/*Patient/x*/.name`)."""
    return re.sub(r"/\*.*?\*/", "", expression(issue)).replace("..", ".")


def _matches(issue: dict[str, Any], spec: dict[str, Any]) -> bool:
    if issue.get("severity") != spec.get("severity", "error"):
        return False
    mid = message_id(issue) or ""
    want = spec["id"]
    if mid != want and not mid.endswith("#" + want):
        return False
    if "location" in spec and _location(issue) != spec["location"]:
        return False
    if "text" in spec and spec["text"].replace("{canonical}", CANONICAL) not in text(issue):
        return False
    return True


@pytest.fixture(scope="module")
def outcomes(refvalidator: ReferenceValidator) -> dict[str, dict]:
    """All cases in one round trip (validate_many keeps the order)."""
    resources = [_load_case(c["file"]) for c in CASES]
    return dict(zip((c["file"] for c in CASES), refvalidator.validate_many(resources), strict=True))


def test_manifest_and_folder_agree() -> None:
    on_disk = {p.name for p in CASES_DIR.glob("*.json")}
    listed = [c["file"] for c in CASES]
    assert len(listed) == len(set(listed)), "a case is listed twice"
    assert on_disk == set(listed), {"unlisted": sorted(on_disk - set(listed)), "missing": sorted(set(listed) - on_disk)}
    for c in CASES:
        assert c.get("reason") and c.get("expect"), c["file"]
        raw = (CASES_DIR / c["file"]).read_text(encoding="utf-8")
        assert CANONICAL not in raw, f"{c['file']}: write the canonical as {{canonical}}"


def test_cases_claim_versioned_profiles_of_the_ig() -> None:
    """Each case is a broken *instance of our profiles*, not a stray resource the validator barely checks."""
    for c in CASES:
        res = _load_case(c["file"])
        claims = res.get("meta", {}).get("profile", [])
        assert any(p.startswith(CANONICAL + "/StructureDefinition/") and "|" in p for p in claims), c["file"]


@pytest.mark.parametrize("case", CASES, ids=[c["file"].removesuffix(".json") for c in CASES])
def test_invalid_case_is_rejected_for_the_intended_reason(case: dict[str, Any], outcomes: dict[str, dict]) -> None:
    outcome = outcomes[case["file"]]
    found = errors(outcome) + [i for i in outcome.get("issue", []) if i.get("severity") == "warning"]
    report = f"{case['file']} ({case['reason']}):\n{summarize(outcome, 'error', 'fatal')}"

    assert errors(outcome), f"not rejected at all: {report}"
    for spec in case["expect"]:
        assert any(_matches(i, spec) for i in found), f"expected issue {spec} not reported; {report}"

    specs = list(case["expect"]) + list(TOLERATED)
    unexplained = [i for i in errors(outcome) if not any(_matches(i, s) for s in specs)]
    assert unexplained == [], "rejected for other reasons too: " + "\n".join(
        f"{_location(i)} [{message_id(i)}] {text(i)}" for i in unexplained)
