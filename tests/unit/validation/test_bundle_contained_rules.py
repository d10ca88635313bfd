"""Bundle.link relations and contained resources, each case as the HL7 validator judges it (its
message id in the comment; checked against the reference validator offline: the ids and locations
below are the ones it gave): walk and clean path alike."""

from __future__ import annotations

import copy

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation import messages as M
from exporter.validation.validator import Validator
from tests.unit.validation.conftest import errors_in_both_paths as _errors


@pytest.fixture(scope="module")
def pair():
    store = default_store(get_settings())
    return Validator(store), Validator(store, clean_path=False)


def _bundle(kind: str, relations: list[str]) -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "link": [{"relation": r, "url": f"https://fhir.x.test/B{i}"} for i, r in enumerate(relations)]}


@pytest.mark.parametrize("kind, relations, expected", [
    # BUNDLE_LINK_SEARCH_NO_DUPLICATES at the repeated link
    ("searchset", ["self", "next", "self"], [(M.BUNDLE_LINK_DUPLICATE, "Bundle.link[2]")]),
    ("searchset", ["self", "next", "next"], [(M.BUNDLE_LINK_DUPLICATE, "Bundle.link[2]")]),
    ("history", ["next", "next"], [(M.BUNDLE_LINK_DUPLICATE, "Bundle.link[1]")]),
    ("searchset", ["self", "alternate", "alternate"], []),
    # ... at the relation, for every repetition, outside search results
    ("collection", ["self", "self", "self"], [(M.BUNDLE_LINK_DUPLICATE, "Bundle.link[1].relation"),
                                              (M.BUNDLE_LINK_DUPLICATE, "Bundle.link[2].relation")]),
    # BUNDLE_LINK_SEARCH_PROHIBITED
    ("collection", ["next"], [(M.BUNDLE_LINK_PAGING, "Bundle.link[0].relation")]),
    ("transaction", ["previous"], [(M.BUNDLE_LINK_PAGING, "Bundle.link[0].relation")]),
    ("collection", ["self", "alternate"], []),
])
def test_link_relations(pair, kind, relations, expected):
    assert _errors(pair, _bundle(kind, relations)) == expected


def _observation(**more) -> dict:
    obs = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}}
    obs.update(more)
    return obs


PATIENT = {"resourceType": "Patient", "id": "c1", "name": [{"family": "X"}]}
PROVENANCE = {"resourceType": "Provenance", "target": [{"reference": "#"}], "recorded": "2020-01-01T00:00:00Z",
              "agent": [{"who": {"display": "x"}}]}


def test_contained_resource_needs_an_id(pair):
    # Resource_RES_ID_Missing; its '#' refers to the resource containing it, so dom-3 holds
    assert _errors(pair, _observation(contained=[PROVENANCE])) == [(M.CONTAINED_ID_MISSING, "Observation.contained[0]")]
    assert _errors(pair, _observation(contained=[dict(PROVENANCE, id="p")])) == []


def test_contained_ids_are_unique(pair):
    # RESOURCE_DUPLICATE_CONTAINED_ID at the second one
    device = {"resourceType": "Device", "id": "c1"}
    obs = _observation(contained=[PATIENT, device], subject={"reference": "#c1"})
    assert _errors(pair, obs) == [(M.CONTAINED_ID_DUPLICATE, "Observation.contained[1]")]


def test_local_references_resolve(pair):
    # Reference_REF_CantResolve (with ref-1 and dom-3 where they fail too)
    assert _errors(pair, _observation(subject={"reference": "#"})) == [(M.FRAGMENT_UNRESOLVED, "Observation.subject.reference")]
    found = _errors(pair, _observation(contained=[PATIENT], subject={"reference": "#c2"}))
    assert found[0] == (M.FRAGMENT_UNRESOLVED, "Observation.subject.reference")
    assert {mid for mid, _ in found[1:]} == {M.INVARIANT}
    assert _errors(pair, _observation(contained=[PATIENT], subject={"reference": "#c1"})) == []


def _document(ref: str, version: str | None = "2") -> dict:
    patient: dict = {"resourceType": "Patient", "id": "a", "name": [{"family": "X"}]}
    if version is not None:
        patient["meta"] = {"versionId": version}
    composition = {"resourceType": "Composition", "id": "c", "status": "final", "type": {"text": "t"},
                   "date": "2020-01-01", "title": "t", "author": [{"reference": "https://fhir.x.test/Patient/a"}],
                   "subject": {"reference": ref}}
    return {"resourceType": "Bundle", "type": "document", "timestamp": "2020-01-01T00:00:00Z",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:33333333-1111-4111-8111-111111111111"},
            "entry": [{"fullUrl": "https://fhir.x.test/Composition/c", "resource": composition},
                      {"fullUrl": "https://fhir.x.test/Patient/a", "resource": patient}]}


def _unresolved(pair, resource) -> list[str]:
    fast, walk = pair
    found = walk.validate(copy.deepcopy(resource))
    assert fast.validate(copy.deepcopy(resource)) == found
    return [i.expression[0] for i in found if i.message_id == M.REFERENCE_UNRESOLVED]


@pytest.mark.parametrize("ref, version, resolves", [
    ("https://fhir.x.test/Patient/a/_history/2", "2", True),  # the HL7 validator accepts both
    ("Patient/a/_history/2", "2", True),
    ("https://fhir.x.test/Patient/a", "2", True),
    ("https://fhir.x.test/Patient/a/_history/3", "2", False),  # Bundle_BUNDLE_Entry_NotFound
    ("https://fhir.x.test/Patient/a/_history/2", None, False),  # the entry states no version
])
def test_version_specific_references_in_a_document(pair, ref, version, resolves):
    expected = [] if resolves else ["Bundle.entry[0].resource.subject.reference"]
    assert _unresolved(pair, _document(ref, version)) == expected


@pytest.mark.parametrize("full_url, mismatch", [
    ("https://fhir.x.test/Patient/b", True),  # a RESTful fullUrl names another id
    ("https://fhir.x.test/Patient/a", False),
    ("urn:uuid:5b1e8a3c-1111-4111-8111-111111111111", False),  # a urn names nothing to compare
])
def test_restful_full_url_names_its_resource(pair, full_url, mismatch):
    bundle = _document("https://fhir.x.test/Patient/a")
    bundle["entry"][1]["fullUrl"] = full_url
    found = [where for mid, where in _errors(pair, bundle) if mid == M.BUNDLE_RULE]
    assert found == (["Bundle.entry[1].fullUrl"] if mismatch else [])
