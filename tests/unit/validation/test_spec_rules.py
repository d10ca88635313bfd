"""Rules the differential on FHIR's own examples brought in (urls, attachments, identifiers, vital
signs, sub-extensions, extension contexts on primitives, core profiles as reference targets, `is`/
`as`, systemless Codings against required bindings, the unresolved-reference policy): each case
checked in the walk and the clean path alike."""

from __future__ import annotations

import base64
import copy
import hashlib

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation import messages as M
from exporter.validation.fhirpath_native import R4_CHOICE_NAMES, translate
from exporter.validation.policy import Policy
from exporter.validation.validator import Validator

DIV = {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}


@pytest.fixture(scope="module")
def store():
    return default_store(get_settings())


def _ids(store, resource, policy: Policy | None = None) -> list[tuple[str, str]]:
    fast = Validator(store, policy=policy).validate(copy.deepcopy(resource))
    walk = Validator(store, policy=policy, clean_path=False).validate(copy.deepcopy(resource))
    assert fast == walk
    return [(i.message_id, i.expression[0] if i.expression else "") for i in walk if i.is_error]


def test_example_urls_everywhere_but_fullurl_and_own_url(store):
    pat = {"resourceType": "Patient", "text": DIV,
           "identifier": [{"system": "http://example.org/mrn", "value": "1"},
                          {"system": "http://www.acme.org.au/units", "value": "2"},  # a real host that merely starts alike
                          {"system": "https://lab.acme.com/ids", "value": "3"}],
           "telecom": [{"system": "url", "value": "mailto:x@example.org"}]}
    assert _ids(store, pat) == [(M.EXAMPLE_URL, "Patient.identifier[0].system"),
                                (M.EXAMPLE_URL, "Patient.identifier[2].system")]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": "http://example.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "text": DIV}}]}
    assert _ids(store, bundle) == []
    vs = {"resourceType": "Questionnaire", "url": "http://example.org/Questionnaire/q", "status": "draft", "text": DIV}
    assert _ids(store, vs) == []
    assert _ids(store, pat, Policy(example_urls="allow")) == []


def test_canonicals_absolute_or_contained(store):
    q = {"resourceType": "Questionnaire", "status": "draft", "text": DIV,
         "derivedFrom": ["Questionnaire/other", "#vs", "https://fhir.example.test/Questionnaire/x"],
         "contained": [{"resourceType": "ValueSet", "id": "vs", "status": "draft"}]}
    assert _ids(store, q) == [(M.CANONICAL_RELATIVE, "Questionnaire.derivedFrom[0]")]
    q["derivedFrom"][1] = "#nothing"
    assert (M.FRAGMENT_UNRESOLVED, "Questionnaire.derivedFrom[1]") in _ids(store, q)


def test_attachment_size_and_hash(store):
    data = b"hello"
    att = {"contentType": "text/plain", "data": base64.b64encode(data).decode(), "size": 5,
           "hash": base64.b64encode(hashlib.sha1(data).digest()).decode()}
    media = {"resourceType": "Media", "status": "completed", "content": att, "text": DIV}
    assert _ids(store, media) == []
    media["content"] = dict(att, size=6, hash="571ef9c5655840f324e679072ed62b1b95eef8a0")
    assert _ids(store, media) == [(M.ATTACHMENT_SIZE, "Media.content"), (M.ATTACHMENT_HASH, "Media.content")]


def test_uri_identifier_values(store):
    org = {"resourceType": "Organization", "text": DIV, "identifier": [{"system": "urn:ietf:rfc:3986", "value": "2.16.840.1"}]}
    assert _ids(store, org) == [(M.IDENTIFIER_URI, "Organization.identifier[0]")]
    org["identifier"][0]["value"] = "urn:oid:2.16.840.1"
    assert _ids(store, org) == []


def test_vital_signs_profile_by_loinc_code(store):
    obs = {"resourceType": "Observation", "status": "final", "text": DIV, "subject": {"reference": "Patient/1"},
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "vital-signs"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
           "valueQuantity": {"value": 37.1, "unit": "C", "system": "http://unitsofmeasure.org", "code": "Cel"}}
    found = _ids(store, obs)
    assert (M.CARD_MIN, "Observation.effective") in found  # bodytemp requires effective[x]
    obs["effectiveDateTime"] = "2024-01-01T10:00:00Z"
    assert _ids(store, obs) == []
    obs["code"]["coding"][0]["code"] = "1234-5"  # not a vital sign: Observation's own rules only
    del obs["effectiveDateTime"]
    assert _ids(store, obs) == []


def test_sub_extensions_must_be_defined_by_their_extension(store):
    pat = {"resourceType": "Patient", "text": DIV, "extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/patient-citizenship",
        "extension": [{"url": "code", "valueCodeableConcept": {"text": "DE"}}]}]}
    assert _ids(store, pat) == []
    pat["extension"][0]["extension"][0]["url"] = "nationality"
    assert [mid for mid, _ in _ids(store, pat)] == [M.EXTENSION_UNKNOWN]


def test_extension_context_on_a_primitive_is_its_element(store):
    pat = {"resourceType": "Patient", "text": DIV, "birthDate": "2020-01-01", "_birthDate": {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "2020-01-01T10:00:00Z"}]}}
    assert _ids(store, pat) == []
    pat["_gender"], pat["gender"] = pat.pop("_birthDate"), "female"  # birthTime on gender: out of context
    assert [mid for mid, _ in _ids(store, pat)] == [M.EXTENSION_CONTEXT]


def test_core_profile_as_target_profile(store):
    panel = {"resourceType": "Observation", "status": "final", "text": DIV, "code": {"text": "panel"},
             "hasMember": [{"reference": "Observation/hr"}, {"reference": "Patient/1"}]}
    assert _ids(store, panel) == [(M.REFERENCE_TARGET_TYPE, "Observation.hasMember[1].reference")]
    assert _ids(store, panel, Policy(unresolved_reference_types="ignore")) == []


@pytest.mark.parametrize("expression, value, holds", [
    ("operator = 'exists' implies (answer is Boolean)", {"operator": "exists", "answerBoolean": True}, True),
    ("operator = 'exists' implies (answer is Boolean)", {"operator": "exists", "answerString": "x"}, False),
    ("probability is decimal implies (probability as decimal) <= 100", {"probabilityDecimal": 0.5}, True),
    ("probability is decimal implies (probability as decimal) <= 100", {"probabilityDecimal": 101}, False),
    ("probability is decimal implies (probability as decimal) <= 100", {}, True),
])
def test_type_tests_translated(expression, value, holds):
    check = translate(expression, R4_CHOICE_NAMES)
    assert check is not None and check(value, "BackboneElement", {}) is holds


def test_coding_without_system_is_in_no_value_set(store):
    cond = {"resourceType": "Condition", "text": DIV, "subject": {"reference": "Patient/1"},
            "clinicalStatus": {"coding": [{"code": "active"}]}}
    assert (M.BINDING_REQUIRED, "Condition.clinicalStatus") in _ids(store, cond)
    cond["clinicalStatus"]["coding"][0]["system"] = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    assert _ids(store, cond) == []


def test_bare_system_values_take_no_extensions(store):
    pat = {"resourceType": "Patient", "id": "a", "text": DIV,
           "_id": {"extension": [{"url": "https://fhir.home.test/e", "valueString": "x"}]}}
    assert _ids(store, pat) == [(M.UNKNOWN_ELEMENT, "Patient._id")]
    pat = {"resourceType": "Patient", "text": DIV, "gender": "female", "_gender": {"id": "g"}}
    assert _ids(store, pat) == []  # an ordinary primitive may


def test_bundle_entries_need_a_full_url_outside_transactions(store):
    entry = {"resource": {"resourceType": "Patient", "text": DIV}}
    collection = {"resourceType": "Bundle", "type": "collection", "entry": [entry]}
    assert _ids(store, collection) == [(M.BUNDLE_FULLURL_MISSING, "Bundle.entry[0]")]
    transaction = {"resourceType": "Bundle", "type": "transaction",
                   "entry": [dict(entry, request={"method": "POST", "url": "Patient"})]}
    assert _ids(store, transaction) == []
