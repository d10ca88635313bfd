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
