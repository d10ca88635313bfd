"""Benchmark: the human-readable PDF/A-3b of the typical and the large sample patient.

Reports, per patient, the time of the PDF (rendered from the validated Bundle: HTML from the
templates, charts, WeasyPrint) as a ratio to the JSON export of the same patient (map + validate +
orjson) measured in the same run (interleaved rounds, median of per-round ratios), the page count
and the PDF's size against the JSON's. Targets (issue 12): the large patient fits in <= 20 pages
(daily/weekly/monthly summaries) and its PDF costs <= 10x its JSON export.

    .venv/bin/python -m benchmarks.bench_render [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess

import orjson

from benchmarks.common import interleaved_runs, round_ratios
from exporter.pipeline import Exporter
from exporter.render.document import Renderer
from exporter.render.formats import PDF, render
from exporter.settings import get_settings

TARGET_RATIO = 10.0
TARGET_PAGES = 20
EXPORT_TIME = "2026-04-06T10:00:00+02:00"


def pages(pdf: bytes) -> int:
    """Page count, by pdfinfo (Debian poppler-utils, installed by `make setup`)."""
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    settings = get_settings()
    exporter = Exporter.from_settings(settings)
    renderer = Renderer(exporter.engine.narrator)
    figures: dict[str, object] = {}
    verdict = 0.0
    for name in ("typical", "large"):
        doc = json.loads((settings.root / "samples" / "patients" / f"{name}.json").read_text(encoding="utf-8"))
        bundle = exporter.export(doc, export_time=EXPORT_TIME).bundle
        raw = orjson.dumps(bundle)
        pdf = render(renderer, bundle, PDF, raw)

        def json_export(doc: dict = doc) -> None:
            exporter.validator.forget()
            orjson.dumps(exporter.export(doc, export_time=EXPORT_TIME).bundle)

        def pdf_export(bundle: dict = bundle, raw: bytes = raw) -> None:
            render(renderer, bundle, PDF, raw)

        runs = interleaved_runs({"json": json_export, "pdf": pdf_export},
                                args.repeat)
        ratio = statistics.median(round_ratios(runs["pdf"], runs["json"]))
        n = pages(pdf)
        figures[name] = {"resources": len(bundle["entry"]), "json_export_ms": round(statistics.median(runs["json"]) * 1000, 1),
                         "pdf_ms": round(statistics.median(runs["pdf"]) * 1000, 1), "pdf_to_json_export": round(ratio, 2),
                         "pages": n, "pdf_bytes": len(pdf), "json_bytes": len(raw),
                         "pdf_to_json_bytes": round(len(pdf) / len(raw), 2)}
        if name == "large":
            verdict = ratio
            figures["large_pages_target"] = TARGET_PAGES
            figures["large_pages_ok"] = n <= TARGET_PAGES
    if args.json:
        print(json.dumps(figures))
        return 0
    for k, v in figures.items():
        print(f"{k:>18}: {v}")
    ok = verdict <= TARGET_RATIO and figures["large_pages_ok"]
    print(("PASS" if ok else "ABOVE TARGET") + f": the large patient's PDF costs {verdict:.2f}x its JSON export "
          f"(target <= {TARGET_RATIO}x) and has {figures['large']['pages']} pages (target <= {TARGET_PAGES})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
