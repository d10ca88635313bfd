"""The templates for people of a mapping set (layer L1): `mappings/templates/`.

    templates/resource/<ResourceType>.html   narrative of each resource of that type
                                             (`resource/<profile id>.html` first, when present)
    templates/section/<section key>.html     narrative of a Composition section (`section/default.html` else)
    templates/composition.html               the document summary (Composition.text)
    templates/document.html, document.css    the HTML/PDF page, which includes the templates above
    templates/texts/<language>.yaml          all wording: labels, code displays, units, bands, formats
    templates/scales.yaml                    severity bands of questionnaire scores

Only loading and shape checks happen here (every problem with file:line); engine/templating.py
compiles. Every language file must have exactly the keys of the default language's file, so a
template that renders in one language renders in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.issues import Issue, IssueCode, SourceLocation, error
from exporter.mapping.yamlsrc import MappingSourceError, load_yaml, position

DEFAULT_LANGUAGE = "de-DE"
TEXT_SECTIONS = ("labels", "gender", "bands", "units", "codes", "formats")
REQUIRED_TEMPLATES = ("composition.html", "section/default.html", "document.html")
TEMPLATE_SUFFIXES = (".html", ".css", ".svg")


@dataclass
class TemplateSources:
    root: Path
    sources: dict[str, str] = field(default_factory=dict)  # name (relative path) -> template source
    files: dict[str, str] = field(default_factory=dict)  # name -> file as reported in issues
    texts: dict[str, dict[str, Any]] = field(default_factory=dict)  # language -> wording
    scales: dict[str, Any] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted(self.texts)


def load_templates(root: Path, display_root: str) -> TemplateSources:
    """Everything below `root` (mappings/templates); problems go to `.issues`."""
    ts = TemplateSources(root)
    if not root.is_dir():
        ts.issues.append(error(IssueCode.NOT_FOUND, f"template folder {display_root} does not exist", "MAP_TEMPLATES",
                               location=SourceLocation(display_root)))
        return ts
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in TEMPLATE_SUFFIXES):
        name = path.relative_to(root).as_posix()
        try:
            ts.sources[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            ts.issues.append(error(IssueCode.STRUCTURE, f"cannot read template: {type(exc).__name__}", "MAP_TEMPLATES",
                                   location=SourceLocation(f"{display_root}/{name}")))
            continue
        ts.files[name] = f"{display_root}/{name}"
    for name in REQUIRED_TEMPLATES:
        if name not in ts.sources:
            ts.issues.append(error(IssueCode.REQUIRED, f"template {name} is missing", "MAP_TEMPLATES",
                                   location=SourceLocation(f"{display_root}/{name}")))
    for path in sorted((root / "texts").glob("*.yaml")):
        loaded = _yaml(path, f"{display_root}/texts/{path.name}", ts.issues)
        if loaded is None:
            continue
        data, pos = loaded
        file = f"{display_root}/texts/{path.name}"
        if not isinstance(data, dict) or data.get("language") != path.stem:
            ts.issues.append(error(IssueCode.STRUCTURE, f"a texts file needs 'language: {path.stem}' (its file name)",
                                   "MAP_TEXTS", location=position(pos, ()) or SourceLocation(file)))
            continue
        for key in TEXT_SECTIONS:
            if not isinstance(data.get(key, {}), dict) or not all(isinstance(v, str) for v in data.get(key, {}).values()):
                ts.issues.append(error(IssueCode.STRUCTURE, f"'{key}' must map names to texts", "MAP_TEXTS",
                                       location=position(pos, (key,)) or SourceLocation(file)))
                data[key] = {}
            data.setdefault(key, {})
        data["_positions"], data["_file"] = pos, file
        ts.texts[path.stem] = data
    if DEFAULT_LANGUAGE not in ts.texts:
        ts.issues.append(error(IssueCode.REQUIRED, f"texts/{DEFAULT_LANGUAGE}.yaml is missing", "MAP_TEXTS",
                               location=SourceLocation(f"{display_root}/texts")))
    else:
        base = ts.texts[DEFAULT_LANGUAGE]
        for lang, data in ts.texts.items():
            for key in TEXT_SECTIONS:
                for name in sorted(set(base[key]) ^ set(data[key])):
                    where = (lang, key) if name in base[key] else (DEFAULT_LANGUAGE, key)
                    other = DEFAULT_LANGUAGE if name not in base[key] else lang
                    src = ts.texts[where[0]]
                    ts.issues.append(error(IssueCode.STRUCTURE, f"'{key}.{name}' is missing in texts/{other}.yaml",
                                           "MAP_TEXTS_KEYS", location=position(src["_positions"], (key, name))
                                           or SourceLocation(src["_file"])))
    scales = root / "scales.yaml"
    if scales.is_file():
        scales_loaded = _yaml(scales, f"{display_root}/scales.yaml", ts.issues)
        if scales_loaded is not None and isinstance(scales_loaded[0], dict):
            ts.scales = scales_loaded[0]
    for texts in ts.texts.values():
        texts.pop("_positions", None)
        texts.pop("_file", None)
    return ts


def _yaml(path: Path, display: str, issues: list[Issue]) -> tuple[Any, Any] | None:
    try:
        return load_yaml(path, display)
    except MappingSourceError as exc:
        issues.extend(exc.issues)
        return None
