"""The codebase's own checks run with the tests: ruff (lint and import order, configured in pyproject.toml)
over all Python in the repository, and mypy over exporter/ (strict for the mapping engine, the validator and
authorization). A finding fails the test with the tool's own output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    result = _run("ruff", "check", "--no-fix", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    # files, strictness and the cache directory come from [tool.mypy] in pyproject.toml
    result = _run("mypy", "--no-error-summary", "--show-error-codes")
    assert result.returncode == 0, result.stdout + result.stderr
