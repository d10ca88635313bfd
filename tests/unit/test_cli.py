"""CLI conventions: exit 0 clean / 1 errors / 2 usage, compiler-style messages."""

from __future__ import annotations

from exporter.cli import main


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_unknown_command_is_usage_error(capsys):
    assert main(["frobnicate"]) == 2


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "build-ig" in out and "fetch-core" in out


def test_fetch_core_is_idempotent(capsys):
    assert main(["fetch-core"]) == 0
    assert capsys.readouterr().out.startswith("present: ")


def test_validate_table_prints_every_issue_it_counts(tmp_path, capsys):
    """An Observation without narrative: one warning (dom-6). Without -w it is not listed, and the
    summary says so; with -w every counted issue is printed."""
    path = tmp_path / "obs.json"
    path.write_text('{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}', encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{path}: valid (0 error(s), 1 warning(s); 1 not shown, add -w to list them)"]
    assert main(["validate", "-w", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "warning VAL_INVARIANT" in out[0] and "dom-6" in out[0]
    assert out[1] == f"{path}: valid (0 error(s), 1 warning(s))"
