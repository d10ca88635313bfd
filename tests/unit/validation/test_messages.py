"""The message table (exporter/validation/messages.py) is the one place of every message id: an id
used anywhere in exporter/ without a row fails, as does a row no code uses or a rule naming an id
without a row; every row's text formats; a severity is only given where the row says it varies."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from string import Formatter

import pytest

import exporter
from exporter.validation import messages as M
from exporter.validation.rules import discover

PKG = Path(exporter.__file__).parent
_ID = re.compile(r"VAL_[A-Z0-9_]+")
_CONSTANTS = {name: value for name, value in vars(M).items() if name.isupper() and isinstance(value, str)}


def _sources():
    for path in sorted(PKG.rglob("*.py")):
        if path.name != "messages.py" or path.parent.name != "validation":
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _ids_used() -> dict[str, list[str]]:
    """Every message id the code names: `M.NAME` (or `messages.NAME`) and "VAL_…" string literals."""
    used: dict[str, list[str]] = {}
    for path, tree in _sources():
        where = str(path.relative_to(PKG.parent))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("M", "messages") \
                    and node.attr.isupper():
                mid = _CONSTANTS.get(node.attr, f"<undefined M.{node.attr}>")
                used.setdefault(mid, []).append(f"{where}:{node.lineno}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                for mid in _ID.findall(node.value):
                    used.setdefault(mid, []).append(f"{where}:{node.lineno}")
    return used


def test_every_id_used_has_a_row():
    missing = {mid: places for mid, places in _ids_used().items() if mid not in M.TABLE}
    assert missing == {}


def test_every_row_is_used():
    used = _ids_used()
    assert [mid for mid in M.TABLE if mid not in used] == []


def test_every_constant_is_a_row():
    assert {v for k, v in _CONSTANTS.items()} == set(M.TABLE)


def test_every_rule_names_rows():
    for cls in discover():
        assert cls.messages, f"{cls.__name__} declares no message"
        assert set(cls.messages) <= set(M.TABLE), cls.__name__


@pytest.mark.parametrize("mid", sorted(M.TABLE))
def test_row_text_formats(mid):
    row = M.TABLE[mid]
    for template in [row.template] if isinstance(row.template, str) else row.template.values():
        fields = {name for _, name, _, _ in Formatter().parse(template) if name}
        assert template.format(**{f: "x" for f in fields})
    if not isinstance(row.template, str):
        assert "default" in row.template or mid in (M.QUESTIONNAIRE,), f"{mid}: which variant is the default?"


def test_severity_given_only_where_it_varies():
    """A call `ctx.add(M.X, where, "<severity>", …)` or `severity=` names a row whose severity varies."""
    offenders = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("add", "issue")):
                continue
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Attribute) and first.attr in _CONSTANTS):
                continue
            given = len(node.args) >= 3 or any(k.arg == "severity" for k in node.keywords)
            if given and not M.TABLE[_CONSTANTS[first.attr]].varies:
                offenders.append(f"{path.name}:{node.lineno} {first.attr}")
    assert offenders == []


def test_issue_carries_the_rows_code_and_severity():
    i = M.issue(M.SLICE_MIN, "Observation.component", slice="systolic", path="Observation.component", min=1, count=0)
    assert (i.severity.value, i.code.value, i.message_id) == ("error", "required", "VAL_SLICE_MIN")
    assert i.message == "slice 'systolic' of Observation.component requires at least 1 item(s), found 0"
    assert M.issue(M.REFERENCE_FORMAT, ref="x", problem="p").code.value == "value"
