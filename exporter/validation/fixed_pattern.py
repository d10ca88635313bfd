"""fixed[x] (exact value) and pattern[x] (the instance contains at least the pattern) (layer L2)."""

from __future__ import annotations

from typing import Any


def equals_fixed(value: Any, fixed: Any) -> bool:
    """Exact JSON equality; numbers compare by value (1 == 1.0) but booleans are not numbers."""
    if isinstance(fixed, dict):
        return isinstance(value, dict) and value.keys() == fixed.keys() and all(
            equals_fixed(value[k], fixed[k]) for k in fixed)
    if isinstance(fixed, list):
        return isinstance(value, list) and len(value) == len(fixed) and all(
            equals_fixed(v, f) for v, f in zip(value, fixed))
    if isinstance(fixed, bool) or isinstance(value, bool):
        return type(fixed) is type(value) and fixed == value
    return value == fixed


def matches_pattern(value: Any, pattern: Any) -> bool:
    """Every property of the pattern is present with a matching value; each pattern array item
    is matched by some item of the instance array."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], p) for k, p in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(matches_pattern(v, p) for v in value) for p in pattern)
    if isinstance(pattern, bool) or isinstance(value, bool):
        return type(pattern) is type(value) and pattern == value
    return value == pattern


def describe(v: Any) -> str:
    if isinstance(v, dict) and "coding" in v:
        return ", ".join(f"{c.get('system', '')}#{c.get('code', '')}" for c in v.get("coding", []) if isinstance(c, dict))
    if isinstance(v, dict) and "code" in v:
        return f"{v.get('system', '')}#{v.get('code')}"
    return repr(v)
