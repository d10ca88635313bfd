"""Never a traceback, one schema judge: property-based tests over schemas/domain-patient.schema.json.

* every document the schema accepts (drawn by tests/support/domainstrategy.py from the schema itself,
  some repaired to keep the cross-field rules) either exports a Bundle our validator accepted, or fails
  with error issues that each name where (a JSON or FHIR path, or a file:line) — never an exception;
  and the result serialises as UTF-8 JSON (no unpaired surrogate can reach the output);
* the fast checker and the explaining jsonschema validator agree on that corpus and on mutations of it
  (wrong types, values out of range, impossible dates, leap seconds, control characters, unpaired
  surrogates, a trailing newline after a pattern);
* the edge inputs of issue 13 — an unpaired surrogate, control characters, a leap second, an impossible
  date — each get one clear DOMAIN_SCHEMA error at their path, through the pipeline.
The same corpus, exported, passes the HL7 reference validator: tests/system/test_domain_property_refvalidator.py.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.pipeline import Exporter
from exporter.settings import get_settings
from tests.support.domainstrategy import documents, schema_documents

EXPORT_TIME = "2026-04-06T10:00:00+02:00"
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


def explained(exporter: Exporter, doc: Any) -> list[Any]:
    return list(exporter._schema_validator.iter_errors(doc))


@PROPERTY
@given(doc=documents())
def test_a_schema_valid_document_exports_or_fails_with_issues(doc: dict[str, Any], exporter: Exporter) -> None:
    assert exporter._fast_schema.is_valid(doc), "the strategy draws schema-valid documents only"
    assert explained(exporter, doc) == [], "the explaining validator agrees"
    result = exporter.export(doc, export_time=EXPORT_TIME)  # must not raise
    if result.ok:
        assert result.bundle is not None and not any(i.is_error for i in result.issues)
        orjson.dumps(result.bundle)  # refuses unpaired surrogates
        json.dumps(result.bundle, ensure_ascii=False).encode("utf-8")
    else:
        errors = [i for i in result.issues if i.is_error]
        assert result.bundle is None and errors
        assert all(i.expression or i.location for i in errors), [i.format() for i in errors]
    json.dumps(result.operation_outcome(), ensure_ascii=False).encode("utf-8")


ODD = [None, True, 0, -1, 1e-9, 1.5, 10**12, "", " ", "x", "\x00", "a\x1fb", "\ud800", "a\udfff", "2026-02-30",
       "2026-02-30T10:00:00+01:00", "2026-03-09T23:59:60Z", "2026-03-09T24:00:00Z", "2026-03-09T10:00:00+15:00",
       "2026-03-09T10:00:00", "F32.1\n", "A123456780\n", [], {}, ["x"]]


def _paths(node: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, at + (i,))
    return out


@st.composite
def mutated(draw: Any) -> Any:
    """A schema-valid document with one place set to an odd value (or a trailing newline added)."""
    doc = draw(documents())
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    node = doc
    for step in path[:-1]:
        node = node[step]
    old = node[path[-1]]
    if isinstance(old, str) and draw(st.booleans()):
        node[path[-1]] = old + draw(st.sampled_from(["\n", "\x00", "\ud800", " "]))
    else:
        node[path[-1]] = draw(st.sampled_from(ODD))
    return doc


@PROPERTY
@given(doc=st.one_of(schema_documents(), mutated()))
def test_the_fast_checker_and_the_explaining_validator_agree(doc: Any, exporter: Exporter) -> None:
    fast = exporter._fast_schema.is_valid(doc)
    errors = explained(exporter, doc)
    assert fast == (errors == []), [(e.json_path, e.validator) for e in errors][:5]
    issues = exporter.check_domain(doc)
    assert bool(issues) == (not fast)
    assert all(i.message_id == "DOMAIN_SCHEMA" and i.expression for i in issues), [i.format() for i in issues]


EDGES = {
    "unpaired surrogate in a name": (("patient", "given_name"), "Erika\ud800", "control character or an unpaired surrogate"),
    "lone low surrogate in a note": (("diary_entries", 0, "note"), "\udc00 gut", "control character or an unpaired surrogate"),
    "NUL in a note": (("diary_entries", 0, "note"), "Kanal\x00zu", "control character or an unpaired surrogate"),
    "escape sequence in a display": (("diagnoses", 0, "display"), "\x1b[2J Episode", "control character"),
    "leap second": (("measurements", 0, "measured_at"), "2026-03-15T23:59:60Z", "no leap second"),
    "impossible date-time": (("questionnaires", 0, "completed_at"), "2026-02-30T10:00:00+01:00", "exist"),
    "impossible birth date": (("patient", "birth_date"), "1959-02-30", "calendar date that exists"),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_an_edge_input_gets_one_clear_error_at_its_path(name: str, exporter: Exporter) -> None:
    path, value, words = EDGES[name]
    doc = json.loads((get_settings().root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    result = exporter.export(copy.deepcopy(doc), export_time=EXPORT_TIME)
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    assert result.bundle is None
    assert [i.message_id for i in result.issues] and {i.message_id for i in result.issues} == {"DOMAIN_SCHEMA"}
    at = [i for i in result.issues if i.expression == (where,)]
    assert at and any(words in i.message for i in at), [i.format() for i in result.issues]
    text = json.dumps(result.operation_outcome(), ensure_ascii=False)
    assert value not in text
    text.encode("utf-8")


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"schema_version": "1.0\xff"}', b"\xef\xbb\xbf{}",
                                 b'{"patient": {"given_name": "\\ud800"}}', b"", b"null"])
def test_fhir_export_map_never_ends_in_a_traceback(raw: bytes, tmp_path, capsys) -> None:
    from exporter.cli import main

    path = tmp_path / "in.json"
    path.write_bytes(raw)
    assert main(["map", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and ("JSON_" in err or "DOMAIN_" in err), err[-300:]
