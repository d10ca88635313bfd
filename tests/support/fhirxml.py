"""pytest plugin: the XML oracles installed by `make setup` — the official FHIR R4 XML schema
(fhir-single.xsd, with the R4 definitions in XML) and FHIR's own R4 examples (hl7.fhir.r4.examples#4.0.1).

`fhir_xsd` (session) loads the schema once; `fhir_xsd.assert_valid(xml_bytes)` is how a test checks every XML
it writes. The fixtures fail (never skip) when `make setup` has not installed the files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from exporter.settings import get_settings

XML_DIR = "fhir-xml/org/hl7/fhir/r4/model"
EXAMPLES_DIR = "fhir-examples/package"


def schema_dir() -> Path:
    return get_settings().tools / XML_DIR / "schema"


def definitions_dir() -> Path:
    """profiles-types.xml, profiles-resources.xml, profiles-others.xml: HL7's R4 definitions in XML."""
    return get_settings().tools / XML_DIR / "profile"


def examples_dir() -> Path:
    return get_settings().tools / EXAMPLES_DIR


def example_files() -> list[Path]:
    return sorted(p for p in examples_dir().glob("*.json") if p.name not in ("package.json", ".index.json"))


class FhirSchema:
    """fhir-single.xsd through libxml2 (the schema imports only its sibling files; no network)."""

    def __init__(self, path: Path):
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        self.schema = etree.XMLSchema(etree.parse(str(path), parser))

    def errors(self, xml: bytes) -> list[str]:
        doc = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True))
        if self.schema.validate(doc):
            return []
        return [f"{e.line}:{e.column}: {e.message}" for e in self.schema.error_log]

    def assert_valid(self, xml: bytes) -> None:
        problems = self.errors(xml)
        assert problems == [], "not valid against fhir-single.xsd:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="session")
def fhir_xsd() -> FhirSchema:
    path = schema_dir() / "fhir-single.xsd"
    if not path.is_file():
        pytest.fail(f"the FHIR R4 XML schema is missing ({path}); run `make setup`", pytrace=False)
    return FhirSchema(path)


@pytest.fixture(scope="session")
def fhir_examples() -> list[Path]:
    files = example_files()
    if len(files) < 5000:
        pytest.fail(f"hl7.fhir.r4.examples#4.0.1 is missing from {examples_dir()}; run `make setup`", pytrace=False)
    return files
