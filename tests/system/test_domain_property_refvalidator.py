"""A sample of the property-test corpus (documents drawn from the domain schema, tests/support/
domainstrategy.py) that exports successfully is also accepted by the HL7 reference validator."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from exporter.pipeline import Exporter
from exporter.settings import get_settings
from tests.support.domainstrategy import documents
from tools.devstack.refvalidator import errors

pytestmark = pytest.mark.refvalidator

EXPORT_TIME = "2026-04-06T10:00:00+02:00"
SAMPLE = 6  # Bundles sent to the reference validator (each takes a second or two)


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


def test_successful_exports_of_drawn_documents_pass_the_hl7_validator(exporter: Exporter, refvalidator) -> None:
    bundles: list[dict[str, Any]] = []

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(doc=documents())
    def collect(doc: dict[str, Any]) -> None:
        if len(bundles) < SAMPLE:
            result = exporter.export(doc, export_time=EXPORT_TIME)
            if result.ok:
                bundles.append(result.bundle)

    collect()
    assert len(bundles) == SAMPLE, "the corpus exports too rarely to sample it"
    for bundle in bundles:
        outcome = refvalidator.validate(bundle)
        assert errors(outcome) == [], [(i.get("expression"), i.get("diagnostics")) for i in errors(outcome)][:5]
