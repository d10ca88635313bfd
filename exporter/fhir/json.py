"""The one place that decides how FHIR JSON is written to files (layer L1; stdlib only).

Files in igs/ and golden cases are formatted deterministically: two-space indent, keys in the order
the producer wrote them, UTF-8 without escapes, one trailing newline. Two builds of the same input
therefore produce byte-identical files, which the drift check relies on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def dumps_pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_pretty(path: Path, obj: Any) -> None:
    path.write_text(dumps_pretty(obj), encoding="utf-8")


def load_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
