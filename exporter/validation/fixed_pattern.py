"""fixed[x] (exact value) and pattern[x] (the instance contains at least the pattern) (layer L2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import BEFORE_CHILDREN, Rule, rule


def equals_fixed(value: object, fixed: object) -> bool:
    """Exact JSON equality; numbers compare by value (1 == 1.0) but booleans are not numbers."""
    if isinstance(fixed, dict):
        return isinstance(value, dict) and value.keys() == fixed.keys() and all(
            equals_fixed(value[k], fixed[k]) for k in fixed)
    if isinstance(fixed, list):
        return isinstance(value, list) and len(value) == len(fixed) and all(
            equals_fixed(v, f) for v, f in zip(value, fixed, strict=True))
    if isinstance(fixed, bool) or isinstance(value, bool):
        return type(fixed) is type(value) and fixed == value
    return value == fixed


def matches_pattern(value: object, pattern: object) -> bool:
    """Every property of the pattern is present with a matching value; each pattern array item
    is matched by some item of the instance array."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], p) for k, p in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(matches_pattern(v, p) for v in value) for p in pattern)
    if isinstance(pattern, bool) or isinstance(value, bool):
        return type(pattern) is type(value) and pattern == value
    return value == pattern


def pattern_matcher(pattern: Any) -> Callable[[Any], bool]:
    """matches_pattern(value, pattern) as a function of the value, specialised once for the
    pattern (slice discriminators and profile patterns test thousands of values per export)."""
    if isinstance(pattern, dict):
        subs = tuple((k, pattern_matcher(p)) for k, p in pattern.items())

        def object_matches(value: Any) -> bool:
            if type(value) is not dict:
                return isinstance(value, dict) and matches_pattern(value, pattern)
            for k, sub in subs:
                if k not in value or not sub(value[k]):
                    return False
            return True
        return object_matches
    if isinstance(pattern, list):
        items = tuple(pattern_matcher(p) for p in pattern)

        def list_matches(value: Any) -> bool:
            if not isinstance(value, list):
                return False
            for sub in items:
                for v in value:
                    if sub(v):
                        break
                else:
                    return False
            return True
        return list_matches
    if isinstance(pattern, bool):
        return lambda value: type(value) is bool and value == pattern
    return lambda value: not isinstance(value, bool) and value == pattern


def describe(v: Any) -> str:
    if isinstance(v, dict) and "coding" in v:
        return ", ".join(f"{c.get('system', '')}#{c.get('code', '')}" for c in v.get("coding", []) if isinstance(c, dict))
    if isinstance(v, dict) and "code" in v:
        return f"{v.get('system', '')}#{v.get('code')}"
    return repr(v)


@rule
class Fixed(Rule):
    """fixed[x]: the value equals the fixed value exactly."""

    messages = (M.FIXED_MISMATCH,)
    stage = BEFORE_CHILDREN

    def applies(self, m: Member) -> bool:
        return m.node.has_fixed

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        fixed = m.node.fixed
        return lambda value, ctx: equals_fixed(value, fixed)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.FIXED_MISMATCH, path, fixed=describe(m.node.fixed), sd=m.node.sd_url)


@rule
class Pattern(Rule):
    """pattern[x]: the value contains the pattern (matcher specialised once per element)."""

    messages = (M.PATTERN_MISMATCH,)
    stage = BEFORE_CHILDREN

    def applies(self, m: Member) -> bool:
        return m.node.has_pattern

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        matches = pattern_matcher(m.node.pattern)
        return lambda value, ctx: matches(value)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.PATTERN_MISMATCH, path, pattern=describe(m.node.pattern), sd=m.node.sd_url)
