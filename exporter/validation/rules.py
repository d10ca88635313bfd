"""Validation rules (layer L2): the one definition of every element-level check.

A concern module defines each of its checks once, as a `Rule` registered with `@rule`:

    @rule
    class MinValue(Rule):                             # validation/bounds.py
        messages = (M.MIN_VALUE,)                     # rows of messages.TABLE
        def applies(self, m) -> bool: ...             # compile time, once per member
        def holds(self, value, m, ctx) -> bool: ...   # both paths: True = nothing to report
                                                      # (or `compile(m)`: holds specialised per member)
        def report(self, value, m, path, ctx): ...    # the walk, only where holds() said False

Both ways of running a rule are derived from that class: the reporting walk (validator.py) runs
`holds` and, where it fails, `report`; the clean path (fastpath.py) only asks `holds`. Which rules
apply to a member (an element and one of its types) is decided once (`RuleSet.for_member`), so
neither path names a check. Rules are found by importing every module of this package
(`discover`): a new check is a class in a concern module, a row in messages.py and a test — the
clean path runs it without an edit elsewhere.

`stage` orders the rules of one value and places them around the descent into its children:
below CHILDREN they run before the value's own elements are walked (fixed/pattern, extension
definition and context), from CHILDREN on after them (binding, codes, references, bounds,
invariants); RESOURCE rules (Bundle entries, questionnaire answers) run on a resource as a whole.

`uuid_blind(m)`: the rule holds for a Reference value `{"reference": "urn:uuid:…"}` whatever the
uuid (then the clean path may decide such a value by resolving it alone). False unless a rule
says so — a new rule never makes that shortcut wrong, at worst slower.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.validation.model import Member
from exporter.validation.policy import Policy

if TYPE_CHECKING:
    from exporter.fhir.definitions import DefinitionStore
    from exporter.terminology.valuesets import ValueSetExpander

BEFORE_CHILDREN, CHILDREN, RESOURCE = 10, 50, 90

_REGISTRY: dict[str, type[Rule]] = {}
_ORDER: dict[str, tuple[int, str, int]] = {}  # (stage, module, position in the module): a fixed order


def rule(cls: type[Rule]) -> type[Rule]:
    """Class decorator: register a rule (see the module docstring)."""
    key = f"{cls.__module__}.{cls.__qualname__}"
    if key not in _REGISTRY:
        _ORDER[key] = (cls.stage, cls.__module__, sum(1 for k in _REGISTRY if k.startswith(cls.__module__ + ".")))
    _REGISTRY[key] = cls
    return cls


@contextmanager
def registered(cls: type[Rule]) -> Iterator[type[Rule]]:
    """Register `cls` for the duration of a block only (a rule a test adds; validators built inside
    the block run it), then remove it again."""
    discover()  # the package's own rules first, so that removing `cls` leaves them all
    key = f"{cls.__module__}.{cls.__qualname__}"
    if key in _REGISTRY:
        raise ValueError(f"rule {key} is registered already")
    rule(cls)
    try:
        yield cls
    finally:
        del _REGISTRY[key], _ORDER[key]


@dataclass(frozen=True)
class RuleEnv:
    """What a rule may use beyond the value: definitions, terminology, compiled trees, policy."""

    store: DefinitionStore
    expander: ValueSetExpander
    compiler: Any  # exporter.validation.compiler.Compiler (which imports the rules: no import cycle)
    policy: Policy


class Rule:
    """One check (see the module docstring). One instance per validator: per-validator caches may
    live on it."""

    messages: ClassVar[tuple[str, ...]] = ()
    stage: ClassVar[int] = CHILDREN
    costly: ClassVar[bool] = True  # False: cheaper than a memo look-up (the clean path then asks it every time)
    # False: the verdict depends on more than the value (the enclosing resource, the Bundle); values it
    # applies to are then never memoised by content (Compiler.context_free). References are handled
    # apart: the memo never stores a value holding a "reference".
    context_free: ClassVar[bool] = True
    # a prefix of string values whose verdict depends on more than the value ("#" of a reference to
    # a contained resource): the rule stays context-free for everything else, and no value holding
    # such a string is memoised (fastpath.py)
    context_marker: ClassVar[str | None] = None

    def __init__(self, env: RuleEnv):
        self.env = env
        self._tests: dict[int, Callable[[Any, Any], bool]] = {}

    def applies(self, m: Member) -> bool:
        raise NotImplementedError

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        """Does `value` of member `m` pass? Defined here or through `compile` (never both)."""
        return self.test(m)(value, ctx)

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        """`holds` specialised once for member `m`, as a function of (value, ctx). A rule that can
        decide faster with what it knows of the element at compile time (a pattern matcher, the
        generated invariants) overrides this and leaves `holds` to go through it."""
        holds = type(self).holds
        if holds is Rule.holds:
            raise NotImplementedError(f"{type(self).__name__} defines neither holds nor compile")
        return lambda value, ctx: holds(self, value, m, ctx)

    def test(self, m: Member) -> Callable[[Any, Any], bool]:
        """`compile(m)`, made once per member: what the clean path calls."""
        fn = self._tests.get(id(m))
        if fn is None:
            fn = self._tests[id(m)] = self.compile(m)
        return fn

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        raise NotImplementedError

    def uuid_blind(self, m: Member) -> bool:
        return False


def discover() -> list[type[Rule]]:
    """Every registered rule class, in stage order (modules of this package imported once)."""
    package = importlib.import_module(__name__.rpartition(".")[0])
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return [_REGISTRY[k] for k in sorted(_REGISTRY, key=_ORDER.__getitem__)]


class RuleSet:
    """The rules of one validator, and which of them apply to each member (cached on it)."""

    def __init__(self, env: RuleEnv):
        self.env = env
        self.rules = tuple(cls(env) for cls in discover())
        self.markers = tuple(sorted({r.context_marker for r in self.rules if r.context_marker}))

    def for_member(self, m: Member) -> tuple[Rule, ...]:
        if m.rules is None:
            m.rules = tuple(r for r in self.rules if r.applies(m))
        return m.rules
