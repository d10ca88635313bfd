"""JSON shape: unknown elements, arrays, null, empty values; hostile input never raises."""

from exporter.validation import messages as M
from tests.unit.validation.conftest import at, ids


def test_unknown_element_with_suggestion(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["valueQuantty"] = obs.pop("valueQuantity")
    issues = validator.validate(obs)
    unknown = [i for i in issues if i.message_id == M.UNKNOWN_ELEMENT]
    assert unknown and "did you mean 'valueQuantity'" in unknown[0].message
    assert unknown[0].expression == ("Observation.valueQuantty",)


def test_array_and_single_value_shapes(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["category"] = obs["category"][0]
    obs["status"] = [obs["status"]]
    issues = validator.validate(obs)
    assert at(issues, M.JSON_ARRAY_EXPECTED) == ["Observation.category"]
    assert at(issues, M.JSON_ARRAY_UNEXPECTED) == ["Observation.status"]


def test_null_empty_array_empty_object(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["gender"] = None
    pat["telecom"] = []
    pat["name"][0]["period"] = {}
    issues = validator.validate(pat)
    assert at(issues, M.JSON_NULL) == ["Patient.gender"]
    assert at(issues, M.EMPTY_ARRAY) == ["Patient.telecom"]
    assert at(issues, M.EMPTY_OBJECT) == ["Patient.name[0].period"]


def test_primitive_extension_alignment(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["name"][0]["given"] = ["Erika", None]
    own_prefix = {"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix", "valueString": "x"}
    pat["name"][0]["_given"] = [None, {"extension": [own_prefix]}]
    assert M.JSON_NULL not in ids(validator.validate(pat))
    pat["name"][0]["_given"] = [None, None]
    assert M.JSON_NULL in ids(validator.validate(pat))


def test_hostile_inputs_are_issues_not_exceptions(validator):
    cases = {
        b"not json": M.NOT_JSON,
        b"[1, 2]": M.NOT_OBJECT,
        b'"x"': M.NOT_OBJECT,
        b'{"resourceType": "NoSuchThing"}': M.UNKNOWN_RESOURCE_TYPE,
        b'{"status": "final"}': M.NO_RESOURCE_TYPE,
        b'{"resourceType": "Patient", "name": "\\x"}': M.NOT_JSON,
        (b'{"a":' * 10_000) + b"1" + (b"}" * 10_000): M.NOT_JSON,
        b'{"resourceType": "Patient", "birthDate": 19640812}': M.PRIMITIVE_INVALID,
        b'{"resourceType": "Patient", "active": "true"}': M.PRIMITIVE_INVALID,
    }
    for raw, expected in cases.items():
        issues = validator.validate_json(raw)
        assert expected in ids(issues), (raw[:40], [i.format() for i in issues])


def test_deep_nesting_inside_limits_is_reported(validator):
    value: dict = {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueString": "x"}
    for _ in range(200):
        value = {"url": "http://example.org/nested", "extension": [value]}
    issues = validator.validate({"resourceType": "Patient", "extension": [value]})
    assert M.TOO_DEEP in ids(issues)


def test_huge_array_is_bounded(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["note"] = [{"text": ""}] * 20_000  # every item invalid: the issue cap ends the run
    issues = validator.validate(obs)
    assert any(i.message_id == M.TOO_LARGE for i in issues)
    assert len(issues) <= validator.max_issues + 1


def test_size_limit(validator):
    issues = validator.validate_json(b" " * (validator.max_bytes + 1))
    assert ids(issues) == [M.TOO_LARGE]
