"""The HL7 reference validator as the judge: every example in igs/ is valid, broken variants fail as expected.

One validator JVM serves the whole session (fixture `refvalidator`, tests/support/refvalidator.py): offline,
no terminology server, hl7.fhir.r4.core#4.0.1 plus every package folder under igs/.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.settings import get_settings
from tools.devstack.refvalidator import (
    ReferenceValidator,
    default_igs,
    errors,
    expression,
    message_id,
    summarize,
    text,
)

pytestmark = pytest.mark.refvalidator

SEED_PACKAGE = "de.diga.export.r4"

# Definitional resources of an IG; everything else in a package folder is an example instance to validate.
CONFORMANCE_TYPES = frozenset({
    "StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "NamingSystem", "SearchParameter",
    "ImplementationGuide", "CapabilityStatement", "OperationDefinition", "CompartmentDefinition",
    "StructureMap", "GraphDefinition", "MessageDefinition", "TerminologyCapabilities", "ExampleScenario",
})
PACKAGE_FILES = frozenset({"package.json", ".index.json"})


def _example_files() -> list[Path]:
    """Every instance file in every IG package folder (a file that is not valid JSON counts: it must fail)."""
    found = []
    for package in default_igs(get_settings()):
        for path in sorted(package.glob("*.json")):
            if path.name in PACKAGE_FILES:
                continue
            try:
                resource_type = json.loads(path.read_text(encoding="utf-8")).get("resourceType")
            except (ValueError, AttributeError):
                resource_type = None
            if resource_type not in CONFORMANCE_TYPES:
                found.append(path)
    return found


EXAMPLES = _example_files()


def _canonical() -> str:
    package = get_settings().igs_dir / SEED_PACKAGE / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["canonical"].rstrip("/")


CANONICAL = _canonical()
BODY_WEIGHT_UNITS = f"{CANONICAL}/ValueSet/body-weight-units"


def _seed(name: str) -> dict[str, Any]:
    return json.loads((get_settings().igs_dir / SEED_PACKAGE / name).read_text(encoding="utf-8"))


@pytest.fixture
def patient() -> dict[str, Any]:
    return _seed("Patient-ExamplePatient.json")


@pytest.fixture
def body_weight() -> dict[str, Any]:
    return _seed("Observation-ExampleBodyWeight.json")


def _matching(outcome: dict, predicate: Callable[[dict], bool]) -> list[dict]:
    return [i for i in errors(outcome) if predicate(i)]


# ----------------------------------------------------------------------------- examples are valid

def test_examples_are_discovered() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"Patient-ExamplePatient.json", "Observation-ExampleBodyWeight.json"} <= names
    assert not any(json.loads(p.read_text(encoding="utf-8")).get("resourceType") == "StructureDefinition" for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in EXAMPLES])
def test_example_instance_is_valid(refvalidator: ReferenceValidator, path: Path) -> None:
    outcome = refvalidator.validate_path(path)
    assert errors(outcome) == [], f"{path.name}:\n{summarize(outcome, 'error', 'fatal')}"


def test_validator_is_loaded_with_every_ig(refvalidator: ReferenceValidator) -> None:
    info = refvalidator.ready_info
    assert info["fhirVersion"] == "4.0.1"
    assert "hl7.fhir.r4.core#4.0.1" in info["packages"]
    assert sorted(Path(p).name for p in info["igs"]) == sorted(p.name for p in default_igs(get_settings()))


def test_explicit_profiles_are_applied(refvalidator: ReferenceValidator, patient: dict, body_weight: dict) -> None:
    patient_profile = f"{CANONICAL}/StructureDefinition/diga-patient|0.1.0"
    assert errors(refvalidator.validate(patient, [patient_profile])) == []
    # an Observation checked against a Patient profile: wrong type
    outcome = refvalidator.validate(body_weight, [patient_profile])
    assert errors(outcome), summarize(outcome)


# ----------------------------------------------------------------------------- broken instances

def test_wrong_loinc_code_breaks_the_pattern(refvalidator: ReferenceValidator) -> None:
    score = _seed("Observation-ExamplePHQ9Score.json")  # code = LOINC 44261-6, a CodeableConcept pattern
    score["code"]["coding"][0].update(code="70274-6", display="GAD-7 total score")
    outcome = refvalidator.validate(score)
    hits = _matching(outcome, lambda i: expression(i) == "Observation.code"
                     and (message_id(i) or "").startswith(("TYPE_CHECKS_PATTERN", "TYPE_CHECKS_FIXED")))
    assert hits, summarize(outcome)
    assert "44261-6" in text(hits[0]) and f"{CANONICAL}/StructureDefinition/diga-phq9-score" in text(hits[0])


def test_wrong_loinc_code_misses_the_core_slice(refvalidator: ReferenceValidator, body_weight: dict) -> None:
    """The body weight's LOINC code is fixed by the core slice BodyWeightCode (the DiGA profile adds a
    SNOMED CT slice beside it instead of a pattern on the whole code)."""
    body_weight["code"]["coding"][0].update(code="8302-2", display="Body height")
    outcome = refvalidator.validate(body_weight)
    hits = _matching(outcome, lambda i: "BodyWeightCode" in text(i))
    assert hits, summarize(outcome)


@pytest.mark.parametrize(("seed", "element"), [
    ("Patient-ExamplePatient.json", "birthDate"),
    ("Observation-ExampleBodyWeight.json", "subject"),
])
def test_missing_required_element(refvalidator: ReferenceValidator, seed: str, element: str) -> None:
    resource = _seed(seed)
    del resource[element]
    rtype = resource["resourceType"]
    outcome = refvalidator.validate(resource)
    hits = _matching(outcome, lambda i: message_id(i) == "Validation_VAL_Profile_Minimum"
                     and text(i).startswith(f"{rtype}.{element}: minimum required = 1"))
    assert hits, summarize(outcome)
    # the validator reports a missing element on its parent, and names the profile that requires it
    assert expression(hits[0]) == rtype
    assert any(f"{CANONICAL}/StructureDefinition/" in text(h) for h in hits), summarize(outcome)


def test_unit_outside_the_required_value_set(refvalidator: ReferenceValidator, body_weight: dict) -> None:
    body_weight["valueQuantity"].update(code="[lb_av]", unit="lb", value=160)
    outcome = refvalidator.validate(body_weight)
    hits = _matching(outcome, lambda i: expression(i) == "Observation.value.ofType(Quantity).code"
                     and (message_id(i) or "").startswith("Terminology_TX_NoValid")
                     and BODY_WEIGHT_UNITS in text(i))
    assert hits, summarize(outcome)
    assert "[lb_av]" in text(hits[0])


def test_a_unit_from_the_value_set_is_accepted(refvalidator: ReferenceValidator, body_weight: dict) -> None:
    body_weight["valueQuantity"].update(code="g", unit="g", value=72400)
    outcome = refvalidator.validate(body_weight)
    assert errors(outcome) == [], summarize(outcome)


@pytest.mark.parametrize("profile", [
    "http://fhir.de/StructureDefinition/no-such-profile",
    f"{CANONICAL}/StructureDefinition/diga-no-such-profile",
])
def test_unknown_claimed_profile_is_an_error(refvalidator: ReferenceValidator, patient: dict, profile: str) -> None:
    patient["meta"]["profile"] = [profile]
    outcome = refvalidator.validate(patient)
    hits = _matching(outcome, lambda i: expression(i) == "Patient.meta.profile[0]"
                     and (message_id(i) or "").startswith("VALIDATION_VAL_PROFILE_UNKNOWN"))
    assert hits, summarize(outcome)
    assert profile in text(hits[0])


def test_unknown_requested_profile_is_an_error(refvalidator: ReferenceValidator, patient: dict) -> None:
    outcome = refvalidator.validate(patient, ["http://fhir.de/StructureDefinition/no-such-profile"])
    assert [message_id(i) for i in errors(outcome)] == ["REFVALIDATOR_UNKNOWN_PROFILE"], summarize(outcome)


# ----------------------------------------------------------------------------- bad requests

BAD_REQUESTS = {
    "not-json": ("this is not json {", "REFVALIDATOR_BAD_REQUEST"),
    "json-but-not-an-object": ('["a", "list"]', "REFVALIDATOR_BAD_REQUEST"),
    "resource-not-an-object": ('{"id": "r", "resource": "Patient"}', "REFVALIDATOR_BAD_REQUEST"),
    "unreadable-path": ('{"id": "p", "path": "/nonexistent/Patient-x.json"}', "REFVALIDATOR_BAD_REQUEST"),
    "nothing-to-validate": ('{"id": "n"}', "REFVALIDATOR_BAD_REQUEST"),
    "garbage-resource-text": ('{"id": "t", "text": "{\\"resourceType\\": \\"Patient\\", garbage"}', None),
    "profiles-not-strings": ('{"id": "q", "resource": {"resourceType": "Patient"}, "profiles": [{"x": 1}]}',
                             "REFVALIDATOR_BAD_REQUEST"),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_request_gets_a_fatal_issue_and_the_server_goes_on(
        refvalidator: ReferenceValidator, patient: dict, name: str) -> None:
    line, expected_id = BAD_REQUESTS[name]
    answer = refvalidator.send_raw(line)
    fatal = [i for i in answer["outcome"]["issue"] if i["severity"] == "fatal"]
    assert len(fatal) >= 1, answer
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    assert answer["id"] == (request.get("id") if isinstance(request, dict) else None)
    if expected_id:
        assert message_id(fatal[0]) == expected_id
    assert refvalidator.alive
    assert errors(refvalidator.validate(patient)) == []


def test_validate_many_keeps_the_order(refvalidator: ReferenceValidator, body_weight: dict) -> None:
    batch = []
    for n in range(25):
        o = copy.deepcopy(body_weight)
        o["id"] = f"w{n}"
        o["valueQuantity"]["value"] = 60 + n
        batch.append(o)
    del batch[7]["subject"]
    batch[18]["valueQuantity"]["code"] = "[lb_av]"
    outcomes = refvalidator.validate_many(batch)
    assert len(outcomes) == 25
    failing = [n for n, oc in enumerate(outcomes) if errors(oc)]
    assert failing == [7, 18], [summarize(outcomes[n], "error") for n in failing]
