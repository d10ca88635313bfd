"""Slicing (assignment before rules; min/max/closed/order) and terminology bindings."""

from exporter.terminology.valuesets import ValueSetExpander
from exporter.validation import messages as M
from tests.unit.validation.conftest import at, ids


def test_required_slice_missing(validator, example):
    bp = example("Observation-ExampleBloodPressure")
    bp["component"] = [c for c in bp["component"] if "8462-4" not in str(c["code"])]
    issues = validator.validate(bp)
    assert any(i.message_id == M.SLICE_MIN and "DiastolicBP" in i.message for i in issues), [i.format() for i in issues]


def test_slice_max_exceeded(validator, example):
    bp = example("Observation-ExampleBloodPressure")
    systolic = next(c for c in bp["component"] if "8480-6" in str(c["code"]))
    bp["component"].append(systolic)
    issues = validator.validate(bp)
    assert any(i.message_id == M.SLICE_MAX and "SystolicBP" in i.message for i in issues)


def test_items_are_validated_against_their_slice(validator, example):
    bp = example("Observation-ExampleBloodPressure")
    systolic = next(c for c in bp["component"] if "8480-6" in str(c["code"]))
    systolic["valueQuantity"]["code"] = "kg"  # the slice fixes mm[Hg]
    issues = validator.validate(bp)
    assert any(i.is_error and "component" in (i.expression or ("",))[0] for i in issues), [i.format() for i in issues]


def test_required_binding(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["valueQuantity"]["code"] = "[lb_av]"
    obs["valueQuantity"]["unit"] = "lb"
    issues = validator.validate(obs)
    assert at(issues, M.BINDING_REQUIRED) == ["Observation.valueQuantity.code"]


def test_required_binding_on_code(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["status"] = "done"
    assert "Observation.status" in at(validator.validate(obs), M.BINDING_REQUIRED)


def test_unexpandable_system_is_a_warning_not_a_pass(validator):
    expander = ValueSetExpander(validator.store)
    exp = expander.expand("http://hl7.org/fhir/ValueSet/observation-codes")  # all of LOINC
    assert exp.contains("http://loinc.org", "29463-7") is None
    assert exp.contains("http://example.org/x", "1") is False


def test_local_expansion_include_exclude_and_filters(validator):
    expander = ValueSetExpander(validator.store)
    gender = expander.expand("http://hl7.org/fhir/ValueSet/administrative-gender")
    assert gender.contains("http://hl7.org/fhir/administrative-gender", "female") is True
    assert gender.contains("http://hl7.org/fhir/administrative-gender", "f") is False
    missing = expander.expand("http://example.org/no-such-vs")
    assert missing.problem and missing.contains("s", "c") is None


def test_binding_unchecked_warning(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["interpretation"] = [{"coding": [{"system": "http://snomed.info/sct", "code": "281302008"}]}]
    issues = validator.validate(obs)
    assert M.BINDING_REQUIRED not in ids(issues)
