"""The benchmarks stay runnable: their inputs are valid (no timing is asserted here — speed targets
live in the benchmarks themselves, which report ratios against a floor measured in the same run)."""

from benchmarks import bench_validation
from exporter.settings import get_settings
from exporter.validation.validator import Validator


def test_validation_benchmark_bundle_is_valid():
    bundle = bench_validation.build_bundle(n_obs=30, n_qr=4)
    assert len(bundle["entry"]) == 35
    errors = [i.format() for i in Validator.from_settings(get_settings()).validate(bundle) if i.is_error]
    assert errors == []


def test_benchmarks_run_and_report(capsys):
    assert bench_validation.main(["--repeat", "1", "--json"]) == 0
    assert '"ratio_to_orjson"' in capsys.readouterr().out
