"""Invariants remember true verdicts under what they read of their focus (fhirpath_native `reads`,
fastpath.remembered_test): the navigations named are all an expression reads, and a validator
that remembers reports what one that never remembers reports."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation.fhirpath_native import R4_CHOICE_NAMES, translate
from exporter.validation.validator import Validator
from tests.unit.validation.test_fastpath import CORPUS, typical_bundle  # noqa: F401 (a fixture)


@pytest.mark.parametrize(("expression", "navigations"), [
    ("resource.meta.profile.exists() and resource.meta.profile.all(matches('^[^|]+[|][^|]+$'))",
     [("resource", "meta", "profile")]),
    ("(code.coding.where(system = 'http://loinc.org' and code = '15074-8').exists() and "
     "value.ofType(Quantity).code = 'mmol/L')", [("code", "coding"), ("valueQuantity", "code")]),
    ("item.all(linkId.exists())", [("item",)]),  # the criteria read the items, which `item` holds
    ("type != 'display' or code.empty()", [("type",), ("code",)]),
    ("value.all($this >= 0)", [("value",)]),
    ("Observation.code.exists()", [("Observation", "code")]),
    ("component.exists() or note.exists()", [("component",), ("note",)]),
    # the focus itself, or more than the focus: nothing to remember under
    ("$this.length() > 3 and code.exists()", None),
    ("matches('^a') and code.exists()", None),
    ("count() > 1 and code.exists()", None),
])
def test_reads_are_the_navigations_from_the_focus(expression, navigations):
    translated = translate(expression, R4_CHOICE_NAMES)
    assert translated is not None
    reads = translated.reads  # type: ignore[attr-defined]
    if navigations is None:
        assert reads is None
    else:
        assert sorted(r.steps[1] for r in reads) == sorted(navigations)


@pytest.mark.parametrize(("expression", "read"), [
    ("component.exists() or note.exists()", [True, False]),  # only whether they find something counts
    ("component.exists() and component.count() > 1", [[({"code": "a"}, None)]]),  # the count too: all of it
    ("code.empty() and component.all(code.exists())", [True, [({"code": "a"}, None)]]),  # code is there
])
def test_navigations_tested_only_for_existence_are_read_as_such(expression, read):
    translated = translate(expression, R4_CHOICE_NAMES)
    assert translated is not None
    focus = [({"component": [{"code": "a"}], "note": [], "code": {"text": "x"}}, "Observation")]
    assert [r(focus, {}) for r in translated.reads] == read  # type: ignore[attr-defined]


def _issues(v: Validator, resource: Any) -> Counter:
    return Counter((i.severity.value, i.code.value, i.message_id, i.message, i.expression)
                   for i in v.validate(copy.deepcopy(resource)))


@pytest.fixture(scope="module")
def pair() -> tuple[Validator, Validator]:
    store = default_store(get_settings())
    remembering, forgetting = Validator(store, time_limit_s=600), Validator(store, time_limit_s=600)
    forgetting.compiler.memo = None  # its invariants evaluate every time
    return remembering, forgetting


def test_remembered_verdicts_change_no_issue(pair):
    remembering, forgetting = pair
    names = sorted(CORPUS)
    for name in names + names:  # the second round meets what the first remembered
        assert _issues(remembering, CORPUS[name]) == _issues(forgetting, CORPUS[name]), name


def test_exported_bundle_with_changed_codes(pair, typical_bundle):  # noqa: F811
    """A whole export remembered clean, then entries whose remembered parts changed."""
    remembering, forgetting = pair
    assert _issues(remembering, typical_bundle) == _issues(forgetting, typical_bundle) == Counter()
    mutant = copy.deepcopy(typical_bundle)
    glucose = [e["resource"] for e in mutant["entry"] if "diga-blood-glucose" in str(e["resource"].get("meta"))]
    assert len(glucose) > 1
    quantity = glucose[-1]["valueQuantity"]
    quantity["code"] = {"mg/dL": "mmol/L", "mmol/L": "mg/dL"}[quantity["code"]]  # dgx-glu-1: not its code's unit
    mutant["entry"][-1]["resource"]["meta"]["profile"] = ["https://example.org/no-version"]  # dgx-bdl-3
    found = _issues(forgetting, mutant)
    assert {"dgx-glu-1", "dgx-bdl-3"} <= {key for *_, message, _ in found for key in ("dgx-glu-1", "dgx-bdl-3")
                                           if key in message}, found
    assert _issues(remembering, mutant) == found


def _from_raw(value: Any) -> list[Any]:
    """A navigation's result as its `raw` value decides it (fhirpath_native._path)."""
    if value is None:
        return []
    return [(y, None) for y in value if y is not None] if type(value) is list else [(value, None)]


@pytest.mark.parametrize(("expression", "focus", "decided"), [
    ("resource.meta.profile.exists() and resource.meta.profile.all(matches('^[^|]+[|][^|]+$'))",
     {"resource": {"meta": {"profile": ["a|1", None, "b|2"]}}}, True),
    ("resource.meta.profile.exists() and resource.meta.profile.all(matches('^[^|]+[|][^|]+$'))",
     {"resource": {"meta": {}}}, True),  # ends early: nothing found
    ("resource.meta.profile.exists() and resource.meta.profile.all(matches('^[^|]+[|][^|]+$'))",
     {"resource": [{"meta": {"profile": ["a|1"]}}]}, False),  # a list on the way: the general loop
    ("resource.meta.profile.exists() and resource.meta.profile.all(matches('^[^|]+[|][^|]+$'))",
     {"resource": "text"}, False),
    ("value.all($this >= 0)", {"valueInteger": 3}, False),  # a choice element under another name
    ("value.all($this >= 0)", {"value": 3}, True),
    ("item.all(linkId.exists())", {"item": [{"linkId": "a"}, None]}, True),
    ("item.all(linkId.exists())", [1, 2], False),  # not an object
])
def test_raw_values_decide_the_navigations_they_key(expression, focus, decided):
    """A remembered verdict keyed by the JSON value a navigation ends at (its `raw`) is sound only if
    that value decides the navigation's result: where `raw` answers, the result is the one the value
    gives; where it cannot (a list or a choice element on the way), it says UNDECIDED and the
    result itself is the key."""
    from exporter.validation.fhirpath_native import UNDECIDED
    translated = translate(expression, R4_CHOICE_NAMES)
    assert translated is not None
    coll = [(focus, None)]
    answers = [(r.raw(coll), r(coll, {})) for r in translated.reads]  # type: ignore[attr-defined]
    assert all((raw is not UNDECIDED) == decided for raw, _ in answers)
    for raw, result in answers:
        if raw is not UNDECIDED:
            assert _from_raw(raw) == result


def test_verdicts_under_raw_values_and_results_never_mix():
    """A focus keyed by its raw value and one keyed by its navigation's result, the two keys
    serialising alike: the second is not answered from the first's remembered verdict."""
    from exporter.validation.fastpath import Memo, remembered_test
    from exporter.validation.fhirpath_native import UNDECIDED

    def read(focus: Any, env: Any) -> Any:
        return [("a", None)]
    read.raw = lambda focus: [["a", None]] if focus == "by value" else UNDECIDED  # type: ignore[attr-defined]
    asked: list[Any] = []

    def test(focus: Any, env: Any) -> bool:
        asked.append(focus)
        return focus == "by value"
    run = remembered_test(test, (read,), Memo(100))
    assert run("by value", {}) is True and run("by value", {}) is True
    assert asked == ["by value"]  # remembered under its raw value
    assert run("by result", {}) is False  # same bytes, other table: evaluated
    assert asked == ["by value", "by result"]


@pytest.mark.parametrize("repeats", [False, True])
def test_a_given_up_memo_gives_way_to_the_test_it_wraps(repeats):
    """A remembered test whose focuses hardly repeat is given up after its trial, and the generated
    code that held it calls the test itself from then on (fastpath.rewire); one whose focuses repeat
    keeps remembering. Verdicts are the test's either way."""
    from exporter.validation.fastpath import MEMO_MIN_HITS, MEMO_TRIAL, Memo, remembered_test, rewire

    def test(focus: Any, env: Any) -> bool:
        return focus != "bad"

    def read(focus: Any, env: Any) -> Any:
        return [(focus, None)]
    env: dict[str, Any] = {}
    env["C0"] = wrapper = remembered_test(test, (read,), Memo(100_000), rewire(env, "C0"))
    for i in range(MEMO_TRIAL):
        focus = f"v{i % MEMO_MIN_HITS}" if repeats else f"v{i}"
        assert env["C0"](focus, {}) is True
    assert env["C0"] is (wrapper if repeats else test)
    assert env["C0"]("bad", {}) is False and env["C0"]("v1", {}) is True


@pytest.mark.parametrize(("expression", "remembered"), [
    ("component.exists() or note.exists()", False),  # only whether they find something: the key costs the test
    ("component.empty() and note.exists().not()", False),
    ("component.exists() and component.count() > 1", True),  # the count too: the whole result is read
    ("code.empty() and component.all(code.exists())", True),
    ("(code.coding.where(system = 'http://loinc.org' and code = '15074-8').exists() and "
     "value.ofType(Quantity).code = 'mmol/L')", True),
])
def test_a_test_reading_only_presence_is_not_remembered(expression, remembered):
    """fastpath.worth_remembering: an invariant whose every read is whether a navigation finds anything
    is called bare by the generated check (no memo in between); any other stays remembered. Verdicts
    are the same either way."""
    from exporter.validation.fastpath import Memo, worth_remembering
    from exporter.validation.invariants import compile_constraint, holds_fn
    from exporter.validation.model import Constraint

    c = compile_constraint(Constraint("x-1", "error", "x", expression))
    assert c.test is not None and c.reads is not None
    assert worth_remembering(c.reads) is remembered
    holds = holds_fn([c], "Observation", True, Memo(1000))
    assert (holds.__globals__["C0"] is not c.test) is remembered
    bare = holds_fn([c], "Observation", True, None)
    for focus in ({"component": [{"code": {"text": "a"}}], "note": [{"text": "n"}]}, {"note": [{"text": "n"}]},
                  {"component": [{"code": {"text": "a"}}, {"code": {"text": "b"}}]}, {"status": "final"},
                  {"code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"}]},
                   "valueQuantity": {"code": "mmol/L"}}):
        for _ in range(2):  # the second time meets what the first remembered
            assert holds(focus, None) == bare(focus, None), focus
