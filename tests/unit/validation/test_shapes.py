"""The JSON-shape checks are defined once (exporter/validation/structure.py, `Shape`): the walk and
the clean path both take their conditions from there, neither spells one of its own, and the
simplification the clean path makes (a dict is neither a list nor null) is true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import exporter.validation as pkg
from exporter.validation import structure as S

PKG = Path(pkg.__file__).parent
VALUES = [None, True, 0, 1.5, "", "x", [], [None], [{}], {}, {"a": 1}, [[1]]]
ALL = [S.TOO_DEEP, S.WRONG_RESOURCE_TYPE, S.EMPTY_OBJECT, S.ARRAY_UNEXPECTED, S.NULL, S.ARRAY_EXPECTED, S.EMPTY_ARRAY, S.NOT_AN_OBJECT,
       S.NOT_A_RESOURCE, S.COMPANION_NULL, S.COMPANION_NOT_AN_OBJECT]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_implied_checks_are_implied(value):
    for covered_id, by in S.IMPLIED.items():
        covered = next(s for s in ALL if id(s) == covered_id)
        if covered.broken(value):
            assert any(b.broken(value) for b in by)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_generated_conditions_agree_with_the_walks(value):
    """What the clean path inlines (broken_source) is what the walk asks (first_broken), for every
    set of checks a value takes."""
    for shapes in (S.SINGLE, S.MANY, S.ITEM, S.COMPLEX, S.COMPANION, S.SINGLE + S.COMPLEX, S.ITEM + S.COMPLEX):
        walk = S.first_broken(shapes, value) is not None
        assert eval(f"lambda v: {S.broken_source(shapes)}")(value) is walk
        assert S.any_broken(shapes)(value) is walk
    if type(value) is list:
        for shapes in (S.ITEM, S.ITEM + S.COMPLEX):
            assert S.items_broken(shapes)(value) is any(S.first_broken(shapes, v) for v in value)


def test_resource_type_check():
    wrong = S.wrong_resource_type("Patient")
    assert wrong is not None
    assert wrong.broken({"resourceType": "Observation"}, "Patient") and not wrong.broken({"resourceType": "Patient"}, "Patient")
    assert not wrong.broken([], "Patient")  # not an object: the resource's own check reports that
    assert wrong.broken({"resourceType": "Patient"}, "{v}'x")  # the type is compared, never spliced into code
    assert S.wrong_resource_type("Resource") is None and S.wrong_resource_type("DomainResource") is None


def _shape_conditions(path: Path) -> list[tuple[str, int]]:
    """(function, line) of every `type(x) is [not] list|dict` and `isinstance(x, list|dict)`."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call) \
                    and getattr(node.left.func, "id", None) == "type" \
                    and any(isinstance(c, ast.Name) and c.id in ("list", "dict") for c in node.comparators) \
                    or isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2 \
                    and isinstance(node.args[1], ast.Name) and node.args[1].id in ("list", "dict"):
                found.append((fn.name, node.lineno))
    return found


def test_the_paths_spell_no_shape_condition_of_their_own():
    assert _shape_conditions(PKG / "fastpath.py") == []
    # the walk's remaining ones are no checks: reading meta.profile claims tolerantly (their shape is
    # checked when meta is walked), whether a `_key` companion has a value at an array position, and
    # dispatching a sliced item to the clean path's value check
    allowed = {"validate_resource", "_aligned_ext", "_primitive_ext", "_item"}
    assert {fn for fn, _ in _shape_conditions(PKG / "validator.py")} <= allowed
