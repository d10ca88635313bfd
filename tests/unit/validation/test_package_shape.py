"""The validation package keeps one definition per check and no tangles: its modules import each
other without a cycle (TYPE_CHECKING imports included), no module reaches into another's private
names, every rule class is registered, and a new rule needs no edit outside its own module — the
walk and the clean path both run it (shown with a rule registered by this test alone)."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

import exporter.validation as pkg
from exporter.validation import messages as M
from exporter.validation import rules
from exporter.validation.model import KIND_PRIMITIVE
from exporter.validation.rules import Rule, discover
from exporter.validation.validator import Validator

PKG = Path(pkg.__file__).parent
NAME = pkg.__name__


def _trees():
    for path in sorted(PKG.glob("*.py")):
        yield path.stem, ast.parse(path.read_text(encoding="utf-8"))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for mod, tree in _trees():
        deps = graph.setdefault(mod, set())
        for node in ast.walk(tree):  # every import, also inside functions and `if TYPE_CHECKING:`
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == NAME:
                    deps.update(a.name for a in node.names)
                elif node.module.startswith(NAME + "."):
                    deps.add(node.module[len(NAME) + 1:].split(".")[0])
            elif isinstance(node, ast.Import):
                deps.update(a.name[len(NAME) + 1:].split(".")[0] for a in node.names if a.name.startswith(NAME + "."))
        deps.discard(mod)
    return graph


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(mod: str, stack: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[mod] = 2
    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []


def test_the_clean_path_does_not_import_the_walk():
    assert "validator" not in _graph()["fastpath"]


def test_no_module_uses_another_modules_private_names():
    """`x._name` only on self/cls (or a class of the same module); no `from m import _name`."""
    offenders = []
    for mod, tree in _trees():
        own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        own |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                if isinstance(base, ast.Name) and (base.id in ("self", "cls") or base.id in own):
                    continue
                offenders.append(f"{mod}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and any(a.name.startswith("_") for a in node.names):
                offenders.append(f"{mod}:{node.lineno} import {[a.name for a in node.names]}")
    assert offenders == []


def test_every_rule_class_is_registered():
    registered = set(discover())
    defined = {cls for cls in _subclasses(Rule) if cls.__module__.startswith(NAME + ".") and cls.messages}
    assert defined <= registered


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


class _NoSevens(Rule):
    """A check this test adds: no decimal value may be 7 (reusing an existing message row)."""

    messages = (M.MAX_VALUE,)

    def applies(self, m):
        return m.kind == KIND_PRIMITIVE and m.type.code == "decimal"

    def holds(self, value, m, ctx):
        return value != 7

    def report(self, value, m, path, ctx):
        ctx.add(M.MAX_VALUE, path, value=value, bound="not 7", path=m.node.path)


def test_a_new_rule_runs_in_both_paths(example, walked):
    """The rule above is registered through the public registry and nothing else changes: the walk
    reports it, and the clean path no longer calls the resource clean — it hands the object to the
    walk, which reports exactly what the walk alone does. Without the rule the same document is
    clean and decided by the clean path alone."""
    from exporter.fhir.definitions import default_store
    from exporter.settings import get_settings
    store = default_store(get_settings())
    obs = example("Observation-ExampleBodyWeight")
    sevens = copy.deepcopy(obs)
    sevens["valueQuantity"]["value"] = 7

    assert Validator(store).validate(copy.deepcopy(sevens)) == [] and walked == []  # not a check yet
    with rules.registered(_NoSevens):
        assert _NoSevens in discover()
        fast, walk = Validator(store), Validator(store, clean_path=False)
        assert fast.validate(copy.deepcopy(obs)) == walk.validate(copy.deepcopy(obs)) == []
        walked.clear()
        expected = walk.validate(copy.deepcopy(sevens))
        assert [(i.message_id, i.expression) for i in expected] == [(M.MAX_VALUE, ("Observation.valueQuantity.value",))]
        walked.clear()
        assert fast.validate(copy.deepcopy(sevens)) == expected
        assert "Observation" in walked  # the clean path said "not clean": the walk ran and reported
    assert _NoSevens not in discover()
    walked.clear()
    assert Validator(store).validate(copy.deepcopy(sevens)) == [] and walked == []  # gone again


def test_a_rule_is_registered_once():
    with rules.registered(_NoSevens), pytest.raises(ValueError), rules.registered(_NoSevens):
        pass
