"""YAML with positions (layer L1): every node of a mapping file keeps its file:line:column.

`load_yaml(path)` returns (data, positions) where `positions[(key, index, ...)]` is the
SourceLocation of the node reached by that path from the document root. Errors anywhere in the
mapping pipeline name the YAML line this way. Only the safe YAML subset is accepted (no tags,
no anchors/aliases: a mapping file is data, not a program); duplicate keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from exporter.issues import ExporterError, IssueCode, SourceLocation, error

Positions = dict[tuple[Any, ...], SourceLocation]
_SCALAR_TAGS = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                          "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"})
_SCALARS = yaml.SafeLoader("")  # only its scalar constructors are used


class MappingSourceError(ExporterError):
    """A mapping or table file is not readable YAML of the expected shape."""


def _loc(file: str, node: yaml.Node) -> SourceLocation:
    return SourceLocation(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, file: str, path: tuple[Any, ...], positions: Positions) -> Any:
    positions[path] = _loc(file, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise MappingSourceError(error(IssueCode.STRUCTURE, "mapping keys must be plain scalars",
                                               "MAP_YAML", location=_loc(file, key_node)))
            key = key_node.value
            if key in out:
                raise MappingSourceError(error(IssueCode.STRUCTURE, f"duplicate key '{key}'", "MAP_YAML_DUPLICATE",
                                               location=_loc(file, key_node)))
            out[key] = _convert(value_node, file, path + (key,), positions)
            positions[path + (key,)] = _loc(file, key_node)  # an entry is reported at its key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, file, path + (i,), positions) for i, v in enumerate(node.value)]
    if node.tag not in _SCALAR_TAGS:
        raise MappingSourceError(error(IssueCode.STRUCTURE, f"YAML tag {node.tag} is not allowed", "MAP_YAML",
                                       location=_loc(file, node)))
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    return _SCALARS.construct_object(node, deep=True)


def load_yaml(path: Path, display_name: str | None = None) -> tuple[Any, Positions]:
    file = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingSourceError(error(IssueCode.NOT_FOUND, f"cannot read: {exc}", "MAP_READ",
                                       location=SourceLocation(file))) from exc
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> tuple[Any, Positions]:
    try:
        if "&" in text or "*" in text:
            for event in yaml.parse(text, Loader=yaml.SafeLoader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    mark = event.start_mark
                    assert mark is not None  # the parser marks every event it emits
                    raise MappingSourceError(error(IssueCode.STRUCTURE, "YAML anchors and aliases are not allowed",
                                                   "MAP_YAML", location=SourceLocation(file, mark.line + 1, mark.column + 1)))
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = SourceLocation(file, mark.line + 1, mark.column + 1) if mark else SourceLocation(file)
        raise MappingSourceError(error(IssueCode.STRUCTURE, f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                       "MAP_YAML", location=loc)) from exc
    positions: Positions = {}
    if node is None:
        return None, {(): SourceLocation(file, 1, 1)}
    return _convert(node, file, (), positions), positions


def position(positions: Positions, path: tuple[Any, ...]) -> SourceLocation | None:
    """The location of `path`, or of its nearest ancestor that has one."""
    while True:
        if path in positions:
            return positions[path]
        if not path:
            return None
        path = path[:-1]
