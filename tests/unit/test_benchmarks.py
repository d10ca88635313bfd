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


def test_paired_ratio_compares_each_round_with_its_own_floor():
    from benchmarks.common import paired_ratio
    # the host slows down in round 3: per-round ratios stay 2, the ratio of medians would not
    assert paired_ratio([2.0, 2.0, 8.0], [1.0, 1.0, 4.0]) == 2.0
    assert paired_ratio([3.0, 1.0], [1.0, 1.0]) == 2.0  # median of 3 and 1


def test_export_benchmark_runs_and_reports(capsys):
    from benchmarks import bench_export
    assert bench_export.main(["--repeat", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"ratio_to_orjson"' in out and '"after_other_patient_ratio"' in out


def test_xml_benchmark_runs_and_reports(capsys):
    from benchmarks import bench_xml
    assert bench_xml.main(["--repeat", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"write_ratio_to_orjson"' in out and '"read_ratio_to_orjson"' in out
