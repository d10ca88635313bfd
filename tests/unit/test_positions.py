"""exporter/fhir/positions.py: the position-tracking JSON scanner (strict, linear, bounded) and the
mapping of FHIRPath expressions to line:column."""

from __future__ import annotations

import json
import random
import time

import orjson
import pytest

from exporter import deadline
from exporter.fhir.positions import (
    LOCATORS,
    JsonSyntaxError,
    Located,
    attach,
    first_problem,
    json_syntax_error,
    locate_json,
    scan,
    segments,
    spans,
)
from exporter.issues import EXT_ISSUE_COL, EXT_ISSUE_LINE, Issue, IssueCode, Severity, SourceLocation, error


def where(doc: str, *expressions: str) -> list[tuple[int, int] | None]:
    found = locate_json(doc.encode("utf-8"), expressions).found
    return [found.get(e) for e in expressions]


def at(doc: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """(line, column) of the nth occurrence of `needle` in doc: the expected answers are found by
    looking at the text, not computed by the code under test."""
    offset = -1
    for _ in range(nth + 1):
        offset = doc.index(needle, offset + 1)
    line = doc.count("\n", 0, offset) + 1
    return line, offset - (doc.rfind("\n", 0, offset) + 1) + 1


# ----------------------------------------------------------------------------- expressions → nodes

PATIENT = """{
  "resourceType": "Patient",
  "id": "p1",
  "gender": "femalex",
  "birthDate": "1964-13-12",
  "_birthDate": {"extension": [{"url": "http://example.org/x"}]},
  "name": [
    {"family": "Muster", "given": ["Erika", 5, null],
     "_given": [null, {"id": "g2"}, {"extension": [{"url": "u"}]}]},
    {"text": "Erika Muster"}
  ],
  "contained": [
    {"resourceType": "Organization", "name": 7}
  ],
  "multipleBirthInteger": 2
}
"""


@pytest.mark.parametrize("expression, needle, nth", [
    ("Patient", "{", 0),
    ("Patient.gender", '"femalex"', 0),
    ("Patient.name", "[\n    {\"family\"", 0),
    ("Patient.name[0]", '{"family"', 0),
    ("Patient.name[1].text", '"Erika Muster"', 0),
    ("Patient.name[0].given[0]", '"Erika"', 0),
    ("Patient.name[0].given[1]", "5", 0),
    ("Patient.name[0].given[2]", "null", 0),                       # the value is null: still the value's node
    ("Patient.name[0].given[1].id", '"g2"', 0),                    # into _given[1]
    ("Patient.name[0].given[2].extension[0].url", '"u"', 0),       # value null, extension in _given[2]
    ("Patient.birthDate", '"1964-13-12"', 0),                     # the value, not its companion
    ("Patient.birthDate.extension[0]", '{"url": "http://example.org/x"}', 0),
    ("Patient.birthDate.extension[0].url", '"http://example.org/x"', 0),
    ("Patient.contained[0].name", "7", 0),
    ("Patient.contained[0]", '{"resourceType": "Organization"', 0),
    ("Patient.multipleBirth", "2\n}", 0),                           # choice element by its name
    ("Patient.multipleBirth[x]", "2\n}", 0),                        # ... in the HL7 validator's spelling
    ("Patient.multipleBirth.ofType(integer)", "2\n}", 0),
    ("Patient.multipleBirthInteger", "2\n}", 0),                    # ... and by its JSON key
    # missing elements: the nearest existing ancestor
    ("Patient.active", "{", 0),
    ("Patient.name[1].family", '{"text"', 0),
    ("Patient.name[5]", "{", 0),
    ("Patient.name[0].given[9]", '{"family"', 0),
    ("Patient.contained[0].address[0].city", '{"resourceType": "Organization"', 0),
    # a step that is not a plain name stops the walk where it is
    ("Patient.name.where(use = 'official').given", "[\n    {\"family\"", 0),
])
def test_expression_finds_the_node(expression, needle, nth):
    assert where(PATIENT, expression) == [at(PATIENT, needle, nth)]


BUNDLE = """{"resourceType": "Bundle", "type": "collection", "entry": [
 {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "gender": "x"}},
 {"fullUrl": "urn:uuid:2",
  "resource": {
    "resourceType": "Observation",
    "valueQuantity": {"value": "72.4", "unit": "kg"},
    "component": [{"code": {"text": "a"}, "valueString": 3}]
  }}
]}"""


@pytest.mark.parametrize("expression, needle", [
    ("Bundle.entry[0].resource.gender", '"x"'),
    ("Bundle.entry[1]", '{"fullUrl": "urn:uuid:2"'),
    ("Bundle.entry[1].resource", '{\n    "resourceType": "Observation"'),
    ("Bundle.entry[1].resource.subject", '{\n    "resourceType": "Observation"'),
    ("Bundle.entry[1].resource.valueQuantity.value", '"72.4"'),
    ("Bundle.entry[1].resource.value.ofType(Quantity).value", '"72.4"'),
    ("Bundle.entry[1].resource.value[x].value", '"72.4"'),
    ("Bundle.entry[1].resource.value", '{"value": "72.4"'),
    ("Bundle.entry[1].resource.component[0].valueString", "3"),
    ("Bundle.entry[1].resource.component[0].value[x]", "3"),
    ("Bundle.entry[1].resource/*Observation/null*/.component[0].code", '{"text": "a"}'),
    ("Bundle.entry[0].resource.ofType(Patient).gender", '"x"'),
])
def test_bundle_entries_choice_types_and_hl7_spellings(expression, needle):
    assert where(BUNDLE, expression) == [at(BUNDLE, needle)]


def test_segments():
    assert segments("Patient") == []
    assert segments("Bundle.entry[3].resource.valueQuantity.value") == [
        ("entry", 3), ("resource", None), ("valueQuantity", None), ("value", None)]
    assert segments("Bundle.entry[0].resource/*Patient/x*/.name[0]") == [("entry", 0), ("resource", None), ("name", 0)]
    assert segments("Observation.value.ofType(CodeableConcept).coding[1]") == [("value", None), ("coding", 1)]
    assert segments("Observation.value[x].coding[1]") == [("value", None), ("coding", 1)]
    assert segments("Observation.component.where(code.exists()).value") == [("component", None)]


def test_duplicate_keys_the_last_counts_as_in_orjson():
    doc = '{"resourceType": "Patient", "gender": "one", "gender": "two"}'
    assert orjson.loads(doc)["gender"] == "two"
    assert where(doc, "Patient.gender") == [at(doc, '"two"')]


def test_columns_count_code_points_and_lines_count_newlines():
    doc = '{"resourceType": "Patient",\r\n "name": [{"text": "Ä😀ß", "family": 1}]}'
    assert where(doc, "Patient.name[0].family") == [(2, doc.split("\n")[1].index("1") + 1)]


def test_spans_end_just_after_the_value():
    doc = '{"a": {"b": [1, 22]},\n "c": "x"}'
    got = spans(doc, ["X.a", "X.a.b[1]", "X.c", "X"])
    assert got == {"X.a": ((1, 7), (1, 21)), "X.a.b[1]": ((1, 17), (1, 19)), "X.c": ((2, 7), (2, 10)),
                   "X": ((1, 1), (2, 11))}


def test_only_wanted_paths_are_built():
    root = scan('{"a": {"b": 1, "c": [1, 2, {"d": 3}]}, "e": [4]}', {"a": {None: {"c": {2: {}}}}})
    assert list(root.keys) == ["a"]
    assert list(root.keys["a"].keys) == ["c"]
    assert list(root.keys["a"].keys["c"].items) == [2]
    assert root.keys["a"].keys["c"].items[2].keys == {}


# ----------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize("raw, position, reason", [
    (b'{"a": [1,\n 2,,]}', (2, 4), "expected a JSON value"),
    (b'{"a" 1}', (1, 6), "expected ':'"),
    (b'{"a": 1 "b": 2}', (1, 9), "expected ',' or '}'"),
    (b'[1 2]', (1, 4), "expected ',' or ']'"),
    (b'{"a": 1,}', (1, 9), "member name"),
    (b'{a: 1}', (1, 2), "member name"),
    (b'', (1, 1), "unexpected end"),
    (b'   \n  ', (2, 3), "unexpected end"),
    (b'{"a": [1, 2', (1, 12), "unexpected end"),
    (b'{"a": "abc', (1, 7), "unterminated string"),
    (b'{"a": "a\tb"}', (1, 9), "control character"),
    (b'{"a": "a\\xb"}', (1, 9), "invalid escape"),
    (b'["\\ud800"]', (1, 2), "lone surrogate"),
    (b'["\\udc00\\ud800"]', (1, 2), "lone surrogate"),
    (b'\xef\xbb\xbf{}', (1, 1), "byte order mark"),
    (b'{"a":\n "\xc3\xa4\xff"}', (2, 4), "invalid UTF-8"),
    (b'{"a": 1} x', (1, 10), "after the JSON value"),
    (b'[NaN]', (1, 2), "expected a JSON value"),
    (b'[Infinity]', (1, 2), "expected a JSON value"),
    (b'[1e999]', (1, 2), "out of range"),
    (b'[-' + b'9' * 400 + b']', (1, 2), "out of range"),
    (b'[01]', (1, 3), "expected ',' or ']'"),
    (b'[1.]', (1, 3), "expected ',' or ']'"),
    (b'[tru]', (1, 2), "expected a JSON value"),
    (b'[' * 1025 + b']' * 1025, (1, 1025), "nesting deeper than 1024"),
])
def test_syntax_errors_have_a_position_and_orjson_agrees_they_are_errors(raw, position, reason):
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    found = json_syntax_error(raw)
    assert found is not None and found[0] == position and reason in found[1], found


def test_well_formed_documents_have_no_syntax_error():
    for raw in (b'{}', b'[]', b' {"a": [true, false, null, -0.5e-3, 0, "\\u00e4\\"\\n", {}]} \n', b'"x"', b'1',
                b'["\\ud83d\\ude00"]', b'[' * 1024 + b']' * 1024):
        orjson.loads(raw)
        assert json_syntax_error(raw) is None, raw


def test_accepts_exactly_what_orjson_accepts_on_random_mutations():
    """Single-character deletions, insertions and replacements of a FHIR document: the scanner and
    orjson agree on every variant whether it is JSON."""
    numbers = (b'{"a": [1e5, -0.5E-300, 12345678901234567, 1234567890123456, 0.1e99, 1E308, 1e-400],'
               b' "s": ["\\ud83d\\ude00", "\\u00e4\\n", "x\\"y"], "o": {"k": [[], {}, [true, false, null]]}}')
    bases = [json.dumps(json.loads(PATIENT), indent=1).encode("utf-8") + b'  \n', numbers]
    rng = random.Random(16)
    alphabet = b'{}[],:"\\ -+.0123456789eEtrufalsnud\x00\x1f\xff\xc3'
    disagreements = []
    for k in range(6000):
        data = bytearray(bases[k % 2])
        p = rng.randrange(len(data))
        op = rng.randrange(3)
        if op == 0:
            del data[p]
        elif op == 1:
            data.insert(p, rng.choice(alphabet))
        else:
            data[p] = rng.choice(alphabet)
        try:
            orjson.loads(bytes(data))
            ok = True
        except orjson.JSONDecodeError:
            ok = False
        if ok != (json_syntax_error(bytes(data)) is None):
            disagreements.append(bytes(data))
    assert disagreements == []


# ----------------------------------------------------------------------------- hostile input


def test_deep_nesting_is_refused_at_the_limit_without_recursion():
    raw = b'{"a":' * 200_000
    t0 = time.perf_counter()
    found = json_syntax_error(raw)
    assert found == ((1, 1 + 5 * 1024), "nesting deeper than 1024 levels")
    assert time.perf_counter() - t0 < 2
    # positions of a document as deep as allowed
    doc = "[" * 1024 + "7" + "]" * 1024
    assert spans(doc, ["X" + ".a[0]" * 3]) is not None


def _seconds(fn, *args) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("make", [
    lambda n: b'{"a": "' + b"x" * (100 * n) + b'"}',                        # one huge string
    lambda n: b'["' + b"\\u00e4\\n" * (10 * n) + b'"]',                     # escapes
    lambda n: b'[' + b",".join([b'{"k": [1, "v", null]}'] * n) + b']',      # many small tokens
    lambda n: b'{' + b",".join(b'"k%d": 1' % i for i in range(n)) + b'}',   # many keys
])
def test_time_is_linear_in_the_input(make):
    small, large = make(5_000), make(20_000)
    t_small = _seconds(json_syntax_error, small)
    t_large = _seconds(json_syntax_error, large)
    assert t_large < 8 * t_small + 0.05, (t_small, t_large)


def test_a_huge_string_with_an_error_at_the_end():
    raw = b'{"a": "' + b"x" * 20_000_000 + b'\x01"}'
    t0 = time.perf_counter()
    assert json_syntax_error(raw) == ((1, 20_000_008), "control character in string")
    assert time.perf_counter() - t0 < 5


def test_wanted_paths_in_a_large_document_cost_one_scan():
    raw = b'{"resourceType": "Bundle", "entry": [' + b",".join(
        b'{"resource": {"resourceType": "Basic", "id": "b%d"}}' % i for i in range(20_000)) + b']}'
    exprs = [f"Bundle.entry[{i}].resource.id" for i in range(0, 20_000, 7)]
    t_one = _seconds(locate_json, raw, exprs[:1])
    t_all = _seconds(locate_json, raw, exprs)
    assert t_all < 3 * t_one + 0.1, (t_one, t_all)
    assert locate_json(raw, exprs).found[exprs[-1]][1] == raw.decode().index('"b19999"') + 1


def test_invalid_utf8_anywhere():
    for raw in (b'\xff', b'{"a": "\xe4"}', b'{"\xc3": 1}', b'["ok", "\xed\xa0\x80"]', b'[1]\n\xc0\xaf'):
        found = json_syntax_error(raw)
        assert found is not None and found[1] == "invalid UTF-8", raw
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)


def test_scan_raises_with_an_offset():
    with pytest.raises(JsonSyntaxError) as info:
        scan('{"a": [1, }')
    assert info.value.offset == 10


# ----------------------------------------------------------------------------- attach and the issue shape


def test_no_issues_no_reading():
    issues: list[Issue] = []
    assert attach(issues, object()) is issues  # type: ignore[arg-type]


def test_attach_sets_positions_for_expressions_whole_document_and_syntax_errors():
    doc = PATIENT.encode("utf-8")
    issues = [error(IssueCode.VALUE, "bad", "X", expression=("Patient.gender",)),
              error(IssueCode.STRUCTURE, "whole", "Y"),
              error(IssueCode.VALUE, "kept", "Z", expression=("Patient.id",), position=SourceLocation("f", 9, 9)),
              error(IssueCode.INVALID, "profile", "P", expression=("Patient.id",), location=SourceLocation("sd.json"))]
    out = attach(issues, doc, file="p.json")
    assert [i.position for i in out] == [SourceLocation("p.json", *at(PATIENT, '"femalex"')),
                                         SourceLocation("p.json", 1, 1), SourceLocation("f", 9, 9), None]
    assert out[0].format().startswith(f"p.json:{at(PATIENT, chr(34) + 'femalex')[0]}:13: error X: bad")
    broken = attach([error(IssueCode.STRUCTURE, "not JSON", "N")], b'{\n  "a": [1,,2]}', file="b.json")
    assert broken[0].position == SourceLocation("b.json", 2, 11)
    too_big = attach([error(IssueCode.STRUCTURE, "big", "B")], b"{}", file="g.json", max_bytes=1)
    assert too_big[0].position == SourceLocation("g.json")


def test_attach_inside_a_parameters_body():
    body = ('{"resourceType": "Parameters", "parameter": [{"name": "other", "valueString": "x"},\n'
            ' {"name": "resource", "resource": {"resourceType": "Patient", "gender": "nope"}}]}')
    issues = [error(IssueCode.VALUE, "bad", "X", expression=("Patient.gender",)), error(IssueCode.VALUE, "all", "Y")]
    out = attach(issues, body.encode("utf-8"), root="Parameters.parameter[1].resource")
    assert [i.position for i in out] == [SourceLocation("", *at(body, '"nope"')),
                                         SourceLocation("", *at(body, '{"resourceType": "Patient"'))]


def test_operation_outcome_carries_the_hl7_line_and_column_extensions():
    issue = error(IssueCode.VALUE, "bad", "X", expression=("Patient.gender",), position=SourceLocation("", 4, 13))
    fhir = issue.to_fhir()
    assert list(fhir)[0] == "extension"
    assert fhir["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger": 4},
        {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col", "valueInteger": 13}]
    assert (EXT_ISSUE_LINE, EXT_ISSUE_COL) == tuple(e["url"] for e in fhir["extension"])
    assert "extension" not in error(IssueCode.VALUE, "bad", position=SourceLocation("f")).to_fhir()
    assert "extension" not in Issue(Severity.ERROR, IssueCode.VALUE, "bad", location=SourceLocation("m.yaml", 3, 1)).to_fhir()


def test_a_locator_per_syntax():
    assert LOCATORS["json"] is locate_json
    calls = []

    def fake(raw: bytes, expressions):
        calls.append((raw, list(expressions)))
        return Located({"Patient.gender": (3, 5)}, root=(1, 1))

    LOCATORS["test-xml"] = fake
    try:
        from exporter.fhir import positions
        original, positions.kind = positions.kind, lambda media_type: "test-xml"
        try:
            out = attach([error(IssueCode.VALUE, "bad", expression=("Patient.gender",))], b"<Patient/>",
                         media_type="application/fhir+xml")
        finally:
            positions.kind = original
    finally:
        del LOCATORS["test-xml"]
    assert calls == [(b"<Patient/>", ["Patient.gender"])] and out[0].position == SourceLocation("", 3, 5)


# ----------------------------------------------------------------------------- review 1: cost and deadline


def _attach_seconds(n: int) -> float:
    raw = ('{"resourceType": "Patient", "%s": 1}' % ("A" * n)).encode()
    issue = error(IssueCode.STRUCTURE, "unknown element", "VAL_UNKNOWN_ELEMENT", expression=(f"Patient.{'A' * n}",))
    t0 = time.perf_counter()
    out = attach([issue], raw)
    took = time.perf_counter() - t0
    assert out[0].position == SourceLocation("", 1, 33 + n)  # the value of the key
    return took


def test_a_long_upper_case_key_is_located_in_linear_time():
    """Review 1, finding 1: every upper-case letter of a key used to make one more prefix to look up
    (quadratic: 18 s at 256 k letters, hours at 4.9 MB)."""
    small, large = _attach_seconds(64_000), _attach_seconds(1_000_000)
    assert large < 1.0 and large < 25 * small + 0.05, (small, large)


def test_choice_and_companion_keys_are_matched_without_expanding_the_key():
    doc = '{"resourceType": "Observation", "valueQuantity": {"value": 1}, "_status": {"id": "s"}, "status": "x"}'
    assert where(doc, "Observation.value.value", "Observation.status.id", "Observation.valueQuantity") == [
        at(doc, "1"), at(doc, '"s"'), at(doc, '{"value"')]


def test_an_unknown_underscore_key_is_located_at_the_key():
    """Review 1, finding 14: `_foo` used to be reported at the document's start."""
    doc = '{\n "resourceType": "Patient",\n "_foo": 1\n}'
    assert where(doc, "Patient._foo") == [(3, 10)]


def test_comments_in_expressions_are_stripped_in_linear_time():
    assert segments("Patient/*x*/.name/*y*/[0].given") == [("name", 0), ("given", None)]
    t0 = time.perf_counter()
    segments("Patient." + "/*a" * 200_000)  # unclosed comments: a regular expression rescanned from each
    assert time.perf_counter() - t0 < 0.5


def _many_tokens(n: int) -> bytes:
    return b"[" + b",".join([b'{"k": [1, "v", null]}'] * n) + b"]"


def test_the_scanner_stops_at_the_deadline():
    """Review 1, finding 1: a timed-out request's scan stops (and frees its export slot)."""
    raw = _many_tokens(50_000)
    with deadline.until(time.monotonic() - 1):
        with pytest.raises(deadline.DeadlineExceeded):
            json_syntax_error(raw)
        with pytest.raises(deadline.DeadlineExceeded):
            attach([error(IssueCode.VALUE, "x", "X", expression=("Bundle.entry[49999]",))], raw)
    assert json_syntax_error(raw) is None  # without a deadline: scanned to the end


@pytest.mark.parametrize("shape", [
    lambda n: b"[" + b"1e5," * (n // 4) + b"]",            # one long array of numbers, broken at the end
    lambda n: b"{" + b'"a":1,' * (n // 6) + b"}",           # one object of many members, broken at the end
])
def test_a_large_malformed_body_costs_regular_expression_time(shape):
    """Review 1: the root container was always walked token by token (~1.2 µs per character: 6 s for a
    4.9 MB body); no child of it is wanted, so runs of scalars go through one regular expression."""
    raw = shape(2_000_000)
    t0 = time.perf_counter()
    assert json_syntax_error(raw) is not None
    assert time.perf_counter() - t0 < 1.5


# ----------------------------------------------------------------------------- duplicate member names


@pytest.mark.parametrize("raw, position, name", [
    (b'{"a": 1, "a": 2}', (1, 10), "a"),
    (b'{"a" : 1,\n "b": {"x": [1], "y": 2, "x": 3}}', (2, 26), "x"),
    (b'[{"k": 1}, {"k": 1, "\\u006b": 2}]', (1, 21), "k"),        # the same name, escaped
    (b'{"a": {"b": 1}, "a": 2}', (1, 17), "a"),                 # the first value is an object
    (b'{"a": [{}], "c": "x", "a": [{"d": {}}]}', (1, 23), "a"),
])
def test_unique_keys_finds_the_second_occurrence(raw, position, name):
    found = first_problem(raw, unique_keys=True)
    assert found == ("duplicate", position, f"duplicate member name '{name}'"), found
    assert first_problem(raw) is None  # without unique_keys: well-formed, the last one counts (orjson)


def test_unique_keys_shows_a_long_name_cut():
    raw = b'{"' + b"k" * 1000 + b'": 1, "' + b"k" * 1000 + b'": 2}'
    kind, _, reason = first_problem(raw, unique_keys=True)  # type: ignore[misc]
    assert kind == "duplicate" and len(reason) < 100
