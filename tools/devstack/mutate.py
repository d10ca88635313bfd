"""Seeded random mutations of FHIR resources for differential tests (our validator against the HL7
validator): one change each — delete an element, give it a wrong JSON type, add an unknown key, pad
a string with spaces, duplicate an array item, or empty a value."""

from __future__ import annotations

import copy
import random
from typing import Any


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every element path (keys and array indexes) of a JSON value, resourceType left out."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "resourceType":
                continue
            out.append(prefix + (k,))
            out.extend(paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append(prefix + (i,))
            out.extend(paths(v, prefix + (i,)))
    return out


def mutate(res: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str]:
    """A mutated copy of `res` (the narrative left alone) and what was done, e.g. `delete@code.coding.0`."""
    res = copy.deepcopy(res)
    candidates = [p for p in paths(res) if not (p and p[0] == "text")]
    path = rng.choice(candidates)
    parent = res
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    current = parent[last]
    ops = ["delete", "wrong-type", "unknown-key", "bad-string", "duplicate", "empty"]
    op = rng.choice(ops)
    if op == "delete":
        del parent[last]
    elif op == "wrong-type":
        parent[last] = 42 if isinstance(current, str) else ("x" if not isinstance(current, str) else 1)
    elif op == "unknown-key" and isinstance(current, dict):
        current["zzUnknown"] = "x"
    elif op == "bad-string" and isinstance(current, str):
        parent[last] = " " + current + "  x"
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(current))
    elif op == "empty":
        parent[last] = {} if isinstance(current, dict) else ([] if isinstance(current, list) else "")
    else:
        del parent[last]
        op = "delete"
    return res, f"{op}@{'.'.join(map(str, path))}"
