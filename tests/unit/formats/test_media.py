"""Media types (exporter/formats/media.py): the choice of format, sniffing, and parsing either format."""

from __future__ import annotations

from exporter.fhir.json import FhirDecimal
from exporter.formats.media import JSON, XML, content_format, parse, render, sniff


def test_sniff_decides_by_the_first_character():
    assert sniff(b'  \n<?xml version="1.0"?><Patient/>') == XML
    assert sniff(b"\xef\xbb\xbf<Patient/>") == XML
    assert sniff('<Patient/>'.encode("utf-16")) == XML
    assert sniff(b'{"resourceType": "Patient"}') == JSON
    assert sniff(b"") == JSON


def test_content_types():
    assert content_format("application/fhir+xml; charset=utf-8") == XML
    assert content_format("text/xml") == XML
    assert content_format("application/fhir+json") == JSON
    assert content_format("text/plain") is None and content_format(None) is None


def test_parse_json_keeps_decimals_and_names_the_position_of_an_error():
    value, issues = parse(b'{"a": 1.50, "b": 2}', JSON)
    assert issues == [] and type(value["a"]) is FhirDecimal and value["a"].text == "1.50" and value["b"] == 2
    value, issues = parse(b'{\n  "a": }', JSON, source="x.json")
    assert value is None and (issues[0].message_id, issues[0].position.line, issues[0].position.column) == \
           ("JSON_MALFORMED", 2, 8)
    value, issues = parse(b"[" * 100_000, JSON)
    assert value is None and issues[0].message_id == "JSON_MALFORMED"
    value, issues = parse(b"{}", JSON, max_bytes=1)
    assert value is None and issues[0].message_id == "JSON_TOO_LARGE"


def test_render_passes_json_bytes_through_and_converts_them_to_xml():
    raw = b'{"resourceType":"Basic","code":{"text":"x"}}'
    assert render(raw, JSON) is raw
    assert render(raw, XML) == (b'<?xml version="1.0" encoding="UTF-8"?>\n<Basic xmlns="http://hl7.org/fhir">'
                                b'<code><text value="x"/></code></Basic>')
    assert render({"resourceType": "Basic", "x": FhirDecimal("1.0")}, JSON) == b'{"resourceType":"Basic","x":1.0}'
