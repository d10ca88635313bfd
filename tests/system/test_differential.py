"""Differential test: our validator against the HL7 reference validator on the same corpus.

Corpus (deterministic, seeded): every example instance in igs/, deliberately broken variants of
them, and random mutations generated here. For each case both validators give a verdict
(valid = no error/fatal issue). Every disagreement must be explained in docs/validation.md
(section "Known disagreements", one line per message id: ``- `MESSAGE_ID`: reason``): a case where
only we reject is explained when all our error message ids are listed; a case where only the HL7
validator rejects, when all its error message ids are listed. An unexplained disagreement fails the
test, and a listed message id that explains no disagreement fails it too (stale doc).
The agreement figure is printed (run pytest with -s to see it) and written to
`out/differential.json`.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from exporter.settings import get_settings
from exporter.validation.validator import Validator
from tools.devstack.mutate import mutate as _mutate
from tools.devstack.refvalidator import errors as ref_errors
from tools.devstack.refvalidator import message_id as ref_message_id

pytestmark = pytest.mark.refvalidator

CONFORMANCE = {"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "ImplementationGuide",
               "SearchParameter", "CapabilityStatement", "OperationDefinition", "NamingSystem"}
SEED = 20261129
N_RANDOM = 160


def _examples() -> dict[str, dict[str, Any]]:
    s = get_settings()
    out = {}
    for pkg in sorted(p for p in s.igs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(pkg.glob("*.json")):
            if f.name in ("package.json", ".index.json"):
                continue
            res = json.loads(f.read_text(encoding="utf-8"))
            if res.get("resourceType") not in CONFORMANCE:
                out[f.stem] = res
    return out


def _broken(ex: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}

    def variant(name: str, base: str, change: Callable[[dict[str, Any]], None]) -> None:
        if base in ex:
            res = copy.deepcopy(ex[base])
            change(res)
            cases[f"broken:{name}"] = res

    variant("weight-wrong-loinc", "Observation-ExampleBodyWeight",
            lambda r: r["code"]["coding"][0].__setitem__("code", "8302-2"))
    variant("weight-no-subject", "Observation-ExampleBodyWeight", lambda r: r.pop("subject"))
    variant("weight-unit-lb", "Observation-ExampleBodyWeight",
            lambda r: r["valueQuantity"].update(code="[lb_av]", unit="lb"))
    variant("weight-value-string", "Observation-ExampleBodyWeight",
            lambda r: r["valueQuantity"].__setitem__("value", "72.4"))
    variant("weight-time-no-tz", "Observation-ExampleBodyWeight",
            lambda r: r.__setitem__("effectiveDateTime", "2026-03-01T07:30:00"))
    variant("weight-unknown-element", "Observation-ExampleBodyWeight", lambda r: r.__setitem__("colour", "blue"))
    variant("weight-status-invalid", "Observation-ExampleBodyWeight", lambda r: r.__setitem__("status", "done"))
    variant("weight-unknown-profile", "Observation-ExampleBodyWeight",
            lambda r: r.__setitem__("meta", {"profile": ["http://example.org/StructureDefinition/nope"]}))
    variant("patient-no-birthdate", "Patient-ExamplePatient", lambda r: r.pop("birthDate"))
    variant("patient-bad-date", "Patient-ExamplePatient", lambda r: r.__setitem__("birthDate", "1964-02-30"))
    variant("patient-gender-f", "Patient-ExamplePatient", lambda r: r.__setitem__("gender", "f"))
    variant("patient-unknown-extension", "Patient-ExamplePatient",
            lambda r: r.__setitem__("extension", [{"url": "http://example.org/ext", "valueString": "x"}]))
    variant("patient-empty-name", "Patient-ExamplePatient", lambda r: r.__setitem__("name", []))
    variant("patient-null-gender", "Patient-ExamplePatient", lambda r: r.__setitem__("gender", None))
    variant("bp-no-diastolic", "Observation-ExampleBloodPressure",
            lambda r: r.__setitem__("component", [c for c in r["component"] if "8462-4" not in json.dumps(c)]))
    variant("phq9-out-of-range", "Observation-ExamplePHQ9Score", lambda r: r["valueQuantity"].__setitem__("value", 28))
    variant("gad7-out-of-range", "Observation-ExampleGAD7Score", lambda r: r["valueQuantity"].__setitem__("value", 22))
    variant("bundle-not-composition-first", "Bundle-ExampleDocumentBundle",
            lambda r: r.__setitem__("entry", r["entry"][1:] + r["entry"][:1]))
    variant("bundle-no-identifier", "Bundle-ExampleDocumentBundle", lambda r: r.pop("identifier"))
    variant("bundle-dangling-reference", "Bundle-ExampleDocumentBundle",
            lambda r: r["entry"][0]["resource"].__setitem__(
                "subject", {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000ff"}))
    variant("condition-no-version", "Condition-ExampleCondition",
            lambda r: [c.pop("version", None) for c in r["code"]["coding"]])
    variant("device-no-identifier", "Device-ExampleDevice", lambda r: r.pop("identifier", None))
    variant("narrative-script", "Patient-ExamplePatient", lambda r: r.__setitem__(
        "text", {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>'}))
    return cases


def corpus() -> dict[str, dict[str, Any]]:
    ex = _examples()
    cases = {f"example:{k}": v for k, v in ex.items()}
    cases.update(_broken(ex))
    rng = random.Random(SEED)
    names = sorted(k for k in ex if not k.startswith("Bundle-"))
    for i in range(N_RANDOM):
        base = rng.choice(names)
        mutant, how = _mutate(ex[base], rng)
        cases[f"mutant:{i:03d}:{base}:{how}"] = mutant
    return cases


def documented_disagreements() -> dict[str, str]:
    doc = get_settings().root / "docs" / "validation.md"
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    section = text.split("## Known disagreements", 1)[1] if "## Known disagreements" in text else ""
    section = section.split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^- `([^`]+)`: (.+)$", section, re.M)}


@pytest.fixture(scope="module")
def verdicts(refvalidator):
    ours = Validator.from_settings(get_settings())
    cases = corpus()
    names = list(cases)
    ref_outcomes = refvalidator.validate_many([cases[n] for n in names])
    table = {}
    for name, outcome in zip(names, ref_outcomes, strict=True):
        our_issues = ours.validate(cases[name])
        table[name] = {
            "ours_valid": not any(i.is_error for i in our_issues),
            "ref_valid": not ref_errors(outcome),
            "ours": [i.format() for i in our_issues if i.is_error][:5],
            "ours_ids": sorted({i.message_id for i in our_issues if i.is_error}),
            "ref_ids": sorted({ref_message_id(e) or "?" for e in ref_errors(outcome)}),
            "ref": [f"{e.get('severity')}: {(e.get('details') or {}).get('text') or e.get('diagnostics')} "
                    f"@ {(e.get('expression') or e.get('location') or [''])[0]}" for e in ref_errors(outcome)][:5],
        }
    return table


def test_examples_are_valid_for_both(verdicts):
    bad = {k: v for k, v in verdicts.items() if k.startswith("example:") and not (v["ours_valid"] and v["ref_valid"])}
    assert bad == {}


def _explained_by(v: dict[str, Any], documented: dict[str, str]) -> set[str] | None:
    """The documented message ids that explain a disagreement, or None if it is unexplained."""
    ids = set(v["ours_ids"]) if not v["ours_valid"] else set(v["ref_ids"])
    return ids if ids and ids <= set(documented) else None


def test_broken_variants_are_invalid_for_both(verdicts):
    bad = {k: v for k, v in verdicts.items() if k.startswith("broken:") and (v["ours_valid"] or v["ref_valid"])}
    assert bad == {}


def test_agreement_is_total_or_documented(verdicts):
    disagreements = {k: v for k, v in verdicts.items() if v["ours_valid"] != v["ref_valid"]}
    documented = documented_disagreements()
    agree = len(verdicts) - len(disagreements)
    figure = {"cases": len(verdicts), "agree": agree, "agreement": round(agree / len(verdicts), 4),
              "disagreements": {k: v for k, v in disagreements.items()}}
    out = get_settings().root / "out"
    out.mkdir(exist_ok=True)
    (out / "differential.json").write_text(json.dumps(figure, indent=2), encoding="utf-8")
    n_explained = sum(1 for v in disagreements.values() if _explained_by(v, documented))
    print(f"\nDIFFERENTIAL: {agree}/{len(verdicts)} cases agree ({100 * agree / len(verdicts):.1f} %), "
          f"{len(disagreements)} disagreement(s), {n_explained} explained in docs/validation.md")
    explained = {k: _explained_by(v, documented) for k, v in disagreements.items()}
    undocumented = {k: v for k, v in disagreements.items() if explained[k] is None}
    assert undocumented == {}, json.dumps(undocumented, indent=1)[:6000]
    used = set().union(*[e for e in explained.values() if e]) if explained else set()
    stale = sorted(set(documented) - used)
    assert stale == [], f"docs/validation.md lists disagreements that no longer occur: {stale}"
