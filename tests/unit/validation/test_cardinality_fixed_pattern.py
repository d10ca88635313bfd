"""Cardinality (min, max, 0..0) and fixed/pattern values."""

from exporter.validation import messages as M
from exporter.validation.fixed_pattern import equals_fixed, matches_pattern
from tests.unit.validation.conftest import at, ids


def test_min_cardinality(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    del obs["subject"]
    assert at(validator.validate(obs), M.CARD_MIN) == ["Observation.subject"]


def test_max_cardinality_of_choice(validator, example):
    obs = example("Observation-ExampleBodyWeight")
    obs["valueString"] = "72 kg"  # value[x] is 1..1 and restricted to Quantity
    issues = validator.validate(obs)
    assert M.UNKNOWN_ELEMENT in ids(issues)  # valueString is not an allowed type here


def test_prohibited_element(validator, example):
    bp = example("Observation-ExampleBloodPressure")  # value[x] is 0..0: the values are in components
    bp["valueQuantity"] = {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    issues = validator.validate(bp)
    assert any(i.message_id == M.CARD_MAX and "prohibited" in i.message for i in issues), [i.format() for i in issues]


def test_pattern_on_code(validator, example):
    obs = example("Observation-ExamplePHQ9Score")  # code = LOINC 44261-6, a CodeableConcept pattern
    obs["code"]["coding"][0]["code"] = "70274-6"
    issues = validator.validate(obs)
    assert "Observation.code" in at(issues, M.PATTERN_MISMATCH)


def test_fixed_code_of_a_core_slice(validator, example):
    """The body weight's LOINC code is fixed by the core profile's slice BodyWeightCode (the DiGA profile
    adds a SNOMED CT slice beside it, so it sets no pattern on the whole code)."""
    obs = example("Observation-ExampleBodyWeight")
    obs["code"]["coding"][0]["code"] = "8302-2"
    issues = validator.validate(obs)
    assert any(i.message_id == M.SLICE_MIN and "BodyWeightCode" in i.message for i in issues), \
        [i.format() for i in issues]


def test_fixed_and_pattern_semantics():
    assert equals_fixed({"a": 1}, {"a": 1.0})
    assert not equals_fixed({"a": 1, "b": 2}, {"a": 1})
    assert not equals_fixed(True, 1)
    assert matches_pattern({"coding": [{"system": "s", "code": "c", "display": "d"}, {"code": "x"}]},
                           {"coding": [{"system": "s", "code": "c"}]})
    assert not matches_pattern({"coding": [{"system": "s", "code": "other"}]}, {"coding": [{"system": "s", "code": "c"}]})
    assert not matches_pattern({}, {"coding": [{"code": "c"}]})


def test_compiled_pattern_matcher_agrees_with_matches_pattern():
    import itertools

    from exporter.validation.fixed_pattern import matches_pattern, pattern_matcher
    patterns = [{"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, {"system": "s"}, [1, {"a": True}],
                True, 1, "x", None, {"a": [{"b": False}]}, [], {}]
    values = patterns + [{"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "d"}, {"code": "x"}]},
                         {"coding": [{"system": "http://loinc.org"}]}, {"system": "s", "code": 1}, [{"a": True}, 1, 2],
                         1.0, False, 0, "y", [None], {"a": [{"b": False}, {"b": 0}]}, {"a": [{"b": 0}]}]
    for pattern, value in itertools.product(patterns, values):
        assert pattern_matcher(pattern)(value) is matches_pattern(value, pattern), (pattern, value)
