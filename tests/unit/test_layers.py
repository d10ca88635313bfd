"""Architecture rules, checked on the source: layers only import downwards; one door per library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import exporter

PKG = Path(exporter.__file__).parent

# Layer of each module or sub-package (first match by longest prefix). New modules must be listed.
LAYERS = {
    "exporter": 0, "exporter.__main__": 4,
    "exporter.issues": 0, "exporter.settings": 0, "exporter.domainschema": 0, "exporter.deadline": 0,
    "exporter.fhir": 1, "exporter.fhir.snapshot": 1, "exporter.terminology": 1, "exporter.mapping": 1,
    "exporter.rules": 1,
    "exporter.igbuild": 2, "exporter.scaffold": 2, "exporter.engine": 2, "exporter.validation": 2,
    "exporter.formats": 2, "exporter.narrative": 2,
    "exporter.pipeline": 3, "exporter.auth": 3, "exporter.render": 3,
    "exporter.api": 4, "exporter.cli": 4,
}

# The doors of every third-party library imported in exporter/: the modules (or a whole sub-package, for a
# framework its layer is built on) that may import it. One door per library; the few libraries with more than
# one door are listed explicitly, so a new importer is a visible decision, not an accident.
DOORS: dict[str, tuple[str, ...]] = {
    "fhirpathpy": ("exporter.fhir.fhirpath",),
    "antlr4": ("exporter.fhir.fhirpath",),  # fhirpathpy's parser runtime, driven directly for parse caching
    "jinja2": ("exporter.engine.templating",),
    "markupsafe": ("exporter.engine.templating",),  # jinja2's own escaping, for the straight path
    "fastjsonschema": ("exporter.domainschema",),
    "jsonschema": ("exporter.domainschema",),
    "uvicorn": ("exporter.api.server",),
    "h11": ("exporter.api.server",),
    "lxml": ("exporter.formats.xml",),
    "weasyprint": ("exporter.render.pdf",),
    "pydantic": ("exporter.settings",),
    "pydantic_settings": ("exporter.settings",),
    "urllib3": ("exporter.api.sources",),
    "cryptography": ("exporter.auth.keys",),
    "jwt": ("exporter.auth",),
    # the web framework: the API layer is built on it; authorization declares its dependencies with it
    "fastapi": ("exporter.api", "exporter.auth.policies"),
    "starlette": ("exporter.api",),
    "anyio": ("exporter.api",),
    # HTTP clients: the JWKS fetch (auth) and the source-system client (api)
    "requests": ("exporter.auth.keys", "exporter.api.sources"),
    # YAML: the position-tracking mapping loader and the IG build's sushi-config reader
    "yaml": ("exporter.mapping.yamlsrc", "exporter.igbuild"),
    # the JSON codec: reading and writing FHIR JSON (fhir.json), error bodies and OpenAPI examples (api), the
    # canonical digest (engine.builder) and the clean path's fingerprint of values (validation.fastpath)
    "orjson": ("exporter.fhir.json", "exporter.api", "exporter.engine.builder", "exporter.validation.fastpath"),
}


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


def _inside(module: str, door: str) -> bool:
    return module == door or module.startswith(door + ".")


def third_party_imports():
    """(module, path, line, top-level name) of every import in exporter/ that is neither stdlib nor exporter."""
    for module, path in _modules():
        for imported, line in _imports(path):
            top = imported.split(".")[0]
            if top != "exporter" and top not in sys.stdlib_module_names and top != "__future__":
                yield module, path, line, top


def test_third_party_doors():
    violations = []
    for module, path, line, top in third_party_imports():
        doors = DOORS.get(top)
        if doors is None:
            violations.append(f"{path}:{line}: {top} has no door in tests/unit/test_layers.py DOORS")
        elif not any(_inside(module, door) for door in doors):
            violations.append(f"{path}:{line}: {top} may only be imported in {', '.join(doors)}")
    assert violations == []


def test_every_door_is_a_module_that_imports_its_library():
    """A door that no longer exists, or no longer needs its library, is removed from DOORS."""
    modules = {m for m, _ in _modules()}
    used = {(top, door) for module, _, _, top in third_party_imports() for door in DOORS.get(top, ())
            if _inside(module, door)}
    stale = [f"{lib}: {door}" for lib, doors in DOORS.items() for door in doors
             if door not in modules or (lib, door) not in used]
    assert stale == []
