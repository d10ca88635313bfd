"""Build the IG package in igs/ from profiles_fsh/ with SUSHI, offline (layer L2).

SUSHI reads FSH only from `<project>/input/fsh/`; our repository keeps `sushi-config.yaml` at the
root and FSH in `profiles_fsh/`. So the build stages a temporary SUSHI project, runs
`sushi build -s` (snapshots) with HOME pointing at the project's FHIR package cache and the package
registry pointed at a closed loopback port, and writes the result as a FHIR package folder
`igs/<id>/` (package.json, .index.json, one deterministically formatted JSON file per resource).

Offline by construction: SUSHI asks for its latest version on every run (`npm view fsh-sushi
version`, then an HTTPS request to the npm registry); npm would write its logs and cache below HOME,
i.e. into the FHIR package cache. So SUSHI runs with a PATH holding only `node` (no npm to start)
and, while the registry is the closed loopback port, every HTTP(S) proxy set to it (the fallback
request fails at once, on loopback); npm's cache and logs, were anything to start it, go to the
build's temporary folder. A registry on the network (set on purpose to fetch packages) keeps the
environment's proxies.

The target folder is replaced atomically and only after a successful build: a broken FSH file
leaves the committed igs/ untouched. SUSHI's messages are turned into issues whose locations name
the files under profiles_fsh/, not the staging copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from exporter.fhir import json as fjson
from exporter.fhir.packages import R4_CORE, check_package
from exporter.issues import BuildError, ConfigurationError, Issue, IssueCode, Severity, SourceLocation, error
from exporter.settings import Settings

SUSHI_TIMEOUT_S = 300
_LEVELS = {"error": Severity.ERROR, "warn": Severity.WARNING}
_MSG = re.compile(r"^(error|warn)\s+(.*)$")
_FILE = re.compile(r"^\s+File:\s+(.*)$")
_LINE = re.compile(r"^\s+Line:\s+(\d+)")
_NO_UPDATE_CHECK = "Unable to determine the latest version of sushi"


@dataclass
class BuildResult:
    package_id: str
    version: str
    out_dir: Path
    files: list[str]
    issues: list[Issue] = field(default_factory=list)


def read_sushi_config(settings: Settings) -> dict[str, Any]:
    path = settings.sushi_config
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(error(IssueCode.NOT_FOUND, f"{path} not found", "IG_CONFIG_MISSING")) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = SourceLocation(str(path), mark.line + 1 if mark else None, mark.column + 1 if mark else None)
        raise ConfigurationError(error(IssueCode.STRUCTURE, f"sushi-config.yaml is not valid YAML: {exc}",
                                       "IG_CONFIG_YAML", location=loc)) from exc
    missing = [k for k in ("id", "canonical", "version", "fhirVersion") if not isinstance(config, dict) or not config.get(k)]
    if missing:
        raise ConfigurationError(error(IssueCode.REQUIRED, f"sushi-config.yaml lacks {', '.join(missing)}",
                                       "IG_CONFIG_FIELDS", location=SourceLocation(str(path))))
    return config


def parse_sushi_log(text: str, staged_fsh: Path, settings: Settings) -> list[Issue]:
    """Turn SUSHI's console log into issues, mapping staged file paths back to profiles_fsh/."""
    issues: list[Issue] = []
    current: dict[str, Any] | None = None

    def flush() -> None:
        if current is not None:
            issues.append(Issue(current["severity"], IssueCode.PROCESSING, current["message"], "IG_SUSHI",
                                location=current.get("location")))

    for raw in text.splitlines():
        m = _MSG.match(raw)
        if m and m.group(2).startswith(_NO_UPDATE_CHECK):
            flush()
            current = None  # its update check, prevented on purpose (see offline_env)
            continue
        if m:
            flush()
            current = {"severity": _LEVELS[m.group(1)], "message": m.group(2).strip()}
            continue
        if current is None:
            continue
        fm = _FILE.match(raw)
        if fm:
            current["location"] = SourceLocation(_unstage(fm.group(1).strip(), staged_fsh, settings))
            continue
        lm = _LINE.match(raw)
        if lm and current.get("location"):
            current["location"] = SourceLocation(current["location"].file, int(lm.group(1)))
            continue
        if raw.strip() and not raw.startswith((" ", "\t")):
            flush()
            current = None
    flush()
    return issues


def _unstage(path: str, staged_fsh: Path, settings: Settings) -> str:
    p = Path(path)
    try:
        rel = p.resolve().relative_to(staged_fsh.resolve())
    except ValueError:
        return path
    if settings.fsh_dir.is_relative_to(settings.root):
        return str((settings.fsh_dir / rel).relative_to(settings.root))
    return str(settings.fsh_dir / rel)


def _stage(settings: Settings, workdir: Path) -> Path:
    if not settings.fsh_dir.is_dir():
        raise ConfigurationError(error(IssueCode.NOT_FOUND, f"{settings.fsh_dir} not found", "IG_FSH_MISSING"))
    shutil.copy2(settings.sushi_config, workdir / "sushi-config.yaml")
    staged = workdir / "input" / "fsh"
    shutil.copytree(settings.fsh_dir, staged)
    return staged


def _run_sushi(settings: Settings, project: Path) -> subprocess.CompletedProcess[str]:
    if not settings.sushi_bin.exists():
        raise ConfigurationError(error(IssueCode.NOT_FOUND,
                                       f"SUSHI not found at {settings.sushi_bin}; run `make setup` (npm ci)",
                                       "IG_SUSHI_MISSING"))
    env = offline_env(settings, project.parent)
    try:
        return subprocess.run([str(settings.sushi_bin), "build", str(project), "-s"], env=env,
                              capture_output=True, text=True, timeout=SUSHI_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(error(IssueCode.TOO_COSTLY, f"SUSHI did not finish within {SUSHI_TIMEOUT_S} s",
                               "IG_SUSHI_TIMEOUT")) from exc


def offline_env(settings: Settings, workdir: Path) -> dict[str, str]:
    """The environment SUSHI runs in: no npm on PATH (only a link to `node` in `workdir/bin`), every
    proxy at the closed registry port, npm's cache and logs in `workdir` (see the module docstring)."""
    node = shutil.which("node")
    if node is None:
        raise ConfigurationError(error(IssueCode.NOT_FOUND, "node not found on PATH; SUSHI needs Node.js",
                                       "IG_NODE_MISSING"))
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "node").symlink_to(Path(node).resolve())
    offline = urlsplit(settings.package_registry).hostname in ("127.0.0.1", "localhost", "::1")
    env = {k: v for k, v in os.environ.items()
           if k.lower() != "path" and not k.lower().startswith("npm_") and not (offline and k.lower() in _PROXIES)}
    env.update({"PATH": str(bin_dir), "HOME": str(settings.home), "FPL_REGISTRY": settings.package_registry,
                "npm_config_cache": str(workdir / "npm-cache"), "npm_config_logs_dir": str(workdir / "npm-logs"),
                "npm_config_offline": "true", "npm_config_update_notifier": "false"})
    if offline:  # a registry on the network was chosen on purpose: its requests may not go to a closed port
        env.update({proxy: settings.package_registry for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                                                                  "http_proxy", "ALL_PROXY", "all_proxy")})
    return env


_PROXIES = frozenset({"no_proxy", "https_proxy", "http_proxy", "all_proxy"})


def package_manifest(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": config["id"],
        "version": str(config["version"]),
        "type": "fhir.ig",
        "canonical": config["canonical"],
        "title": config.get("title", config.get("name", config["id"])),
        "fhirVersions": [str(config["fhirVersion"])],
        "dependencies": {R4_CORE.package_id: R4_CORE.version},
        "license": "CC0-1.0",
    }


def index_entry(filename: str, res: dict[str, Any]) -> dict[str, Any]:
    entry = {"filename": filename, "resourceType": res.get("resourceType"), "id": res.get("id")}
    for key in ("url", "version", "kind", "type", "supplements"):
        if key in res:
            entry[key] = res[key]
    return entry


def build_ig(settings: Settings, out_root: Path | None = None) -> BuildResult:
    """Build the IG into `<out_root or igs/>/<id>/`. Raises BuildError with SUSHI's issues on failure."""
    config = read_sushi_config(settings)
    check_package(settings.package_cache)
    out_root = out_root or settings.igs_dir
    with tempfile.TemporaryDirectory(prefix="diga-ig-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        staged = _stage(settings, project)
        proc = _run_sushi(settings, project)
        log = proc.stdout + proc.stderr
        issues = parse_sushi_log(log, staged, settings)
        if proc.returncode != 0 or any(i.is_error for i in issues):
            if not any(i.is_error for i in issues):
                issues.append(error(IssueCode.PROCESSING, f"SUSHI exited {proc.returncode}: {log.strip()[-1500:]}",
                                    "IG_SUSHI_FAILED"))
            raise BuildError(issues)
        generated = project / "fsh-generated" / "resources"
        files = sorted(p.name for p in generated.glob("*.json")) if generated.is_dir() else []
        if not files:
            raise BuildError(error(IssueCode.PROCESSING, "SUSHI produced no resources", "IG_EMPTY"))

        out_root.mkdir(parents=True, exist_ok=True)
        target = out_root / config["id"]
        staging = Path(tempfile.mkdtemp(prefix=f".{config['id']}-", dir=out_root))
        try:
            index = []
            for name in files:
                res = fjson.load_file(generated / name)
                fjson.write_pretty(staging / name, res)
                index.append(index_entry(name, res))
            fjson.write_pretty(staging / "package.json", package_manifest(config))
            fjson.write_pretty(staging / ".index.json", {"index-version": 1, "files": index})
            staging.chmod(0o755)  # mkdtemp creates 0700; the package is ordinary project data
            _replace_dir(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return BuildResult(config["id"], str(config["version"]), target, files, issues)


def _replace_dir(new: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old)


def diff_trees(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two package folders (missing on either side or different bytes)."""
    names_a = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    names_b = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    diffs = sorted(names_a ^ names_b)
    diffs += sorted(n for n in names_a & names_b if (a / n).read_bytes() != (b / n).read_bytes())
    return diffs
