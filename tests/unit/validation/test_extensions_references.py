"""Extensions (unknown → error, context) and references (format, resolution, target type/profile)."""

from exporter.validation import messages as M
from tests.unit.validation.conftest import IG, at, ids

BIRTHPLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
BODY_POSITION = "http://hl7.org/fhir/StructureDefinition/observation-bodyPosition"


def test_unknown_extension_is_an_error(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"url": "http://example.org/home-made", "valueString": "x"}]
    assert at(validator.validate(pat), M.EXTENSION_UNKNOWN) == ["Patient.extension[0]"]


def test_known_extension_in_context_is_accepted(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"url": BIRTHPLACE, "valueAddress": {"city": "Berlin"}}]
    assert ids(validator.validate(pat)) == []


def test_extension_value_type_is_checked(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"url": BIRTHPLACE, "valueString": "Berlin"}]
    assert M.UNKNOWN_ELEMENT in ids(validator.validate(pat))


def test_extension_outside_its_context(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"url": BODY_POSITION, "valueCodeableConcept": {"text": "sitting"}}]
    assert at(validator.validate(pat), M.EXTENSION_CONTEXT) == ["Patient.extension[0]"]


def test_extension_needs_url_and_ext1(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"valueString": "x"}]
    assert M.EXTENSION_NO_URL in ids(validator.validate(pat))
    pat["extension"] = [{"url": BIRTHPLACE}]
    assert any(i.message_id == M.INVARIANT and "ext-1" in i.message for i in validator.validate(pat))


def _bundle(*resources, kind="collection"):
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}", "resource": r}
                      for i, r in enumerate(resources)]}


def test_reference_resolution_and_target_type(validator, example):
    pat, obs, dev = example("Patient-ExamplePatient"), example("Observation-ExampleBodyWeight"), example("Device-ExampleDevice")
    obs.pop("performer", None)
    obs["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    assert ids(validator.validate(_bundle(pat, obs))) == []
    obs["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000009"}
    assert M.REFERENCE_UNRESOLVED in ids(validator.validate(_bundle(pat, obs)))
    obs["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000002"}  # the Device
    assert M.REFERENCE_TARGET_TYPE in ids(validator.validate(_bundle(pat, obs, dev)))


def test_reference_target_profile(validator, example):
    pat, obs = example("Patient-ExamplePatient"), example("Observation-ExampleBodyWeight")
    obs.pop("performer", None)
    pat.pop("meta", None)
    del pat["birthDate"]  # no longer a DiGAPatient
    obs["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    issues = validator.validate(_bundle(pat, obs))
    assert M.REFERENCE_TARGET_PROFILE in ids(issues), [i.format() for i in issues]


def test_reference_format(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["subject"] = {"reference": "patient 1"}
    assert M.REFERENCE_FORMAT in ids(validator.validate(obs))
    obs["subject"] = {"reference": "urn:uuid:NOT-A-UUID"}
    assert M.REFERENCE_FORMAT in ids(validator.validate(obs))


def test_meta_profile_claims(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["meta"] = {"profile": ["http://example.org/StructureDefinition/unknown"]}
    assert at(validator.validate(obs), M.PROFILE_UNKNOWN) == ["Observation.meta.profile[0]"]
    obs["meta"] = {"profile": [IG + "diga-patient"]}
    assert M.PROFILE_WRONG_TYPE in ids(validator.validate(obs))


def test_explicit_profile_is_applied(validator):
    bare = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}}
    assert ids(validator.validate(bare)) == []
    assert M.CARD_MIN in ids(validator.validate(bare, [IG + "diga-body-weight"]))
