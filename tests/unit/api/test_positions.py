"""POST /$validate: every issue about the request body carries the HL7 line/column extensions of the
offending JSON node; a malformed body says where it breaks."""

from __future__ import annotations

from exporter.issues import EXT_ISSUE_COL, EXT_ISSUE_LINE

FHIR = {"Content-Type": "application/fhir+json"}

PATIENT = (b'{\n'
           b'  "resourceType": "Patient",\n'
           b'  "gender": "nope",\n'
           b'  "name": [{"given": ["Erika", 5]}],\n'
           b'  "_birthDate": {"extension": [{"url": "http://example.org/x"}]}\n'
           b'}\n')


def position(issue: dict) -> tuple[int, int] | None:
    ext = {e["url"]: e["valueInteger"] for e in issue.get("extension", [])}
    return (ext[EXT_ISSUE_LINE], ext[EXT_ISSUE_COL]) if EXT_ISSUE_LINE in ext else None


def validator_headers(idp) -> dict[str, str]:
    token = idp.token(azp="diga-reporting", resource_access={"diga-exporter-api": {"roles": ["validate"]}})
    return {"Authorization": f"Bearer {token}", **FHIR}


def test_validate_issues_carry_line_and_column(client, idp):
    r = client.post("/$validate", content=PATIENT, headers=validator_headers(idp))
    assert r.status_code == 200
    got = {(i["expression"][0], position(i)) for i in r.json()["issue"]}
    assert ("Patient.gender", (3, 13)) in got
    assert ("Patient.name[0].given[1]", (4, 32)) in got
    assert ("Patient.birthDate.extension[0]", (5, 32)) in got
    assert ("Patient", (1, 1)) in got                                   # dom-6: the resource itself
    assert all(p is not None for _, p in got)
    first = r.json()["issue"][0]
    assert list(first)[0] == "extension" and [e["url"] for e in first["extension"]] == [EXT_ISSUE_LINE, EXT_ISSUE_COL]


def test_validate_in_a_parameters_body_points_into_the_body(client, idp):
    body = (b'{"resourceType": "Parameters", "parameter": [\n'
            b'  {"name": "profile", "valueString": "x"},\n'
            b'  {"name": "resource", "resource": {"resourceType": "Patient",\n'
            b'     "gender": "nope"}}]}')
    r = client.post("/$validate", content=body, headers=validator_headers(idp))
    assert r.status_code == 200
    issues = {i["expression"][0]: position(i) for i in r.json()["issue"]}
    assert issues["Patient.gender"] == (4, 16)
    assert issues["Patient"] == (3, 36)


def test_clean_resource_has_no_positions(client, idp):
    r = client.post("/$validate", content=b'{"resourceType": "Basic", "text": {"status": "generated", '
                    b'"div": "<div xmlns=\\"http://www.w3.org/1999/xhtml\\">x</div>"}, "code": {"text": "x"}}',
                    headers=validator_headers(idp))
    assert r.status_code == 200
    assert [position(i) for i in r.json()["issue"]] == [None]
    assert r.json()["issue"][0]["severity"] == "information"


def test_malformed_body_says_where(client, idp):
    r = client.post("/$validate", content=b'{"resourceType": "Patient",\n  "gender": "x",,\n}',
                    headers=validator_headers(idp))
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "JSON_SYNTAX"
    assert position(issue) == (2, 17)
    assert issue["details"]["text"] == "not well-formed JSON: expected a member name in double quotes"
