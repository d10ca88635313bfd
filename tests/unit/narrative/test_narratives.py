"""Narratives: written from the mapped resources by mappings/templates/, German by default, every
clinically relevant fact shown, patient text inert; golden narratives per language."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.engine.templating import TemplateLibrary, neutralise
from exporter.mapping.registry import load_mapping_set
from exporter.narrative.narrator import Narrator
from exporter.narrative.present import Presenter
from exporter.pipeline import Exporter
from exporter.settings import get_settings
from tests.unit.mapping.conftest import EXPORT_TIME, load

ROOT = get_settings().root
TYPICAL = json.loads((ROOT / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
CASES = sorted(p for p in (ROOT / "tests" / "cases" / "export").iterdir() if p.is_dir())


def narratives(bundle: dict) -> str:
    """Every narrative of a Bundle, one per line: the Composition's, each section's, each resource's."""
    comp = bundle["entry"][0]["resource"]
    lines = [comp["text"]["div"]]

    def sections(ss):
        for s in ss:
            lines.append(s["text"]["div"])
            sections(s.get("section", []))
    sections(comp["section"])
    lines += [e["resource"]["text"]["div"] for e in bundle["entry"][1:]]
    return "\n".join(lines) + "\n"


def export(doc: dict, language: str | None = None) -> dict:
    settings = get_settings() if language is None else get_settings().model_copy(update={"language": language})
    result = Exporter.from_settings(settings).export(doc, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues]
    return result.bundle


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    return Exporter.from_settings(get_settings())


@pytest.mark.parametrize("language", ["de-DE", "en"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_narratives(case: Path, language: str):
    """tests/cases/export/<case>/narratives.<language>.html: every narrative of the export (regenerate
    with UPDATE_GOLDEN=1 and review the diff)."""
    import os

    got = narratives(export(json.loads((case / "input.json").read_text(encoding="utf-8")), language))
    golden = case / f"narratives.{language}.html"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8")


def test_german_by_default_and_every_div_says_its_language(exporter):
    bundle = exporter.export(TYPICAL, export_time=EXPORT_TIME).bundle
    text = narratives(bundle)
    assert text.count('lang="de-DE" xml:lang="de-DE"') == text.count("<div xmlns")
    assert "Körpergewicht" in text and "Body weight" not in text
    assert [s["title"] for s in bundle["entry"][0]["resource"]["section"]] == [
        "Befunde", "Fragebögen und Bewertungen", "Tagebuch", "Diagnosen"]


def test_the_questionnaires_are_entries_of_the_document_and_resolve_every_item(exporter):
    bundle = exporter.export(TYPICAL, export_time=EXPORT_TIME).bundle
    qs = {e["resource"]["url"] + "|" + e["resource"]["version"]: e for e in bundle["entry"]
          if e["resource"]["resourceType"] == "Questionnaire"}
    responses = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"]
    assert {r["questionnaire"] for r in responses} == set(qs)
    assessments = next(s for s in bundle["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "424836000")
    assert {e["fullUrl"] for e in qs.values()} <= {e["reference"] for e in assessments["entry"]}
    for r in responses:
        links = {i["linkId"] for i in qs[r["questionnaire"]]["resource"]["item"]}
        assert {i["linkId"] for i in r["item"]} <= links


def _condition(bundle: dict, code: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"
                and e["resource"]["code"]["coding"][0]["code"] == code)


@pytest.mark.parametrize("status, mark", [("refuted", "AUSGESCHLOSSEN"), ("provisional", "NICHT GESICHERT"),
                                          ("differential", "NICHT GESICHERT")])
def test_a_refuted_or_unconfirmed_diagnosis_cannot_be_read_as_confirmed(exporter, status, mark):
    doc = copy.deepcopy(TYPICAL)
    doc["diagnoses"][0]["verification_status"] = status
    doc["diagnoses"][0]["clinical_status"] = "inactive" if status == "refuted" else "active"
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    div = _condition(bundle, "F32.1")["text"]["div"]
    assert div.index(mark) < div.index("F32.1")  # marked before the code is read
    problems = next(s for s in bundle["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "11450-4")
    row = next(r for r in problems["text"]["div"].split("<tr>") if "F32.1" in r)
    assert mark in row
    confirmed = next(r for r in problems["text"]["div"].split("<tr>") if "E11.90" in r)
    assert "gesichert" in confirmed and "AUSGESCHLOSSEN" not in confirmed and "NICHT GESICHERT" not in confirmed


def test_phq9_item_9_above_zero_is_pointed_out_and_every_item_has_question_answer_and_points(exporter):
    doc = copy.deepcopy(TYPICAL)
    q = next(q for q in doc["questionnaires"] if q["instrument"] == "phq9")
    q["answers"][8] = 3
    q["total_score"] = sum(q["answers"])
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    qr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
              and "phq9" in e["resource"]["questionnaire"])
    div = qr["text"]["div"]
    assert "Achtung: Frage 9" in div and "„Beinahe jeden Tag“" in div
    assert "Gedanken, dass Sie lieber tot wären oder sich Leid zufügen möchten</td><td><b>Beinahe jeden Tag</b></td><td>3</td>" in div
    assert len(re.findall("<tr><td>", div)) == 9
    assert "Gesamtwert: 14 Punkte – Schweregrad: mittelgradig (10–14 Punkte)" in div


def test_measurements_show_date_time_offset_german_numbers_and_the_coded_unit(exporter):
    bundle = exporter.export(TYPICAL, export_time=EXPORT_TIME).bundle
    obs = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
           and "valueQuantity" in e["resource"] and e["resource"]["category"][0]["coding"][0]["code"] == "vital-signs"]
    for o in obs:
        div = o["text"]["div"]
        value = o["valueQuantity"]["value"]
        assert f": {str(value).replace('.', ',')} " in div
        assert "UTC+0" in div and re.search(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d", div)
    height = next(o for o in obs if o["code"]["coding"][0]["code"] == "8302-2")
    assert f"{height['valueQuantity']['value']} cm" in height["text"]["div"]  # the coded unit, never metres


def test_numbers_never_use_exponent_notation():
    p = Presenter({"language": "de-DE", "labels": {}, "codes": {}, "units": {}, "gender": {}, "bands": {},
                   "formats": {"decimal": ","}}, {})
    assert p.number(1e-09) == "0,000000001"
    assert p.number(81950) == "81950" and p.number(6.85) == "6,85" and p.number(1.5e20) == "150000000000000000000"
    # floats are remembered per value: the second time gives the same text, and 0.0 / -0.0 (one key) keep theirs
    assert [p.number(x) for x in (6.85, 6.85, 1, 1.0, 1.0, 0.0, -0.0, 0.0)] == ["6,85", "6,85", "1", "1,0", "1,0", "0,0", "-0,0", "0,0"]
    # an int is written as its digits, a bool or None is no int here
    values = [0, -3, 10**30, True, False, None, Decimal("2.50")]
    assert [p.number(x) for x in values] == [p._number(x) for x in values] == ["0", "-3", str(10**30), "True", "False", "",
                                                                               "2,50"]


@pytest.mark.parametrize("date_time", ["{date}, {time} Uhr ({offset})", "{date} {time} bis {time} ({offset})",
                                       "{date} ({offset})", "{date}, {time}"])
def test_date_time_puts_each_time_between_the_offsets_pieces_as_the_format_does(date_time):
    # the tail of a date-time is made once per UTC offset (the text around the time of day) and each time
    # put in between; a format that names the time other than once is filled per time: the same text
    formats = {"decimal": ",", "date": "{d}.{m}.{y}", "month": "{m}/{y}", "time": "{H}:{M}", "time_seconds": "{H}:{M}:{S}",
               "utc": "UTC", "offset": "UTC{sign}{hh}:{mm}", "date_time": date_time}
    p = Presenter({"language": "de-DE", "labels": {}, "codes": {}, "units": {}, "gender": {}, "bands": {},
                   "formats": formats}, {})
    for value, clock, offset in [("2026-03-09T07:15:00+01:00", "07:15", "UTC+01:00"),
                                 ("2026-03-09T07:15:30.5Z", "07:15:30,5", "UTC"),
                                 ("2026-03-10T23:59:59-05:00", "23:59:59", "UTC-05:00"),
                                 ("2026-03-10T08:00:00+01:00", "08:00", "UTC+01:00")]:
        expected = date_time.format(date=p.date(value), time=clock, offset=offset)
        assert p.datetime(value) == expected and p.datetime(value) == expected  # computed, then remembered


def test_diary_entries_show_mood_symptoms_and_note(exporter):
    bundle = exporter.export(TYPICAL, export_time=EXPORT_TIME).bundle
    diary = next(s for s in bundle["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "diary-entries")
    div = diary["text"]["div"]
    for entry in TYPICAL["diary_entries"]:
        if entry.get("note") and "<" not in entry["note"] and '"' not in entry["note"] and "'" not in entry["note"]:
            assert entry["note"] in div
    assert "Kopfschmerzen, innere Unruhe" in div and "schlecht (2/5)" in div


BAD = {
    "markup": "<b>fett</b> <script>alert('x')</script> <img src=x onerror=alert(1)>",
    "template": "{{ 7*7 }} {% for x in range(9) %}{{ x }}{% endfor %} ${jndi:ldap://x}",
    "bidi": "Rechnung \u202egnunhceR\u202c und \u2066isoliert\u2069",
    "control": "Glocke\u0007 Escape\u001b[31m rot",
    "long": "Sehr lange Notiz. " * 280,
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_patient_text_is_shown_inertly(exporter, kind):
    doc = copy.deepcopy(TYPICAL)
    doc["diary_entries"][0]["note"] = BAD[kind]
    doc["patient"]["family_name"] = "Mustermann-" + "Langname" * 24  # 200 characters
    result = exporter.export(doc, export_time=EXPORT_TIME)
    if not result.ok:  # refused by the schema: the error names the place, never the text
        assert all(BAD[kind][:12] not in i.format() for i in result.issues)
        return
    text = narratives(result.bundle)
    assert "<script" not in text and "onerror=alert(1)>" not in text and "<b>fett" not in text
    assert "49" not in text.split("Notiz")[0] or "{{ 7*7 }}" in text or kind != "template"
    assert not any(c in text for c in "\u202e\u202c\u2066\u2069\u0007\u001b")
    if kind == "template":
        assert "{{ 7*7 }}" in text
    if kind == "bidi":
        assert "\ufffdgnunhceR\ufffd" in text


def test_neutralise_keeps_text_and_replaces_controls_bidi_and_lone_surrogates():
    assert neutralise("Grüße, 你好 👋\n\t") == "Grüße, 你好 👋\n\t"
    assert neutralise("a\u202eb\x00c\ud800d\x85") == "a\ufffdb\ufffdc\ufffdd\ufffd"


def test_render_each_equals_render_per_row_and_a_nul_in_data_cannot_split_it():
    lib = TemplateLibrary({"r.html": "<p>{{ r['a'] }}{% if 'b' in r %} / {{ r['b'] | up }}{% endif %}</p>\n"},
                          {"up": str.upper})
    rows = [{"a": "x<y"}, {"a": "1", "b": "zz"}, {"a": "nul\x00inside"}]
    assert lib.render_each("r.html", "r", rows, {}) == [lib.render("r.html", {"r": r}) for r in rows]
    assert lib.render_each("r.html", "r", rows, {})[2] == "<p>nul\ufffdinside</p>"


def test_the_sandbox_still_holds_in_templates_for_people():
    lib = TemplateLibrary({"x.html": "{{ r.__class__.__mro__ }}"})
    from exporter.engine.templating import TemplateProblem
    with pytest.raises(TemplateProblem):
        lib.render("x.html", {"r": {}})


def test_a_template_error_names_the_template_file_and_line(scratch_mappings):
    path = scratch_mappings / "templates" / "resource" / "Condition.html"
    path.write_text(path.read_text(encoding="utf-8") + "\n{% if %}\n", encoding="utf-8")
    issues = [i for i in load(scratch_mappings).load_issues if i.is_error]
    assert any(i.message_id == "MAP_TEMPLATE_SYNTAX" and i.location.file.endswith("templates/resource/Condition.html")
               and i.location.line for i in issues)


def test_every_language_must_have_the_same_texts(scratch_mappings):
    path = scratch_mappings / "templates" / "texts" / "en.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  severity: Severity\n", ""), encoding="utf-8")
    ms = load_mapping_set(scratch_mappings)
    assert any(i.message_id == "MAP_TEXTS_KEYS" and "labels.severity" in i.message for i in ms.issues)


def test_an_unknown_language_is_a_load_error():
    ms = load_mapping_set(ROOT / "mappings")
    narrator = Narrator(ms.templates, "fr-FR", [])
    assert [i.message_id for i in narrator.issues] == ["MAP_LANGUAGE"]


def test_large_sections_are_summarised_and_the_entries_stay_complete():
    doc = json.loads((ROOT / "samples" / "patients" / "large.json").read_text(encoding="utf-8"))
    bundle = Exporter.from_settings(get_settings()).export(doc, export_time=EXPORT_TIME).bundle
    comp = bundle["entry"][0]["resource"]
    vitals = comp["section"][0]["section"][0]
    assert len(vitals["entry"]) == len(doc["measurements"])
    div = vitals["text"]["div"]
    assert "Zusammenfassung je" in div and div.count("<tr>") <= 1 + 24 * 6  # per month at the coarsest
    assert len(div) < 40_000


@pytest.mark.parametrize("sample", ["typical", "large", "bad"])
def test_the_straight_path_renders_exactly_what_jinja2_renders(sample):
    """Templates compiled to one Python function (TemplateLibrary's straight path) give jinja2's output
    for every resource and section of real exports, hostile text included."""
    if sample == "bad":
        doc = copy.deepcopy(TYPICAL)
        doc["diary_entries"][0]["note"] = BAD["markup"] + BAD["bidi"] + BAD["template"] + BAD["control"]
        doc["patient"]["family_name"] = "<b>\u202e" + "x" * 150
    else:
        doc = json.loads((ROOT / "samples" / "patients" / f"{sample}.json").read_text(encoding="utf-8"))
    ex = Exporter.from_settings(get_settings())
    bundle, _ = ex.engine.build(doc, EXPORT_TIME)
    narrator = ex.engine.narrator
    lib, view = narrator.library, narrator.view(bundle)
    assert {"resource/Observation.html", "resource/QuestionnaireResponse.html", "section/vital-signs.html"} <= set(lib._straight)
    common = {"t": narrator.labels, "doc": view}
    for r in view.resources:
        name = narrator.template_for(r)
        if name in lib._straight:
            assert lib._straight[name]({**common, "r": r}) == lib._run(lib._templates[name], {**common, "r": r})
    for s in view.walk():
        if s.template in lib._straight:
            variables = {**common, "s": s}
            assert lib._straight[s.template](variables) == lib._run(lib._templates[s.template], variables)


def test_a_row_the_straight_path_cannot_decide_goes_to_jinja2():
    lib = TemplateLibrary({"r.html": "<p>{{ r['a'] }}</p>"})
    assert "r.html" in lib._straight
    assert lib.render_each("r.html", "r", [{"a": 1}, {"b": 2}][:1], {}) == ["<p>1</p>"]
    from exporter.engine.templating import TemplateProblem
    with pytest.raises(TemplateProblem):  # jinja2's own verdict on the missing key
        lib.render_each("r.html", "r", [{"b": 2}], {})


def test_the_straight_path_reads_each_variable_once_and_leaves_unpassed_ones_to_jinja2():
    """The straight path reads the template's variables once, at its start: a variable that is not
    passed is jinja2's to judge — an error where the template prints it, nothing where the branch
    reading it is not taken or it is only tested with `is defined`."""
    from exporter.engine.templating import TemplateProblem
    source = "<p>{{ r.a }} & {{ r.b }}{% if r.a == 'x' %}{{ other }}{% endif %}{% if other is defined %}!{% endif %}</p>"
    lib = TemplateLibrary({"r.html": source})
    assert "r.html" in lib._straight
    rows = [{"a": "<y>", "b": 2}, {"a": "z", "b": None}]
    assert lib.render_each("r.html", "r", rows, {}) == ["<p>&lt;y&gt; & 2</p>", "<p>z & None</p>"]
    assert lib.render_each("r.html", "r", rows, {"other": "o"}) == ["<p>&lt;y&gt; & 2!</p>", "<p>z & None!</p>"]
    with pytest.raises(TemplateProblem):  # printed, not passed: jinja2's error
        lib.render_each("r.html", "r", [{"a": "x", "b": 1}], {})
    for row in rows:  # passed, the straight path renders it; not passed, jinja2 does: the same text
        assert lib._straight["r.html"]({"other": "o", "r": row}) == lib._run(lib._templates["r.html"], {"other": "o", "r": row})
        assert lib.render("r.html", {"r": row}) == lib._run(lib._templates["r.html"], {"r": row})


def test_a_string_printed_again_reads_its_printed_text_and_nothing_outlives_the_render():
    """The straight path looks a string it printed before up (Printed): the same text as printing it
    anew, only for str values (1, 1.0 and True are one dict key, printed differently), and emptied after
    every render / render_each, so no printed value stays with the library."""
    lib = TemplateLibrary({"r.html": "{% for v in r %}{{ v }}|{% endfor %}"})
    assert "r.html" in lib._straight
    rows = [["a<b", "a<b", "x\u202ey", "x\u202ey", 1, 1.0, True, "1", None, "None", "it's", "it's"],
            [True, 1.0, 1, "1", "a<b", ""]]
    expected = [lib._run(lib._templates["r.html"], {"r": r}) for r in rows]
    assert lib.render_each("r.html", "r", rows, {}) == expected
    assert expected[0] == "a&lt;b|a&lt;b|x\ufffdy|x\ufffdy|1|1.0|True|1|None|None|it&#39;s|it&#39;s|"
    assert lib._printed.texts == {}
    assert [lib.render("r.html", {"r": r}) for r in rows] == expected
    assert lib._printed.texts == {}


def test_the_view_reads_the_bundle_in_one_pass():
    """The first Composition is the document's, every Provenance is kept in order, and a section's
    entries are the references that resolve to an entry of the Bundle (others are left out)."""
    from exporter.narrative.view import DocumentView
    ms = load_mapping_set(ROOT / "mappings")
    narrator = Narrator(ms.templates, "de-DE", [])
    section = {"title": "x", "entry": [{"reference": "urn:b"}, {"reference": "urn:none"}, {"display": "no reference"},
                                       {"reference": 7}, {"reference": "urn:a"}]}
    entries = [{"fullUrl": "urn:p1", "resource": {"resourceType": "Provenance", "id": "p1"}},
               {"fullUrl": "urn:c1", "resource": {"resourceType": "Composition", "id": "c1", "section": [section]}},
               {"resource": "not a resource"},
               {"fullUrl": "urn:a", "resource": {"resourceType": "Observation", "id": "a"}},
               {"fullUrl": "urn:c2", "resource": {"resourceType": "Composition", "id": "c2"}},
               {"fullUrl": "urn:b", "resource": {"resourceType": "Observation", "id": "b"}},
               {"resource": {"resourceType": "Provenance", "id": "p2"}}]
    view = DocumentView({"entry": entries}, narrator.presenter, narrator.section_keys, narrator.library)
    assert view.composition["id"] == "c1"
    assert [p["id"] for p in view.provenances] == ["p1", "p2"]
    assert [r["id"] for r in view.sections[0].entries] == ["b", "a"]
    assert len(view.resources) == 6


def test_a_note_is_coded_as_markdown_that_reads_as_typed(exporter):
    """Annotation.text is markdown: markup characters are escaped (no HTML reaches a receiver, the HL7
    validator's TYPE_SPECIFIC_CHECKS_DT_MARKDOWN_HTML no longer fires), bidi controls neutralised."""
    from exporter.narrative.present import plain_markdown
    doc = copy.deepcopy(TYPICAL)
    doc["diary_entries"][0]["note"] = "<b>fett</b> *kursiv* [link](x) & \\ \u202eumgedreht"
    bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
    note = next(e["resource"]["note"][0]["text"] for e in bundle["entry"] if e["resource"].get("note"))
    assert "\\<b\\>fett\\</b\\>" in note and "\u202e" not in note
    assert plain_markdown(note) == "<b>fett</b> *kursiv* [link](x) & \\ \ufffdumgedreht"


@pytest.mark.parametrize("kind", sorted(BAD) + ["quotes"])
def test_every_narrative_is_the_same_in_fhir_json_and_fhir_xml(exporter, kind):
    """A narrative is written as an XML serializer writes it (quotes in text literal, no empty
    elements to collapse), so the FHIR XML of an export read back gives the FHIR JSON's divs exactly."""
    from exporter.formats.xml import default_codec

    doc = copy.deepcopy(TYPICAL)
    doc["diary_entries"][0]["note"] = BAD.get(kind, "ob's \"so\" & <so> 'geht'")
    result = exporter.export(doc, export_time=EXPORT_TIME)
    if not result.ok:
        return  # refused by the schema (test_bad_patient_text_is_shown_inertly checks how)
    codec = default_codec()
    back, issues = codec.read(codec.write(result.bundle))
    assert issues == []
    assert narratives(back) == narratives(result.bundle)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["<td>", "</td>", '<td a="1">', "<p>", "</p>", "<", ">", "/", "></", "td", " ", "x"]),
                max_size=12).map("".join))
def test_the_empty_element_prefilter_never_hides_an_empty_element(text):
    # canonical() skips its regex when the prefilter says no `></` follows an opening tag: it must
    # never say so for a text in which the regex finds an empty element
    from exporter.narrative.narrator import _EMPTY_ELEMENT, _may_have_empty_element
    if _EMPTY_ELEMENT.search(text):
        assert _may_have_empty_element(text)


@pytest.mark.parametrize(("div", "written"), [
    ("<p><td></td></p>", "<p><td/></p>"), ('<td class="x"></td>', '<td class="x"/>'),
    ("<p>x</p></div>", "<p>x</p></div>"), ("<td></tr>", "<td></tr>"), ("<b>it&#39;s</b>", "<b>it's</b>")])
def test_canonical_closes_empty_elements_only(div, written):
    from exporter.narrative.narrator import canonical
    assert canonical(div) == written
