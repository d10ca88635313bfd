"""veraPDF, the PDF Association's reference PDF/A validator, as the judge of every PDF the tests write.

`make setup` installs it from Maven Central into `<tools>/verapdf/lib/` (tools/verapdf/pom.xml).

    from tools.devstack.verapdf import verapdf
    verdicts = verapdf([Path("a.pdf"), Path("b.pdf")])     # {path: None (passes) or the failed rules}

One JVM checks all the files given (PDF/A-3b, `--flavour 3b`); nothing goes online.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from exporter.settings import get_settings

MAIN_CLASS = "org.verapdf.apps.GreenfieldCliWrapper"
FLAVOUR = "3b"


class VeraPdfMissing(RuntimeError):
    """veraPDF (or Java) is not installed: `make setup` installs it."""


def lib_dir() -> Path:
    return get_settings().tools / "verapdf" / "lib"


def missing_prerequisites() -> list[str]:
    problems = []
    if shutil.which("java") is None:
        problems.append("java is not on PATH")
    if not any(lib_dir().glob("*.jar")):
        problems.append(f"no veraPDF jars in {lib_dir()}")
    return problems


def verapdf(paths: list[Path], flavour: str = FLAVOUR, timeout: float = 600) -> dict[Path, str | None]:
    """{path: None when the file is valid PDF/A-`flavour`, else veraPDF's report of the failed rules}."""
    problems = missing_prerequisites()
    if problems:
        raise VeraPdfMissing("; ".join(problems) + "; run `make setup`")
    cmd = ["java", "-Xmx1g", "-Djava.awt.headless=true", "-cp", str(lib_dir() / "*"), MAIN_CLASS,
           "--flavour", flavour, "--format", "text", "-v", *map(str, paths)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    verdicts: dict[Path, str | None] = {}
    current: Path | None = None
    for line in out.splitlines():
        m = re.match(r"^(PASS|FAIL) (.+) (\S+)$", line)
        if m:
            current = Path(m.group(2))
            verdicts[current] = None if m.group(1) == "PASS" else ""
        elif current is not None and verdicts.get(current) is not None:
            verdicts[current] = (verdicts[current] or "") + line.strip() + "\n"
    for p in paths:
        verdicts.setdefault(Path(p), "no verdict from veraPDF")
    return verdicts
