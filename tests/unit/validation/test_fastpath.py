"""The clean path (exporter/validation/fastpath.py) changes speed, never results: the validator with
it and without it (Validator(clean_path=False), the walk only) report the same issues — same
severity, code, message id, message and expression — over the IG examples, the deliberately invalid
IG cases, the differential corpus's broken variants and a few hundred seeded random mutations of
valid resources and of a whole exported document Bundle."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from typing import Any

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation.validator import Validator
from tests.system.test_differential import _broken, _examples, _mutate
from tests.unit.validation.test_ig_invalid_cases import MANIFEST, _load

SEED = 4711


@pytest.fixture(scope="module")
def pair() -> tuple[Validator, Validator]:
    store = default_store(get_settings())
    # equivalence, not time bounds, is under test: a busy host must not make one side stop early
    return Validator(store, time_limit_s=600), Validator(store, clean_path=False, time_limit_s=600)


def _issues(v: Validator, resource: Any) -> Counter:
    return Counter((i.severity.value, i.code.value, i.message_id, i.message, i.expression)
                   for i in v.validate(copy.deepcopy(resource)))


def _corpus() -> dict[str, Any]:
    ex = _examples()
    cases: dict[str, Any] = {f"example:{k}": v for k, v in ex.items()}
    cases.update(_broken(ex))
    cases.update({f"ig-invalid:{c['file']}": _load(c["file"]) for c in MANIFEST["cases"]})
    rng = random.Random(SEED)
    names = sorted(ex)
    for i in range(300):
        base = rng.choice(names)
        mutant, how = _mutate(ex[base], rng)
        if rng.random() < 0.3:  # some with two changes
            mutant, how2 = _mutate(mutant, rng)
            how += "+" + how2
        cases[f"mutant:{i}:{base}:{how}"] = mutant
    return cases


CORPUS = _corpus()


@pytest.mark.parametrize("name", sorted(CORPUS), ids=lambda n: n[:80])
def test_same_issues_with_and_without_clean_path(pair, name):
    fast, walk = pair
    assert _issues(fast, CORPUS[name]) == _issues(walk, CORPUS[name])


def test_corpus_has_both_verdicts(pair):
    _, walk = pair
    verdicts = Counter(any(i.is_error for i in walk.validate(copy.deepcopy(r))) for r in CORPUS.values())
    assert verdicts[True] > 100 and verdicts[False] > 30, verdicts


def test_exported_bundle_with_mutated_entries(pair, typical_bundle):
    """A whole export (many resources, references, slices, narratives), clean and with errors
    planted in a few entries: nested resources' issues must survive a probe of their Bundle."""
    bundle = typical_bundle
    fast, walk = pair
    assert _issues(fast, bundle) == _issues(walk, bundle) == Counter()
    rng = random.Random(SEED)
    harmless = 0
    for _ in range(25):
        mutant = copy.deepcopy(bundle)
        # the mapped entries: the Questionnaires (copied from the IG) have so many optional elements that
        # a dropped one often breaks nothing
        mapped = [k for k, e in enumerate(mutant["entry"]) if e["resource"]["resourceType"] != "Questionnaire"]
        for _ in range(rng.randint(1, 3)):
            i = rng.choice(mapped)
            entry = mutant["entry"][i]
            if rng.random() < 0.2:
                entry["zzUnknown"] = "x"  # an entry-level problem beside the resource's own
            entry["resource"], _ = _mutate(entry["resource"], rng)
        expected = _issues(walk, mutant)
        harmless += not expected  # some mutations (e.g. dropping an optional element) break nothing
        assert _issues(fast, mutant) == expected
    assert harmless <= 25 // 3, f"most mutations should break something ({harmless} of 25 did not)"


@pytest.fixture(scope="module")
def typical_bundle() -> dict[str, Any]:
    from exporter.pipeline import Exporter
    # the export's validation must not stop early on a busy host: equivalence is under test, not time
    settings = get_settings().model_copy(update={"validation_time_limit_seconds": 600.0})
    doc = json.loads((settings.root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
    result = Exporter.from_settings(settings).export(doc, export_time="2026-04-06T10:00:00+02:00")
    assert result.bundle is not None, [i.format() for i in result.issues]
    return result.bundle


def test_clean_export_never_needs_the_walk(pair, typical_bundle, walked):
    """A clean export is decided by the clean path alone: no object of it falls back to the walk
    (an invariant the FHIRPath translator declines at run time, such as per-1's temporal comparison
    on the Composition's covered period, is decided without leaving the clean path)."""
    fast, _ = pair
    fast.forget()
    assert fast.validate(copy.deepcopy(typical_bundle)) == []
    assert walked == []


def _first(bundle: dict[str, Any], profile: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if profile in (e["resource"].get("meta", {}).get("profile") or [""])[0])


@pytest.mark.parametrize("how", ["performer-unresolved", "performer-second-bad", "target-claims-other-profile",
                                 "target-claims-nothing"])
def test_reference_lists_and_target_claims_same_issues(pair, typical_bundle, how):
    """Reference lists are checked without per-item paths, target claims decided once per type: a
    problem is still reported by the walk, with its real path."""
    fast, walk = pair
    bundle = copy.deepcopy(typical_bundle)
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    if how == "performer-unresolved":
        obs["performer"] = [{"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}]
    elif how == "performer-second-bad":
        obs["performer"] = [obs["subject"], {"reference": "urn:uuid:NOT-A-UUID"}]
    elif how == "target-claims-other-profile":
        patient["meta"]["profile"] = [patient["meta"]["profile"][0].replace("diga-patient", "diga-device")]
    else:
        del patient["meta"]
    expected = _issues(walk, bundle)
    assert expected, "the change should break something"
    assert _issues(fast, bundle) == expected


@pytest.mark.parametrize("how", ["third-systolic", "no-diastolic", "unknown-component", "swapped", "component-string"])
def test_component_slices_same_issues(pair, typical_bundle, how):
    """Slices assigned and counted by the clean path: a broken slicing is reported by the walk."""
    fast, walk = pair
    bundle = copy.deepcopy(typical_bundle)
    bp = _first(bundle, "diga-blood-pressure")
    systolic, diastolic = bp["component"]
    if how == "third-systolic":
        bp["component"].append(copy.deepcopy(systolic))
    elif how == "no-diastolic":
        bp["component"] = [systolic]
    elif how == "unknown-component":
        bp["component"].append({"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                                "valueQuantity": {"value": 60, "unit": "/min", "system": "http://unitsofmeasure.org",
                                                  "code": "/min"}})
    elif how == "swapped":
        bp["component"] = [diastolic, systolic]
    else:
        bp["component"].append("systolic")
    expected = _issues(walk, bundle)
    assert _issues(fast, bundle) == expected
    if how in ("third-systolic", "no-diastolic", "component-string"):
        assert expected, "the change should break something"


@pytest.mark.parametrize("how", ["unresolved", "wrong-type", "not-a-uuid", "local", "extra-key", "empty", "number",
                                 "clean-for-another-element"])
def test_bare_references_same_issues(pair, typical_bundle, how):
    """A Reference that is just {"reference": "urn:uuid:…"} takes a shortcut in the clean path; when
    it is not that or does not resolve to an allowed target, both validators report the same. A urn
    found clean for one element (the Composition's section entries, validated first, name every
    Observation) is no clean subject of an Observation: what a Bundle remembers clean is per target
    plan."""
    fast, walk = pair
    bundle = copy.deepcopy(typical_bundle)
    observations = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    obs = observations[-1]["resource"]
    device = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Device")
    if how == "clean-for-another-element":
        entries = json.dumps(bundle["entry"][0]["resource"].get("section"))
        assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
        assert observations[0]["fullUrl"] in entries  # validated (and found clean) before the subject
    obs["subject"] = {
        "clean-for-another-element": {"reference": observations[0]["fullUrl"]},
        "unresolved": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
        "wrong-type": {"reference": device},
        "not-a-uuid": {"reference": "urn:uuid:NOT-A-UUID"},
        "local": {"reference": "#p1"},
        "extra-key": {"reference": obs["subject"]["reference"], "zzUnknown": 1},
        "empty": {"reference": ""},
        "number": {"reference": 7},
    }[how]
    expected = _issues(walk, bundle)
    assert expected, "the change should break something"
    assert _issues(fast, bundle) == expected


@pytest.mark.parametrize("how", ["required-absent", "prohibited-present", "optional-absent"])
def test_single_element_bounds_same_issues(pair, typical_bundle, how):
    """The clean path decides the bounds of an element with one key (counted 0 or 1) when it is
    compiled: a required one must be there, a prohibited one (the document Bundle's entry.request,
    0..0) must not, an optional one asks nothing. Both validators report the same."""
    fast, walk = pair
    bundle = copy.deepcopy(typical_bundle)
    entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    if how == "required-absent":
        del entry["resource"]["status"]
    elif how == "prohibited-present":
        entry["request"] = {"method": "PUT", "url": "Observation/x"}
    else:
        entry["resource"].pop("performer", None)
    expected = _issues(walk, bundle)
    assert bool(expected) is (how != "optional-absent")
    assert _issues(fast, bundle) == expected


@pytest.mark.parametrize(("rt", "key", "holds"), [
    ("Bundle", "entry", True),  # entry.resource: its issues carry the entry's path
    ("Observation", "contained", True),
    ("Parameters", "parameter", True),  # parameter.resource, and parameter.part is parameter again (a cycle)
    ("Observation", "code", False),
    ("Observation", "component", False),
    ("Observation", "extension", False),  # Extension.value[x] admits no resource
    ("Observation", "subject", False),
    ("Questionnaire", "item", False),  # item.item: a cycle without a resource
])
def test_which_values_can_hold_a_resource(pair, rt, key, holds):
    """Compiler.holds_resource: only where a value can hold a resource does the clean path build the
    value's own path (a resource inside it is validated for real, its issues under that path)."""
    fast, _ = pair
    compiler = fast.compiler
    root = compiler.type_root(rt)
    assert compiler.holds_resource(compiler.object_rule(root, rt).members[key]) is holds
    assert compiler.holds_resource(compiler.object_rule(root, rt).members[key]) is holds  # remembered alike


def test_paths_inside_values_that_hold_a_resource(pair, typical_bundle):
    """Problems deep inside values that hold no resource (their paths are never built by the clean
    path) and inside resources nested in values that do (Bundle.entry, contained): every path is the
    walk's."""
    fast, walk = pair
    mutant = copy.deepcopy(typical_bundle)
    entries = [e for e in mutant["entry"] if e["resource"]["resourceType"] == "Observation"]
    entries[0]["resource"]["code"]["coding"][0]["system"] = 7  # a coding deep in a CodeableConcept
    entries[1]["resource"]["category"][0]["coding"][0]["zz"] = "x"  # a sliced array's item
    entries[2]["resource"]["contained"] = [{"resourceType": "Patient", "id": "p", "gender": "nope"}]
    entries[2]["resource"]["subject"] = {"reference": "#p"}
    expected = _issues(walk, mutant)
    paths = {p for *_, where in expected for p in where}
    assert any(".code.coding[0]" in p for p in paths) and any(".category[0].coding[0]" in p for p in paths)
    assert any(".contained[0]" in p for p in paths), paths
    assert _issues(fast, mutant) == expected


@pytest.mark.parametrize(("key", "holds"), [("entry", True), ("meta", False), ("identifier", False), ("link", False)])
def test_which_values_of_a_profile_can_hold_a_resource(key, holds):
    """The same through a profile's own elements (sliced, constrained), on a validator that decided
    nothing yet: the answer does not depend on what was asked before."""
    store = default_store(get_settings())
    fresh = Validator(store)
    root, _ = fresh._profile("https://diga-exporter.example.org/fhir/StructureDefinition/diga-document-bundle|0.1.0")
    assert root is not None
    assert fresh.compiler.holds_resource(fresh.compiler.object_rule(root, "Bundle").members[key]) is holds


@pytest.mark.parametrize("how", ["primitive-list", "complex-string", "handler-object", "entry-resource-string",
                                 "entry-resource-broken"])
def test_key_loop_branches_same_issues(pair, typical_bundle, how):
    """compile_rule's key loop has a branch only for the kinds of entry its table holds (a resource
    has no value holding a resource: no kind 3), the commonest first: a wrong value of each kind is
    still found, and Bundle.entry (kind 3: its resource validated under the entry's own path) keeps
    its branch."""
    fast, walk = pair
    mutant = copy.deepcopy(typical_bundle)
    entries = [e for e in mutant["entry"] if e["resource"]["resourceType"] == "Observation"]
    res = entries[0]["resource"]
    if how == "primitive-list":
        res["status"] = ["final"]  # kind 1
    elif how == "complex-string":
        res["code"] = "x"  # kind 2
    elif how == "handler-object":
        res["category"] = {"text": "x"}  # kind 0: an array wanted
    elif how == "entry-resource-string":
        entries[1]["resource"] = "x"  # kind 3
    else:
        entries[1]["resource"]["status"] = "nope"  # kind 3, a problem inside the entry's resource
    expected = _issues(walk, mutant)
    assert expected
    assert _issues(fast, mutant) == expected
