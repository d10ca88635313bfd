"""Benchmark: full profile validation of a generated patient Bundle against the orjson floor.

Bundle: 1 Patient, 2,000 Observations cycling through the vital-signs profiles of igs/ (weight,
height, heart rate, blood pressure, glucose), 200 QuestionnaireResponses (PHQ-9/GAD-7), all built
from the IG's own examples with fresh urn:uuid fullUrls and, like real data, their own times and
values (so content memoisation only helps where real exports repeat themselves: codes, units; each
timed run starts with an empty memo). Reports µs per resource, peak memory of
one validation, and the ratios to (a) orjson loads+dumps of the same Bundle, (b) fhir.resources
R4B model_validate — all measured in this run. Target (issue 16): ratio to orjson ≤ 3.3.

    .venv/bin/python -m benchmarks.bench_validation [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import interleaved_runs, median_seconds, paired_ratio, report
from exporter.settings import get_settings
from exporter.validation.validator import Validator

TARGET_RATIO = 3.3
VITALS = ["ExampleBodyWeight", "ExampleBodyHeight", "ExampleHeartRate", "ExampleBloodPressure",
          "ExampleBloodGlucose", "ExampleBloodGlucoseMgdl"]
QRS = ["ExamplePHQ9Response", "ExampleGAD7Response"]


def _example(pkg: Path, rtype: str, name: str) -> dict[str, Any]:
    return json.loads((pkg / f"{rtype}-{name}.json").read_text(encoding="utf-8"))


def build_bundle(n_obs: int = 2000, n_qr: int = 200) -> dict[str, Any]:
    settings = get_settings()
    pkg = next(p for p in sorted(settings.igs_dir.iterdir()) if p.is_dir() and not p.name.startswith("."))
    rng = uuid.UUID("00000000-0000-4000-8000-000000000000").int
    def urn(i: int) -> str:
        return f"urn:uuid:{uuid.UUID(int=rng + i)}"
    patient = _example(pkg, "Patient", "ExamplePatient")
    pid = urn(0)
    entries = [{"fullUrl": pid, "resource": patient}]
    vitals = [_example(pkg, "Observation", n) for n in VITALS]
    qrs = [_example(pkg, "QuestionnaireResponse", n) for n in QRS]
    for i in range(n_obs):
        o = copy.deepcopy(vitals[i % len(vitals)])
        o["id"] = f"obs-{i}"
        o["subject"] = {"reference": pid}
        # realistic variation: every measurement has its own time and value, as in a real export
        o["effectiveDateTime"] = f"2026-03-{1 + (i // 96) % 28:02d}T{(i // 4) % 24:02d}:{(i * 7) % 60:02d}:00+01:00"
        for q in [o.get("valueQuantity")] + [c.get("valueQuantity") for c in o.get("component", [])]:
            if isinstance(q, dict) and isinstance(q.get("value"), (int, float)):
                q["value"] = round(q["value"] * (0.9 + (i % 21) / 100), 1)
        o.pop("performer", None)
        o.pop("device", None)
        entries.append({"fullUrl": urn(1 + i), "resource": o})
    for i in range(n_qr):
        q = copy.deepcopy(qrs[i % len(qrs)])
        q["id"] = f"qr-{i}"
        q["subject"] = {"reference": pid}
        q.pop("author", None)
        entries.append({"fullUrl": urn(1 + n_obs + i), "resource": q})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    bundle = build_bundle()
    raw = orjson.dumps(bundle)
    n = len(bundle["entry"]) + 1
    t0 = time.perf_counter()
    validator = Validator.from_settings(get_settings())
    load_s = time.perf_counter() - t0
    first = validator.validate(bundle)  # also compiles every profile involved
    errors = [i for i in first if i.is_error]
    if errors:
        print("the benchmark Bundle is not valid:", *[i.format() for i in errors[:10]], sep="\n  ", file=sys.stderr)
        return 1

    parsed = orjson.loads(raw)  # validation works on the parsed dict (the exporter hands it over as such)
    # each run starts with an empty content memo, as for a Bundle the service has not seen before
    # (compiled profiles stay: that is start-up work); floor and validation are timed in alternation
    runs = interleaved_runs({"floor": lambda: orjson.dumps(orjson.loads(raw)),
                             "ours": lambda: validator.validate(parsed)},
                            args.repeat * 2, setups={"ours": validator.forget})
    floor, ours = statistics.median(runs["floor"]), statistics.median(runs["ours"])
    ratio = paired_ratio(runs["ours"], runs["floor"])
    try:
        from fhir.resources.R4B.bundle import Bundle as R4BBundle
        model = median_seconds(lambda: R4BBundle.model_validate(orjson.loads(raw)), max(1, args.repeat // 2))
    except Exception as exc:  # an independent library; its failure must not hide our figures
        model = float("nan")
        print(f"fhir.resources R4B model_validate failed: {exc}", file=sys.stderr)
    tracemalloc.start()
    validator.validate(orjson.loads(raw))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    figures = {
        "resources": n, "bundle_bytes": len(raw), "startup_ms": round(load_s * 1000, 1),
        "orjson_floor_ms": round(floor * 1000, 2), "validate_ms": round(ours * 1000, 1),
        "us_per_resource": round(ours / n * 1e6, 1), "ratio_to_orjson": round(ratio, 2),
        "ratio_of_medians": round(ours / floor, 2),
        "r4b_model_validate_ms": round(model * 1000, 1), "ratio_to_r4b_models": round(ours / model, 2),
        "peak_mem_mib": round(peak / 2**20, 1), "target_ratio": TARGET_RATIO,
    }
    report(figures, "validation", ratio, TARGET_RATIO, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
