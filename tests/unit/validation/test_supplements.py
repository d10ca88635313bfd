"""A CodeSystem supplement is never a Coding's system (rule SupplementNotSystem): checked with a
supplement and its base code system in a package of the test's own, in both paths. The HL7
validator, given FHIR's example-supplement, says CODESYSTEM_CS_NO_SUPPLEMENT at `…coding[i].system`
for a Coding anywhere (bound or not), whatever its code."""

from __future__ import annotations

import json

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation import messages as M
from exporter.validation.validator import Validator
from tests.unit.validation.conftest import errors_in_both_paths as _errors

BASE = "https://fhir.x.test/CodeSystem/base"
SUPPLEMENT = "https://fhir.x.test/CodeSystem/base-supplement"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    pkg = tmp_path_factory.mktemp("supplement-pkg")
    (pkg / "package.json").write_text(json.dumps({"name": "test.supplement", "version": "0.1.0",
                                                  "fhirVersions": ["4.0.1"],
                                                  "dependencies": {"hl7.fhir.r4.core": "4.0.1"}}))
    (pkg / "CodeSystem-base.json").write_text(json.dumps({
        "resourceType": "CodeSystem", "id": "base", "url": BASE, "status": "active", "content": "complete",
        "concept": [{"code": "a", "display": "A"}]}))
    (pkg / "CodeSystem-base-supplement.json").write_text(json.dumps({
        "resourceType": "CodeSystem", "id": "base-supplement", "url": SUPPLEMENT, "status": "active",
        "content": "supplement", "supplements": BASE,
        "concept": [{"code": "a", "designation": [{"language": "de", "value": "A (de)"}]}]}))
    store = default_store(get_settings(), [pkg])
    return Validator(store), Validator(store, clean_path=False)


def _observation(system: str, code: str = "a") -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "category": [{"coding": [{"system": system, "code": code}]}],
            "valueCodeableConcept": {"coding": [{"system": BASE, "code": "a"}, {"system": system, "code": code}]}}


def test_a_supplement_is_no_system(pair):
    assert _errors(pair, _observation(SUPPLEMENT)) == [
        (M.CODE_SYSTEM_SUPPLEMENT, "Observation.category[0].coding[0].system"),
        (M.CODE_SYSTEM_SUPPLEMENT, "Observation.valueCodeableConcept.coding[1].system")]
    assert [mid for mid, _ in _errors(pair, _observation(SUPPLEMENT, "zz"))] == [M.CODE_SYSTEM_SUPPLEMENT] * 2


def test_the_supplemented_system_is(pair):
    assert _errors(pair, _observation(BASE)) == []
