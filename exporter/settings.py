"""Settings (layer L0): every tunable comes from here, read from `DIGA_EXPORTER_*` environment variables.

Nothing else in the package reads os.environ for configuration.
Defaults suit a checkout of this repository: the root is the folder holding `pyproject.toml`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIGA_EXPORTER_", extra="forbid")

    root: Path = _REPO_ROOT
    """Project root: holds sushi-config.yaml, profiles_fsh/, igs/, mappings/."""

    tools_dir: Path | None = None
    """Local toolchain folder (git-ignored). Default: <root>/.tools"""

    fhir_home: Path | None = None
    """A HOME-like folder whose .fhir/packages/ is the FHIR package cache (as SUSHI and the HL7
    validator expect). Default: <tools_dir>/fhir-home"""

    sushi_path: Path | None = None
    """The SUSHI executable. Default: <root>/node_modules/.bin/sushi (installed by `npm ci`)."""

    package_registry: str = "http://127.0.0.1:9/"
    """Registry URL handed to SUSHI for packages missing from the cache. The default is a closed
    loopback port so that nothing is ever fetched; point it at a FHIR package registry to go online."""

    @property
    def tools(self) -> Path:
        return self.tools_dir or self.root / ".tools"

    @property
    def home(self) -> Path:
        return self.fhir_home or self.tools / "fhir-home"

    @property
    def package_cache(self) -> Path:
        return self.home / ".fhir" / "packages"

    @property
    def igs_dir(self) -> Path:
        return self.root / "igs"

    @property
    def fsh_dir(self) -> Path:
        return self.root / "profiles_fsh"

    @property
    def sushi_config(self) -> Path:
        return self.root / "sushi-config.yaml"

    @property
    def sushi_bin(self) -> Path:
        return self.sushi_path or self.root / "node_modules" / ".bin" / "sushi"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
