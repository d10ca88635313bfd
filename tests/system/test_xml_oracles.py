"""Oracles of the FHIR XML writer and reader (exporter/formats/xml.py), all from the registries:

- FHIR's own R4 examples (hl7.fhir.r4.examples#4.0.1, 5,306 resources): JSON → XML → JSON is identical
  (decimals digit for digit), and every XML written validates against the official fhir-single.xsd;
- HL7's R4 definitions published as XML (hapi-fhir-validation-resources-r4): read, they equal the official
  JSON of the same resources, and XML → JSON → XML is identical after canonicalisation;
- the HL7 Java library's own JSON → XML conversion of a sample gives the same XML after canonicalisation;
- the HL7 reference validator parses every XML export with 0 errors.
"""

from __future__ import annotations

import multiprocessing
import re
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
import pytest
from lxml import etree

from exporter.fhir.json import FhirDecimal, loads_exact
from exporter.fhir.packages import package_dir
from exporter.formats.xml import XHTML_NS, XSI_NS, default_codec
from exporter.pipeline import Exporter
from exporter.settings import get_settings
from tests.support.fhirxml import definitions_dir
from tools.devstack.refvalidator import classpath, errors, find_java, summarize

_XHTML = "{" + XHTML_NS + "}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
                          remove_comments=True, remove_pis=True)
TIME = "2026-04-06T10:00:00+02:00"

# Examples that are not valid R4 themselves (the schema checks cardinality and lengths): each is listed with
# what fhir-single.xsd reports, so a new failure or a fixed one both show up.
XSD_INVALID_EXAMPLES = {
    "Bundle-dataelements.json": "ElementDefinition.type.code 'DataRequirement.subject[x]' is no xs:anyURI",
    "ImplementationGuide-fhir.json": "ImplementationGuide.name (1..1) missing",
    "ig-r4.json": "ImplementationGuide.name (1..1) missing",
    "Questionnaire-qs1.json": "Questionnaire.item.linkId (1..1) missing",
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json":
        "id longer than 64 characters",
    **{f"SearchParameter-{name}.json": "SearchParameter.base (1..*) missing" for name in (
        "codesystem-extensions-CodeSystem-author", "codesystem-extensions-CodeSystem-effective",
        "codesystem-extensions-CodeSystem-end", "codesystem-extensions-CodeSystem-keyword",
        "codesystem-extensions-CodeSystem-workflow", "valueset-extensions-ValueSet-author",
        "valueset-extensions-ValueSet-effective", "valueset-extensions-ValueSet-end",
        "valueset-extensions-ValueSet-keyword", "valueset-extensions-ValueSet-workflow")},
}


def _divs_canonical(value):
    """Narratives compared as XHTML (C14N): a div's text may spell characters differently after a trip
    through any XML parser (`&quot;` becomes `"`), its XHTML is the same."""
    if isinstance(value, dict):
        return {k: (etree.tostring(etree.fromstring(v.encode(), _PARSER), method="c14n2").decode()
                    if k == "div" and isinstance(v, str) else _divs_canonical(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_divs_canonical(v) for v in value]
    return value


def _fragment(value):
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text)
    raise TypeError(type(value).__name__)


def _sorted_json(value) -> bytes:
    """JSON text with sorted keys and every decimal in its own digits."""
    return orjson.dumps(value, default=_fragment, option=orjson.OPT_SORT_KEYS)


def canonical_xml(xml: bytes, *, narrative_whitespace: bool = True) -> bytes:
    """C14N 2.0 of FHIR XML without the whitespace between FHIR elements, comments and xsi attributes
    (narrative content kept as it is, unless narrative_whitespace=False collapses its whitespace runs)."""
    root = etree.fromstring(xml, _PARSER)
    for el in root.iter(etree.Element):
        for name in [a for a in el.attrib if a.startswith("{" + XSI_NS + "}")]:
            del el.attrib[name]
        if el.tag.startswith(_XHTML):
            if not narrative_whitespace:
                for name, value in el.attrib.items():
                    el.set(name, " ".join(value.split()))
                for child in el:
                    if child.tail is not None:
                        child.tail = " ".join(child.tail.split()) or None
                if el.text is not None:
                    el.text = " ".join(el.text.split()) or None
            continue
        if el.text is not None and el.text.isspace():
            el.text = None
        for child in el:
            if child.tail is not None and child.tail.isspace():
                child.tail = None
    return etree.tostring(root, method="c14n2")


def _round_trip_examples(paths: list[Path]) -> tuple[list[str], dict[str, str], int, int]:
    """JSON → XML (schema-checked) → JSON for some examples: (changed, schema problems, identical, identical
    up to the spelling of narratives). Runs in a worker process."""
    from tests.support.fhirxml import FhirSchema, schema_dir

    schema, codec = FhirSchema(schema_dir() / "fhir-single.xsd"), default_codec()
    changed, invalid, identical, same_xhtml = [], {}, 0, 0
    for path in paths:
        source = loads_exact(path.read_bytes())
        xml = codec.write(source)
        problems = schema.errors(xml)
        if problems:
            invalid[path.name] = problems[0]
        back, issues = codec.read(xml, source=path.name, max_bytes=None)
        if issues:
            changed.append(f"{path.name}: {issues[0].format()}")
        elif _sorted_json(back) == _sorted_json(source):
            identical += 1
        elif _sorted_json(_divs_canonical(back)) == _sorted_json(_divs_canonical(source)):
            same_xhtml += 1
        else:
            changed.append(path.name)
    return changed, invalid, identical, same_xhtml


def test_every_r4_example_round_trips_json_xml_json_and_is_schema_valid(fhir_examples, fhir_xsd):
    """All 5,306 resources, in two worker processes (the machine's two cores; ~1 min in CI)."""
    by_size = sorted(fhir_examples, key=lambda p: -p.stat().st_size)
    chunks = [by_size[i::8] for i in range(8)]
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_round_trip_examples, chunks))
    changed = [c for r in results for c in r[0]]
    invalid = {k: v for r in results for k, v in r[1].items()}
    identical, same_xhtml = sum(r[2] for r in results), sum(r[3] for r in results)
    assert changed == []
    assert sorted(invalid) == sorted(XSD_INVALID_EXAMPLES), invalid
    assert identical + same_xhtml == len(fhir_examples) and identical > 4500


def test_decimals_of_the_examples_keep_their_digits(fhir_examples):
    """Every decimal written with a fraction in the examples' JSON appears with the same digits in the XML."""
    codec = default_codec()
    seen = 0
    for path in fhir_examples[::3]:
        text = path.read_bytes()
        digits = {m.group(1) for m in re.finditer(rb'"value(?:Decimal)?": (-?\d+\.\d+)\b', text)}
        xml = codec.write(loads_exact(text))
        for d in digits:
            assert b'value="' + d + b'"' in xml, (path.name, d)
            seen += 1
    assert seen > 50


def _official_json(resource_type: str, rid: str) -> dict:
    return loads_exact((package_dir(get_settings().package_cache) / f"{resource_type}-{rid}.json").read_bytes())


def _collapse_whitespace(value):
    """HL7's published XML carries raw line breaks inside attribute values; XML 1.0 (3.3.3) makes every one a
    space. Strings are therefore compared with whitespace runs collapsed, and nothing else is relaxed."""
    if isinstance(value, dict):
        return {k: _collapse_whitespace(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_collapse_whitespace(v) for v in value]
    if isinstance(value, str):
        return " ".join(value.split())
    return value


@pytest.mark.parametrize("name", ["profiles-types.xml", "profiles-resources.xml", "profiles-others.xml"])
def test_hl7s_own_xml_reads_and_writes_back_identically(name):
    codec = default_codec()
    data = (definitions_dir() / name).read_bytes()
    bundle, issues = codec.read(data, source=name, max_bytes=None)
    assert issues == [], [i.format() for i in issues[:5]]
    assert canonical_xml(codec.write(bundle)) == canonical_xml(data)


def test_hl7s_own_xml_reads_as_hl7s_own_json():
    """The data types as published in XML (profiles-types.xml) read exactly as the same definitions in the
    hl7.fhir.r4.core#4.0.1 JSON. (The jar's profiles-resources.xml carries later technical corrections,
    e.g. of Questionnaire's que-5 xpath, so only the data types are compared resource for resource.)"""
    codec = default_codec()
    bundle, issues = codec.read((definitions_dir() / "profiles-types.xml").read_bytes(), max_bytes=None)
    assert issues == []
    for entry in bundle["entry"]:
        r = entry["resource"]
        expected = _collapse_whitespace(_divs_canonical(_official_json(r["resourceType"], r["id"])))
        assert _sorted_json(_collapse_whitespace(_divs_canonical(r))) == _sorted_json(expected), r["id"]
    assert len(bundle["entry"]) >= 60


def test_a_sample_matches_the_hl7_java_librarys_own_conversion(fhir_examples, tmp_path):
    """tools/java/convert/Hl7JsonToXml.java (org.hl7.fhir.r4.formats on the reference validator's jars) converts
    every 20th example (below 1 MB) and one export; ours must give the same XML after canonicalisation. The one
    relaxation: narratives are compared with whitespace runs collapsed, because HL7's XHTML writer re-indents
    around comments and keeps raw line breaks in attribute values (which XML 1.0 attribute-value
    normalisation turns into spaces for any parser). That ours copies a narrative byte for byte is shown in
    tests/unit/formats/test_xml.py."""
    java = find_java()
    assert java, "no java on PATH (make setup needs Java 17+)"
    sample = [p for p in fhir_examples[::20] if p.stat().st_size < 1_000_000]
    result = _exporter().export(orjson.loads((get_settings().root / "samples/patients/typical.json").read_bytes()),
                                export_time=TIME)
    export = tmp_path / "export-typical.json"
    export.write_bytes(orjson.dumps(result.bundle))
    files = [*sample, export]
    source = get_settings().root / "tools" / "java" / "convert" / "Hl7JsonToXml.java"
    out = tmp_path / "java"
    proc = subprocess.run([java, "-cp", classpath(), str(source), str(out), *map(str, files)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    codec = default_codec()
    different, not_read_back = [], []
    for path in files:
        ours = codec.write(loads_exact(path.read_bytes()))
        theirs = (out / (path.name[:-5] + ".xml")).read_bytes()
        if canonical_xml(ours, narrative_whitespace=False) != canonical_xml(theirs, narrative_whitespace=False):
            different.append(path.name)
        # and their XML → our JSON → our XML is their XML again (narratives strictly)
        value, issues = codec.read(theirs, source=path.name, max_bytes=None)
        if issues or canonical_xml(codec.write(value)) != canonical_xml(theirs):
            not_read_back.append(path.name)
    assert different == [] and not_read_back == [] and len(files) > 200


@pytest.mark.refvalidator
@pytest.mark.parametrize("sample", ["minimal", "typical"])
def test_the_hl7_validator_parses_every_xml_export_with_no_errors(sample, refvalidator, fhir_xsd):
    """The XML of the sample exports, compact and indented, as the HL7 validator reads it. (The large export's
    XML is checked by the schema, the round trip and the benchmark; the HL7 validator needs minutes for it.)"""
    doc = orjson.loads((get_settings().root / "samples" / "patients" / f"{sample}.json").read_bytes())
    result = _exporter().export(doc, export_time=TIME)
    assert result.ok
    for pretty in (False, True):
        xml = default_codec().write(result.bundle, pretty=pretty)
        fhir_xsd.assert_valid(xml)
        outcome = refvalidator.validate_text(xml.decode("utf-8"))
        assert errors(outcome) == [], summarize(outcome, "error", "fatal")


def test_the_large_export_is_schema_valid_and_reads_back(fhir_xsd):
    doc = orjson.loads((get_settings().root / "samples" / "patients" / "large.json").read_bytes())
    result = _exporter().export(doc, export_time=TIME)
    xml = default_codec().write(result.bundle, pretty=True)
    fhir_xsd.assert_valid(xml)
    back, issues = default_codec().read(xml)
    assert issues == [] and _sorted_json(back) == _sorted_json(result.bundle)


_EXPORTER: list[Exporter] = []


def _exporter() -> Exporter:
    if not _EXPORTER:
        _EXPORTER.append(Exporter.from_settings(get_settings()))
    return _EXPORTER[0]


def test_fhir_decimal_is_a_float_for_the_validator():
    value = FhirDecimal("1.50")
    assert isinstance(value, float) and value == 1.5 and str(value) == "1.50"
