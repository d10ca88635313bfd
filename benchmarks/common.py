"""Shared by the benchmarks: median timing and the report format (figures, ratio, verdict)."""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

EXPORT_TIME = "2026-04-06T10:00:00+02:00"


def options(doc: str, argv: list[str] | None) -> argparse.Namespace:
    """--repeat N and --json, the options every benchmark takes."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def large_sample(settings: Any) -> dict[str, Any]:
    """The large synthetic patient (samples/patients/large.json), the input of the export benchmarks."""
    return json.loads((settings.root / "samples" / "patients" / "large.json").read_text(encoding="utf-8"))


def median_seconds(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    """Median wall time; like timeit, the cyclic garbage collector is paused while timing (it would
    otherwise fire at random points of either side of a ratio), and a collection runs before each run.
    `setup` runs before each run, untimed (e.g. to forget what the previous run memoised)."""
    runs = []
    for _ in range(max(1, repeat)):
        if setup is not None:
            setup()
        gc.collect()
        gc.disable()
        try:
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return statistics.median(runs)


def interleaved_runs(fns: dict[str, Callable[[], Any]], rounds: int,
                     setups: dict[str, Callable[[], Any]] | None = None) -> dict[str, list[float]]:
    """Wall time of each function per round, timed in interleaved rounds (a, b, a, b, …): both
    sides of a ratio see the same machine conditions, so a busy neighbour cannot skew one side only.
    Timing as in median_seconds (garbage collector paused, optional untimed setup per run)."""
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, rounds)):
        for name, fn in fns.items():
            runs[name].append(median_seconds(fn, 1, (setups or {}).get(name)))
    return runs


def round_ratios(ours: list[float], floor: list[float]) -> list[float]:
    """ours / floor per round of interleaved_runs, each pair timed back to back."""
    return [a / b for a, b in zip(ours, floor, strict=True)]


def paired_ratio(ours: list[float], floor: list[float]) -> float:
    """Median of round_ratios. On a shared host whose speed drifts during a run, a ratio of two
    medians can pair a fast round of one side with a slow round of the other; a per-round ratio
    compares like with like."""
    return statistics.median(round_ratios(ours, floor))


def report(figures: dict[str, Any], what: str, ratio: float, target: float, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:>{width}}: {v}")
    print(("PASS" if ratio <= target else "ABOVE TARGET") + f": {what} is {ratio:.2f}x the orjson floor (target <= {target}x)")
