"""The engine's fast paths give exactly what the general paths give: the date-time conversion, the
HTML escaper, the quick template renderer (against jinja2 and the strict simple renderer), uuid5
ids, the `when` pre-filter, constant folding and straight-line structures — and a Bundle shares no
object with another Bundle or with the compiled mappings."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from markupsafe import escape

import exporter.engine.values as values
from exporter.engine.ids import resource_id
from exporter.engine.templating import Template, TemplateProblem, _quick, _simple, escape_text
from exporter.engine.values import (
    MISSING,
    CompileContext,
    ItemTest,
    RunContext,
    Scope,
    compile_value,
    constant_of,
    converter,
    item_test,
)
from exporter.pipeline import Exporter
from exporter.settings import get_settings

EXPORT_TIME = "2026-04-06T10:00:00+02:00"
SAMPLES = get_settings().root / "samples" / "patients"


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


# -- date-times ------------------------------------------------------------------------------------
def _datetime_texts(n: int) -> list:
    """Mostly well-formed date-times (every offset form, fractions, month ends, leap days), some broken."""
    r = random.Random(7)
    out: list = []
    for _ in range(n):
        text = (f"{r.choice([1, 1900, 1969, 2000, 2023, 2024, 2026, 2100, 9999]):04d}-{r.randint(1, 12):02d}-"
                f"{r.randint(1, 31):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}")
        text += r.choice(["", "", "", ".000", ".123", ".5", ".120", ".999999", ".000001", ".0001", ".1234"])
        text += r.choice(["+02:00", "+01:00", "Z", "+00:00", "-00:00", "-05:30", "+23:59", "+14:00", "", "+0200",
                          "+24:00", "+02:60", "z"])
        if r.random() < 0.1:  # break one character
            i = r.randrange(len(text))
            text = text[:i] + r.choice("0912:-T ٢x") + text[i + 1:]
        if r.random() < 0.05:
            text = r.choice([" ", "\t"]) + text
        out.append(text)
    return out + ["0000-01-01T00:00:00+01:00", "2024-02-29T12:00:00+01:00", "2023-02-29T12:00:00+01:00",
                  "2026-04-31T12:00:00+02:00", "2026-03-01T24:00:00+01:00", "2026-03-01T23:59:60+01:00",
                  "2026-03-01", "2026-03", "2026", "2026-03-01 07:30", 1767225600, 1767225600.5, True, None]


def _convert(conv, v):
    try:
        return "ok", conv(v)
    except Exception as exc:  # noqa: BLE001 - the error is part of what is compared
        return "error", type(exc), str(exc)


@pytest.mark.parametrize("kind", ["dateTime", "instant"])
def test_datetime_fast_path_equals_the_general_conversion(kind, monkeypatch):
    texts = _datetime_texts(20_000)
    fast = converter(kind, "Europe/Berlin")
    fast_results = [_convert(fast, t) for t in texts]
    hits = sum(1 for t in texts if isinstance(t, str) and values._NORMALISED_DATETIME(t) is not None)
    assert hits > 2_500  # the fast path is really exercised
    monkeypatch.setattr(values, "_NORMALISED_DATETIME", lambda text: None)
    general = converter(kind, "Europe/Berlin")
    assert [_convert(general, t) for t in texts] == fast_results


def test_json_numbers_are_decimals_as_they_are():
    decimal, integer = converter("decimal", "Europe/Berlin"), converter("integer", "Europe/Berlin")
    for v in [0, 1, -3, 10**30, 5.0, 5.5, -0.0, 1e300]:
        assert decimal(v) is v
        if type(v) is int:
            assert integer(v) is v
    for bad in (True, False, "x", "inf"):
        with pytest.raises((ValueError, TypeError, ArithmeticError)):
            decimal(bad)


# -- escaping and templates ------------------------------------------------------------------------
def _strings(n: int) -> list[str]:
    r = random.Random(3)
    alphabet = "ab <>&'\"{}%#.ÜßΩ\n\t\\;€"
    return ["", "&amp;", "<&>'\"", "plain"] + ["".join(r.choice(alphabet) for _ in range(r.randrange(12)))
                                              for _ in range(n)]


def test_escape_text_equals_markupsafe():
    for s in _strings(5_000):
        assert escape_text(s) == str(escape(s))


QUICK_SOURCES = [
    "{{ item.a }}", "{{item.n}} kg", "{{ item.d[:10] }} on {{ doc.p.q }}", "{{ item.none }}", "{{ item.k }}!",
    "a {{ index }} b", "{{ parent.a }}-{{ index + 1 }}", "{{ item.a | upper }} {{ item.a|lower }}",
    "{{ item.d[:4] }} x{% if item.n is defined %}, n {{ item.n }}/5{% endif %}.",
    "{% if item.missing is not defined %}none{% endif %}{% if doc.p.q is defined %}[{{ doc.p.q }}]{% endif %}",
    "{% if item.x is defined %}{% if item.x.y is defined %}{{ item.x.y }}{% endif %}|{% endif %}", "{ braces } %} }}",
    "{{ item.n + 0 }}", "{{ item.list }}", "{{ item.missing }}", "{{ nothing }}", "{{ item.a.b }}", "{{ item.n[:2] }}",
    "{{ item.k + 1 }}", "{{ item.none | upper }}", "{{ item.list[:1] }}", "{{ export_time[:10] }}", "no substitution",
]
VARIABLE_SETS = [
    {"item": {"a": "x<y>&\"'", "n": 7.5, "d": "2026-03-01T07:30:00+01:00", "none": None, "k": True, "list": [1, "<"],
              "x": {"y": "<z>"}},
     "parent": {"a": "p&"}, "doc": {"p": {"q": "Müller <3"}}, "index": 2, "export_time": EXPORT_TIME},
    {"item": {"a": "{{ 7*7 }}", "n": 3, "d": "2026", "none": "None", "k": 0, "list": [], "x": 5}, "parent": None,
     "doc": {"p": {}}, "index": None, "export_time": EXPORT_TIME},
    {"item": "a string", "doc": [], "index": 0},
    {"item": {"a": 1, "n": None, "d": 5, "x": {}}, "doc": {"p": 5}, "parent": {"a": ["x"]}, "index": True},
]


def _render(template: Template, variables):
    try:
        return "ok", template.render(variables)
    except TemplateProblem as exc:
        return "error", str(exc)


@pytest.mark.parametrize("source", QUICK_SOURCES)
@pytest.mark.parametrize("xhtml", [False, True])
def test_quick_path_renders_like_before(source, xhtml):
    """Templates the strict simple renderer took render as it rendered them; all others as jinja2."""
    t = Template(source, xhtml=xhtml)
    before = Template(source, xhtml=xhtml)
    before._fast = _simple(source, xhtml)  # the renderer of these templates before the quick path
    assert _quick(source, xhtml, before.render) is not None  # the quick path takes every one of them
    for variables in VARIABLE_SETS:
        assert _render(t, variables) == _render(before, variables), variables


@pytest.mark.parametrize("source", [s for s in QUICK_SOURCES if _simple(s, False) is None])
def test_quick_path_output_equals_jinja(source):
    for xhtml in (False, True):
        t, jinja = Template(source, xhtml=xhtml), Template(source, xhtml=xhtml)
        jinja._fast = None
        for variables in VARIABLE_SETS:
            assert _render(t, variables) == _render(jinja, variables), (source, variables)


def test_quick_path_with_random_values():
    sources = [s for s in QUICK_SOURCES if "missing" not in s and "nothing" not in s]
    pairs = []
    for source in sources:
        for xhtml in (False, True):
            before = Template(source, xhtml=xhtml)
            before._fast = _simple(source, xhtml)  # None: jinja2
            pairs.append((Template(source, xhtml=xhtml), before))
    r = random.Random(11)
    for _ in range(300):
        value = r.choice([r.choice(_strings(30)), r.randint(-5, 5), r.random(), None, True])
        variables = {"item": {"a": value, "n": value, "d": value, "none": value, "k": value, "list": value, "x": value},
                     "parent": {"a": value}, "doc": {"p": {"q": value}}, "index": value, "export_time": value}
        for t, before in pairs:
            assert _render(t, variables) == _render(before, variables), variables


def test_quick_path_declines_what_it_does_not_know():
    for source in ["{{ item.items }}", "{{ item.a }}\n", "a\r\n{{ item.a }}", "{{ item.a | title }}", "{{ a - 1 }}",
                   "{% for x in item %}{{ x }}{% endfor %}", "{% if item.a %}x{% endif %}", "{% if item is defined %}x{% endif %}",
                   "{% if item.a is defined %}x", "{{- item.a }}", "{# c #}{{ item.a }}", "{{ item.a[1:] }}"]:
        assert _quick(source, True, lambda v: "") is None, source


def test_domain_strings_stay_data():
    t = Template("{{ item.note }}|{% if item.note is defined %}{{ item.note | upper }}{% endif %}", xhtml=True)
    assert t.render({"item": {"note": "{{ 7*7 }} {% raw %}"}}) == "{{ 7*7 }} {% raw %}|{{ 7*7 }} {% RAW %}"


# -- ids -------------------------------------------------------------------------------------------
def test_resource_id_is_uuid5_for_any_namespace_and_name():
    r = random.Random(5)
    for i in range(3_000):
        namespace = uuid.UUID(int=r.getrandbits(128)) if i % 100 == 0 else uuid.UUID(int=12345)
        name = "".join(chr(r.randint(1, 0x2FFF)) for _ in range(r.randint(0, 20)))
        assert resource_id(namespace, "Observation", "m|x", name) == str(uuid.uuid5(namespace, f"Observation|m|x|{name}"))


# -- `when` pre-filter -----------------------------------------------------------------------------
def test_item_test_grouping_agrees_with_the_test():
    test = item_test("kind = 'weight'")
    assert isinstance(test, ItemTest) and item_test("kind = 'a' or kind = 'b'") is None
    r = random.Random(2)
    kinds = ["weight", "height", "", None, 5, True, "Weight", "weight "]
    for _ in range(200):
        records = [({"kind": r.choice(kinds)} if r.random() < 0.9 else {}, f"$[{i}]") for i in range(r.randrange(8))]
        if r.random() < 0.2:
            records.insert(0, (r.choice([["weight"], "weight", {"kind": ["weight"]}, {"kind": {}}]), "$[x]"))
        groups = test.group(records)
        verdicts = [test(item) for item, _ in records]
        if None in verdicts:
            assert groups is None
        else:
            assert groups is not None
            for literal in ("weight", "height", "", "nothing"):
                holds = ItemTest("kind", literal)
                assert groups.get(literal, []) == [rec for rec in records if holds(rec[0])]


# -- constants and structures ----------------------------------------------------------------------
def _evaluate(spec, item):
    cc = CompileContext("test.yaml", {}, {}, {"patient": ("Patient", True)})
    fn = compile_value(spec, ("resource",), cc)
    assert cc.issues == []
    run = RunContext({"root": 1}, EXPORT_TIME, lambda m, k, loc, path: f"urn:uuid:{m}-{k}")
    return fn, fn(Scope(item, "$.x", Scope({"root": 1}, "$", None, run), run))


def test_empty_values_are_omitted_in_folded_and_generated_code():
    constant = {"a": [], "b": {}, "c": {"literal": None}, "d": 0, "e": "", "f": False, "g": [[], {}, {"x": []}, 1],
                "h": {"literal": {}}, "i": {"literal": []}, "j": {"k": {"l": []}}}
    fn, value = _evaluate(constant, {})
    assert constant_of(fn) == value == {"c": None, "d": 0, "e": "", "f": False, "g": [1]}
    mixed = dict(constant, m={"path": "v"}, n=[{"path": "v"}, {"path": "nope"}, 2, {"for_each": "l", "item": {"path": "$this"}}],
                 o={"p": {"path": "nope"}}, q={"ref": "patient"}, r={"path": "empty"}, s={"path": "zero"})
    item = {"v": "x", "l": [1, None, {}], "empty": {}, "zero": 0}
    fn, value = _evaluate(mixed, item)
    assert constant_of(fn) is values._VARIES
    assert value == {"c": None, "d": 0, "e": "", "f": False, "g": [1], "m": "x", "n": ["x", 2, 1, {}],
                     "q": {"reference": "urn:uuid:patient-patient"}, "s": 0}
    assert list(value) == ["c", "d", "e", "f", "g", "m", "n", "q", "s"]  # the order of the mapping
    fn, value = _evaluate({"a": {"path": "nope"}, "b": [{"path": "nope"}]}, item)
    assert value is MISSING
    fn, value = _evaluate({"a": [], "b": {}}, item)
    assert value is MISSING and constant_of(fn) is MISSING


@pytest.mark.parametrize("spec", [
    {"a": {"b": 1}, "m": {"path": "v"}, "n": [{"path": "v"}, 2], "o": {"p": {"path": "nope"}}, "q": {"ref": "patient"},
     "s": {"path": "zero"}, "c": {"literal": None}},
    {"m": {"path": "v"}, "k": "constant after a value", "id": {"path": "zero"}},  # a key the dict already has
    {"a": {"path": "nope"}, "b": [{"path": "nope"}]},  # nothing kept: MISSING
    {"when": "v = 'x'", "m": {"path": "v"}, "e": 1},  # a condition that holds
    {"when": "v = 'y'", "m": {"path": "v"}, "e": 1},  # one that does not: MISSING
])
def test_a_structure_filled_in_is_the_structure_updated_in(spec):
    """values.filler: what _produce writes into a resource equals `resource.update(structure)`, key order too."""
    item = {"v": "x", "zero": 0}
    fn, value = _evaluate(spec, item)
    fill = values.filler(fn)
    assert fill is not None
    expected = {"resourceType": "T", "id": "i", "meta": {}}
    if value is not MISSING:
        expected.update(value)
    run = RunContext({"root": 1}, EXPORT_TIME, lambda m, k, loc, path: f"urn:uuid:{m}-{k}")
    got = {"resourceType": "T", "id": "i", "meta": {}}
    fill(Scope(item, "$.x", Scope({"root": 1}, "$", None, run), run), got)
    assert list(got.items()) == list(expected.items())


def test_only_a_generated_structure_is_filled_in():
    for spec in ({"a": 1}, {"a": [1]}, [{"path": "v"}], {"path": "v"}):  # folded constants, a list, a path
        fn, _ = _evaluate(spec, {"v": "x"})
        assert values.filler(fn) is None


def test_constants_are_built_anew_on_every_call():
    fn, first = _evaluate({"a": {"b": [1, {"c": "d"}]}, "e": {"literal": {"f": [1]}}}, {})
    second = fn(None)
    assert first == second
    assert first is not second and first["a"] is not second["a"] and first["a"]["b"][1] is not second["a"]["b"][1]
    assert first["e"] is not second["e"] and first["e"]["f"] is not constant_of(fn)["e"]["f"]
    big = {"list": list(range(5_000)), "deep": json.loads("[" * 60 + "1" + "]" * 60)}
    fn, value = _evaluate(big, {})
    assert value == big and value["list"] is not fn(None)["list"]


def _containers(value, found: dict[int, object]) -> None:
    if isinstance(value, (dict, list)):
        found[id(value)] = value  # keeps the object alive: ids stay unique
        for v in value.values() if isinstance(value, dict) else value:
            _containers(v, found)


def test_bundles_share_no_object_with_each_other_or_with_the_mappings(exporter):
    doc = json.loads((SAMPLES / "typical.json").read_text(encoding="utf-8"))
    first, _ = exporter.engine.build(doc, EXPORT_TIME)
    second, _ = exporter.engine.build(doc, EXPORT_TIME)
    assert first == second
    a: dict[int, object] = {}
    b: dict[int, object] = {}
    mappings: dict[int, object] = {}
    domain: dict[int, object] = {}
    _containers(first, a)
    _containers(second, b)
    ms = exporter.engine.ms
    _containers([m.resource for m in ms.mappings] + [ms.layout] + [t.entries for t in ms.tables.values()], mappings)
    _containers(doc, domain)
    assert not (a.keys() & b.keys())
    assert not (a.keys() & mappings.keys())
    assert not (a.keys() & domain.keys())  # paths pass domain values on as they are; here all are scalars


def test_every_dangling_reference_is_reported(tmp_path):
    import shutil

    target = tmp_path / "mappings"
    shutil.copytree(get_settings().root / "mappings", target)
    path = target / "resources" / "phq9-score.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "{ref: questionnaire-response, key: {path: id}}", "{ref: questionnaire-response, key: {template: \"x{{ item.id }}\"}}"),
        encoding="utf-8")
    engine = Exporter.from_settings(get_settings(), target).engine
    doc = json.loads((SAMPLES / "typical.json").read_text(encoding="utf-8"))
    bundle, issues = engine.build(doc, EXPORT_TIME)
    phq9 = [i for i, q in enumerate(doc["questionnaires"]) if q["instrument"] == "phq9"]
    dangling = [i for i in issues if i.message_id == "MAP_REF_DANGLING"]
    assert bundle is None and len(phq9) >= 1
    assert [i.expression for i in dangling] == [(f"$.questionnaires[{i}]",) for i in phq9]


def test_renderer_checks_the_length_like_render():
    for source in ["{{ item.a }}", "{{ item.a | upper }}{% if item.b is defined %}x{% endif %}", "{{ item.a }}\n"]:
        t = Template(source, xhtml=True)
        for value in ["x" * 100_001, 5, ["x" * 100_001]]:
            variables = {"item": {"a": value, "b": 1}}
            results = []
            for render in (t.render, t.renderer()):
                try:
                    results.append(("ok", render(variables)))
                except TemplateProblem as exc:
                    results.append(("error", str(exc)))
            assert results[0] == results[1], (source, value)


# -- the inlined closures: paths, conversions, look-ups, references ---------------------------------
ODD_VALUES = [None, 0, 0.0, "", "x", "<&>", False, True, [], {}, [None], {"a": None}, 5.5, -1, "2026-03-01T07:30:00Z",
              "2026-03-01T07:30:00+01:00", "2026-03-01", 1767225600]


def _scope(item, reports):
    run = RunContext({"root": 1}, EXPORT_TIME, lambda m, k, loc, path: f"urn:uuid:{m}-{k}" if k != "none" else None)
    run.report = lambda message_id, message, where, data_path, code=None: reports.append((message_id, message, str(data_path)))
    return Scope(item, "$.x", Scope({"root": 1}, "$", None, run), run)


def _closure(spec, cc):
    """The value of `spec` computed by its own closure, kept or omitted by the rule of a structure."""
    fn = compile_value(spec, ("resource", "f"), cc)
    return lambda scope: (lambda v: v if v is not MISSING and (v or type(v) not in (dict, list)) else MISSING)(fn(scope))


def test_inlined_closures_equal_their_closures():
    """A structure inlines paths, `$this` and singleton references, converted values and table look-ups
    read their key inline: each gives what the closure alone gives, reports included."""
    table = _table()
    cc = CompileContext("test.yaml", {}, {"t": table}, {"patient": ("Patient", True), "obs": ("Observation", False)})
    specs = [{"path": "v"}, {"path": "$this"}, {"ref": "patient"}, {"ref": "obs", "key": {"path": "v"}},
             {"path": "v", "as": "dateTime"}, {"path": "v", "as": "decimal"}, {"path": "v", "as": "integer"},
             {"path": "v", "as": "instant"}, {"path": "v", "as": "string"}, {"path": "$this", "as": "dateTime"}]
    specs += [{"table": "t", "key": {"path": "v"}, "field": f} for f in
              ("codeable", "codings", "coding", "code", "display", "system", "attribute:a")]
    specs += [{"table": "t", "key": {"path": "$this"}}, {"table": "t", "key": {"template": "{{ item.v }}"}, "field": "code"}]
    for spec in specs:
        structure = compile_value({"f": spec}, ("resource",), cc)
        listing = compile_value([spec], ("resource",), cc)
        alone = _closure(spec, cc)
        assert cc.issues == []
        for value in ODD_VALUES + ["k1", "k2", "k3", 1, "1"]:
            for item in ({"v": value}, value, {}):
                got, want = [], []
                expected = _outcome(alone, _scope(item, want))
                wrapped = ("value", {"f": expected[1]} if expected[1] is not MISSING else MISSING)
                assert _outcome(structure, _scope(item, got)) == (wrapped if expected[0] == "value" else expected)
                wrapped = ("value", [expected[1]] if expected[1] is not MISSING else MISSING)
                assert _outcome(listing, _scope(item, got)) == (wrapped if expected[0] == "value" else expected)
                assert got == want * 2, (spec, item)


def _outcome(fn, scope):
    try:
        return "value", fn(scope)
    except Exception as exc:  # noqa: BLE001 - an entry without codings fails, the same way on both paths
        return "error", type(exc)


def _table():
    from exporter.mapping.tables import CodeTable

    entries = {"k1": [{"system": "s", "code": "c1", "display": "d1"}], "k2": [{"system": "s", "code": "c2"}, {"code": "x"}],
               "1": [{"system": "n", "code": "one"}], "k3": []}
    return CodeTable("t", "codes/t.yaml", "T", entries, attributes={"k1": {"a": "A1"}, "1": {"a": "A"}})


def test_table_look_ups_give_what_they_gave(monkeypatch):
    """Against the look-up as it was written before it was generated."""
    table = _table()
    cc = CompileContext("test.yaml", {}, {"t": table}, {})

    def before(key, fld):
        if key is MISSING:
            return "value", MISSING
        codings = table.lookup(key)
        if codings is None:
            return "unmapped", None
        if fld == "codeable":
            return "value", {"coding": [dict(c) for c in codings]}
        if fld == "codings":
            return "value", [dict(c) for c in codings]
        if fld == "coding":
            return "value", dict(codings[0])
        if fld.startswith("attribute:"):
            value = table.attributes.get(str(key), {}).get(fld.split(":", 1)[1])
            return ("unmapped", None) if value is None else ("value", value)
        return "value", codings[0].get(fld, MISSING)

    for fld in ("codeable", "codings", "coding", "code", "display", "system", "version", "attribute:a", "attribute:b"):
        if fld == "version":
            continue  # not a table field
        for key in ["k1", "k2", "k3", "1", 1, 1.0, True, "nope", None, 0, ""]:
            for key_spec in ({"literal": key}, {"path": "v"}):
                fn = compile_value({"table": "t", "key": key_spec, "field": fld}, ("resource",), cc)
                reports: list = []
                try:
                    got = ("value", fn(_scope({"v": key}, reports)))
                except IndexError:
                    got = ("error", None)
                try:
                    want = before(MISSING if key_spec == {"path": "v"} and key is None else key, fld)
                except IndexError:
                    want = ("error", None)
                if want[0] == "unmapped":
                    assert got == ("value", MISSING) and [r[0] for r in reports] == ["MAP_CODE_UNMAPPED"], (fld, key)
                else:
                    assert got == want and reports == [], (fld, key, key_spec)


def test_converted_values_give_what_they_gave():
    """Against the conversion as it was written before it was generated (read, convert, report)."""
    cc = CompileContext("test.yaml", {}, {}, {})
    for kind in ("dateTime", "instant", "date", "decimal", "integer", "string", "boolean", "code"):
        conv = converter(kind, "Europe/Berlin")
        for path in ("v", "$this", "a.v"):
            fn = compile_value({"path": path, "as": kind}, ("resource",), cc)
            read = compile_value({"path": path}, ("resource",), cc)
            for value in ODD_VALUES + ["true", " 7 ", "x y", 10**30]:
                for item in ({"v": value, "a": {"v": value}}, value):
                    got: list = []
                    want: list = []
                    scope = _scope(item, want)
                    v = read(scope)
                    if v is MISSING:
                        expected = MISSING
                    else:
                        try:
                            expected = conv(v)
                        except (ValueError, TypeError, ArithmeticError):
                            scope.run.report("MAP_CONVERT", f"cannot convert the value to {kind}", None, "$.x")
                            expected = MISSING
                    assert fn(_scope(item, got)) == expected and got == want, (kind, path, item)


@pytest.mark.parametrize("names", [("item", "doc", "export_time"), ("item", "parent", "doc", "export_time", "index"),
                                   ("doc",), ()])
def test_positional_renderer_equals_render(names):
    for source in QUICK_SOURCES + ["{{ index | string }}", "{{ item.a }}\n"]:
        for xhtml in (False, True):
            t = Template(source, xhtml=xhtml)
            positional = t.renderer(names)
            for variables in VARIABLE_SETS:
                given = {n: variables.get(n) for n in names}
                try:
                    want = ("ok", t.render(given))
                except TemplateProblem as exc:
                    want = ("error", str(exc))
                try:
                    got = ("ok", positional(*given.values()))
                except TemplateProblem as exc:
                    got = ("error", str(exc))
                assert got == want, (source, names, variables)


def test_no_code_is_generated_while_mapping(exporter, monkeypatch):
    """Everything is generated at load (or at a constant's first call): a build compiles nothing."""
    import exporter.engine.codegen as codegen

    doc = json.loads((SAMPLES / "typical.json").read_text(encoding="utf-8"))
    exporter.engine.build(doc, EXPORT_TIME)
    compiled: list = []
    monkeypatch.setattr(codegen, "compile", lambda *args: compiled.append(args) or compile(*args), raising=False)
    exporter.engine.build(doc, EXPORT_TIME)
    assert compiled == []
