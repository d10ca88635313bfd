"""Differential on FHIR's own examples (tools/devstack/examples_differential.py): every instance of
hl7.fhir.r4.examples#4.0.1 and seeded mutations of them, judged by our validator (with the HL7
validator's policy) and by the HL7 validator; the verdicts agree on at least 99 % of the cases,
every disagreement is explained in docs/validation.md by the rejecting side's message ids, and
every explanation there still explains one. The figure is printed (pytest -s) and written to
`out/examples-differential.json`."""

from __future__ import annotations

import json

import pytest

from exporter.settings import get_settings
from tools.devstack import examples_differential as D

pytestmark = pytest.mark.refvalidator


@pytest.fixture(scope="module")
def report(refvalidator) -> D.Report:
    if not D.examples_folder().is_dir():
        pytest.fail(f"{D.examples_folder()} is missing: run `make setup`", pytrace=False)
    found = D.run(ref=refvalidator)
    out = get_settings().root / "out"
    out.mkdir(exist_ok=True)
    (out / "examples-differential.json").write_text(json.dumps(found.as_json(), indent=2), encoding="utf-8")
    print("\n" + found.line())
    return found


def test_corpus_is_every_example_and_the_mutants(report):
    assert report.cases == 705 + D.MUTANTS


def test_agreement_reaches_the_target(report):
    assert report.agreement >= D.TARGET, report.line()


def test_every_disagreement_is_explained(report):
    reasons = D.documented()
    unexplained = {k: v for k, v in report.disagreements.items() if D.explained_by(v, reasons) is None}
    assert unexplained == {}, json.dumps(unexplained, indent=1)[:6000]


def test_no_stale_explanation(report):
    reasons = D.documented()
    used = set().union(*[D.explained_by(v, reasons) or set() for v in report.disagreements.values()])
    assert sorted(set(reasons) - used) == []


def test_left_out_messages_are_listed_in_the_docs(report):
    text = (get_settings().root / "docs" / "validation.md").read_text(encoding="utf-8")
    assert [mid for mid in report.left_out if f"`{mid}`" not in text] == []
