"""The issue cap of every stage (exporter/issues.py IssueCap, settings `max_issues`): errors stop a stage
at the cap and say so; warnings never count towards it and never turn into an error, however many there
are (review 1, finding 2). The stages that can warn: the cross-field rules (tests/unit/rules/) and the
validator (here); the domain schema and the mapping run report errors only.
"""

from __future__ import annotations

from collections import Counter

import pytest

from exporter.issues import Issue, IssueCap, IssueCode, Severity, error
from exporter.settings import get_settings
from exporter.validation.validator import Validator


def _warning(n: int) -> Issue:
    return Issue(Severity.WARNING, IssueCode.VALUE, f"warning {n}", "W")


def test_warnings_are_listed_up_to_the_cap_then_counted() -> None:
    cap = IssueCap(3)
    assert not any(cap.add(_warning(n)) for n in range(10))
    issues = cap.close()
    assert [i.message for i in issues[:3]] == ["warning 0", "warning 1", "warning 2"]
    assert issues[3].severity is Severity.INFORMATION and issues[3].message_id == "ISSUES_NOT_LISTED"
    assert issues[3].message.startswith("7 more") and len(issues) == 4
    assert cap.close() == issues  # said once


def test_errors_stop_at_the_cap_whatever_warnings_came_first() -> None:
    cap = IssueCap(3)
    for n in range(50):
        assert cap.add(_warning(n)) is False
    answers = [cap.add(error(IssueCode.VALUE, f"error {n}", "E")) for n in range(3)]
    assert answers == [False, False, True]
    assert [i.message for i in cap.close() if i.is_error] == ["error 0", "error 1", "error 2"]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.from_settings(get_settings(), max_issues=get_settings().max_issues)


def _observations(n: int) -> dict:
    """A collection of n core Observations without narrative: each draws the warning of dom-6, nothing else
    (glucose, not a vital sign: those must follow the vital signs profile, as the HL7 validator demands)."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
         "resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]}}}  # not a vital sign
        for i in range(n)]}


def test_the_validator_lists_warnings_up_to_the_cap_and_never_fails_on_them(validator: Validator) -> None:
    """Before: 120 warnings made `validation stopped: more than 100 issues`, an error."""
    limit = validator.max_issues
    issues = validator.validate(_observations(limit + 20))
    assert not any(i.is_error for i in issues), [i.format() for i in issues if i.is_error]
    counts = Counter((i.severity, i.message_id) for i in issues)
    assert counts[(Severity.WARNING, "VAL_INVARIANT")] == limit
    assert issues[-1].message_id == "ISSUES_NOT_LISTED" and issues[-1].message.startswith("20 more")
