"""Benchmark: FHIR XML write and read of the large export, as ratios to the orjson floor of the same Bundle.

The floor is orjson loads + dumps of the exported Bundle (as in bench_export). `write` is
exporter.formats.xml writing the Bundle (compact); `read` is the reader turning that XML back into the
JSON-shaped dict (parse, checks, decimals). Each is timed in interleaved rounds with the floor, and the
ratio is the median of the per-round ratios. Targets (issue 15): write ≤ 8×, read ≤ 12×.

    .venv/bin/python -m benchmarks.bench_xml [--repeat N] [--json]
"""

from __future__ import annotations

import json
import statistics

import orjson

from benchmarks.common import EXPORT_TIME, interleaved_runs, large_sample, options, round_ratios
from exporter.formats.xml import default_codec
from exporter.pipeline import Exporter
from exporter.settings import get_settings

WRITE_TARGET, READ_TARGET = 8.0, 12.0


def main(argv: list[str] | None = None) -> int:
    args = options(__doc__, argv)
    settings = get_settings()
    result = Exporter.from_settings(settings).export(large_sample(settings), export_time=EXPORT_TIME)
    if not result.ok:
        print("large sample does not export:", *[i.format() for i in result.issues[:10]], sep="\n  ")
        return 1
    bundle = result.bundle
    raw = orjson.dumps(bundle)
    codec = default_codec()
    xml = codec.write(bundle)  # also compiles the layouts (start-up work, not timed)
    back, issues = codec.read(xml)
    if issues or orjson.loads(raw) != back:
        print("the XML of the large export does not read back as the same Bundle")
        return 1
    runs = interleaved_runs({
        "floor": lambda: orjson.dumps(orjson.loads(raw)),
        "write": lambda: codec.write(bundle),
        "read": lambda: codec.read(xml),
    }, args.repeat * 2)
    timed = {name: statistics.median(times) for name, times in runs.items()}
    write_ratio = statistics.median(round_ratios(runs["write"], runs["floor"]))
    read_ratio = statistics.median(round_ratios(runs["read"], runs["floor"]))
    figures = {"resources": len(bundle["entry"]), "json_bytes": len(raw), "xml_bytes": len(xml),
               "orjson_floor_ms": round(timed["floor"] * 1000, 2), "write_ms": round(timed["write"] * 1000, 1),
               "read_ms": round(timed["read"] * 1000, 1), "write_ratio_to_orjson": round(write_ratio, 2),
               "read_ratio_to_orjson": round(read_ratio, 2), "write_target_ratio": WRITE_TARGET,
               "read_target_ratio": READ_TARGET}
    if args.json:
        print(json.dumps(figures))
        return 0
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:>{width}}: {v}")
    for what, ratio, target in (("XML write", write_ratio, WRITE_TARGET), ("XML read", read_ratio, READ_TARGET)):
        print(("PASS" if ratio <= target else "ABOVE TARGET") + f": {what} is {ratio:.2f}x the orjson floor "
              f"(target <= {target}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
