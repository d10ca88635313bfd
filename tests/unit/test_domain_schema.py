"""The fast domain-schema checker (exporter/domainschema.py) judges exactly like the schema it was made from.

* equivalence: the three samples and ~900 seeded mutations of them (kinds, units, values out of range or of
  the wrong type, missing and unknown keys, systolic on scalar kinds, non-object records, questionnaires with
  the wrong number of answers, ...) — the fast checker accepts exactly when jsonschema (2020-12, the reference)
  does, and exactly when fastjsonschema compiled as one schema (the former fast path) does. The reference is
  the exporter's explaining validator (jsonschema with the exporter's formats and fastjsonschema's reading of
  `$`), so the edge cases (an impossible calendar date, a leap second, a trailing newline, a control
  character: see mutate_edge) are judged alike too, and check_domain names their path;
* the split is generic: a synthetic schema with another discriminator, `else` branches, an `if` without
  `required`, a `oneOf` pinned on a second property and a rule for a value the enum does not allow;
* fallbacks: a schema without the pattern, a def used where the split cannot follow, a $ref outside $defs;
* Exporter.check_domain uses it, and still names only the JSON path of a fault.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.domainschema import (
    AFTER_PATTERN,
    DATE_TIME_PATTERN,
    FORMATS,
    UUID_PATTERN,
    FastChecker,
    _date_time_exists,
    _Inliner,
    compile_checker,
    explaining_validator,
)
from exporter.pipeline import Exporter
from exporter.settings import get_settings
from tests.support.domainkinds import kinds, pick, unit_maxima

ROOT = get_settings().root
SAMPLES = ROOT / "samples" / "patients"
SEED = 20260406

# kinds, units and possible maxima as the schema defines them (a new kind is picked up, not listed here)
KINDS = list(kinds())
UNITS = {k.name: list(k.units) for k in kinds().values()}
IN_RANGE = {(k.name, u): (min(1, m / 2), m) if m else (1, 1000)
            for k in kinds().values() if k.scalar for u, m in k.maximum.items()}
ODD_VALUES = [0, -1, -0.5, 1e-9, 0.5, 1] + [v for m in unit_maxima() for v in (m, m + (0.01 if m < 10 else 0.5))] + [
    1e12, "5", True, False, None, [5], {"v": 5}]


@cache
def schema() -> dict[str, Any]:
    return json.loads((ROOT / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))


@cache
def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


class Judges:
    """The three verdicts on one schema: fast checker, fastjsonschema compiled as one, jsonschema."""

    def __init__(self, s: dict[str, Any]):
        self.fast = compile_checker(s, formats=FORMATS)
        self._plain = fastjsonschema.compile(copy.deepcopy(s), formats=FORMATS)
        self._reference = explaining_validator(s)

    def plain(self, doc: Any) -> bool:
        try:
            self._plain(doc)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def reference(self, doc: Any) -> bool:
        return self._reference.is_valid(doc)

    def agree(self, cases: list[tuple[str, Any, bool]]) -> tuple[int, int]:
        """(accepted, rejected); every case, `edge` ones too, is judged alike by all three."""
        accepted = rejected = 0
        disagree = []
        for label, doc, _edge in cases:
            fast = self.fast.is_valid(doc)
            if fast != self.plain(doc) or fast != self.reference(doc):
                disagree.append(f"{label}: fast={fast} plain={self.plain(doc)} reference={self.reference(doc)}")
            accepted += fast
            rejected += not fast
        assert not disagree, disagree[:10]
        return accepted, rejected


@cache
def domain_judges() -> Judges:
    return Judges(schema())


# ----------------------------------------------------------------------------- mutations of the samples

def _rekind(m: dict[str, Any], rng: random.Random) -> None:
    """Another valid measurement in place of m (often of another kind, so keys come and go)."""
    kind = rng.choice(KINDS)
    unit = rng.choice(UNITS[kind])
    new = {"id": m.get("id"), "kind": kind, "measured_at": m.get("measured_at"), "unit": unit, "source": "device"}
    if not kinds()[kind].scalar:  # blood pressure
        new["systolic"], new["diastolic"] = rng.randint(90, 200), rng.randint(40, 89)
    else:
        lo, hi = IN_RANGE[(kind, unit)]
        new["value"] = rng.choice([lo, hi, round(rng.uniform(lo, hi), 2)])
    m.clear()
    m.update(new)


def _kind(m: dict[str, Any], rng: random.Random) -> None:
    m["kind"] = rng.choice(KINDS + ["pulse", "", "Weight", 5, None, True, ["weight"]])


def _unit(m: dict[str, Any], rng: random.Random) -> None:
    m["unit"] = rng.choice([u for units in UNITS.values() for u in units] + ["lb", "KG", 1, None])


def _value(m: dict[str, Any], rng: random.Random) -> None:
    m["value"] = rng.choice(ODD_VALUES)


def _pressure(m: dict[str, Any], rng: random.Random) -> None:  # also on scalar kinds
    m[rng.choice(["systolic", "diastolic"])] = rng.choice([120, 80, 0, 301, 401, "120", True, None])


def _drop(m: dict[str, Any], rng: random.Random) -> None:
    m.pop(rng.choice(sorted(m)))


def _extra(m: dict[str, Any], rng: random.Random) -> None:
    m[rng.choice(["comment", "Value", "kind2"])] = rng.choice(["x", 1, None])


MEASUREMENT_MUTATIONS = [_rekind, _rekind, _rekind, _kind, _unit, _value, _value, _pressure, _drop, _extra]


def mutate_measurement(doc: dict[str, Any], rng: random.Random) -> str:
    if not doc["measurements"]:
        return "no measurement"
    i = pick(range(len(doc["measurements"])), rng, key=lambda n: doc["measurements"][n]["id"])  # by id, not position
    m = doc["measurements"][i]
    if rng.random() < 0.05:
        doc["measurements"][i] = rng.choice([[], "m", 5, None, [m]])
        return f"measurements[{i}] not an object"
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        mutation = rng.choice(MEASUREMENT_MUTATIONS)
        mutation(m, rng)
        done.append(mutation.__name__)
    return f"measurements[{i}] {'+'.join(done)}"


def mutate_questionnaire(doc: dict[str, Any], rng: random.Random) -> str:
    if not doc["questionnaires"]:
        return "no questionnaire"
    i = pick(range(len(doc["questionnaires"])), rng, key=lambda n: doc["questionnaires"][n]["id"])
    q = doc["questionnaires"][i]
    what = rng.choice(["instrument", "count", "count", "answer", "total", "drop", "extra"])
    if what == "instrument":
        q["instrument"] = rng.choice(["phq9", "gad7", "PHQ9", "", None, 9])
    elif what == "count":
        q["answers"] = [rng.randint(0, 3) for _ in range(rng.choice([0, 6, 7, 7, 8, 9, 9, 10]))]
        q["total_score"] = sum(q["answers"])
    elif what == "answer" and q["answers"]:
        q["answers"][rng.randrange(len(q["answers"]))] = rng.choice([0, 3, 4, -1, 1.0, 1.5, True, "1", None])
    elif what == "total":
        q["total_score"] = rng.choice([0, 21, 22, 27, 28, -1, 3.0, "3", True])
    elif what == "drop":
        q.pop(rng.choice(sorted(q)))
    else:
        q["score"] = 1
    return f"questionnaires[{i}] {what}"


def mutate_elsewhere(doc: dict[str, Any], rng: random.Random) -> str:
    what = rng.choice(["mood", "diary", "symptoms", "diagnosis", "top", "extra", "patient", "lists"])
    if what == "mood" and doc["diary_entries"]:
        doc["diary_entries"][0]["mood"] = rng.choice([0, 1, 5, 6, 3.0, True, "3"])
    elif what == "diary" and doc["diary_entries"]:
        e = doc["diary_entries"][0]
        for key in rng.sample(["mood", "note", "symptoms"], rng.randint(1, 3)):
            e.pop(key, None)
    elif what == "symptoms" and doc["diary_entries"]:
        doc["diary_entries"][0]["symptoms"] = rng.choice([[], ["nausea", "nausea"], ["hiccups"], ["fatigue"], "x"])
    elif what == "diagnosis" and doc["diagnoses"]:
        key = rng.choice(["icd10gm_version", "clinical_status"])
        doc["diagnoses"][0][key] = rng.choice([2003, 2004, 2099, 2100, "x"])
    elif what == "top":
        doc.pop(rng.choice(sorted(doc)))
    elif what == "extra":
        doc["extra"] = 1
    elif what == "patient":
        doc["patient"][rng.choice(["gender", "id", "birth_date"])] = rng.choice(["other", "ABC", "1990-13-01", 5])
    else:
        doc[rng.choice(["measurements", "questionnaires", "diary_entries"])] = rng.choice([{}, None, "x"])
    return what


def mutate_edge(doc: dict[str, Any], rng: random.Random) -> str:
    """Values the patterns allow but the formats refuse (an impossible date, a control character, an
    unpaired surrogate), or Python's `$` would let through (a trailing newline): plain jsonschema judges
    these otherwise than fastjsonschema; the exporter's explaining validator judges them alike."""
    what = rng.choice(["date-time", "date", "newline", "text"])
    if what == "date-time" and doc["measurements"]:
        doc["measurements"][0]["measured_at"] = rng.choice(["2026-02-30T10:00:00+01:00", "2026-02-28T10:00:00+01:00",
                                                            "2026-03-09T23:59:60Z"])
    elif what == "text":
        doc["patient"]["family_name"] = rng.choice(["Muster\x00", "Muster\ud800", "Muster\tfrau", "Muster\x7f"])
    elif what == "date":
        doc["patient"]["birth_date"] = rng.choice(["1990-02-30", "1990-02-28", "1991-04-31"])
    elif doc["measurements"]:
        doc["measurements"][0]["id"] += "\n"
    return what


def domain_cases() -> list[tuple[str, Any, bool]]:
    cases: list[tuple[str, Any, bool]] = [(name, sample(name), False) for name in ("minimal", "typical", "large")]
    for n in range(900):
        rng = random.Random(f"{SEED}:{n}")  # one stream per case: no case shifts another's choices
        base = "minimal" if n % 4 == 0 else "typical"
        doc = copy.deepcopy(sample(base))
        mutate = rng.choices([mutate_measurement, mutate_questionnaire, mutate_elsewhere, mutate_edge],
                             [10, 4, 2, 1])[0]
        cases.append((f"{base} #{n} {mutate(doc, rng)}", doc, mutate is mutate_edge))
    for n in range(3):  # jsonschema needs ~1.5 s for the large sample: a few only
        rng = random.Random(f"{SEED}:large:{n}")
        doc = copy.deepcopy(sample("large"))
        mutate = [mutate_measurement, mutate_measurement, mutate_questionnaire][n]
        cases.append((f"large #{n} {mutate(doc, rng)}", doc, False))
    return cases


def test_fast_checker_judges_like_the_schema_on_samples_and_mutations() -> None:
    accepted, rejected = domain_judges().agree(domain_cases())
    print(f"domain documents: {accepted} accepted, {rejected} rejected, all alike")
    assert accepted > 50 and rejected > 50


def test_the_domain_schema_is_split_on_kind_and_instrument() -> None:
    fast = domain_judges().fast
    assert set(fast.dispatched) == {"measurement", "questionnaire"}
    m = fast.dispatched["measurement"]
    assert (m.prop, m.values, m.paths) == ("kind", tuple(sorted(KINDS)), ("measurements[*]",))
    assert m.leaves == sum(len(k.units) for k in kinds().values())  # a kind with several units splits again on unit
    assert fast.dispatched["questionnaire"].prop == "instrument"


def test_fast_checker_is_a_drop_in_for_the_compiled_validator() -> None:
    """Called, it returns the document or raises like a fastjsonschema validator (tests/unit/mapping relies on it)."""
    fast = domain_judges().fast
    assert fast(sample("typical")) is sample("typical")
    doc = copy.deepcopy(sample("typical"))
    doc["measurements"][0]["kind"] = "pulse"
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        fast(doc)
    assert not fast.is_valid(doc)


def test_the_given_schema_is_not_modified() -> None:
    s = copy.deepcopy(schema())
    compile_checker(s, formats=FORMATS)
    assert s == schema()


def test_check_domain_uses_it_and_names_paths_only() -> None:
    exporter = Exporter(None, None, schema())  # type: ignore[arg-type]  # check_domain needs neither
    assert isinstance(exporter._fast_schema, FastChecker)
    assert exporter.check_domain(sample("typical")) == []
    doc = copy.deepcopy(sample("typical"))
    doc["measurements"][3]["unit"] = "lb"
    issues = exporter.check_domain(doc)
    assert issues and {i.message_id for i in issues} == {"DOMAIN_SCHEMA"}
    assert any(i.expression[0].startswith("$.measurements[3]") for i in issues)
    assert all("$." not in i.message for i in issues)  # the path is the expression, not repeated in the text
    assert all("lb" not in i.message for i in issues)


# ----------------------------------------------------------------------------- a synthetic schema: the split is generic

SHAPES: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["drawing"],
    "properties": {
        "drawing": {
            "type": "object",
            "required": ["shapes"],
            "properties": {
                "shapes": {"type": "array", "items": {"$ref": "#/$defs/shape", "description": "One shape."}},
            },
        },
    },
    "$defs": {
        "size": {"type": "number", "minimum": 0},
        "shape": {
            "type": "object",
            "additionalProperties": False,
            "required": ["form", "size"],
            "properties": {
                "form": {"enum": ["circle", "square", "star"]},
                "size": {"$ref": "#/$defs/size"},
                "points": {"type": "integer"},
                "fill": {"type": "string"},
                "colour": {"type": "string"},
            },
            "allOf": [
                {"description": "Stars need five points or more; nothing else has points.",
                 "if": {"properties": {"form": {"const": "star"}}, "required": ["form"]},
                 "then": {"required": ["points"], "properties": {"points": {"minimum": 5}}},
                 "else": {"not": {"required": ["points"]}}},
                {"if": {"properties": {"form": {"enum": ["circle", "square"]}}},  # no `required`
                 "then": {"properties": {"size": {"maximum": 10}}}},
                {"if": {"properties": {"form": {"const": "square"}}, "required": ["form"]},
                 "then": {"oneOf": [
                     {"properties": {"fill": {"const": "solid"}, "colour": {"enum": ["red", "blue"]}}},
                     {"properties": {"fill": {"const": "hatched"}, "colour": {"const": "black"}}},
                 ]}},
                {"description": "Not a rule on form alone (it also requires colour): stays an `if` in every split.",
                 "if": {"properties": {"form": {"const": "circle"}}, "required": ["form", "colour"]},
                 "then": {"required": ["fill"]}},
                {"description": "A rule for a form the enum no longer allows: such records stay invalid.",
                 "if": {"properties": {"form": {"const": "hexagon"}}, "required": ["form"]},
                 "then": {"properties": {"size": {"maximum": 3}}}},
            ],
        },
    },
}


def _random_shape(rng: random.Random) -> Any:
    if rng.random() < 0.04:
        return rng.choice([None, "circle", 5, []])
    shape: dict[str, Any] = {}
    options = {
        "form": ["circle", "square", "star", "star", "square", "hexagon", "triangle", "", 3, None],
        "size": [0, 1, 5, 10, 10.5, 11, 100, -1, "5", True],
        "points": [4, 5, 6, 5.0, 5.5, "5"],
        "fill": ["solid", "hatched", "solid", "hatched", "dotted", 1, None],
        "colour": ["red", "blue", "black", "green", 7],
    }
    presence = {"form": 0.95, "size": 0.95, "points": 0.4, "fill": 0.7, "colour": 0.7}
    for key, values in options.items():
        if rng.random() < presence[key]:
            shape[key] = rng.choice(values)
    if rng.random() < 0.03:
        shape["extra"] = 1
    return shape


def test_the_split_is_generic() -> None:
    judges = Judges(SHAPES)
    d = judges.fast.dispatched["shape"]
    assert (d.prop, d.values, d.paths) == ("form", ("circle", "hexagon", "square", "star"), ("drawing.shapes[*]",))
    assert d.leaves == 5  # square split again on fill
    rng = random.Random(SEED)
    cases = [(f"#{n}", {"drawing": {"shapes": [_random_shape(rng) for _ in range(rng.choice([0, 1, 1, 1, 2]))]}}, False)
             for n in range(1500)]
    accepted, rejected = judges.agree(cases)
    print(f"shapes: {accepted} accepted, {rejected} rejected, all alike")
    assert accepted > 50 and rejected > 50


# ----------------------------------------------------------------------------- fallbacks

def _shapes_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    s = copy.deepcopy(SHAPES)
    change(s)
    return s


def _fallback_cases(extra: Callable[[random.Random], Any] | None = None) -> list[tuple[str, Any, bool]]:
    rng = random.Random(SEED)
    cases = []
    for n in range(600):
        doc: dict[str, Any] = {"drawing": {"shapes": [_random_shape(rng) for _ in range(rng.choice([0, 1, 1, 2]))]}}
        if extra is not None:
            doc["extra"] = extra(rng)
        cases.append((f"#{n}", doc, False))
    return cases


def test_a_schema_without_the_pattern_is_compiled_as_it_is() -> None:
    s = _shapes_with(lambda s: s["$defs"]["shape"].pop("allOf"))
    judges = Judges(s)
    assert judges.fast.dispatched == {}
    accepted, rejected = judges.agree(_fallback_cases())
    assert accepted > 20 and rejected > 20


def _also_under_any_of(s: dict[str, Any]) -> None:
    s["properties"]["extra"] = {"anyOf": [{"$ref": "#/$defs/shape"}, {"type": "null"}]}
    s["required"].append("extra")


def _ref_with_a_sibling(s: dict[str, Any]) -> None:
    # fastjsonschema ignores the siblings of a $ref, jsonschema does not: one both judges agree on
    s["properties"]["drawing"]["properties"]["shapes"]["items"]["type"] = "object"


def _ref_outside_defs(s: dict[str, Any]) -> None:
    s["properties"]["copy"] = {"$ref": "#/properties/drawing"}


@pytest.mark.parametrize("change", [_also_under_any_of, _ref_with_a_sibling, _ref_outside_defs])
def test_a_def_used_where_the_split_cannot_follow_is_not_split(change: Callable[[dict[str, Any]], None]) -> None:
    judges = Judges(_shapes_with(change))
    assert judges.fast.dispatched == {}
    extra = (lambda rng: rng.choice([None, None, None, _random_shape(rng)])) if change is _also_under_any_of else None
    accepted, rejected = judges.agree(_fallback_cases(extra))
    assert accepted > 20 and rejected > 20


def test_another_draft_is_compiled_as_it_is() -> None:
    s = _shapes_with(lambda s: s.__setitem__("$schema", "http://json-schema.org/draft-07/schema#"))
    assert compile_checker(s, formats=FORMATS).dispatched == {}


# ----------------------------------------------------------------------------- a format its pattern decides

_SHAPES = st.sampled_from(["2026-03-01T08:15:00+01:00", "2026-02-30T08:15:00Z", "2023-02-29T00:00:00.5-14:00",
                           "2024-02-29T23:59:59.123456789+14:00", "2026-04-31T12:00:00-03:30"])


@settings(max_examples=400, derandomize=True, database=None)
@given(text=st.one_of(st.from_regex(DATE_TIME_PATTERN), st.from_regex(UUID_PATTERN), _SHAPES))
def test_what_a_pattern_leaves_of_a_format_is_the_format_for_the_texts_it_matches(text: str) -> None:
    """AFTER_PATTERN's claims: for every text the pattern matches, the rest of the test decides as the
    whole format (the fast checker then skips the part the pattern did)."""
    for (fmt, pattern), rest in AFTER_PATTERN.items():
        if re.search(re.sub(r"\$$", r"\\Z", pattern), text):
            assert fmt(text) == (True if rest is None else rest(text)), (fmt.__name__, text)


def test_the_domain_schema_has_the_patterns_the_shortcut_knows() -> None:
    schema = json.loads((get_settings().root / "schemas" / "domain-patient.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["uuid"]["pattern"] == UUID_PATTERN and schema["$defs"]["uuid"]["format"] == "uuid"
    assert schema["$defs"]["date_time"]["pattern"] == DATE_TIME_PATTERN
    assert schema["$defs"]["date_time"]["format"] == "date-time"


def test_a_format_is_rewritten_only_beside_the_pattern_that_decides_it() -> None:
    formats = dict(FORMATS)
    inliner = _Inliner({}, formats)
    uuid_node = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
    assert inliner.expand(uuid_node) == {"type": "string", "pattern": UUID_PATTERN}
    date_time = inliner.expand({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN})
    assert formats[date_time["format"]] is _date_time_exists
    for node in ({"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]{36}$"},  # another pattern
                 {"type": "string", "format": "date-time", "pattern": "^[0-9].*$"},
                 {"type": "string", "format": "date-time"},  # no pattern
                 {"type": "string", "format": "date", "pattern": DATE_TIME_PATTERN}):  # another format
        assert inliner.expand(node) == node
    other = {"uuid": lambda v: True}  # a format function of the caller's: not ours to shorten
    assert _Inliner({}, other).expand(uuid_node) == uuid_node


@pytest.mark.parametrize(("pattern", "value", "valid"), [
    (DATE_TIME_PATTERN, "2026-03-01T08:15:00+01:00", True),
    (DATE_TIME_PATTERN, "2026-02-30T08:15:00+01:00", False),  # the rest of the format still runs
    (DATE_TIME_PATTERN, "2026-03-01T08:15:00", False),
    ("^[0-9].*$", "2026-03-01T08:15:00", False),  # a looser pattern: the whole format runs
    ("^[0-9].*$", "2026-03-01 08:15:00+01:00", False),
    ("^[0-9].*$", "2026-03-01t08:15:00z", True),
])
def test_the_fast_checker_judges_a_shortened_format_like_the_whole(pattern: str, value: str, valid: bool) -> None:
    s = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
         "properties": {"at": {"$ref": "#/$defs/at"}}, "$defs": {"at": {"type": "string", "format": "date-time",
                                                                       "pattern": pattern}}}
    assert compile_checker(s, formats=FORMATS).is_valid({"at": value}) is valid
    assert explaining_validator(s).is_valid({"at": value}) is valid
