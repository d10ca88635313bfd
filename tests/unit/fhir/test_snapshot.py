"""Snapshot generation: regenerated snapshots of hl7.fhir.r4.core and igs/ equal the shipped ones
(on the properties of `snapshot.COMPARED`, differences listed in docs/validation.md), and bad
differentials end in one clear error naming the StructureDefinition and the element."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import main
from exporter.fhir.definitions import DefinitionStore, default_store
from exporter.fhir.packages import check_package
from exporter.fhir.snapshot import COMPARED, SnapshotError, generate_snapshot, snapshot_differences
from exporter.settings import get_settings
from exporter.validation.validator import Validator

CORE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/StructureDefinition/"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "validation.md"

# Every remaining difference, as listed with its reason in docs/validation.md.
KNOWN = {
    "provenance-relevant-history": ["Provenance.agent:Author.type: binding ('extensible', "
                                    "'http://hl7.org/fhir/ValueSet/provenance-history-agent-type') != shipped "
                                    "('extensible', 'http://hl7.org/fhir/ValueSet/provenance-agent-type')"],
    "catalog": ["SNAP_SLICE_WITHOUT_SLICING"],
    "familymemberhistory-genetic": ["SNAP_SLICE_WITHOUT_SLICING"],
    "diga-diary-entry": [f"Observation.note.{n}: missing" for n in ("id", "extension", "author[x]", "time", "text")],
}


def _body_weight(profile: str) -> dict[str, Any]:
    """The IG's body-weight example, claiming `profile`."""
    obs = json.loads(next(get_settings().igs_dir.glob("*/Observation-ExampleBodyWeight.json")).read_text(encoding="utf-8"))
    obs["meta"] = {"profile": [profile]}
    return obs


def _definitions() -> dict[str, dict[str, Any]]:
    settings = get_settings()
    files = sorted(check_package(settings.package_cache).glob("StructureDefinition-*.json"))
    files += sorted(settings.igs_dir.glob("*/StructureDefinition-*.json"))
    return {sd["url"]: sd for sd in (json.loads(f.read_text(encoding="utf-8")) for f in files)}


@pytest.fixture(scope="module")
def shipped() -> dict[str, dict[str, Any]]:
    return _definitions()


def _regenerate(shipped: dict[str, dict[str, Any]], *, recursive: bool) -> dict[str, list[str]]:
    """Differences per profile id; recursive: every profile's base lost its snapshot too."""
    stripped: dict[str, dict[str, Any]] = {}

    def resolve(url: str) -> dict[str, Any] | None:
        sd = shipped.get(url.split("|", 1)[0])
        if sd is None:
            return None
        if sd.get("derivation") != "constraint" or not recursive:
            return sd  # has a snapshot, so generation leaves it as it is
        if sd["url"] not in stripped:
            stripped[sd["url"]] = {k: copy.deepcopy(v) for k, v in sd.items() if k != "snapshot"}
        return stripped[sd["url"]]

    found: dict[str, list[str]] = {}
    for url, sd in shipped.items():
        if sd.get("derivation") != "constraint" or "snapshot" not in sd:
            continue
        target = resolve(url) if recursive else {k: v for k, v in copy.deepcopy(sd).items() if k != "snapshot"}
        assert target is not None
        try:
            generated = (target.get("snapshot") or {}).get("element") or generate_snapshot(target, resolve)
            target["snapshot"] = {"element": generated}
        except SnapshotError as exc:
            found[sd["id"]] = [i.message_id for i in exc.issues]
            continue
        diffs = snapshot_differences(generated, sd["snapshot"]["element"])
        if diffs:
            found[sd["id"]] = diffs
    return found


def test_every_shipped_snapshot_is_regenerated_from_its_differential(shipped):
    constraints = [sd for sd in shipped.values() if sd.get("derivation") == "constraint" and "snapshot" in sd]
    assert len(constraints) == 457  # 456 + the mirrored gender-amtlich-de extension
    assert _regenerate(shipped, recursive=False) == KNOWN


def test_bases_without_snapshot_are_generated_first(shipped):
    """vitalsigns → bodyweight → diga-body-weight: every level generated from its differential."""
    assert _regenerate(shipped, recursive=True) == KNOWN


def test_known_differences_and_compared_properties_are_documented():
    text = " ".join(DOCS.read_text(encoding="utf-8").split())
    for name in KNOWN:
        assert f"`{name}`" in text
    for prop in COMPARED:
        assert prop in text


def test_vitals_chain_shape(shipped):
    """The renamed choice of bodyweight becomes the type slice value[x]:valueQuantity, bp's component
    slices constrain value[x] in place; new slices follow the sliced element's children."""
    bw = {k: v for k, v in copy.deepcopy(shipped[CORE + "bodyweight"]).items() if k != "snapshot"}
    els = generate_snapshot(bw, lambda u: shipped.get(u.split("|", 1)[0]))
    by_id = {e["id"]: e for e in els}
    assert by_id["Observation.value[x]"]["slicing"]["rules"] == "closed"
    assert [t["code"] for t in by_id["Observation.value[x]"]["type"]] == ["Quantity"]
    assert by_id["Observation.value[x]:valueQuantity.code"]["binding"]["valueSet"].startswith(
        "http://hl7.org/fhir/ValueSet/ucum-bodyweight")
    assert by_id["Observation.value[x]:valueQuantity.code"]["base"]["path"] == "Quantity.code"
    ids = [e["id"] for e in els]
    assert ids.index("Observation.code.coding:BodyWeightCode") == ids.index("Observation.code.coding") + 1
    assert ids.index("Observation.code.coding:BodyWeightCode.system") > ids.index("Observation.code.coding:BodyWeightCode")


# -- the store and the validator ------------------------------------------------------------------

def _profile(url: str, base: str, elements: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    name = url.rsplit("/", 1)[-1]
    sd = {"resourceType": "StructureDefinition", "id": name, "url": url, "name": name.replace("-", ""),
          "status": "draft", "fhirVersion": "4.0.1", "kind": "resource", "abstract": False,
          "type": elements[0]["path"].split(".")[0] if elements else "Observation",
          "baseDefinition": base, "derivation": "constraint", "differential": {"element": elements}}
    sd.update(kw)
    return sd


WEIGHT = _profile(EX + "weight", CORE + "bodyweight", [
    {"id": "Observation.status", "path": "Observation.status", "fixedCode": "final"},
    {"id": "Observation.note", "path": "Observation.note", "max": "0"},
])


def _store(*sds: dict[str, Any]) -> DefinitionStore:
    store = default_store(get_settings())
    for sd in sds:
        store.add_resource(copy.deepcopy(sd), f"test/{sd['id']}.json")
    return store


def test_store_generates_once_and_keeps_it(shipped):
    store = _store(WEIGHT)
    sd = store.structure(EX + "weight")
    assert sd is not None and "snapshot" not in sd
    elements = store.snapshot(sd)
    assert store.snapshot(store.structure(EX + "weight")) is elements
    assert snapshot_differences(
        [e for e in elements if e["id"] not in ("Observation.status", "Observation.note")],
        [e for e in shipped[CORE + "bodyweight"]["snapshot"]["element"]
         if e["id"] not in ("Observation.status", "Observation.note")]) == []


def test_validator_uses_a_generated_snapshot():
    validator = Validator(_store(WEIGHT))
    obs = _body_weight(EX + "weight")
    assert [i for i in validator.validate(obs) if i.is_error] == []
    obs["status"], obs["note"] = "preliminary", [{"text": "x"}]
    assert sorted(i.message_id for i in validator.validate(obs) if i.is_error) == ["VAL_CARD_MAX", "VAL_FIXED"]


def test_igs_profiles_validate_the_same_from_their_differentials():
    """The validator over igs/ with every profile's snapshot removed (and so generated) reports
    exactly what it reports over SUSHI's snapshots: IG examples, broken variants, the invalid IG
    cases and seeded mutations."""
    from tests.system.test_differential import _broken, _examples, _mutate
    from tests.unit.validation.test_ig_invalid_cases import MANIFEST, _load

    settings = get_settings()
    stripped = default_store(settings)
    for f in sorted(settings.igs_dir.glob("*/StructureDefinition-*.json")):
        sd = json.loads(f.read_text(encoding="utf-8"))
        del sd["snapshot"]
        stripped.add_resource(sd, str(f))
    shipped_v, generated_v = Validator(default_store(settings)), Validator(stripped)
    examples = _examples()
    corpus = {**examples, **_broken(examples), **{c["file"]: _load(c["file"]) for c in MANIFEST["cases"]}}
    rng = random.Random(16)
    for i in range(100):
        name = rng.choice(sorted(examples))
        corpus[f"mutant {i} of {name}"] = _mutate(examples[name], rng)[0]

    def issues(v: Validator, resource: Any) -> list[str]:
        return sorted(f"{i.severity.value} {i.message_id} {i.message} {i.expression}" for i in v.validate(copy.deepcopy(resource)))

    differing = [name for name, res in corpus.items() if issues(shipped_v, res) != issues(generated_v, res)]
    assert len(corpus) > 150 and differing == []
    assert sum(bool(issues(shipped_v, r)) for r in corpus.values()) > 100  # most cases do report something


def test_core_examples_without_snapshot():
    """hl7.fhir.r4.core ships two profiles without a snapshot: example-section-library validates;
    example-composition types its sections with a profile core does not have (it publishes
    example-section-library, the sections name document-section-library) — an error, as in the HL7 tooling."""
    validator = Validator(default_store(get_settings()))
    doc = {"resourceType": "Composition", "meta": {"profile": [CORE + "example-section-library"]}, "status": "final",
           "type": {"text": "x"}, "date": "2020-01-01", "author": [{"display": "a"}], "title": "t",
           "section": [{"code": {"text": "other"}, "text": {"status": "generated",
                                                             "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}}]}
    assert {i.message_id for i in validator.validate(doc) if i.is_error} == {"VAL_SLICE_CLOSED"}
    doc["meta"]["profile"] = [CORE + "example-composition"]
    with pytest.raises(SnapshotError) as info:
        validator.validate(doc)
    (issue,) = info.value.issues
    assert (issue.message_id, issue.expression) == ("SNAP_PROFILE_UNKNOWN", ("Composition.section:procedure",))
    assert CORE + "document-section-library" in issue.message


def test_reslicing_names_slices_of_a_slice():
    sliced = _profile(EX + "sliced", CORE + "Observation", [
        {"id": "Observation.component", "path": "Observation.component",
         "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}},
        {"id": "Observation.component:a", "path": "Observation.component", "sliceName": "a", "max": "3"}])
    resliced = _profile(EX + "resliced", EX + "sliced", [
        {"id": "Observation.component:a", "path": "Observation.component", "sliceName": "a",
         "slicing": {"discriminator": [{"type": "value", "path": "value"}], "rules": "closed"}},
        {"id": "Observation.component:a/b", "path": "Observation.component", "sliceName": "a/b", "min": 1, "max": "1"},
        {"id": "Observation.component:a/b.code", "path": "Observation.component.code", "patternCodeableConcept": {"text": "b"}}])
    store = _store(sliced, resliced)
    elements = store.snapshot(store.structure(EX + "resliced"))  # type: ignore[arg-type]
    by_id = {e["id"]: e for e in elements}
    assert by_id["Observation.component:a/b"]["sliceName"] == "a/b"
    assert (by_id["Observation.component:a/b"]["min"], by_id["Observation.component:a/b"]["max"]) == (1, "1")
    assert by_id["Observation.component:a/b.code"]["patternCodeableConcept"] == {"text": "b"}
    ids = [e["id"] for e in elements]
    assert ids.index("Observation.component:a") < ids.index("Observation.component:a.code") < ids.index("Observation.component:a/b")


# -- bad differentials --------------------------------------------------------------------------

def _error(sd: dict[str, Any], *extra: dict[str, Any], where: str = "") -> Any:
    """The one issue of generating `sd`'s snapshot; it names the definition and the file it came from."""
    store = _store(sd, *extra)
    with pytest.raises(SnapshotError) as info:
        store.snapshot(store.structure(sd["url"]))  # type: ignore[arg-type]
    (issue,) = info.value.issues
    where = where or sd["id"]
    assert issue.is_error and f"StructureDefinition {EX}{where}:" in issue.message
    assert issue.location is not None and issue.location.file == f"test/{where}.json"
    return issue


@pytest.mark.parametrize("elements, base, message_id, element", [
    ([{"id": "Observation.status", "path": "Observation.status"}], EX + "nowhere", "SNAP_UNKNOWN_STRUCTURE", None),
    ([{"id": "Observation.colour", "path": "Observation.colour"}], CORE + "Observation", "SNAP_PATH_UNKNOWN", "Observation.colour"),
    ([{"id": "Observation.code.coding.colour", "path": "Observation.code.coding.colour"}], CORE + "Observation",
     "SNAP_PATH_UNKNOWN", "Observation.code.coding.colour"),
    ([{"id": "Patient.name", "path": "Patient.name"}], CORE + "Observation", "SNAP_PATH_UNKNOWN", "Patient"),
    ([{"id": "Observation.category", "path": "Observation.category", "min": 0}], CORE + "vitalsigns",
     "SNAP_MIN_WIDENED", "Observation.category"),
    ([{"id": "Observation.status", "path": "Observation.status", "max": "*"}], CORE + "Observation",
     "SNAP_MAX_WIDENED", "Observation.status"),
    ([{"id": "Observation.focus", "path": "Observation.focus", "min": 3, "max": "2"}], CORE + "Observation",
     "SNAP_CARDINALITY", "Observation.focus"),
    ([{"id": "Observation.identifier:a", "path": "Observation.identifier", "sliceName": "a"}], CORE + "Observation",
     "SNAP_SLICE_WITHOUT_SLICING", "Observation.identifier:a"),
    ([{"id": "Observation.code", "path": "Observation.code", "type": [{"code": "Colour"}]}], CORE + "Observation",
     "SNAP_TYPE_UNKNOWN", "Observation.code"),
    ([{"id": "Observation.code", "path": "Observation.code", "type": [{"code": "Quantity"}]}], CORE + "Observation",
     "SNAP_TYPE_NOT_ALLOWED", "Observation.code"),
    ([{"id": "Observation.valueColour", "path": "Observation.valueColour"}], CORE + "Observation",
     "SNAP_TYPE_NOT_ALLOWED", "Observation.valueColour"),
    ([{"id": "Observation.value[x].unit", "path": "Observation.value[x].unit", "min": 1}], CORE + "Observation",
     "SNAP_CHOICE_CHILDREN", "Observation.value[x].unit"),
    ([{"id": "Observation.status", "path": "Observation.status", "binding": {"strength": "preferred",
      "valueSet": "http://hl7.org/fhir/ValueSet/observation-status"}}], CORE + "Observation",
     "SNAP_BINDING_WEAKENED", "Observation.status"),
    ([{"id": "Observation.value[x]:valueString", "path": "Observation.value[x]", "sliceName": "valueString",
       "type": [{"code": "string"}]}], CORE + "bodyweight", "SNAP_SLICE_CLOSED", "Observation.value[x]:valueString"),
    ([{"id": "Observation.category", "path": "Observation.category",
       "slicing": {"discriminator": [{"type": "pattern", "path": "coding"}], "rules": "open"}}], CORE + "vitalsigns",
     "SNAP_SLICING", "Observation.category"),
    ([{"id": "Observation.status", "path": "Observation.code"}], CORE + "Observation", "SNAP_ID_PATH", "Observation.status"),
])
def test_bad_differentials_name_the_element(elements, base, message_id, element):
    issue = _error(_profile(EX + "bad", base, elements))
    assert issue.message_id == message_id
    assert issue.expression == ((element,) if element else ())


def test_neither_snapshot_nor_differential():
    issue = _error(_profile(EX + "empty", CORE + "Observation", []))
    assert issue.message_id == "SNAP_NO_DIFFERENTIAL"


def test_specialisation_is_not_generated():
    issue = _error(_profile(EX + "special", CORE + "DomainResource",
                            [{"id": "Thing", "path": "Thing"}], derivation="specialization", type="Thing"))
    assert issue.message_id == "SNAP_NOT_SUPPORTED"


def test_circular_bases():
    a = _profile(EX + "a", EX + "b", [{"id": "Observation.status", "path": "Observation.status"}])
    b = _profile(EX + "b", EX + "a", [{"id": "Observation.status", "path": "Observation.status"}])
    issue = _error(a, b, where="b")  # found while generating a's base b, whose base is a again
    assert issue.message_id == "SNAP_CIRCULAR" and f"{EX}a -> {EX}b -> {EX}a" in issue.message


def _quantity(profile: str) -> list[dict[str, Any]]:
    return [{"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity", "profile": [profile]}]}]


def _status(**kw: Any) -> list[dict[str, Any]]:
    return [{"id": "Observation.status", "path": "Observation.status", **kw}]


SLICING = {"discriminator": [{"type": "value", "path": "$this"}], "rules": "open"}


@pytest.mark.parametrize("elements, message_id, element, text", [
    # a type's profile must resolve, to a profile of that type (review-1 finding 10)
    (_quantity(EX + "nope-q"), "SNAP_PROFILE_UNKNOWN", "Observation.value[x]",
     f"type Quantity: profile {EX}nope-q cannot be resolved"),
    ([{"id": "Observation.extension:x", "path": "Observation.extension", "sliceName": "x",
       "type": [{"code": "Extension", "profile": [EX + "missing-extension"]}]}],
     "SNAP_PROFILE_UNKNOWN", "Observation.extension:x", f"profile {EX}missing-extension cannot be resolved"),
    (_quantity(CORE + "Patient"), "SNAP_PROFILE_WRONG_TYPE", "Observation.value[x]",
     f"profile {CORE}Patient constrains Patient, not Quantity"),
    # fixed[x]/pattern[x]/… must be of one of the element's types, in that type's JSON
    (_status(fixedCode=5), "SNAP_VALUE_TYPE", "Observation.status",
     "fixedCode must be a JSON string (the JSON of a code), not a number"),
    (_status(patternQuantity={"value": 1}), "SNAP_VALUE_TYPE", "Observation.status",
     "patternQuantity: the element has type code, not Quantity"),
    (_status(fixedString="final"), "SNAP_VALUE_TYPE", "Observation.status",
     "fixedString: the element has type code, not string"),
    (_status(fixedCode=["final"]), "SNAP_VALUE_TYPE", "Observation.status", "not an array"),
    ([{"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "patternQuantity": "1 kg"}],
     "SNAP_VALUE_TYPE", "Observation.value[x]:valueQuantity",
     "patternQuantity must be a JSON object (the JSON of a Quantity), not a string"),
    ([{"id": "Observation.value[x]", "path": "Observation.value[x]", "patternColour": {"hue": 1}}],
     "SNAP_VALUE_TYPE", "Observation.value[x]", "patternColour: the element has type"),
    ([{"id": "Observation.valueInteger", "path": "Observation.valueInteger", "minValueInteger": 1.5}],
     "SNAP_VALUE_TYPE", "Observation.value[x]:valueInteger", "minValueInteger must be a JSON integer"),
    (_status(fixed="final"), "SNAP_VALUE_TYPE", "Observation.status", "fixed does not name a datatype"),
    # only an element that repeats can be sliced
    (_status(slicing=SLICING) + [{"id": "Observation.status:a", "path": "Observation.status", "sliceName": "a"}],
     "SNAP_SLICE_NOT_REPEATING", "Observation.status", "Observation.status does not repeat (max 1), so it cannot be sliced"),
    ([{"id": "Observation.code.text", "path": "Observation.code.text", "slicing": SLICING}],
     "SNAP_SLICE_NOT_REPEATING", "Observation.code.text", "does not repeat"),
    ([{"id": "Observation", "path": "Observation", "slicing": SLICING}], "SNAP_SLICING", "Observation",
     "slicing is not allowed at the root of a profile"),
])
def test_profile_mistakes_are_errors(elements, message_id, element, text):
    """Mistakes the snapshot generation can see are errors naming the element, not silently dropped
    or left to fail later at instance level; messages quote no Python repr."""
    issue = _error(_profile(EX + "bad", CORE + "Observation", elements))
    assert (issue.message_id, issue.expression) == (message_id, (element,))
    assert text in issue.message and "{'" not in issue.message and "['" not in issue.message


@pytest.mark.parametrize("elements", [
    _quantity(CORE + "SimpleQuantity"),
    _quantity(CORE + "SimpleQuantity|4.0.1"),
    [{"id": "Observation.value[x]", "path": "Observation.value[x]",
      "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"}},
     {"id": "Observation.value[x]:valueString", "path": "Observation.value[x]", "sliceName": "valueString",
      "type": [{"code": "string"}], "fixedString": "x"}],
    _status(slicing=SLICING, max="1") + [{"id": "Observation.status:a", "path": "Observation.status", "sliceName": "a"}],
    [{"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "patternQuantity": {"value": 1.5, "unit": "kg"}},
     {"id": "Observation.valueQuantity.value", "path": "Observation.valueQuantity.value", "minValueDecimal": 0}],
    _status(fixedCode="final"),
    [{"id": "Observation.extension:x", "path": "Observation.extension", "sliceName": "x",
      "type": [{"code": "Extension", "profile": [CORE + "workflow-episodeOfCare"]}]}],
])
def test_profile_constraints_that_fit(elements):
    """The allowed forms next to the mistakes: a known profile (with its version), a choice type
    slice, a slicing that sets max 1 (as the HL7 tooling allows), values of the element's type."""
    store = _store(_profile(EX + "fits", CORE + "Observation", elements))
    assert store.snapshot(store.structure(EX + "fits"))  # type: ignore[arg-type]


def test_differential_without_ids_gets_them_from_paths():
    sd = _profile(EX + "no-ids", CORE + "Observation", [
        {"path": "Observation.component", "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}},
        {"path": "Observation.component", "sliceName": "sys", "min": 1, "max": "1"},
        {"path": "Observation.component.code", "patternCodeableConcept": {"text": "sys"}},
        {"path": "Observation.component", "sliceName": "dia", "max": "1"},
        {"path": "Observation.component.code", "patternCodeableConcept": {"text": "dia"}}])
    store = _store(sd)
    by_id = {e["id"]: e for e in store.snapshot(store.structure(sd["url"]))}  # type: ignore[arg-type]
    assert by_id["Observation.component:sys"]["min"] == 1
    assert by_id["Observation.component:sys.code"]["patternCodeableConcept"] == {"text": "sys"}
    assert by_id["Observation.component:dia.code"]["patternCodeableConcept"] == {"text": "dia"}
    assert "patternCodeableConcept" not in by_id["Observation.component.code"]


def test_mutated_differentials_fail_cleanly(shipped):
    """Seeded random damage to core differentials: a snapshot or a SnapshotError, never another exception."""
    rnd = random.Random(16)
    profiles = [sd for _, sd in sorted(shipped.items()) if sd.get("derivation") == "constraint" and "snapshot" in sd]
    values: list[Any] = [None, 1, -1, "x", "*", [], {}, [1], "0", True, "Observation.x", "a:b", "..", "",
                         {"discriminator": [1]}, {"rules": "closed"}, [{"key": 1}], [{"code": "Foo"}],
                         [{"code": "Quantity", "profile": "x"}], [{"code": "Extension", "profile": [1]}]]
    keys = ["id", "path", "sliceName", "min", "max", "type", "slicing", "binding", "constraint", "fixedCode",
            "contentReference", "extension", "condition"]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        sd = {k: copy.deepcopy(v) for k, v in rnd.choice(profiles).items() if k != "snapshot"}
        elements = sd["differential"]["element"]
        for _ in range(rnd.randint(1, 3)):
            roll = rnd.random()
            target = rnd.choice(elements)
            if roll < 0.2 and isinstance(target, dict):  # harmless, so that some generations succeed
                target[rnd.choice(["mustSupport", "isSummary"])] = rnd.choice([True, False])
            elif roll < 0.6 and isinstance(target, dict):
                target[rnd.choice(keys)] = copy.deepcopy(rnd.choice(values))
            elif roll < 0.8:
                elements.insert(rnd.randrange(len(elements) + 1), copy.deepcopy(rnd.choice(elements)))
            else:
                elements.append(copy.deepcopy(rnd.choice(values)))
        try:
            generate_snapshot(sd, lambda u: shipped.get(u.split("|", 1)[0]))
            outcomes["ok"] += 1
        except SnapshotError as exc:
            assert exc.issues[0].message_id.startswith("SNAP_") and sd["url"] in exc.issues[0].message
            outcomes["error"] += 1
    assert outcomes["ok"] > 10 and outcomes["error"] > 300  # both ways taken


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_validates_against_a_differential_only_profile(tmp_path, capsys):
    ig = tmp_path / "ig"
    ig.mkdir()
    (ig / "StructureDefinition-weight.json").write_text(json.dumps(WEIGHT))
    obs = _body_weight(EX + "weight")
    (tmp_path / "ok.json").write_text(json.dumps(obs))
    obs["status"] = "preliminary"
    (tmp_path / "bad.json").write_text(json.dumps(obs))
    assert main(["validate", "--ig", str(ig), str(tmp_path / "ok.json")]) == 0
    assert "valid (0 error(s)" in capsys.readouterr().out
    assert main(["validate", "--ig", str(ig), str(tmp_path / "bad.json")]) == 1
    assert "VAL_FIXED" in capsys.readouterr().out


def test_cli_reports_an_impossible_snapshot_compiler_style(tmp_path, capsys):
    ig = tmp_path / "ig"
    ig.mkdir()
    bad = _profile(EX + "weight", CORE + "bodyweight", [{"id": "Observation.category", "path": "Observation.category", "min": 0}])
    (ig / "StructureDefinition-weight.json").write_text(json.dumps(bad))
    (tmp_path / "obs.json").write_text(json.dumps(_body_weight(EX + "weight")))
    assert main(["validate", "--ig", str(ig), str(tmp_path / "obs.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{ig / 'StructureDefinition-weight.json'}: error SNAP_MIN_WIDENED: ")
    assert EX + "weight" in err and "(at Observation.category)" in err and "Traceback" not in err
