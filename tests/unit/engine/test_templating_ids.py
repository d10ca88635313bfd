"""The jinja2 door (sandbox, strictness, fast path identical to jinja2) and deterministic ids."""

import uuid

import pytest

from exporter.engine.ids import DEFAULT_NAMESPACE, resource_id
from exporter.engine.templating import Template, TemplateProblem, _simple

VARS = {"item": {"a": "x<y>&\"'", "n": 7.5, "d": "2026-03-01T07:30:00+01:00", "none": None, "k": True},
        "doc": {"p": {"q": "Müller"}}, "index": 2}
SOURCES = ["plain", "{{ item.a }}", "{{item.n}} kg", "{{ item.d[:10] }} on {{ doc.p.q }}", "{{ item.none }}",
           "{{ item.k }}!", "a {{ index }} b"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("xhtml", [False, True])
def test_fast_path_renders_exactly_like_jinja(source, xhtml):
    fast = _simple(source, xhtml)
    assert fast is not None
    t = Template(source, xhtml=xhtml)
    t._fast = None  # force jinja2
    assert fast(VARS) == t.render(VARS)


@pytest.mark.parametrize("source", ["{{ item.missing }}", "{{ nothing }}"])
def test_undefined_is_an_error_on_both_paths(source):
    with pytest.raises(TemplateProblem):
        Template(source).render(VARS)
    t = Template(source)
    t._fast = None
    with pytest.raises(TemplateProblem):
        t.render(VARS)


def test_complex_templates_use_jinja():
    assert _simple("{{ index + 1 }}", False) is None
    assert _simple("{% if item.k %}y{% endif %}", False) is None
    assert Template("{{ index + 1 }}").render(VARS) == "3"


def test_sandbox_blocks_escapes_and_data_is_never_source():
    with pytest.raises(TemplateProblem):
        Template("{{ item.__class__.__mro__ }}").render(VARS)
    assert Template("{{ item.a }}").render({"item": {"a": "{{ 7*7 }}"}}) == "{{ 7*7 }}"


def test_syntax_error_has_a_line():
    with pytest.raises(TemplateProblem) as exc:
        Template("ok\n{{ broken")
    assert exc.value.line == 2


def test_resource_id_is_uuid5():
    for i in range(200):
        assert resource_id(DEFAULT_NAMESPACE, "Observation", "m", str(i)) == \
            str(uuid.uuid5(DEFAULT_NAMESPACE, f"Observation|m|{i}"))


def test_bundle_digest_of_a_document_with_an_integer_beyond_64_bits():
    """build() is also called without the schema check (tests, tools): a number orjson refuses
    still gets a deterministic Bundle identifier instead of an exception."""
    import copy
    import json

    from exporter.engine.builder import _canonical
    from exporter.pipeline import Exporter
    from exporter.settings import get_settings

    assert _canonical({"b": 1, "a": 2**70}) == b'{"a":1180591620717411303424,"b":1}'
    assert _canonical({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    settings = get_settings()
    doc = json.loads((settings.root / "samples" / "patients" / "minimal.json").read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["zz_note"] = 2**70
    engine = Exporter.from_settings(settings).engine
    first, _ = engine.build(doc, "2026-04-06T10:00:00+02:00")
    again, _ = engine.build(copy.deepcopy(doc), "2026-04-06T10:00:00+02:00")
    assert first["identifier"] == again["identifier"]
