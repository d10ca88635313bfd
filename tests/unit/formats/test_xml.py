"""FHIR XML writer and reader (exporter/formats/xml.py): the rules of https://hl7.org/fhir/R4/xml.html, exact
decimals, errors with line and column, hostile input. Every XML written here is checked against the official
fhir-single.xsd (tests/support/fhirxml.py)."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from exporter.fhir.definitions import DefinitionStore
from exporter.fhir.json import FhirDecimal, dumps_exact, loads_exact
from exporter.fhir.packages import check_package
from exporter.formats.xml import FormatError, XmlCodec, default_codec, to_xml
from exporter.settings import get_settings

DIV = ('<div xmlns="http://www.w3.org/1999/xhtml">\n  <p>Erika   <b>Musterfrau</b></p>\n'
       '\t<ul><li>one</li>\n<li>two</li></ul>\n</div>')
PATIENT = {  # keys deliberately not in FHIR order
    "birthDate": "1964-08-12", "_birthDate": {"extension": [{"url": "http://example.org/time",
                                                             "valueTime": "07:15:00"}]},
    "name": [{"given": ["Erika", None, "Maria"],
              "_given": [None, {"extension": [{"url": "http://example.org/x", "valueString": "elided"}]}, {"id": "g3"}],
              "family": "Musterfrau", "id": "n1"}],
    "resourceType": "Patient",
    "multipleBirthInteger": 2,
    "active": True,
    "text": {"div": DIV, "status": "generated"},
    "extension": [{"valueDecimal": FhirDecimal("1.50"), "url": "http://example.org/decimal"}],
    "id": "p1",
}
EXPECTED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Patient xmlns="http://hl7.org/fhir"><id value="p1"/>'
    f'<text><status value="generated"/>{DIV}</text>'
    '<extension url="http://example.org/decimal"><valueDecimal value="1.50"/></extension>'
    '<active value="true"/>'
    '<name id="n1"><family value="Musterfrau"/><given value="Erika"/>'
    '<given><extension url="http://example.org/x"><valueString value="elided"/></extension></given>'
    '<given id="g3" value="Maria"/></name>'
    '<birthDate value="1964-08-12"><extension url="http://example.org/time"><valueTime value="07:15:00"/></extension>'
    '</birthDate><multipleBirthInteger value="2"/></Patient>')


@pytest.fixture(scope="module")
def codec() -> XmlCodec:
    return default_codec()


def roundtrip(codec: XmlCodec, resource: dict, **kw) -> dict:
    value, issues = codec.read(codec.write(resource, **kw))
    assert issues == []
    return value


def exact(value: dict) -> bytes:
    return orjson.dumps(orjson.loads(dumps_exact(value)), option=orjson.OPT_SORT_KEYS)


def test_order_attributes_primitives_choices_and_companions(codec, fhir_xsd):
    xml = codec.write(PATIENT)
    assert xml.decode() == EXPECTED
    fhir_xsd.assert_valid(xml)
    back = roundtrip(codec, PATIENT)
    assert exact(back) == exact(PATIENT)
    assert list(back) == ["resourceType", "id", "text", "extension", "active", "name", "birthDate", "_birthDate",
                          "multipleBirthInteger"]  # the document's order


def test_pretty_output_indents_fhir_elements_but_never_the_narrative(codec, fhir_xsd):
    xml = codec.write(PATIENT, pretty=True)
    fhir_xsd.assert_valid(xml)
    text = xml.decode()
    assert DIV in text  # byte for byte, whitespace and all
    assert "\n  <id value=\"p1\"/>\n  <text>\n    <status value=\"generated\"/>\n    <div " in text
    assert roundtrip(codec, PATIENT, pretty=True)["text"]["div"] == DIV
    assert exact(roundtrip(codec, PATIENT, pretty=True)) == exact(PATIENT)


def test_resources_inside_resources_are_wrapped_in_their_type(codec, fhir_xsd):
    bundle = {"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"fullUrl": "urn:uuid:2c4b1f0e-8a8f-4a55-9d3e-2f1b0c9d8e7f",
         "resource": {"resourceType": "Parameters", "parameter": [
             {"name": "result", "resource": {"resourceType": "Patient", "id": "a",
                                             "contained": [{"resourceType": "Organization", "id": "o"}],
                                             "managingOrganization": {"reference": "#o"}}}]},
         "response": {"status": "200", "outcome": {"resourceType": "OperationOutcome", "issue": [
             {"severity": "information", "code": "informational"}]}}}]}
    xml = codec.write(bundle)
    fhir_xsd.assert_valid(xml)
    text = xml.decode()
    assert "<resource><Parameters><parameter><name value=\"result\"/><resource><Patient><id value=\"a\"/>" \
           "<contained><Organization><id value=\"o\"/></Organization></contained>" in text
    assert "<outcome><OperationOutcome><issue>" in text
    assert exact(roundtrip(codec, bundle)) == exact(bundle)


@pytest.mark.parametrize("text, xml_value", [
    ("1.50", "1.50"), ("120", "120"), ("0.000001", "0.000001"), ("1e2", "1e2"), ("-0.0", "-0.0"),
    ("3.14159265358979323846264338327950288", "3.14159265358979323846264338327950288"),
])
def test_decimals_keep_the_digits_of_the_json_text(codec, fhir_xsd, text, xml_value):
    obs = loads_exact('{"resourceType": "Observation", "status": "final", "code": {"text": "w"}, '
                      f'"valueQuantity": {{"value": {text}, "unit": "kg"}}}}')
    xml = codec.write(obs)
    assert f'<value value="{xml_value}"/>'.encode() in xml
    if "e" not in text:  # the R4 schema's decimal is xs:decimal, which has no exponent (FHIR JSON allows one)
        fhir_xsd.assert_valid(xml)
    back = roundtrip(codec, obs)
    assert dumps_exact(back["valueQuantity"]) == f'{{"value":{text},"unit":"kg"}}'.encode()


def test_a_plain_float_is_written_as_the_json_output_writes_it(codec):
    for value in (72.4, 0.1 + 0.2, 1e-7, 120.0):
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "w"},
               "valueQuantity": {"value": value}}
        assert f'<value value="{orjson.dumps(value).decode()}"/>'.encode() in codec.write(obs)


def test_integer_looking_decimals_read_back_as_a_json_parser_reads_them(codec):
    obs, issues = codec.read(b'<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="w"/>'
                             b'</code><valueQuantity><value value="120"/></valueQuantity></Observation>')
    assert issues == [] and type(obs["valueQuantity"]["value"]) is int
    assert obs == json.loads(json.dumps(obs))


def test_the_layout_comes_from_the_definitions_not_from_a_list():
    """Reordering two elements in the Patient definition reorders the XML: the order is read, not built in."""
    store = DefinitionStore()
    store.add_source(check_package(get_settings().package_cache))
    sd = copy.deepcopy(store.structure_for_type("Patient"))
    elements = sd["snapshot"]["element"]
    i = next(n for n, e in enumerate(elements) if e["path"] == "Patient.gender")
    j = next(n for n, e in enumerate(elements) if e["path"] == "Patient.birthDate")
    elements[i], elements[j] = elements[j], elements[i]
    store.add_resource(sd)
    patient = {"resourceType": "Patient", "gender": "female", "birthDate": "1964-08-12"}
    assert b'<birthDate value="1964-08-12"/><gender value="female"/>' in XmlCodec(store).write(patient)
    assert b'<gender value="female"/><birthDate value="1964-08-12"/>' in default_codec().write(patient)


def test_to_xml_is_the_default_codec():
    assert to_xml(PATIENT) == default_codec().write(PATIENT)


P = '<Patient xmlns="http://hl7.org/fhir">'


@pytest.mark.parametrize("xml, message_id, line, column", [
    (f'{P}\n  <id value="a">\n</Patient>', "XML_MALFORMED", 3, 11),
    ('<Patient xmlns="http://hl7.org/fhir/">\n<id value="a"/></Patient>', "XML_NAMESPACE", 1, 1),
    (f'{P}\n  <id value="a"/>\n  <nickname value="x"/>\n</Patient>', "XML_UNKNOWN_ELEMENT", 3, 3),
    (f'{P}\n  <gender value="female"/><id value="a"/>\n</Patient>', "XML_ORDER", 2, 27),
    (f'{P}\n  <gender value="female"/>\n  <gender value="male"/>\n</Patient>', "XML_REPEATED", 3, 3),
    (f'{P}\n  <deceasedBoolean value="true"/><deceasedDateTime value="2020"/></Patient>', "XML_REPEATED", 2, 34),
    (f'{P}\n  <active/>\n</Patient>', "XML_NO_VALUE", 2, 3),
    (f'{P}\n  <gender>female</gender>\n</Patient>', "XML_TEXT", 2, 3),
    (f'{P}\n  <name>Erika</name>\n</Patient>', "XML_TEXT", 2, 3),
    (f'{P}\n  <active value="yes"/>\n</Patient>', "XML_VALUE", 2, 3),
    (f'{P}\n  <gender value="female" kind="x"/>\n</Patient>', "XML_UNKNOWN_ATTRIBUTE", 2, 3),
    (f'{P}\n  <text><status value="generated"/><div>x</div></text>\n</Patient>', "XML_NAMESPACE", 2, 36),
    (f'{P}<contained>\n <Organization/><Organization/></contained></Patient>', "XML_RESOURCE_WRAPPER", 1, 38),
    ('<Observation xmlns="http://hl7.org/fhir">\n<valueQuantity><value value="1,5"/></valueQuantity></Observation>',
     "XML_VALUE", 2, 16),
    ('<Patient xmlns="http://hl7.org/fhir" xmlns:f="http://hl7.org/fhir">\n<f:id value="a"/></Patient>', None, 0, 0),
    ('<Basic xmlns="http://hl7.org/fhir"/>', None, 0, 0),
    ('<NoSuchType xmlns="http://hl7.org/fhir"/>', "XML_UNKNOWN_RESOURCE", 1, 1),
    ('<DomainResource xmlns="http://hl7.org/fhir"/>', "XML_UNKNOWN_RESOURCE", 1, 1),
])
def test_problems_are_reported_with_line_and_column(codec, xml, message_id, line, column):
    value, issues = codec.read(xml.encode(), source="in.xml")
    if message_id is None:
        assert issues == [] and value["resourceType"] in ("Patient", "Basic")
        return
    assert value is None
    first = issues[0]
    assert (first.message_id, first.position.file, first.position.line, first.position.column) == \
           (message_id, "in.xml", line, column), [i.format() for i in issues]
    assert first.is_error


HOSTILE = {
    "xxe_file": b'<?xml version="1.0"?>\n<!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                b'<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>',
    "xxe_network": b'<!DOCTYPE Patient [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
                   b'<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>',
    "external_dtd": b'<!DOCTYPE Patient SYSTEM "http://127.0.0.1:9/fhir.dtd"><Patient xmlns="http://hl7.org/fhir"/>',
    "parameter_entities": b'<!DOCTYPE Patient [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                          b'<Patient xmlns="http://hl7.org/fhir"/>',
    "billion_laughs": b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
                      + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                                 for i in range(1, 10))
                      + b']>\n<Patient xmlns="http://hl7.org/fhir"><id value="&lol9;"/></Patient>',
    "doctype_after_comment": b'<!-- hi -->\n\n   <!DOCTYPE Patient><Patient xmlns="http://hl7.org/fhir"/>',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_doctypes_and_entities_are_refused_before_any_parser_acts_on_them(codec, name):
    value, issues = codec.read(HOSTILE[name], source="in.xml")
    assert value is None and [i.message_id for i in issues] == ["XML_DOCTYPE"]
    line = HOSTILE[name][:HOSTILE[name].index(b"<!DOCTYPE")].count(b"\n") + 1
    assert issues[0].position.line == line and issues[0].position.column is not None
    assert "root:" not in issues[0].format()


def test_undeclared_entities_deep_nesting_size_and_garbage_are_refused_with_a_position(codec):
    cases = {
        "entity": (f'{P}<id value="&nbsp;"/></Patient>'.encode(), "XML_MALFORMED"),
        "deep_ours": (P.encode() + b'<extension url="a">' * 70 + b'</extension>' * 70 + b"</Patient>", "XML_TOO_DEEP"),
        "deep_libxml2": (P.encode() + b"<extension>" * 100_000 + b"</extension>" * 100_000 + b"</Patient>",
                         "XML_MALFORMED"),
        "garbage": (b"\x00\x01\x02 not xml", "XML_MALFORMED"),
        "empty": (b"", "XML_MALFORMED"),
        "json": (b'{"resourceType": "Patient"}', "XML_MALFORMED"),
    }
    for name, (data, message_id) in cases.items():
        value, issues = codec.read(data, source="in.xml")
        assert value is None and issues[0].message_id == message_id, (name, [i.format() for i in issues])
        assert issues[0].position.line is not None, name
    value, issues = codec.read(f"{P}<id value=\"a\"/></Patient>".encode(), max_bytes=10)
    assert value is None and issues[0].message_id == "XML_TOO_LARGE"
    value, issues = codec.read(f"{P}<id value=\"a\"/></Patient>".encode("utf-16"))
    assert issues == [] and value == {"resourceType": "Patient", "id": "a"}


def test_messages_never_quote_values(codec):
    secret = "Erika-Musterfrau-1964"
    for xml in (f'{P}<active value="{secret}"/></Patient>', f'{P}<gender>{secret}</gender></Patient>',
                f'{P}<birthDate value="1964" note="{secret}"/></Patient>'):
        _, issues = codec.read(xml.encode())
        assert issues and all(secret not in i.format() for i in issues)


@pytest.mark.parametrize("resource, fragment", [
    ({"resourceType": "Patient", "nickname": "x"}, "'nickname' is not an element of Patient"),
    ({"resourceType": "Patient", "active": "yes"}, "must be a boolean"),
    ({"resourceType": "Observation", "status": "final", "code": {}, "valueQuantity": {"value": float("nan")}},
     "finite number"),
    ({"resourceType": "Patient", "name": {"family": "x"}}, "must be an array"),
    ({"resourceType": "Patient", "name": [{"family": "a\x01b"}]}, "characters XML cannot carry"),
    ({"resourceType": "Patient", "id": "a", "text": {"status": "generated", "div": "<div>unclosed"}},
     "not well-formed XHTML"),
    ({"resourceType": "Patient", "text": {"status": "generated", "div": "<p xmlns=\"http://www.w3.org/1999/xhtml\"/>"}},
     "<div> in the XHTML namespace"),
    ({"resourceType": "NoSuchType"}, "unknown or missing resourceType"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"id": "x"}}]},
     "unknown or missing resourceType"),
    ({"resourceType": "Patient", "name": [{"given": [None]}]}, "neither a value nor extensions"),
    ({"resourceType": "Patient", "birthDate": None}, "neither a value nor extensions"),
    ({"resourceType": "Patient", "gender": "male", "_gender": {"value": "female"}}, "cannot carry the value"),
    ({"resourceType": "Patient", "text": {"status": "generated", "_div": {"id": "x"},
                                          "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}},
     "takes no id or extensions"),
    ({"resourceType": "Patient", "text": {"status": "generated",
                                          "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div><!-- c -->'}},
     "exactly one <div>"),
])
def test_the_writer_refuses_what_the_definitions_do_not_allow(codec, resource, fragment):
    with pytest.raises(FormatError) as info:
        codec.write(resource)
    assert fragment in info.value.issues[0].message


def test_comments_are_kept_in_narratives_and_skipped_between_elements(codec, fhir_xsd):
    xml = (b'<!-- before --><Patient xmlns="http://hl7.org/fhir"><!-- a --><id value="a"><!-- b --></id><?pi x?>'
           b'<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><!-- kept --> <p>x</p></div>'
           b'</text><contained><!-- c --><Organization/></contained></Patient>')
    value, issues = codec.read(xml)
    assert issues == []
    assert value == {"resourceType": "Patient", "id": "a", "text": {"status": "generated", "div":
                     '<div xmlns="http://www.w3.org/1999/xhtml"><!-- kept --> <p>x</p></div>'},
                     "contained": [{"resourceType": "Organization"}]}
    written = codec.write(value)
    fhir_xsd.assert_valid(written)
    assert b"<!-- kept --> <p>x</p></div>" in written


def test_validator_expressions_are_located_in_the_xml():
    from exporter.formats.xml import locate_xml

    xml = (b'<Bundle xmlns="http://hl7.org/fhir">\n <type value="collection"/>\n <entry>\n  <resource>\n'
           b'   <Patient><name><given value="A"/><given value="B"><extension url="u"><valueString value="x"/>'
           b'</extension></given></name></Patient>\n  </resource>\n </entry>\n <entry><resource>\n'
           b'  <Observation><status value="final"/><valueQuantity><value value="1"/></valueQuantity></Observation>'
           b'</resource></entry>\n</Bundle>')
    found = locate_xml(xml, ["Bundle.entry[0].resource.name[0].given[1]",
                             "Bundle.entry[0].resource.name[0].given[1].extension[0].value[x]",
                             "Bundle.entry[1].resource.value.ofType(Quantity).value",
                             "Bundle.entry[1].resource.subject", "Bundle.type", "Bundle.entry[0].resource.name[0].id",
                             "Bundle.entry[5]"])
    assert found.found == {
        "Bundle.entry[0].resource.name[0].given[1]": (5, 37),
        "Bundle.entry[0].resource.name[0].given[1].extension[0].value[x]": (5, 73),
        "Bundle.entry[1].resource.value.ofType(Quantity).value": (9, 54),
        "Bundle.entry[1].resource.subject": (9, 3),  # missing: its resource
        "Bundle.type": (2, 2),
        "Bundle.entry[0].resource.name[0].id": (5, 13),  # an attribute: its element
        "Bundle.entry[5]": (1, 1),
    }
    assert found.root == (1, 1)
    assert locate_xml(b"<Bundle>", []).syntax_error[0] == (1, 9)
