"""The document's shape beyond single resources: deterministic order (issue 13, item 2).

* the Bundle does not depend on the order of the input lists: shuffled input, byte-identical output;
* entries: Composition, the timeless resources (Patient, Device, …), then the records by time, then id;
* section entries follow the same order, across the mappings that share a section.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime
from typing import Any

import orjson
import pytest

from exporter.engine.builder import TIME_ELEMENTS
from exporter.settings import get_settings
from tests.unit.mapping.conftest import EXPORT_TIME

ROOT = get_settings().root
LISTS = ("measurements", "diary_entries", "questionnaires", "diagnoses")


def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "samples" / "patients" / f"{name}.json").read_text(encoding="utf-8"))


def _bytes(exporter, doc: dict[str, Any]) -> bytes:
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues]
    return orjson.dumps(result.bundle)


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_input_gives_a_byte_identical_bundle(exporter, seed: int) -> None:
    doc = sample("typical")
    reference = _bytes(exporter, doc)
    shuffled = copy.deepcopy(doc)
    rng = random.Random(seed)
    for name in LISTS:
        rng.shuffle(shuffled[name])
    assert [r["id"] for r in shuffled["measurements"]] != [r["id"] for r in doc["measurements"]]
    assert _bytes(exporter, shuffled) == reference


def test_reversed_large_input_gives_a_byte_identical_bundle(exporter) -> None:
    doc = sample("large")
    reversed_doc = dict(doc, **{name: list(reversed(doc[name])) for name in LISTS})
    assert _bytes(exporter, reversed_doc) == _bytes(exporter, doc)


def _instant(resource: dict[str, Any]) -> datetime | None:
    for name in TIME_ELEMENTS:
        value = resource.get(name)
        if value is not None:
            text = value["start"] if isinstance(value, dict) else value
            if len(text) == 10:  # recordedDate: midnight in the mapping set's zone (Europe/Berlin)
                from zoneinfo import ZoneInfo
                return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin"))
            return datetime.fromisoformat(text)
    return None


def test_entries_are_ordered_by_time_then_id(exporter) -> None:
    bundle = json.loads(_bytes(exporter, sample("typical")))
    resources = [e["resource"] for e in bundle["entry"]]
    assert resources[0]["resourceType"] == "Composition" and resources[-1]["resourceType"] == "Provenance"
    mapped = [r for r in resources[1:] if r["resourceType"] not in ("Provenance", "Questionnaire")]
    rest = [r["resourceType"] for r in resources[1 + len(mapped):]]
    # the Questionnaires the responses answer follow the mapped resources, the Provenances come last
    assert rest == sorted(rest, key=lambda t: t == "Provenance") and "Questionnaire" in rest, rest
    timed = [i for i, r in enumerate(mapped) if _instant(r) is not None]
    assert [r["resourceType"] for r in mapped[:timed[0]]] == ["DeviceDefinition", "Device", "Patient"]
    assert timed == list(range(timed[0], len(mapped))), "timeless resources come first"
    keys = [(_instant(mapped[i]), mapped[i]["id"]) for i in timed]
    assert keys == sorted(keys)
    # the two questionnaires' response and score share a time: the id decides, not the mapping order
    same_time = [k for k in keys if sum(1 for x in keys if x[0] == k[0]) > 1]
    assert same_time, "typical.json has resources that share a time"


def test_section_entries_follow_the_entry_order(exporter) -> None:
    bundle = json.loads(_bytes(exporter, sample("typical")))
    position = {e["fullUrl"]: i for i, e in enumerate(bundle["entry"])}

    def walk(sections: list[dict[str, Any]]):
        for s in sections:
            yield s
            yield from walk(s.get("section", []))

    for section in walk(bundle["entry"][0]["resource"]["section"]):
        at = [position[e["reference"]] for e in section.get("entry", [])]
        assert at == sorted(at), section["title"]
    vital = next(s for s in walk(bundle["entry"][0]["resource"]["section"]) if s["code"]["coding"][0]["code"] == "1184593002")
    kinds = {bundle["entry"][position[e["reference"]]]["resource"]["meta"]["profile"][0] for e in vital["entry"]}
    assert len(kinds) == 5, "five mappings share the vital signs section, interleaved by time"


def test_the_bundle_identifier_does_not_depend_on_list_order(exporter) -> None:
    doc = sample("typical")
    flipped = dict(doc, diagnoses=list(reversed(doc["diagnoses"])))
    one = exporter.export(doc, export_time=EXPORT_TIME).bundle
    two = exporter.export(flipped, export_time=EXPORT_TIME).bundle
    assert one["identifier"] == two["identifier"] and one["id"] == two["id"]
    changed = copy.deepcopy(doc)
    changed["diagnoses"][0]["display"] += " (geändert)"
    assert exporter.export(changed, export_time=EXPORT_TIME).bundle["id"] != one["id"], "content still counts"


def test_unreadable_times_never_raise() -> None:
    from exporter.engine.builder import _order_key

    for value in ("2026-02-30", "not a time", "2026", "2026-03", "2026-03-01T25:00:00Z", ""):
        _order_key(0, {"id": "x", "effectiveDateTime": value}, "Europe/Berlin")
    assert _order_key(0, {"id": "x", "recordedDate": "2026-03-01"}, "No/Such_Zone")[0] == 2


def test_times_are_ordered_as_instants_whatever_their_offsets() -> None:
    from exporter.engine.builder import _order_key

    times = ["2026-03-01T01:30:00+02:00", "2026-02-28T23:45:00Z", "2026-03-01T00:10:00+01:00", "2026-03-01",
             "2026-02-28T18:20:00-05:00", "9999-12-31T23:00:00-02:00", "0001-01-01T00:30:00+01:00"]
    keys = {t: _order_key(0, {"id": "x", "effectiveDateTime": t}, "Europe/Berlin") for t in times}
    assert all(k[0] == 1 for k in keys.values()), "the ends of the calendar (beyond UTC's) are instants too"
    # in UTC: 0000-12-31 23:30, 23:00 (a date: Berlin's midnight), 23:10, 23:20, 23:30, 23:45, 10000-01-01 01:00
    assert sorted(times, key=keys.__getitem__) == [
        "0001-01-01T00:30:00+01:00", "2026-03-01", "2026-03-01T00:10:00+01:00", "2026-02-28T18:20:00-05:00",
        "2026-03-01T01:30:00+02:00", "2026-02-28T23:45:00Z", "9999-12-31T23:00:00-02:00"]


# ----------------------------------------------------------------------------- a period without data (item 4)

def _empty_period() -> dict[str, Any]:
    doc = sample("minimal")
    for name in LISTS:
        doc[name] = []
    return doc


def test_a_period_without_data_is_a_valid_document(exporter) -> None:
    result = exporter.export(_empty_period(), export_time=EXPORT_TIME)
    assert result.ok and result.bundle is not None, [i.format() for i in result.issues]
    sections = result.bundle["entry"][0]["resource"]["section"]
    # the titles are the narratives' language (German by default)
    assert [s["title"] for s in sections] == ["Befunde", "Fragebögen und Bewertungen", "Tagebuch", "Diagnosen"], \
        "sections keep their place"
    vital = sections[0]["section"]
    leaves = vital + sections[1:]
    assert len(leaves) == 4
    for s in leaves:
        assert "entry" not in s
        assert s["emptyReason"]["coding"] == [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                               "code": "nilknown", "display": "Nil Known"}]
        assert "nichts erfasst" in s["text"]["div"]


def test_an_empty_section_without_an_empty_reason_is_refused_by_the_profile(exporter) -> None:
    result = exporter.export(_empty_period(), export_time=EXPORT_TIME)
    bundle = copy.deepcopy(result.bundle)
    del bundle["entry"][0]["resource"]["section"][2]["emptyReason"]
    errors = [i for i in exporter.validator.validate(bundle) if i.is_error]
    assert any("dgx-cmp-1" in i.format() for i in errors), [i.format() for i in errors]


def test_a_section_left_out_entirely_never_becomes_an_empty_list(scratch_mappings) -> None:
    from tests.unit.mapping.conftest import load

    layout = scratch_mappings / "bundle.yaml"
    text = layout.read_text(encoding="utf-8")
    layout.write_text("\n".join(line for line in text.splitlines() if "empty_reason:" not in line) + "\n",
                      encoding="utf-8")
    result = load(scratch_mappings).export(_empty_period(), export_time=EXPORT_TIME)
    assert result.bundle is None
    composition = [i for i in result.issues if i.is_error]
    assert composition and all('"section": []' not in i.format() for i in composition)
    assert any("Composition.section" in i.format() and "minimum" in i.format() for i in composition), \
        [i.format() for i in composition]


# ----------------------------------------------------------------------------- origin of every value (item 3)

PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def _provenances(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Provenances of a Bundle by what they say: 'export', 'manual', 'device', 'computed'."""
    out = {}
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] != "Provenance":
            continue
        (agent,) = r["agent"]
        role, who = agent["type"]["coding"][0]["code"], agent["who"]["reference"]
        kind = {"assembler": "export", "performer": "device"}.get(role) or (
            "manual" if who.endswith(_id_of(bundle, "Patient")) else "computed")
        assert kind not in out, kind
        out[kind] = r
    return out


def _id_of(bundle: dict[str, Any], resource_type: str) -> str:
    return next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def test_every_value_names_its_origin(exporter) -> None:
    doc = sample("typical")
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    prov = _provenances(bundle)
    assert set(prov) == {"export", "manual", "device", "computed"}
    url_of = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
    targets = {kind: {t["reference"] for t in p["target"]} for kind, p in prov.items()}
    device, patient = url_of[_id_of(bundle, "Device")], url_of[_id_of(bundle, "Patient")]
    assert prov["manual"]["agent"][0]["who"] == {"reference": patient}
    assert prov["manual"]["agent"][0]["type"]["coding"][0] == {"system": PARTICIPANT, "code": "author", "display": "Author"}
    assert prov["computed"]["agent"][0]["who"] == {"reference": device}
    assert prov["export"]["agent"][0]["who"] == {"reference": device}
    (meter,) = prov["device"]["contained"]
    assert meter["resourceType"] == "Device" and prov["device"]["agent"][0]["who"]["reference"] == "#" + meter["id"]
    # each record by its origin: measurements by `source`, diary and answers typed in, scores computed
    by_origin: dict[str, set[str]] = {"manual": set(), "device": set(), "computed": set()}
    for e in bundle["entry"]:
        r = e["resource"]
        claimed = r["meta"]["profile"][0].split("|")[0].rsplit("/", 1)[1]
        if claimed in ("diga-diary-entry", "diga-questionnaire-response"):
            by_origin["manual"].add(e["fullUrl"])
        elif claimed in ("diga-phq9-score", "diga-gad7-score"):
            by_origin["computed"].add(e["fullUrl"])
    measurement_urls = {m["id"]: m["source"] for m in doc["measurements"]}
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Observation" and "vital-signs" in json.dumps(r.get("category")):
            record = next(m for m in doc["measurements"] if exporter.engine.resource_id(
                "Observation", _mapping_of(r), m["id"]) == r["id"])
            by_origin[measurement_urls[record["id"]]].add(e["fullUrl"])
    assert {k: targets[k] for k in by_origin} == by_origin
    assert len(by_origin["device"]) == sum(m["source"] == "device" for m in doc["measurements"]) > 0
    # the issue's situation: no value the patient typed in is attributed to the DiGA as its author
    assert not targets["computed"] & targets["manual"]
    # the export Provenance still covers the whole document
    assert targets["export"] >= set().union(*by_origin.values())


def _mapping_of(resource: dict[str, Any]) -> str:
    return resource["meta"]["profile"][0].split("|")[0].rsplit("/", 1)[1].removeprefix("diga-")


def test_a_measurement_changes_provenance_with_its_source(exporter) -> None:
    doc = sample("typical")
    first = doc["measurements"][0]
    url = None
    for flip in ("manual", "device"):
        first["source"] = flip
        bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
        prov = _provenances(bundle)
        if url is None:
            url = next(e["fullUrl"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "Observation"
                       and e["resource"]["effectiveDateTime"].startswith(first["measured_at"][:16]))
        other = "device" if flip == "manual" else "manual"
        assert url in {t["reference"] for t in prov[flip]["target"]}
        assert url not in {t["reference"] for t in prov[other]["target"]}


def test_an_origin_without_records_gets_no_provenance(exporter) -> None:
    bundle = exporter.export(sample("minimal"), export_time=EXPORT_TIME).bundle
    assert set(_provenances(bundle)) == {"export", "manual"}  # one weight, typed in
    assert set(_provenances(exporter.export(_empty_period(), export_time=EXPORT_TIME).bundle)) == {"export"}


def test_an_unknown_origin_is_a_load_error_with_its_line(scratch_mappings) -> None:
    from tests.unit.mapping.conftest import load

    path = scratch_mappings / "resources" / "diary-entry.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("origin: manual", "origin: manuel"), encoding="utf-8")
    issues = [i.format() for i in load(scratch_mappings).load_issues if i.is_error]
    assert len(issues) == 1 and "diary-entry.yaml:" in issues[0] and "MAP_ORIGIN_UNKNOWN" in issues[0], issues
    assert "did you mean 'manual'" in issues[0]


def test_a_source_value_without_an_origin_is_found_by_check(scratch_mappings, capsys) -> None:
    from exporter.cli import main

    layout = scratch_mappings / "bundle.yaml"
    text = layout.read_text(encoding="utf-8")
    start = text.index("    device:     #")
    end = text.index("    computed:", start)
    layout.write_text(text[:start] + text[end:], encoding="utf-8")
    assert main(["check", "--mappings", str(scratch_mappings)]) == 1
    out = capsys.readouterr().out
    assert "MAP_ORIGIN_UNKNOWN" in out and "'device'" in out and "blood-glucose.yaml:" in out


# ----------------------------------------------------------------------------- German base conventions (item 5)

LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
VERSIONS = {LOINC: "2.81", SNOMED: "http://snomed.info/sct/900000000000207008/version/20241101"}


def _codings(node: Any):
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for v in node.values():
            yield from _codings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _codings(v)


def _resources(bundle: dict[str, Any], claimed: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if f"/{claimed}|" in e["resource"]["meta"]["profile"][0]]


def test_every_loinc_and_snomed_coding_names_its_version(exporter) -> None:
    bundle = exporter.export(sample("typical"), export_time=EXPORT_TIME).bundle
    found = {LOINC: 0, SNOMED: 0}
    for coding in _codings(bundle):
        if coding["system"] in VERSIONS:
            assert coding.get("version") == VERSIONS[coding["system"]], coding
            found[coding["system"]] += 1
    assert found[LOINC] > 40 and found[SNOMED] > 30, found


SNOMED_BESIDE_LOINC = {  # LOINC → SNOMED CT, as in mappings/codes/measurement-kind-snomed.yaml (sources there)
    "29463-7": "27113001", "8302-2": "50373000", "8867-4": "364075005", "85354-9": "75367002",
    "8480-6": "271649006", "8462-4": "271650006", "15074-8": "434912009", "2339-0": "434912009"}


def test_vital_signs_carry_a_snomed_coding_beside_the_loinc_code(exporter) -> None:
    bundle = exporter.export(sample("typical"), export_time=EXPORT_TIME).bundle
    seen = set()
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] != "Observation" or "vital-signs" not in json.dumps(r["category"]):
            continue
        for concept in [r["code"]] + [c["code"] for c in r.get("component", [])]:
            (loinc,) = [c["code"] for c in concept["coding"] if c["system"] == LOINC]
            assert [c["code"] for c in concept["coding"] if c["system"] == SNOMED] == [SNOMED_BESIDE_LOINC[loinc]]
            seen.add(loinc)
    assert seen == set(SNOMED_BESIDE_LOINC), "typical.json has every kind, glucose in both units"


def test_the_kvnr_is_a_kvid10_identifier_typed_kvz10(exporter) -> None:
    bundle = exporter.export(sample("typical"), export_time=EXPORT_TIME).bundle
    (patient,) = _resources(bundle, "diga-patient")
    (kvid,) = [i for i in patient["identifier"] if i["system"] == "http://fhir.de/sid/gkv/kvid-10"]
    assert kvid["type"] == {"coding": [{"system": "http://fhir.de/CodeSystem/identifier-type-de-basis",
                                        "code": "KVZ10", "display": "Krankenversichertennummer"}]}


@pytest.mark.parametrize("given, split", [("Jonas", ["Jonas"]), ("Anna Lena", ["Anna", "Lena"]),
                                          ("  Anna \t Maria\nLuise ", ["Anna", "Maria", "Luise"])])
def test_the_name_is_official_with_one_element_per_given_name(exporter, given: str, split: list[str]) -> None:
    doc = sample("minimal")
    doc["patient"]["given_name"] = given
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    (patient,) = _resources(bundle, "diga-patient")
    assert patient["name"] == [{"use": "official", "family": doc["patient"]["family_name"], "given": split}]


@pytest.mark.parametrize("gender, fhir, legal", [("diverse", "other", "D"), ("female", "female", None),
                                                 ("male", "male", None), ("unknown", "unknown", None)])
def test_diverse_is_other_with_the_german_legal_entry(exporter, gender: str, fhir: str, legal: str | None) -> None:
    doc = sample("minimal")
    doc["patient"]["gender"] = gender
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    (patient,) = _resources(bundle, "diga-patient")
    assert patient["gender"] == fhir
    if legal is None:
        assert "_gender" not in patient
    else:
        assert patient["_gender"] == {"extension": [{
            "url": "http://fhir.de/StructureDefinition/gender-amtlich-de",
            "valueCoding": {"system": "http://fhir.de/CodeSystem/gender-amtlich-de", "code": legal, "display": "divers"}}]}


def _patient_entry(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


BREAK_CONVENTION = {
    "KVID-10 without its type": (lambda b: _patient_entry(b)["identifier"][1].pop("type"), "type"),
    "KVID-10 typed GKV (retired)": (lambda b: _patient_entry(b)["identifier"][1]["type"]["coding"][0].update(code="GKV"),
                                    "identifier-type-kvid-de-basis"),
    "a name that is not the official one": (lambda b: _patient_entry(b)["name"][0].update(use="usual"), "use"),
    "a SNOMED CT coding without its version": (
        lambda b: next(e["resource"] for e in b["entry"] if "diga-body-weight|" in e["resource"]["meta"]["profile"][0])
        ["code"]["coding"][1].pop("version"), "version"),
    "a legal gender entry outside gender-other-de": (
        lambda b: _patient_entry(b).update(gender="female", _gender={"extension": [{
            "url": "http://fhir.de/StructureDefinition/gender-amtlich-de",
            "valueCoding": {"system": "http://fhir.de/CodeSystem/gender-amtlich-de", "code": "W"}}]}), "gender-other-de"),
}


@pytest.mark.parametrize("name", list(BREAK_CONVENTION))
def test_the_profiles_refuse_a_broken_convention(exporter, name: str) -> None:
    bundle = copy.deepcopy(exporter.export(sample("typical"), export_time=EXPORT_TIME).bundle)
    assert [i for i in exporter.validator.validate(copy.deepcopy(bundle)) if i.is_error] == []
    mutate, word = BREAK_CONVENTION[name]
    mutate(bundle)
    errors = [i.format() for i in exporter.validator.validate(bundle) if i.is_error]
    assert errors and any(word in e for e in errors), errors
