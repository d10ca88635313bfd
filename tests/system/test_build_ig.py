"""`fhir-export build-ig` with the real SUSHI, offline: drift check, FSH errors with file:line, igs/ untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from exporter.igbuild import build_ig, diff_trees, read_sushi_config
from exporter.settings import get_settings
from tests.support.projectcopy import copy_project, tree_digest

pytestmark = pytest.mark.sushi


def _cli(*args: str, env_overrides: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(env_overrides or {})
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture()
def project_copy(tmp_path):
    """A copy of the IG sources and the committed igs/, built with the real SUSHI and package cache."""
    root = tmp_path / "proj"
    return root, copy_project(root, ("sushi-config.yaml", "profiles_fsh", "igs"))


def test_committed_igs_match_a_fresh_build(tmp_path):
    """The drift check: rebuilding profiles_fsh/ reproduces the committed igs/ byte for byte."""
    settings = get_settings()
    config = read_sushi_config(settings)
    result = build_ig(settings, tmp_path)
    assert result.out_dir == tmp_path / config["id"]
    diffs = diff_trees(settings.igs_dir / config["id"], result.out_dir)
    assert diffs == [], f"igs/ is stale, run `fhir-export build-ig`: {diffs}"


def test_build_is_deterministic(tmp_path):
    settings = get_settings()
    a = build_ig(settings, tmp_path / "a")
    b = build_ig(settings, tmp_path / "b")
    assert tree_digest(a.out_dir) == tree_digest(b.out_dir)


def test_cli_check_passes_on_clean_tree():
    proc = _cli("build-ig", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "matches a fresh build" in proc.stdout


def test_broken_fsh_fails_with_file_line_and_leaves_igs_untouched(project_copy):
    root, env = project_copy
    (root / "profiles_fsh" / "zz-broken.fsh").write_text(
        "Profile: Broken\nParent: Observation\n* status = #final\n* noSuchElement 1..1\n", encoding="utf-8")
    before = tree_digest(root / "igs")
    proc = _cli("build-ig", env_overrides=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "profiles_fsh/zz-broken.fsh:4: error IG_SUSHI: No element found at path noSuchElement" in proc.stderr
    assert "igs/ left untouched" in proc.stderr
    assert tree_digest(root / "igs") == before


def test_cli_check_reports_drift(project_copy):
    root, env = project_copy
    pkg = next(p for p in (root / "igs").iterdir() if p.is_dir())
    victim = sorted(pkg.glob("StructureDefinition-*.json"))[0]
    victim.write_text(victim.read_text().replace('"status": "draft"', '"status": "active"', 1))
    proc = _cli("build-ig", "--check", env_overrides=env)
    assert proc.returncode == 1
    assert f"{victim.name}: error IG_DRIFT" in proc.stderr


def test_build_writes_new_package_in_place(project_copy):
    root, env = project_copy
    shutil.rmtree(root / "igs")
    proc = _cli("build-ig", env_overrides=env)
    assert proc.returncode == 0, proc.stderr
    settings = get_settings()
    config = read_sushi_config(settings)
    assert diff_trees(settings.igs_dir / config["id"], root / "igs" / config["id"]) == []


def test_missing_core_package_is_a_setup_error(project_copy, tmp_path):
    root, env = project_copy
    env = dict(env, DIGA_EXPORTER_FHIR_HOME=str(tmp_path / "empty-home"))
    proc = _cli("build-ig", env_overrides=env)
    assert proc.returncode == 2
    assert "error PKG_MISSING" in proc.stderr and "make setup" in proc.stderr


def test_build_starts_no_npm_and_leaves_the_package_cache_alone(project_copy, tmp_path):
    """Offline by construction: SUSHI's update check (`npm view fsh-sushi version`) finds no npm to
    start, even with an `npm` first on PATH and the registry variable at a closed port; nothing of
    npm's (logs, cache) lands in the FHIR home."""
    import socket

    root, env = project_copy
    called = tmp_path / "npm-called"
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "npm").write_text(f'#!/bin/sh\necho "$@" >> {called}\necho 3.21.0\n', encoding="utf-8")
    (fake / "npm").chmod(0o755)
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    home = tmp_path / "fhir-home"
    (home / ".fhir").mkdir(parents=True)
    (home / ".fhir" / "packages").symlink_to(get_settings().package_cache)
    env = dict(env, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}", DIGA_EXPORTER_FHIR_HOME=str(home),
               DIGA_EXPORTER_PACKAGE_REGISTRY=f"http://127.0.0.1:{closed}/")
    proc = _cli("build-ig", "-v", "--out", str(tmp_path / "out"), env_overrides=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not called.exists(), called.read_text()
    assert sorted(p.name for p in home.iterdir()) == [".fhir"]
    assert sorted(p.name for p in (home / ".fhir").iterdir()) == ["packages"]
    assert "latest version of sushi" not in proc.stderr
