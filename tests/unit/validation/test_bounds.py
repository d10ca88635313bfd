"""minValue[x] / maxValue[x] (exporter/validation/bounds.py), on a profile of Observation that sets
bounds on a Quantity (with UCUM prefix conversion), a dateTime and an integer; the walk and the
clean path report the same."""

from __future__ import annotations

import copy
import json

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation import messages as M
from exporter.validation.validator import Validator

URL = "http://example.test/fhir/StructureDefinition/bounded-observation"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def pair() -> tuple[Validator, Validator]:
    store = default_store(get_settings())
    sd = copy.deepcopy(store.structure("http://hl7.org/fhir/StructureDefinition/Observation"))
    sd.update(url=URL, name="BoundedObservation", derivation="constraint", abstract=False,
              baseDefinition="http://hl7.org/fhir/StructureDefinition/Observation")
    sd.pop("differential", None)
    elements = {e["id"]: e for e in sd["snapshot"]["element"]}
    elements["Observation.value[x]"].update(minValueQuantity={"value": 20, "system": UCUM, "code": "kg"},
                                            maxValueQuantity={"value": 500, "system": UCUM, "code": "kg"})
    elements["Observation.effective[x]"]["minValueDateTime"] = "2000-01-01"
    elements["Observation.component.value[x]"].update(minValueInteger=0, maxValueInteger=10)
    store.add_resource(sd)
    return Validator(store), Validator(store, clean_path=False)


def _obs(**changes) -> dict:
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
           "effectiveDateTime": "2024-05-01T10:00:00+02:00",
           "valueQuantity": {"value": 70, "unit": "kg", "system": UCUM, "code": "kg"},
           "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">w</div>"}}
    obs.update(changes)
    return obs


def _bounds(pair, obs) -> list[tuple[str, str]]:
    fast, walk = pair
    found = walk.validate(copy.deepcopy(obs), [URL])
    assert fast.validate(copy.deepcopy(obs), [URL]) == found  # the clean path runs the same rules
    return [(i.message_id, i.expression[0]) for i in found if i.message_id in (M.MIN_VALUE, M.MAX_VALUE)]


def q(value, code="kg"):
    return {"value": value, "unit": code, "system": UCUM, "code": code}


@pytest.mark.parametrize("changes, expected", [
    ({}, []),
    ({"valueQuantity": q(10)}, [(M.MIN_VALUE, "Observation.valueQuantity")]),
    ({"valueQuantity": q(501)}, [(M.MAX_VALUE, "Observation.valueQuantity")]),
    ({"valueQuantity": q(500)}, []),  # bounds are inclusive
    ({"valueQuantity": q(30_000, "g")}, []),  # 30 kg
    ({"valueQuantity": q(19_999, "g")}, [(M.MIN_VALUE, "Observation.valueQuantity")]),
    ({"valueQuantity": q(600_000_000, "mg")}, [(M.MAX_VALUE, "Observation.valueQuantity")]),
    ({"valueQuantity": q(3, "[lb_av]")}, []),  # not convertible offline: not compared
    ({"effectiveDateTime": "1999-12-31T23:00:00Z"}, [(M.MIN_VALUE, "Observation.effectiveDateTime")]),
    ({"effectiveDateTime": "1999"}, [(M.MIN_VALUE, "Observation.effectiveDateTime")]),
    ({"effectiveDateTime": "2000"}, []),  # as precise as it goes, equal: no answer, no finding
    ({"component": [{"code": {"text": "c"}, "valueInteger": 11}]}, [(M.MAX_VALUE, "Observation.component[0].valueInteger")]),
    ({"component": [{"code": {"text": "c"}, "valueInteger": -1}]}, [(M.MIN_VALUE, "Observation.component[0].valueInteger")]),
    ({"component": [{"code": {"text": "c"}, "valueInteger": 10}]}, []),
], ids=lambda v: json.dumps(v)[:60] if isinstance(v, dict) else None)
def test_bounds(pair, changes, expected):
    assert _bounds(pair, _obs(**changes)) == expected


def test_message_names_bound_and_element_never_the_value(pair):
    fast, _ = pair
    issue = next(i for i in fast.validate(_obs(valueQuantity=q(10)), [URL]) if i.message_id == M.MIN_VALUE)
    assert issue.message == "the value is below the minimum 20 kg of Observation.value[x]"  # a value is patient data
    assert (issue.severity.value, issue.code.value) == ("error", "value")
