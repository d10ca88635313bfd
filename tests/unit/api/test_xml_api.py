"""FHIR XML at the service: both export routes and $validate answer in the format asked for (Accept or
_format) with the same policies; denials stay one byte-identical body per format; XML bodies are read
safely and their problems named by line and column, never a 5xx. Every XML answer is checked against
the official fhir-single.xsd."""

from __future__ import annotations

import json

import orjson
import pytest

from exporter.api.errors import DENIED_BODY, PATIENT_FAILED_BODY
from exporter.fhir.json import dumps_exact
from exporter.formats.media import XML, render, requested_format
from exporter.formats.xml import default_codec

from .conftest import ANNA_ID, BEN_ID
from .test_app import TYPICAL, bad_tokens, bearer

XML_TYPE = "application/fhir+xml"
ACCEPT_XML = {"Accept": XML_TYPE}
VARYING = {"x-request-id", "date", "www-authenticate", "content-length"}


def read_xml(content: bytes) -> dict:
    value, issues = default_codec().read(content)
    assert issues == [], [i.format() for i in issues]
    return value


def test_internal_export_in_xml_is_the_json_export_in_xml(client, idp, fhir_xsd, monkeypatch):
    monkeypatch.setattr("exporter.api.routes._now", lambda: "2026-04-06T10:00:00+02:00")  # ids depend on it
    expected = client.post("/internal/export", content=TYPICAL, headers=bearer(idp.token())).json()
    for extra, query in ((ACCEPT_XML, ""), ({}, "?_format=xml"), ({"Accept": "application/json"}, "?_format=application/fhir+xml"),
                         ({"Accept": "text/html;q=0.9, application/fhir+xml"}, "")):
        r = client.post("/internal/export" + query, content=TYPICAL, headers={**bearer(idp.token()), **extra})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == XML_TYPE and r.headers["cache-control"] == "no-store"
        fhir_xsd.assert_valid(r.content)
        assert orjson.loads(dumps_exact(read_xml(r.content))) == expected


def test_patient_export_in_xml_is_a_download(client, idp, fhir_xsd):
    r = client.get("/patient/export?_format=xml", headers=bearer(idp.patient_token(ANNA_ID)))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XML_TYPE
    assert r.headers["content-disposition"].endswith('.fhir.xml"')
    fhir_xsd.assert_valid(r.content)
    assert ANNA_ID.encode() in r.content and BEN_ID.encode() not in r.content
    assert read_xml(r.content)["type"] == "document"


def test_every_denial_in_xml_is_one_byte_identical_body(client, idp, fhir_xsd):
    expected = render(DENIED_BODY, XML)
    fhir_xsd.assert_valid(expected)
    seen = []
    for name, headers in bad_tokens(idp).items():
        for method, path in (("POST", "/internal/export"), ("POST", "/$validate"), ("GET", "/patient/export")):
            if (name, path) in (("service_on_patient_route", "/internal/export"), ("service_on_patient_route", "/$validate"),
                                ("reporting_only_validate", "/$validate"), ("patient_on_service_route", "/patient/export")):
                continue  # those tokens are allowed there
            for ask in ({"Accept": XML_TYPE}, {"Accept": "application/xml"}):
                r = client.request(method, path, headers={**headers, **ask}, content=TYPICAL if method == "POST" else None)
                assert (r.status_code, r.content) == (401, expected), (name, path)
                assert r.headers["content-type"] == XML_TYPE
                seen.append({k: v for k, v in r.headers.items() if k not in VARYING})
            r = client.request(method, path + "?_format=xml", headers=headers, content=TYPICAL if method == "POST" else None)
            assert (r.status_code, r.content) == (401, expected), (name, path)
    assert all(h == seen[0] for h in seen)
    # unknown sub-paths under protected prefixes: the same XML denial
    r = client.get(f"/patient/{BEN_ID}/export", headers={**bearer(idp.patient_token(ANNA_ID)), **ACCEPT_XML})
    assert (r.status_code, r.content) == (401, expected)
    # and JSON is still the default
    r = client.post("/internal/export", content=TYPICAL, headers={"Content-Type": "application/fhir+json"})
    assert (r.status_code, r.content) == (401, DENIED_BODY)


def test_failed_exports_answer_in_xml(client, idp, fhir_xsd):
    broken = json.loads(TYPICAL)
    del broken["patient"]["birth_date"]
    r = client.post("/internal/export", content=json.dumps(broken), headers={**bearer(idp.token()), **ACCEPT_XML})
    assert r.status_code == 422 and r.headers["content-type"] == XML_TYPE
    fhir_xsd.assert_valid(r.content)
    outcome = read_xml(r.content)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    assert render(PATIENT_FAILED_BODY, XML) != render(DENIED_BODY, XML)


XML_PATIENT = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Patient xmlns="http://hl7.org/fhir">\n'
               b'  <name><family value="Musterfrau"/><given value="Erika"/></name>\n'
               b'  <gender value="female"/>\n  <birthDate value="1964-08-12"/>\n</Patient>\n')


def test_validate_reads_xml_and_answers_in_the_format_asked_for(client, idp, fhir_xsd):
    token = idp.token()
    for ctype in ("application/fhir+xml", "application/xml", "text/xml; charset=utf-8"):
        r = client.post("/$validate", content=XML_PATIENT, headers={"Authorization": f"Bearer {token}",
                                                                    "Content-Type": ctype})
        assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+json", r.text
        assert not [i for i in r.json()["issue"] if i["severity"] in ("error", "fatal")]
    r = client.post("/$validate", content=XML_PATIENT, headers={"Authorization": f"Bearer {token}",
                                                                "Content-Type": XML_TYPE, **ACCEPT_XML})
    assert r.status_code == 200 and r.headers["content-type"] == XML_TYPE
    fhir_xsd.assert_valid(r.content)
    assert read_xml(r.content)["resourceType"] == "OperationOutcome"
    bad = XML_PATIENT.replace(b'<gender value="female"/>', b'<gender value="woman"/>')
    r = client.post("/$validate?_format=xml", content=bad, headers={"Authorization": f"Bearer {token}",
                                                                    "Content-Type": XML_TYPE})
    assert r.status_code == 200
    fhir_xsd.assert_valid(r.content)
    error = next(i for i in read_xml(r.content)["issue"] if i["severity"] == "error")
    assert [e["valueInteger"] for e in error["extension"]] == [4, 3]  # the <gender> element in the body
    params = (b'<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource>'
              + XML_PATIENT.split(b"\n", 1)[1] + b"</resource></parameter></Parameters>")
    r = client.post("/$validate", content=params, headers={"Authorization": f"Bearer {token}", "Content-Type": XML_TYPE})
    assert r.status_code == 200 and not [i for i in r.json()["issue"] if i["severity"] == "error"], r.text


HOSTILE = {
    "xxe": (b'<?xml version="1.0"?>\n<!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            b'<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>', 400, "XML_DOCTYPE", (2, 1)),
    "billion_laughs": (b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                       b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n<Patient xmlns="http://hl7.org/fhir">'
                       b'<id value="&c;"/></Patient>', 400, "XML_DOCTYPE", (1, 1)),
    "malformed": (b'<Patient xmlns="http://hl7.org/fhir">\n  <id value="a">\n</Patient>', 400, "XML_MALFORMED", (3, 11)),
    "out_of_order": (b'<Patient xmlns="http://hl7.org/fhir">\n  <gender value="female"/><id value="a"/>\n</Patient>',
                     400, "XML_ORDER", (2, 27)),
    "too_deep": (b'<Patient xmlns="http://hl7.org/fhir">' + b'<extension url="a">' * 80 + b'</extension>' * 80
                 + b'</Patient>', 400, "XML_TOO_DEEP", (1, None)),
    "libxml2_depth": (b'<Patient xmlns="http://hl7.org/fhir">' + b'<a>' * 50_000 + b'</a>' * 50_000 + b'</Patient>',
                      400, "XML_MALFORMED", (1, None)),
    "garbage": (b"\xff\xfe\x00<", 400, "XML_MALFORMED", (1, None)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_bodies_get_an_outcome_with_line_and_column(client, idp, fhir_xsd, name):
    body, status, message_id, where = HOSTILE[name]
    for accept in ({}, ACCEPT_XML):
        r = client.post("/$validate", content=body, headers={"Authorization": f"Bearer {idp.token()}",
                                                             "Content-Type": XML_TYPE, **accept})
        assert r.status_code == status, r.text
        outcome = read_xml(r.content) if accept else r.json()
        if accept:
            fhir_xsd.assert_valid(r.content)
        issue = outcome["issue"][0]
        assert issue["details"]["coding"][0]["code"] == message_id
        line_col = {e["url"].rsplit("-", 1)[1]: e["valueInteger"] for e in issue["extension"]}
        assert line_col["line"] == where[0] and (where[1] is None or line_col["col"] == where[1]), issue
        assert b"root:" not in r.content


def test_xml_bodies_keep_the_size_limit(make_client, idp):
    from .conftest import settings_for

    client = make_client(settings_for(max_body_bytes=200))
    r = client.post("/$validate", content=XML_PATIENT + b" " * 300,
                    headers={"Authorization": f"Bearer {idp.token()}", "Content-Type": XML_TYPE, **ACCEPT_XML})
    assert r.status_code == 413 and r.headers["content-type"] == XML_TYPE
    r = client.post("/$validate", content=XML_PATIENT, headers={"Authorization": f"Bearer {idp.token()}",
                                                                "Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/fhir+xml" in r.text


def test_unauthorised_xml_bodies_get_the_denial_not_a_parse_error(client):
    r = client.post("/$validate", content=HOSTILE["xxe"][0], headers={"Content-Type": XML_TYPE})
    assert (r.status_code, r.content) == (401, DENIED_BODY)


def test_capability_statement_lists_both_formats_and_is_served_in_both(client, fhir_xsd):
    cs = client.get("/metadata").json()
    assert cs["format"] == ["application/fhir+json", "application/fhir+xml"]
    r = client.get("/metadata", headers=ACCEPT_XML)
    assert r.headers["content-type"] == XML_TYPE
    fhir_xsd.assert_valid(r.content)
    assert read_xml(r.content) == cs
    sd_id = next(iter(client.app.state.conformance.resources["StructureDefinition"]))
    r = client.get(f"/StructureDefinition/{sd_id}?_format=xml")
    assert r.status_code == 200 and r.headers["content-type"] == XML_TYPE
    fhir_xsd.assert_valid(r.content)
    r = client.get("/StructureDefinition/no-such-id", headers=ACCEPT_XML)
    assert r.status_code == 404 and r.headers["content-type"] == XML_TYPE
    fhir_xsd.assert_valid(r.content)


@pytest.mark.parametrize("accept, fmt, expected", [
    (None, None, "json"), ("*/*", None, "json"), ("application/fhir+xml", None, "xml"),
    ("application/fhir+json;q=0.5, application/fhir+xml;q=0.9", None, "xml"),
    ("application/fhir+xml;q=0, application/json", None, "json"), ("text/html", None, "json"),
    ("application/fhir+json", "xml", "xml"), (None, "application/fhir xml", "xml"), (None, "html", "json"),
    ("application/fhir+xml", "json", "json"), ("text/xml;q=abc", None, "json"),
])
def test_requested_format(accept, fmt, expected):
    assert requested_format(accept, fmt) == expected


def test_json_is_unchanged_for_callers_who_do_not_ask_for_xml(client, idp):
    r = client.post("/internal/export", content=TYPICAL, headers=bearer(idp.token()))
    assert r.headers["content-type"] == "application/fhir+json" and r.json()["resourceType"] == "Bundle"


def test_an_outcome_naming_what_xml_cannot_carry_is_still_answered_in_xml(client, idp, fhir_xsd):
    body = json.dumps({"resourceType": "Patient", "odd\u0001key": 1}).encode()
    r = client.post("/$validate", content=body, headers={"Authorization": f"Bearer {idp.token()}",
                                                         "Content-Type": "application/fhir+json", **ACCEPT_XML})
    assert r.status_code == 200 and r.headers["content-type"] == XML_TYPE
    fhir_xsd.assert_valid(r.content)
    assert "odd\ufffdkey" in r.content.decode()
