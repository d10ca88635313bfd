"""Differential on FHIR's own examples: our validator against the HL7 FHIR validator.

    python -m tools.devstack.examples_differential            # prints the agreement figure

Corpus: every instance in hl7.fhir.r4.examples#4.0.1 (`make setup` unpacks it into
`.tools/fhir-examples/`) that is not a conformance resource — 705 resources, the spec's Bundles of
definitions left out — plus seeded random mutations of them (tools/devstack/mutate.py). Each case
gets a verdict from both validators (valid = no error or fatal issue): ours with the HL7
validator's policy (`Policy.reference()`), the HL7 validator offline, without a terminology server.

The HL7 validator's messages that come from that missing terminology server are left out of its
verdict (`TERMINOLOGY_DERIVED`, listed in docs/validation.md): they say it could not check a code,
not that the resource is wrong. Every remaining disagreement must be explained in
docs/validation.md, section "Known disagreements on FHIR's examples", by the message ids of the
side that rejects (tests/system/test_examples_differential.py enforces it). The figure and every
disagreement are written to `out/examples-differential.json`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.settings import Settings, get_settings
from tools.devstack.mutate import mutate
from tools.devstack.refvalidator import ReferenceValidator, message_id

PACKAGE = "hl7.fhir.r4.examples#4.0.1"
SEED = 20261206
MUTANTS = 200
TARGET = 0.99
CONFORMANCE = frozenset({
    "StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "ImplementationGuide", "SearchParameter",
    "CapabilityStatement", "OperationDefinition", "NamingSystem", "CompartmentDefinition", "StructureMap",
    "GraphDefinition", "MessageDefinition", "TerminologyCapabilities", "ExampleScenario"})
# the HL7 validator's messages that only say its (absent) terminology server could not be asked
TERMINOLOGY_DERIVED = frozenset({
    "UNABLE_TO_INFER_CODESYSTEM",  # "the System URI could not be determined for the code … in the ValueSet"
    "Terminology_TX_NoValid_16",  # "the code provided is not in the value set" — decided without the code system
    "Unknown_Code_in_Version",  # a code of a code system only the terminology server holds
    "Unable_to_resolve_system__value_set_has_include_with_unknown_system",  # ValueSet over such a system
})
TERMINOLOGY_HOST = "terminology.hl7.org"  # a URL there "does not resolve": only the terminology server knows it


def examples_folder(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).tools / "fhir-examples" / "package"


def examples(folder: Path) -> dict[str, dict[str, Any]]:
    """The package's instances (file stem -> resource), conformance resources and Bundles of them left out."""
    out = {}
    for f in sorted(folder.glob("*.json")):
        if f.name in ("package.json", ".index.json") or f.name.split("-", 1)[0] in CONFORMANCE:
            continue
        res = json.loads(f.read_text(encoding="utf-8"))
        rt = res.get("resourceType")
        if rt in CONFORMANCE:
            continue
        if rt == "Bundle":
            inside = [(e.get("resource") or {}).get("resourceType") for e in res.get("entry") or []]
            if inside and all(t in CONFORMANCE for t in inside):
                continue
        out[f.stem] = res
    return out


def corpus(folder: Path, mutants: int = MUTANTS, seed: int = SEED) -> dict[str, dict[str, Any]]:
    ex = examples(folder)
    cases = {f"example:{k}": v for k, v in ex.items()}
    rng = random.Random(seed)
    bases = sorted(k for k, v in ex.items() if v.get("resourceType") != "Bundle" and len(json.dumps(v)) < 20_000)
    for i in range(mutants):
        base = rng.choice(bases)
        mutant, how = mutate(ex[base], rng)
        cases[f"mutant:{i:03d}:{base}:{how}"] = mutant
    return cases


def terminology_derived(issue: dict[str, Any]) -> bool:
    mid = message_id(issue)
    if mid in TERMINOLOGY_DERIVED:
        return True
    text = (issue.get("details") or {}).get("text") or ""
    return mid == "Type_Specific_Checks_DT_URL_Resolve" and TERMINOLOGY_HOST in text


@dataclass
class Report:
    cases: int = 0
    agree: int = 0
    disagreements: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)  # terminology-derived message id -> count
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def agreement(self) -> float:
        return self.agree / self.cases if self.cases else 0.0

    def line(self) -> str:
        return (f"FHIR examples differential: {self.agree}/{self.cases} cases agree ({100 * self.agreement:.1f} %), "
                f"{len(self.disagreements)} disagreement(s); terminology-derived HL7 messages left out: "
                f"{sum(self.left_out.values())} ({', '.join(sorted(self.left_out))})")

    def as_json(self) -> dict[str, Any]:
        return {"package": PACKAGE, "cases": self.cases, "agree": self.agree, "agreement": round(self.agreement, 4),
                "left_out": self.left_out, "seconds": self.seconds, "disagreements": self.disagreements}


def compare(cases: dict[str, dict[str, Any]], ours: Any, ref: ReferenceValidator) -> Report:
    report = Report(cases=len(cases))
    names = list(cases)
    t = time.monotonic()
    ref_outcomes = ref.validate_many([cases[n] for n in names])
    report.seconds["hl7"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    our_issues = [ours.validate(json.loads(json.dumps(cases[n]))) for n in names]
    report.seconds["ours"] = round(time.monotonic() - t, 1)
    for name, outcome, issues in zip(names, ref_outcomes, our_issues, strict=True):
        ref_errors = []
        for i in outcome.get("issue", []):
            if i.get("severity") not in ("error", "fatal"):
                continue
            if terminology_derived(i):
                mid = message_id(i) or "?"
                report.left_out[mid] = report.left_out.get(mid, 0) + 1
            else:
                ref_errors.append(i)
        our_errors = [i for i in issues if i.is_error]
        if bool(ref_errors) == bool(our_errors):
            report.agree += 1
            continue
        report.disagreements[name] = {
            "ours_valid": not our_errors, "ref_valid": not ref_errors,
            "ours_ids": sorted({i.message_id for i in our_errors}),
            "ref_ids": sorted({message_id(i) or "?" for i in ref_errors}),
            "ours": [i.format() for i in our_errors][:5],
            "ref": [f"{(i.get('details') or {}).get('text')} @ {(i.get('expression') or [''])[0]}" for i in ref_errors][:5],
        }
    return report


def documented(settings: Settings | None = None) -> dict[str, str]:
    """Message id -> reason, from docs/validation.md "Known disagreements on FHIR's examples"."""
    text = ((settings or get_settings()).root / "docs" / "validation.md").read_text(encoding="utf-8")
    section = text.split("## Known disagreements on FHIR's examples", 1)[-1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^- `([^`]+)`: (.+)$", section, re.M)}


def explained_by(d: dict[str, Any], reasons: dict[str, str]) -> set[str] | None:
    """The documented ids that explain a disagreement (all of the rejecting side's), or None."""
    ids = set(d["ours_ids"]) if not d["ours_valid"] else set(d["ref_ids"])
    return ids if ids and ids <= set(reasons) else None


def run(settings: Settings | None = None, mutants: int = MUTANTS, ref: ReferenceValidator | None = None) -> Report:
    from exporter.validation.policy import Policy
    from exporter.validation.validator import Validator

    s = settings or get_settings()
    folder = examples_folder(s)
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: run `make setup` (it unpacks {PACKAGE})")
    cases = corpus(folder, mutants)
    ours = Validator.from_settings(s, policy=Policy.reference())
    if ref is not None:
        return compare(cases, ours, ref)
    with ReferenceValidator(settings=s) as started:
        return compare(cases, ours, started)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=MUTANTS, help=f"seeded mutations (default {MUTANTS})")
    ap.add_argument("--json", type=Path, help="write the figure and every disagreement here")
    args = ap.parse_args(argv)
    report = run(mutants=args.mutants)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")
    reasons = documented()
    for name, d in sorted(report.disagreements.items()):
        side = "only ours rejects" if not d["ours_valid"] else "only HL7 rejects"
        why = explained_by(d, reasons)
        print(f"  {name}: {side} {d['ours_ids'] or d['ref_ids']}{'' if why else '  (UNEXPLAINED)'}")
    print(report.line())
    return 0 if report.agreement >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
