"""FHIR XML at the CLI: `map --format xml`, `validate` of XML files (detected by content, problems with
file:line:column), OperationOutcomes as XML, `convert` both ways with exact decimals. Every XML written
here is checked against fhir-single.xsd."""

from __future__ import annotations

import json

from exporter.cli import main
from exporter.fhir.json import dumps_exact, loads_exact
from exporter.formats.xml import default_codec
from exporter.settings import get_settings

TYPICAL = get_settings().root / "samples" / "patients" / "typical.json"
TIME = "2026-04-06T10:00:00+02:00"


def test_map_writes_the_same_bundle_as_xml(tmp_path, capsys, fhir_xsd):
    assert main(["map", str(TYPICAL), "--export-time", TIME, "-o", str(tmp_path / "b.json")]) == 0
    assert main(["map", str(TYPICAL), "--export-time", TIME, "--format", "xml", "-o", str(tmp_path / "b.xml")]) == 0
    xml = (tmp_path / "b.xml").read_bytes()
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Bundle xmlns="http://hl7.org/fhir">\n  <id ')
    fhir_xsd.assert_valid(xml)
    bundle, issues = default_codec().read(xml)
    assert issues == [] and json.loads(dumps_exact(bundle)) == json.loads((tmp_path / "b.json").read_text())
    assert main(["map", str(TYPICAL), "--export-time", TIME, "--format", "xml"]) == 0
    assert capsys.readouterr().out.encode() == xml


def test_validate_reads_xml_by_content_and_names_line_and_column(tmp_path, capsys):
    assert main(["map", str(TYPICAL), "--export-time", TIME, "--format", "xml", "-o", str(tmp_path / "export.data")]) == 0
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "export.data")]) == 0  # no .xml suffix: detected by content
    assert "valid (0 error(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.xml"
    bad.write_text('<?xml version="1.0"?>\n<Patient xmlns="http://hl7.org/fhir">\n  <gender value="female"/>\n'
                   '  <id value="a"/>\n</Patient>\n')
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:4:3: error XML_ORDER: element 'id' is out of order in Patient" in out
    invalid = tmp_path / "invalid.xml"
    invalid.write_text('<Patient xmlns="http://hl7.org/fhir"><gender value="woman"/></Patient>')
    assert main(["validate", str(invalid)]) == 1
    # the validator's own finding, on the same dict, at the element's line and column in the XML
    assert f"{invalid}:1:38: error VAL_BINDING_REQUIRED" in capsys.readouterr().out


def test_validate_writes_operation_outcomes_as_xml(tmp_path, capsys, fhir_xsd):
    good = tmp_path / "p.xml"
    good.write_text('<Patient xmlns="http://hl7.org/fhir"><gender value="female"/></Patient>')
    bad = tmp_path / "q.xml"
    bad.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"/>')
    assert main(["validate", "--format", "xml", str(good)]) == 0
    one = capsys.readouterr().out.encode()
    fhir_xsd.assert_valid(one)
    assert b"<OperationOutcome" in one and b"<severity value=\"error\"/>" not in one
    assert main(["validate", "--format", "xml", str(good), str(bad)]) == 1
    both = capsys.readouterr().out.encode()
    fhir_xsd.assert_valid(both)
    bundle, issues = default_codec().read(both)
    assert issues == [] and len(bundle["entry"]) == 2
    assert bundle["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"] == "XML_DOCTYPE"
    assert [e["valueInteger"] for e in bundle["entry"][1]["resource"]["issue"][0]["extension"]] == [1, 1]


def test_convert_both_ways_keeps_decimals(tmp_path, capsys, fhir_xsd):
    src = tmp_path / "obs.json"
    src.write_text('{"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, '
                   '"valueQuantity": {"value": 72.40, "unit": "kg"}, "component": [{"code": {"text": "x"}, '
                   '"valueQuantity": {"value": 120}}]}')
    assert main(["convert", str(src), "-o", str(tmp_path / "obs.xml")]) == 0
    xml = (tmp_path / "obs.xml").read_bytes()
    fhir_xsd.assert_valid(xml)
    assert b'<value value="72.40"/>' in xml and b'<value value="120"/>' in xml
    assert main(["convert", str(tmp_path / "obs.xml")]) == 0
    out = capsys.readouterr().out
    assert '"value": 72.40' in out and '"value": 120' in out
    assert dumps_exact(loads_exact(out)) == dumps_exact(loads_exact(src.read_text()))
    broken = tmp_path / "broken.xml"
    broken.write_text('<Observation xmlns="http://hl7.org/fhir">\n<status value="final"/><status value="x"/></Observation>')
    assert main(["convert", str(broken)]) == 1
    assert f"{broken}:2:24: error XML_REPEATED" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.json")]) == 2
