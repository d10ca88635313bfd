"""Property-based: any schema-valid domain document exports to a Bundle our validator accepts, and
free text (including template and FHIRPath syntax) comes out verbatim."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exporter.settings import get_settings
from tests.support.domainkinds import kinds
from tests.unit.mapping.conftest import EXPORT_TIME

SCHEMA = json.loads((get_settings().root / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))
uuids = st.uuids(version=4).map(str)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() != "")
tricky = st.sampled_from(["{{ 7*7 }}", "{% for x in y %}", "%resource.id", "${jndi:ldap://x}", "<script>x</script>",
                          "name.given)", "Ümlaut & <b>"])
note = st.one_of(texts, tricky, st.tuples(texts, tricky).map(" ".join))
days = st.integers(min_value=1, max_value=27)
times = st.tuples(days, st.integers(0, 23), st.integers(0, 59)).map(
    lambda t: f"2026-03-{t[0]:02d}T{t[1]:02d}:{t[2]:02d}:00+01:00")


def _one(x: float, places: int = 1) -> float:
    return round(x, places)


@st.composite
def measurement(draw):
    """Any kind the schema lists, in a unit it allows, inside the plausible range of rules.yaml (the kinds
    come from the schema: a kind added with `fhir-export new-kind` is drawn too)."""
    kind = draw(st.sampled_from(sorted(kinds())))
    spec = kinds()[kind]
    unit = draw(st.sampled_from(spec.units))
    m = {"id": draw(uuids), "kind": kind, "measured_at": draw(times), "source": draw(st.sampled_from(["manual", "device"])),
         "unit": unit}
    if not spec.scalar:  # blood pressure: systolic above diastolic (rule blood-pressure-order)
        lo, hi = spec.valid_range(unit, "systolic")
        dlo, _ = spec.valid_range(unit, "diastolic")
        systolic = draw(st.integers(max(int(lo), int(dlo) + 21, 95), min(int(hi), 190)))
        m.update(systolic=systolic, diastolic=draw(st.integers(max(int(dlo), 55), systolic - 20)))
        return m
    lo, hi = spec.valid_range(unit)
    places = 0 if lo >= 100 else 1 if lo >= 1 else 2
    value = _one(draw(st.floats(lo, hi)), places)
    m["value"] = int(value) if places == 0 else value
    return m


@st.composite
def diary_entry(draw):
    e = {"id": draw(uuids), "recorded_at": draw(times),
         "symptoms": draw(st.lists(st.sampled_from(["headache", "nausea", "fatigue", "dizziness", "sleep_problems",
                                                     "inner_restlessness", "low_drive", "brooding"]), unique=True, max_size=3))}
    if draw(st.booleans()):
        e["mood"] = draw(st.integers(1, 5))
    if draw(st.booleans()) or (not e["symptoms"] and "mood" not in e):
        e["note"] = draw(note)
    return e


@st.composite
def questionnaire(draw):
    instrument = draw(st.sampled_from(["phq9", "gad7"]))
    answers = draw(st.lists(st.integers(0, 3), min_size=9 if instrument == "phq9" else 7,
                            max_size=9 if instrument == "phq9" else 7))
    return {"id": draw(uuids), "instrument": instrument, "completed_at": draw(times), "answers": answers,
            "total_score": sum(answers)}


@st.composite
def document(draw):
    doc = {
        "schema_version": "1.0",
        "patient": {"id": draw(uuids), "given_name": draw(texts), "family_name": draw(texts),
                    "birth_date": f"19{draw(st.integers(30, 99))}-0{draw(st.integers(1, 9))}-1{draw(st.integers(0, 9))}",
                    "gender": draw(st.sampled_from(["female", "male", "diverse", "unknown"]))},
        "diga": {"name": "GlukoMind", "version": "3.2.0", "pzn": "17654326", "diga_ve_id": "27184930",
                 "manufacturer": "Beispiel Digital Health GmbH"},
        "export_period": {"from": "2026-03-01", "to": "2026-03-31T23:59:59+02:00"},
        "measurements": draw(st.lists(measurement(), min_size=1, max_size=6)),
        "diary_entries": draw(st.lists(diary_entry(), max_size=3)),
        "questionnaires": draw(st.lists(questionnaire(), max_size=2)),
        "diagnoses": [],
    }
    return doc


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(doc=document())
def test_schema_valid_documents_always_export_valid(doc, exporter):
    assume(exporter.check_domain(doc) == [])
    result = exporter.export(doc, export_time=EXPORT_TIME)
    assert result.ok, [i.format() for i in result.issues if i.is_error][:5]
    from exporter.engine.templating import neutralise
    from exporter.narrative.present import plain_markdown
    # notes are coded as markdown (markup escaped, controls and bidi overrides neutralised): read back as typed
    exported_notes = {plain_markdown(n["text"]) for e in result.bundle["entry"] for n in e["resource"].get("note", [])}
    for entry in doc["diary_entries"]:
        if "note" in entry:
            assert neutralise(entry["note"]) in exported_notes
    assert str(uuid.UUID(result.bundle["id"]))
