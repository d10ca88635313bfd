"""Invariants (native, translated, fhirpathpy) and document-Bundle rules."""

import pytest

from exporter.fhir.fhirpath import compile_expression, typed
from exporter.validation import messages as M
from exporter.validation.fhirpath_native import R4_CHOICE_NAMES, translate
from exporter.validation.invariants import FUNCTIONS, NATIVE
from tests.unit.validation.conftest import ids

OBS = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"}]},
       "valueQuantity": {"value": 5.5, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
       "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueInteger": 3}],
       "note": [{"text": "a"}, {"text": "b"}], "effectiveDateTime": "2024-01-02"}
EXPRESSIONS = [
    "value.ofType(Quantity).value.all($this >= 0 and $this <= 27 and $this.floor() = $this)",
    "value.ofType(Quantity).value.all($this >= 0 and $this <= 6)",
    "(code.coding.where(system = 'http://loinc.org' and code = '15074-8').exists() implies value.ofType(Quantity).code = 'mmol/L')",
    "code.coding.where(system = 'http://loinc.org' and code = '2339-0').exists() implies value.ofType(Quantity).code = 'mg/dL'",
    "status.matches('^fin')", "status.matches('^x')", "note.count() = 2", "note.text.first() = 'a'",
    "component.exists() or note.exists()", "dataAbsentReason.empty() and value.exists()", "issued.exists().not()",
    "status in ('final' | 'amended')", "note.text.all(length() < 2)", "effective.exists() xor issued.exists()",
    "code.coding.code.startsWith('150') and code.coding.system.endsWith('.org')", "%resource.status = 'final'",
    "status != 'final'", "component.value.ofType(integer) > 2", "code.coding.system.contains('loinc')",
]


EXPRESSIONS += [
    "Observation.code.coding.code = '15074-8'", "Observation.status.exists()", "Patient.name.exists()",
    "component.code.coding.code = '8480-6'", "component.value.exists()", "component.valueInteger = 3",
    "value.code.exists() and value.value > 5", "%resource.component.code.coding.system.exists()",
    "effective.exists() and effectiveDateTime.exists()", "dataAbsentReason.coding.exists().not()",
    "note.text.exists() and note.zz.empty()", "code.text.empty()",
]


EXPRESSIONS += [  # boolean mode: three-valued logic with empty operands, fused where().exists(), all(matches())
    "issued.exists() xor status.exists()", "issued = 'x' xor status = 'final'", "issued = 'x' implies status = 'x'",
    "status = 'final' implies issued = 'x'", "(issued = 'x').not()", "issued.not()", "status.not()",
    "code.coding.where(system = 'http://loinc.org').exists()", "code.coding.where(code = 'zz').exists().not()",
    "note.text.all(matches('^[ab]$'))", "note.text.all(matches('^a$'))", "note.all(text.exists())",
    "note.exists(text = 'b')", "note.text = 'a'", "note.text != 'a'", "valueQuantity.value = 5.5",
    "component.value = 3", "status = 'final' and (issued.empty() or issued = 'x')", "status.matches('x').not()",
    "(status = 'final' or issued = 'x') and code.coding.code.exists()", "status.empty() or status.matches('^f')",
]
EXPRESSIONS += ["note.exists()", "note.empty()", "code.exists()", "zz.exists()", "zz.empty()", "zz.matches('x')",
                "status.matches('^final$')", "code.matches('x')"]
EXPRESSIONS += ["status.trace('s') = 'final'", "note.trace('n').text.first() = 'a'", "code.trace('c').exists()",
                "note.trace().count() = 2",  # trace() returns its input (que-1 of every Questionnaire item uses it)
                "(status = 'final' implies note.empty().not()) and (status.trace('s') = 'x' implies note.trace('n').empty())"]
EXPRESSIONS += ["descendants().count() > 20", "descendants().count() < 20", "descendants().text.isDistinct()",
                "note.text.isDistinct()", "descendants().where(system = 'http://loinc.org').exists()", "note.descendants().count() = 2",
                "descendants().linkId.isDistinct()"]  # que-2 of every Questionnaire
SPARSE = {"resourceType": "Observation", "status": "final", "note": [{"text": "a"}], "code": {"text": "x"}}


@pytest.mark.parametrize("resource", [OBS, SPARSE], ids=["full", "sparse"])
@pytest.mark.parametrize("choices", [None, R4_CHOICE_NAMES], ids=["scan-all-keys", "r4-choice-names"])
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_translation_agrees_with_fhirpathpy(expression, choices, resource):
    native = translate(expression, choices)
    assert native is not None, "expected to be inside the translated subset"
    try:
        reference = compile_expression(expression, FUNCTIONS)(typed(resource, "Observation"), {"resource": resource})
    except Exception:  # fhirpathpy refuses it (e.g. a string function on a collection): ours must decline too
        assert native(resource, "Observation", {"resource": resource}) is None
        return
    verdict = native(resource, "Observation", {"resource": resource})
    assert verdict is None or verdict is (reference == [True])
    if verdict is None:  # declined at run time: only for cases the subset does not model
        assert len(reference) != 1 or not isinstance(reference[0], bool) or expression.startswith("note.text")


def test_r4_choice_names_are_those_of_the_core_package():
    from exporter.fhir.definitions import default_store
    from exporter.settings import get_settings
    store = default_store(get_settings())
    names = set()
    for url in store.urls("StructureDefinition"):
        if url.startswith("http://hl7.org/fhir/StructureDefinition/"):
            for e in ((store.structure(url) or {}).get("snapshot") or {}).get("element", []):
                last = e["path"].rsplit(".", 1)[-1]
                if last.endswith("[x]"):
                    names.add(last[:-3])
    assert names == set(R4_CHOICE_NAMES)


@pytest.mark.parametrize("expression", ["name.given.select($this)", "children().count() > 1", "today() > @2020"])
def test_outside_subset_is_not_translated(expression):
    assert translate(expression) is None


def test_native_core_invariants_agree_with_fhirpathpy():
    samples = [
        ({"url": "u", "valueString": "x"}, "Extension"), ({"url": "u"}, "Extension"),
        ({"url": "u", "extension": [{"url": "v", "valueString": "x"}], "valueString": "y"}, "Extension"),
        ({"code": "kg"}, "Quantity"), ({"code": "kg", "system": "http://unitsofmeasure.org"}, "Quantity"),
        ({"resourceType": "Observation", "dataAbsentReason": {"text": "x"}, "valueString": "y"}, "Observation"),
        ({"resourceType": "Observation", "valueString": "y"}, "Observation"),
        ({"resourceType": "Bundle", "type": "document"}, "Bundle"),
        ({"resourceType": "Bundle", "type": "document", "identifier": {"system": "s", "value": "v"}}, "Bundle"),
        ({"resourceType": "Bundle", "type": "collection", "total": 3}, "Bundle"),
        ({"resourceType": "Bundle", "type": "searchset", "total": 3}, "Bundle"),
        ({"value": "x"}, "ContactPoint"), ({"value": "x", "system": "phone"}, "ContactPoint"),
        ({"data": "eA=="}, "Attachment"), ({"comparator": "<"}, "Quantity"),
    ]
    context = {"ext": "Extension", "qty": "Quantity", "sqty": "Quantity", "obs": "Observation", "bdl": "Bundle",
               "dom": "Observation", "cpt": "ContactPoint", "att": "Attachment", "vs": "Observation"}
    checked = 0
    for (key, expression), native in NATIVE.items():
        if key in ("dom-3", "ref-1", "txt-1", "txt-2", "obs-7", "con-3", "bdl-7", "vs-1"):
            continue  # need resource context or functions fhirpathpy lacks; covered by resource tests
        fp = compile_expression(expression, FUNCTIONS)
        for value, type_code in samples:
            if context.get(key.split("-")[0]) != type_code:
                continue
            reference = fp(typed(value, type_code), {"resource": value})
            if reference not in ([True], [False]):
                continue
            assert native(value, None) is (reference == [True]), (key, value)
            checked += 1
    assert checked > 20


def test_profile_invariant_range(validator, example):
    phq = example("Observation-ExamplePHQ9Score")
    phq["valueQuantity"]["value"] = 28
    issues = validator.validate(phq)
    assert any(i.message_id == M.INVARIANT and i.is_error for i in issues), [i.format() for i in issues]


def test_document_bundle_rules(validator, example):
    doc = example("Bundle-ExampleDocumentBundle")
    assert ids(validator.validate(doc)) == []
    broken = example("Bundle-ExampleDocumentBundle")
    del broken["identifier"]
    broken["entry"] = broken["entry"][1:] + broken["entry"][:1]  # Composition no longer first
    messages = [i.message for i in validator.validate(broken) if i.is_error]
    assert any("bdl-9" in m for m in messages) and any("bdl-11" in m for m in messages)


def test_duplicate_full_urls_break_bdl7(validator, example):
    """bdl-7 is settled by the Bundle index when every fullUrl is a distinct string; a repeated one
    (same versionId: none) is still found."""
    doc = example("Bundle-ExampleDocumentBundle")
    assert not any("bdl-7" in i.message for i in validator.validate(doc))
    doc["entry"].append(dict(doc["entry"][-1]))
    assert any("bdl-7" in i.message for i in validator.validate(doc) if i.is_error)
    with_versions = example("Bundle-ExampleDocumentBundle")
    twin = {**with_versions["entry"][-1], "resource": {**with_versions["entry"][-1]["resource"], "meta": {
        **with_versions["entry"][-1]["resource"].get("meta", {}), "versionId": "2"}}}
    with_versions["entry"].append(twin)  # same fullUrl, another version: bdl-7 holds, and is not settled by the index
    assert not any("bdl-7" in i.message for i in validator.validate(with_versions))


def test_narrative_checks(validator, example):
    pat = example("Patient-ExamplePatient")
    pat["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>'}
    assert any("txt-1" in i.message for i in validator.validate(pat) if i.is_error)
    pat["text"]["div"] = '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">hi</p></div>'
    assert any("txt-1" in i.message for i in validator.validate(pat) if i.is_error)
    pat["text"]["div"] = '<div xmlns="http://www.w3.org/1999/xhtml"><p>hi</p></div>'
    assert not any("txt-" in i.message for i in validator.validate(pat))


def test_a_navigation_used_twice_is_evaluated_per_resource():
    """Repeated navigations are remembered per evaluation only: one compiled check, many resources."""
    check = translate("status.exists() and status = 'final' and note.text.exists() and note.text.all(matches('^a'))",
                      R4_CHOICE_NAMES)
    final_a = {"resourceType": "Observation", "status": "final", "note": [{"text": "a1"}]}
    final_b = {"resourceType": "Observation", "status": "final", "note": [{"text": "b1"}]}
    amended = {"resourceType": "Observation", "status": "amended", "note": [{"text": "a1"}]}
    assert [check(r, "Observation", {}) for r in (final_a, final_b, amended, final_a, final_a)] == \
        [True, False, False, True, True]


@pytest.mark.parametrize("expression", ["descendants().count() = %d", "descendants().linkId.isDistinct()",
                                        "descendants().id.isDistinct()"])
def test_descendants_as_fhirpathpy_finds_them(expression):
    """descendants() visits what fhirpathpy's does (counted over every IG example, the Questionnaires
    with a repeated linkId among them), or declines (a `_key` companion, a null)."""
    from tests.system.test_differential import _examples
    examples = list(_examples().values())
    for q in [e for e in examples if e.get("resourceType") == "Questionnaire" and e.get("item")]:
        twice = dict(q, item=q["item"] + q["item"][:1])
        examples.append(twice)
    decided = 0
    for resource in examples:
        rt = resource.get("resourceType", "Resource")
        fhirpathpy = compile_expression("descendants().count()", FUNCTIONS)(typed(resource, rt), {"resource": resource})
        text = expression % fhirpathpy[0] if "%d" in expression else expression
        verdict = translate(text, R4_CHOICE_NAMES)(resource, rt, {"resource": resource})  # type: ignore[misc]
        if verdict is None:
            continue
        reference = compile_expression(text, FUNCTIONS)(typed(resource, rt), {"resource": resource})
        assert verdict is (reference == [True]), (text, resource.get("id"))
        decided += 1
    assert decided > len(examples) // 2


def test_value_key_test_decided_once_per_key_sequence():
    """invariants._has_value_key (ext-1, obs-6/7, vs-2/3) remembers its answer per key sequence; the
    answer is the loop's for every object, and a key that is not a string fails as the loop does,
    every time (never remembered)."""
    from exporter.validation import invariants
    invariants._VALUE_KEYED.clear()
    for _ in range(2):  # the second round answers from what the first remembered
        assert invariants._has_value_key({"url": "u", "valueString": "x"}) is True
        assert invariants._has_value_key({"url": "u", "value": 1}) is True
        assert invariants._has_value_key({"url": "u", "extension": [], "xvalue": 1}) is False
        assert invariants._has_value_key({"value": 1, "url": "u"}) is True
        assert invariants._has_value_key({}) is False
        with pytest.raises(AttributeError):
            invariants._has_value_key({"url": "u", 1: "x"})
        with pytest.raises(AttributeError):
            invariants._has_value_key({"url": "u", True: "x"})
    assert ("url", 1) not in invariants._VALUE_KEYED and len(invariants._VALUE_KEYED) == 5
    wide = {f"k{i}": i for i in range(65)}  # more keys than a shape worth remembering
    assert invariants._has_value_key(wide) is False and len(invariants._VALUE_KEYED) == 5
    long_key = {"value": 1, "x" * 65: 2}  # an input's long key is never kept (memory stays bounded)
    assert invariants._has_value_key(long_key) is True and len(invariants._VALUE_KEYED) == 5
    assert invariants._has_value_key({"valueX": 1, 2: 2}) is True and len(invariants._VALUE_KEYED) == 5
    from exporter.fhir.definitions import default_store
    from exporter.settings import get_settings
    from exporter.validation.validator import Validator
    Validator(default_store(get_settings())).forget()
    assert invariants._VALUE_KEYED == {}


@pytest.mark.parametrize(("expression", "native"), [("iif($this is dateTime, true, false)", False),
                                                     ("($this as dateTime).toString().length() >= 8", True)])
def test_generated_invariants_set_the_focus_type_where_a_check_reads_it(expression, native):
    """The generated invariants (holds_fn) tell the focus's FHIR type only where a check reads it (one
    evaluated by fhirpathpy or a translation without its boolean test); native checks never do. A
    stale type left by other invariants must not change a verdict."""
    from exporter.validation.invariants import compile_constraint, holds_fn, unmet
    from exporter.validation.model import Constraint

    class Ctx:
        focus_type: str | None = None
        resource = root_resource = None
    c = compile_constraint(Constraint(key="vs-1" if native else "x-1", severity="error", human="", expression=expression))
    assert (NATIVE.get((c.key, c.expression)) is c.check) is native
    holds = holds_fn([c], "dateTime", False)
    for stale in ("string", "dateTime", None):
        ctx = Ctx()
        ctx.focus_type = stale
        assert holds("2024-01-01", ctx) is True
        assert next(unmet([c], "2024-01-01", Ctx(), "dateTime"), None) is None
        if not native:
            assert ctx.focus_type == "dateTime"


def test_generated_invariants_share_a_guard_test():
    """Invariants guarded by the same key (dom-2 … dom-5 by `contained`) are tested under one test of
    it; each still decides, and an unguarded one between two guarded alike splits the block."""
    from exporter.validation.invariants import compile_constraint, holds_fn
    from exporter.validation.model import Constraint
    order = ("dom-2", "dom-6", "dom-3", "dom-4")  # contained{dom-2}, dom-6, contained{dom-3, dom-4}
    exprs = sorted(((k, e) for k, e in NATIVE if k in order), key=lambda ke: order.index(ke[0]))
    cs = [compile_constraint(Constraint(key=k, severity="error", human="", expression=e)) for k, e in exprs]
    holds = holds_fn(cs, "Observation", True)

    class Ctx:
        focus_type: str | None = None
        resource = root_resource = None
    assert holds({"text": {"div": "<div/>"}}, Ctx()) is True
    assert holds({}, Ctx()) is False  # dom-6: no text.div
    nested = {"text": {"div": "<div/>"}, "contained": [{"resourceType": "Basic", "id": "a", "contained": [{}]}]}
    assert holds(nested, Ctx()) is False  # dom-2
    versioned = {"text": {"div": "<div/>"}, "contained": [{"resourceType": "Basic", "id": "a", "meta": {"versionId": "1"}}],
                 "extension": [{"url": "u", "valueReference": {"reference": "#a"}}]}
    assert holds(versioned, Ctx()) is False  # dom-4, after dom-6 in the order


class _Text(str):
    """A string that is not exactly `str` (values handed in by a caller need not be plain)."""


@pytest.mark.parametrize(("where", "holds"), [
    ({"agent": [{"who": {"reference": "#dev"}}]}, True),  # nested in a list of objects
    ({"note": [[["#dev"]]]}, True),  # lists in lists
    ({"agent": [{"who": {"reference": _Text("#dev")}}]}, True),  # a str subclass counts as a string
    ({"note": "#"}, True),  # '#' alone: the resource containing it
    ({"agent": [{"#dev": {"reference": "urn:x"}}]}, False),  # a key is no string value
    ({"agent": [{"who": {"reference": "#devx"}}], "n": [1, 2.5, True, None]}, False),
])
def test_dom3_reads_every_string_value(where, holds):
    """dom-3 (a contained resource is referred to from its container) collects every string value
    of the resource (invariants._strings_in), at any depth, and no key."""
    resource = {"resourceType": "Provenance", "contained": [{"resourceType": "Device", "id": "dev"}], **where}
    assert NATIVE[next(k for k in NATIVE if k[0] == "dom-3")](resource, None) is holds
