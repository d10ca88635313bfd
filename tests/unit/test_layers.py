"""Architecture rules, checked on the source: layers only import downwards; one door per library."""

from __future__ import annotations

import ast
from pathlib import Path

import exporter

PKG = Path(exporter.__file__).parent

# Layer of each module or sub-package (first match by longest prefix). New modules must be listed.
LAYERS = {
    "exporter": 0, "exporter.__main__": 4,
    "exporter.issues": 0, "exporter.settings": 0, "exporter.domainschema": 0, "exporter.deadline": 0,
    "exporter.fhir": 1, "exporter.fhir.snapshot": 1, "exporter.terminology": 1, "exporter.mapping": 1,
    "exporter.rules": 1,
    "exporter.igbuild": 2, "exporter.engine": 2, "exporter.validation": 2, "exporter.formats": 2,
    "exporter.narrative": 2,
    "exporter.pipeline": 3, "exporter.auth": 3, "exporter.render": 3,
    "exporter.api": 4, "exporter.cli": 4,
}

# Third-party libraries that may be imported by exactly one module ("one door per library").
DOORS = {"fhirpathpy": "exporter.fhir.fhirpath", "jinja2": "exporter.engine.templating",
         "fastjsonschema": "exporter.domainschema", "jsonschema": "exporter.domainschema",
         "uvicorn": "exporter.api.server", "h11": "exporter.api.server", "lxml": "exporter.formats.xml",
         "weasyprint": "exporter.render.pdf"}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    assert best is not None, f"{module} has no layer in tests/unit/test_layers.py"
    return LAYERS[best]


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def test_every_module_has_a_docstring():
    missing = [m for m, p in _modules() if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert missing == []


def test_layers_only_import_downwards():
    violations = []
    for module, path in _modules():
        own = _layer(module)
        for imported, line in _imports(path):
            if imported.split(".")[0] != "exporter":
                continue
            if _layer(imported) > own:
                violations.append(f"{path}:{line}: {module} (L{own}) imports {imported} (L{_layer(imported)})")
    assert violations == []


def test_third_party_doors():
    violations = []
    for module, path in _modules():
        for imported, line in _imports(path):
            door = DOORS.get(imported.split(".")[0])
            if door and module != door:
                violations.append(f"{path}:{line}: {imported} may only be imported in {door}")
    assert violations == []
