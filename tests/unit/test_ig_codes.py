"""The built IG package(s) in igs/, checked offline without any FHIR tooling.

* every SNOMED CT id has a valid Verhoeff check digit (and is a concept id), every LOINC code a valid
  Mod 10 check digit -- in snapshots, differentials, ValueSets, Questionnaires and examples alike;
* every profile has a snapshot, and the profiles the export needs are all there;
* every example (and every resource inside an example Bundle) claims a versioned profile of its own
  package, with the package version, and the IG version recorded in Provenance matches it too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.settings import get_settings
from exporter.terminology.checkdigits import (
    SCTID_CONCEPT_PARTITIONS,
    loinc_check_digit_ok,
    sctid_partition,
    snomed_verhoeff_ok,
)

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CONFORMANCE = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "NamingSystem",
                         "SearchParameter", "ImplementationGuide", "CapabilityStatement", "OperationDefinition",
                         "Questionnaire"})
"""Definitional resources: no meta.profile claim expected (Questionnaires are IG artefacts here)."""

EXPECTED_PROFILES = {
    "diga-document-bundle", "diga-composition", "diga-patient", "diga-device", "diga-device-definition",
    "diga-body-weight", "diga-body-height", "diga-heart-rate", "diga-blood-pressure", "diga-blood-glucose",
    "diga-phq9-score", "diga-gad7-score", "diga-diary-entry", "diga-questionnaire-response",
    "diga-condition", "diga-provenance",
}
SEED_PACKAGE = "de.diga.export.r4"


def _packages() -> list[Path]:
    igs = get_settings().igs_dir
    return sorted(p for p in igs.iterdir() if p.is_dir() and (p / "package.json").is_file())


def _resources(package: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(package.glob("*.json")):
        if path.name in ("package.json", ".index.json"):
            continue
        yield path.name, json.loads(path.read_text(encoding="utf-8"))


def _all_files() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{pkg.name}/{name}", res) for pkg in _packages() for name, res in _resources(pkg)]


FILES = _all_files()


# ----------------------------------------------------------------------------- collecting codes

def _walk(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """Yield (system, code, where) for every SNOMED CT / LOINC code found below `node`.

    Recognised shapes: anything with `system` + `code` (Coding, Quantity-like, pattern/fixed Coding),
    ValueSet `compose.include/exclude` (`system` + `concept[].code`), and ElementDefinitions that fix the
    code and the system on two sibling elements (`...coding.code` fixedCode + `...coding.system` fixedUri).
    """
    if isinstance(node, dict):
        system = node.get("system")
        if system in (SCT, LOINC):
            if isinstance(node.get("code"), str):
                yield system, node["code"], path
            for i, concept in enumerate(node.get("concept") or []):
                if isinstance(concept, dict) and isinstance(concept.get("code"), str):
                    yield system, concept["code"], f"{path}.concept[{i}]"
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


def _element_codes(sd: dict[str, Any], where: str) -> Iterator[tuple[str, str, str]]:
    for view in ("snapshot", "differential"):
        elements = (sd.get(view) or {}).get("element") or []
        by_id = {e.get("id"): e for e in elements}
        for e in elements:
            eid = e.get("id", "")
            if not eid.endswith(".code"):
                continue
            code = e.get("fixedCode") or e.get("patternCode")
            sys_el = by_id.get(eid[: -len(".code")] + ".system") or {}
            system = sys_el.get("fixedUri") or sys_el.get("patternUri")
            if code and system in (SCT, LOINC):
                yield system, code, f"{where}.{view}:{eid}"


def _codes() -> list[tuple[str, str, str]]:
    found = []
    for name, res in FILES:
        found += list(_walk(res, name))
        if res.get("resourceType") == "StructureDefinition":
            found += list(_element_codes(res, name))
    return found


CODES = _codes()


def test_codes_are_found() -> None:
    """The walker sees the codes we know are there (a guard against a walker that finds nothing)."""
    seen = {(s, c) for s, c, _ in CODES}
    for expected in [(LOINC, "29463-7"), (LOINC, "8480-6"), (LOINC, "53576-5"), (LOINC, "LA6568-5"),
                     (SCT, "706689003"), (SCT, "1184593002"), (SCT, "25064002")]:
        assert expected in seen, expected


def test_every_snomed_id_has_a_valid_verhoeff_check_digit() -> None:
    bad = sorted({(code, where) for system, code, where in CODES
                  if system == SCT and not snomed_verhoeff_ok(code)})
    assert bad == [], "SNOMED CT ids with a wrong check digit (or no SCTID at all):\n" + "\n".join(
        f"  {c} at {w}" for c, w in bad)


def test_every_snomed_id_is_a_concept_id() -> None:
    bad = sorted({(code, where) for system, code, where in CODES if system == SCT
                  and snomed_verhoeff_ok(code) and sctid_partition(code) not in SCTID_CONCEPT_PARTITIONS})
    assert bad == [], "SNOMED CT ids that are description or relationship ids, not concepts:\n" + "\n".join(
        f"  {c} at {w}" for c, w in bad)


def test_every_loinc_code_has_a_valid_check_digit() -> None:
    bad = sorted({(code, where) for system, code, where in CODES
                  if system == LOINC and not loinc_check_digit_ok(code)})
    assert bad == [], "LOINC codes with a wrong Mod 10 check digit:\n" + "\n".join(
        f"  {c} at {w}" for c, w in bad)


# ----------------------------------------------------------------------------- profiles and snapshots

def _profiles() -> list[tuple[str, dict[str, Any]]]:
    return [(n, r) for n, r in FILES
            if r.get("resourceType") == "StructureDefinition" and r.get("derivation") == "constraint"]


def test_every_expected_profile_is_built() -> None:
    ids = {r["id"] for n, r in _profiles() if n.startswith(SEED_PACKAGE + "/")}
    assert EXPECTED_PROFILES <= ids, sorted(EXPECTED_PROFILES - ids)


@pytest.mark.parametrize("name, sd", _profiles(), ids=[n for n, _ in _profiles()])
def test_every_profile_has_a_snapshot(name: str, sd: dict[str, Any]) -> None:
    elements = (sd.get("snapshot") or {}).get("element") or []
    assert elements, f"{name} has no snapshot"
    assert elements[0]["path"] == sd["type"], f"{name}: snapshot does not start at {sd['type']}"
    diff_ids = {e["id"] for e in (sd.get("differential") or {}).get("element") or []}
    snap_ids = {e["id"] for e in elements}
    assert diff_ids <= snap_ids, f"{name}: differential elements missing from the snapshot: {sorted(diff_ids - snap_ids)}"


# definitions mirrored from the HL7 Germany base profiles keep their own canonical and id (profiles_fsh/german-basis.fsh)
MIRRORED = "http://fhir.de/"


def test_profile_ids_are_kebab_case_with_prefix() -> None:
    bad = [r["id"] for n, r in FILES if r.get("resourceType") == "StructureDefinition"
           and n.startswith(SEED_PACKAGE + "/") and not r["url"].startswith(MIRRORED)
           and not (r["id"].startswith("diga-") and r["id"] == r["id"].lower())]
    assert bad == []


# ----------------------------------------------------------------------------- versioned profile claims

def _manifest(package: Path) -> dict[str, Any]:
    return json.loads((package / "package.json").read_text(encoding="utf-8"))


def _instances() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, resource, package manifest) for every example and every resource inside an example Bundle."""
    out = []
    for pkg in _packages():
        manifest = _manifest(pkg)
        for name, res in _resources(pkg):
            if res.get("resourceType") in CONFORMANCE:
                continue
            out.append((f"{pkg.name}/{name}", res, manifest))
            for i, entry in enumerate(res.get("entry") or [] if res.get("resourceType") == "Bundle" else []):
                if isinstance(entry.get("resource"), dict):
                    out.append((f"{pkg.name}/{name}#entry[{i}]", entry["resource"], manifest))
    return out


INSTANCES = _instances()


@pytest.mark.parametrize("where, res, manifest", INSTANCES, ids=[w for w, _, _ in INSTANCES])
def test_every_example_claims_a_versioned_profile_of_its_package(where: str, res: dict, manifest: dict) -> None:
    claims = (res.get("meta") or {}).get("profile") or []
    assert claims, f"{where}: no meta.profile"
    profile_ids = {r["id"] for n, r in FILES if r.get("resourceType") == "StructureDefinition"
                   and n.startswith(manifest["name"] + "/")}
    for claim in claims:
        url, sep, version = claim.partition("|")
        assert sep and version, f"{where}: unversioned claim {claim}"
        assert version == manifest["version"], f"{where}: claims version {version}, package is {manifest['version']}"
        prefix = manifest["canonical"].rstrip("/") + "/StructureDefinition/"
        assert url.startswith(prefix), f"{where}: {url} is not a profile of {manifest['name']}"
        assert url[len(prefix):] in profile_ids, f"{where}: claims unknown profile {url}"


def test_ig_version_recorded_in_provenance_matches_the_package() -> None:
    """RecordIGVersion (profiles_fsh/aliases.fsh) writes <canonical>/ImplementationGuide/<id>|<version>."""
    provenances = [(w, r, m) for w, r, m in INSTANCES if r.get("resourceType") == "Provenance"]
    assert provenances
    for where, res, manifest in provenances:
        expected = f"{manifest['canonical'].rstrip('/')}/ImplementationGuide/{manifest['name']}|{manifest['version']}"
        assert expected in res.get("policy", []), f"{where}: policy {res.get('policy')} lacks {expected}"


def test_questionnaire_responses_answer_a_versioned_questionnaire_of_the_package() -> None:
    for where, res, manifest in INSTANCES:
        if res.get("resourceType") != "QuestionnaireResponse":
            continue
        url, _, version = res["questionnaire"].partition("|")
        assert version == manifest["version"], where
        assert url.startswith(manifest["canonical"].rstrip("/") + "/Questionnaire/"), where


def test_definitional_instances_carry_the_package_version() -> None:
    for name, res in FILES:
        if res.get("resourceType") in ("Questionnaire", "StructureDefinition", "ValueSet", "CodeSystem",
                                       "ImplementationGuide"):
            pkg = get_settings().igs_dir / name.split("/")[0]
            assert res.get("version") == _manifest(pkg)["version"], name


def _config() -> dict[str, Any]:
    return yaml.safe_load(get_settings().sushi_config.read_text(encoding="utf-8"))


def test_package_version_is_the_sushi_config_version() -> None:
    config = _config()
    manifest = _manifest(get_settings().igs_dir / config["id"])
    assert manifest["version"] == str(config["version"])
    assert manifest["canonical"] == config["canonical"]


def test_the_package_has_its_own_implementation_guide_resource() -> None:
    """Rule set IGIdentity (profiles_fsh/aliases.fsh) repeats id and version of sushi-config.yaml."""
    config = _config()
    package = get_settings().igs_dir / config["id"]
    ig = json.loads((package / f"ImplementationGuide-{config['id']}.json").read_text(encoding="utf-8"))
    assert ig["id"] == ig["packageId"] == config["id"]
    assert ig["url"] == f"{config['canonical'].rstrip('/')}/ImplementationGuide/{config['id']}"
    assert ig["version"] == str(config["version"])
    assert ig["fhirVersion"] == [str(config["fhirVersion"])]


def test_seed_ids_are_kept() -> None:
    names = {n for n, _ in FILES}
    for seed in ("StructureDefinition-diga-patient.json", "StructureDefinition-diga-body-weight.json",
                 "ValueSet-body-weight-units.json", "Patient-ExamplePatient.json",
                 "Observation-ExampleBodyWeight.json"):
        assert f"{SEED_PACKAGE}/{seed}" in names, seed
