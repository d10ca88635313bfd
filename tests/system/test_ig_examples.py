"""The examples in igs/ form one consistent, complete set (no validator needed; the reference validator
checks each file on its own in tests/system/test_refvalidator.py).

* every profile of the IG has a standalone example, and the example document contains one of each;
* the document is wired the way the exporter must wire it: entry[0] the Composition, fullUrl =
  urn:uuid:<id>, every reference is exactly one of the fullUrls, every clinical entry is listed in a
  Composition section, the Provenance targets everything else;
* relative references between standalone examples point at examples that exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.settings import get_settings

SEED_PACKAGE = "de.diga.export.r4"
DOCUMENT = "Bundle-ExampleDocumentBundle.json"
PACKAGE = get_settings().igs_dir / SEED_PACKAGE
CONFORMANCE = {"StructureDefinition", "ValueSet", "CodeSystem", "Questionnaire"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _resources() -> list[dict[str, Any]]:
    return [_load(p) for p in sorted(PACKAGE.glob("*.json")) if p.name not in ("package.json", ".index.json")]


RESOURCES = _resources()
CANONICAL = _load(PACKAGE / "package.json")["canonical"].rstrip("/")
PROFILES = sorted(r["url"] for r in RESOURCES
                  if r["resourceType"] == "StructureDefinition" and r.get("derivation") == "constraint"
                  and r.get("type") != "Extension")
EXAMPLES = [r for r in RESOURCES if r["resourceType"] not in CONFORMANCE]


def _claimed(resource: dict[str, Any]) -> set[str]:
    return {p.split("|")[0] for p in resource.get("meta", {}).get("profile", [])}


def _references(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path, value
            else:
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _references(item, f"{path}[{i}]")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return _load(PACKAGE / DOCUMENT)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_has_a_standalone_example(profile: str) -> None:
    assert any(profile in _claimed(r) for r in EXAMPLES), f"no example claims {profile}"


def test_the_document_contains_every_profile(document: dict[str, Any]) -> None:
    inside = set().union(*(_claimed(e["resource"]) for e in document["entry"]))
    missing = set(PROFILES) - inside - {f"{CANONICAL}/StructureDefinition/diga-document-bundle"}
    assert not missing, sorted(missing)


def test_document_shape(document: dict[str, Any]) -> None:
    assert document["type"] == "document"
    assert document["identifier"]["system"] == "urn:ietf:rfc:3986"
    assert document["identifier"]["value"].startswith("urn:uuid:")
    assert document["entry"][0]["resource"]["resourceType"] == "Composition"
    for entry in document["entry"]:
        assert entry["fullUrl"] == "urn:uuid:" + entry["resource"]["id"], entry["fullUrl"]


def test_every_reference_in_the_document_is_a_full_url_of_it(document: dict[str, Any]) -> None:
    full_urls = {e["fullUrl"] for e in document["entry"]}
    dangling = [(e["resource"]["resourceType"] + path, ref) for e in document["entry"]
                for path, ref in _references(e["resource"]) if ref not in full_urls]
    assert dangling == []


def test_composition_lists_every_clinical_entry(document: dict[str, Any]) -> None:
    composition = document["entry"][0]["resource"]

    def listed(sections: list[dict]) -> Iterator[str]:
        for s in sections:
            yield from (e["reference"] for e in s.get("entry", []))
            yield from listed(s.get("section", []))

    in_sections = set(listed(composition["section"]))
    clinical = {e["fullUrl"] for e in document["entry"]
                if e["resource"]["resourceType"] in ("Observation", "QuestionnaireResponse", "Condition")}
    assert clinical == in_sections


def test_provenance_targets_everything_it_describes(document: dict[str, Any]) -> None:
    provenance = [e for e in document["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert provenance
    targets = {t["reference"] for p in provenance for t in p["resource"]["target"]}
    described = {e["fullUrl"] for e in document["entry"]
                 if e["resource"]["resourceType"] not in ("Provenance", "Device", "DeviceDefinition")}
    assert described <= targets, sorted(described - targets)
    device = next(e["fullUrl"] for e in document["entry"] if e["resource"]["resourceType"] == "Device")
    patient = next(e["fullUrl"] for e in document["entry"] if e["resource"]["resourceType"] == "Patient")
    roles = {(a["type"]["coding"][0]["code"], a["who"]["reference"]) for p in provenance for a in p["resource"]["agent"]}
    # the DiGA assembled the document and computed the scores; the patient authored what they typed in
    assert roles == {("assembler", device), ("author", device), ("author", patient)}, roles
    export = [p for p in provenance if any(a["type"]["coding"][0]["code"] == "assembler" for a in p["resource"]["agent"])]
    assert len(export) == 1 and described <= {t["reference"] for t in export[0]["resource"]["target"]}, \
        "one Provenance, the export's, targets everything it describes"


def test_standalone_examples_reference_existing_examples() -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in EXAMPLES}
    broken = [(f"{r['resourceType']}/{r['id']}{path}", ref) for r in EXAMPLES if r["resourceType"] != "Bundle"
              for path, ref in _references(r)
              if ref not in known and ref[1:] not in {c["id"] for c in r.get("contained", [])}]
    assert broken == []
