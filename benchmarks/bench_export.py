"""Benchmark: export of the large sample patient (map + validate + serialise as FHIR JSON, the service's path).

Reports µs per resource and the ratio to the orjson floor of the result (loads + dumps of the
exported Bundle) measured in the same run: the median over interleaved rounds of export / floor,
each pair timed back to back (also shown: the ratio of the two medians, and the range of the
per-round ratios). Target (issue 5): ≤ 8× the floor.

    .venv/bin/python -m benchmarks.bench_export [--repeat N] [--json]
"""

from __future__ import annotations

import json
import statistics
import time

import orjson

from benchmarks.common import EXPORT_TIME, interleaved_runs, large_sample, options, paired_ratio, report, round_ratios
from exporter.formats.media import JSON, render
from exporter.pipeline import Exporter
from exporter.settings import get_settings

TARGET_RATIO = 8.0


def write_json(bundle: dict) -> bytes:
    return render(bundle, JSON)


def main(argv: list[str] | None = None) -> int:
    args = options(__doc__, argv)
    settings = get_settings()
    doc = large_sample(settings)
    t = time.perf_counter()
    exporter = Exporter.from_settings(settings)
    startup = time.perf_counter() - t
    first = exporter.export(doc, export_time=EXPORT_TIME)
    if not first.ok:
        print("large sample does not export:", *[i.format() for i in first.issues[:10]], sep="\n  ")
        return 1
    raw = orjson.dumps(first.bundle)
    n = len(first.bundle["entry"])

    # also shown, not the target's figure: the export by a service that has just exported another
    # patient (the typical sample) — what remains in its memo is what other patients share with
    # this one (codes, units, narrative shapes), never this patient's own values
    other = json.loads((settings.root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))

    def after_other_patient() -> None:
        exporter.validator.forget()
        exporter.export(other, export_time=EXPORT_TIME)

    # the service's path for FHIR JSON (exporter/api/routes.py): the Bundle is written inside the export
    export = lambda: exporter.export_written(doc, export_time=EXPORT_TIME, write=write_json).body  # noqa: E731
    # each export starts with an empty content memo, as the export of a patient the service has not
    # seen before would (compiled mappings and profiles stay: that is start-up work); the floor and
    # the steps are timed in alternation, so that all see the same machine conditions
    runs = interleaved_runs({  # the floor right before the export it is compared with
        "schema": lambda: exporter.check_domain(doc),
        "map": lambda: exporter.engine.build(doc, EXPORT_TIME),
        "validate": lambda: exporter.validator.validate(first.bundle),
        "warm": export,
        "floor": lambda: orjson.dumps(orjson.loads(raw)),
        "full": export,
    }, args.repeat * 2, setups={"validate": exporter.validator.forget, "full": exporter.validator.forget,
                                "warm": after_other_patient})
    timed = {name: statistics.median(times) for name, times in runs.items()}
    floor, mapping, full = timed["floor"], timed["map"], timed["full"]
    per_round = round_ratios(runs["full"], runs["floor"])
    ratio = statistics.median(per_round)
    figures = {"resources": n, "bundle_bytes": len(raw), "startup_ms": round(startup * 1000, 1),
               "orjson_floor_ms": round(floor * 1000, 2), "schema_only_ms": round(timed["schema"] * 1000, 1),
               "map_only_ms": round(mapping * 1000, 1), "validate_only_ms": round(timed["validate"] * 1000, 1),
               "export_ms": round(full * 1000, 1), "us_per_resource": round(full / n * 1e6, 1),
               "ratio_to_orjson": round(ratio, 2), "ratio_of_medians": round(full / floor, 2),
               "ratio_per_round_min_max": [round(min(per_round), 2), round(max(per_round), 2)],
               "target_ratio": TARGET_RATIO,
               "after_other_patient_export_ms": round(timed["warm"] * 1000, 1),
               "after_other_patient_ratio": round(paired_ratio(runs["warm"], runs["floor"]), 2)}
    report(figures, "export", ratio, TARGET_RATIO, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
