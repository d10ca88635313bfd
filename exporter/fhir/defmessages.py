"""Message ids of loading and checking conformance definitions (layer L1): `DEF_*` for the sources
(definitions.py), `SNAP_*` for snapshots (snapshot.py) — id → FHIR issue code and what it means.

Stable: tests, docs and API clients may rely on them. docs/validation.md has one row per id
(tests/unit/fhir/test_definition_problems.py fails on an id used without a row here, a row no code
uses, or a row missing from the docs). Texts quote definitions only (profiles are not patient
data), and a value of a definition as FHIR JSON text, shortened (`value_text`).
"""

from __future__ import annotations

import json
from typing import Any

from exporter.fhir.json import dumps_exact
from exporter.issues import IssueCode

_C = IssueCode

MESSAGES: dict[str, tuple[IssueCode, str]] = {
    # -- sources (`--ig`, igs/, the package cache) -------------------------------------------------
    "DEF_SOURCE_MISSING": (_C.NOT_FOUND, "a conformance source does not exist"),
    "DEF_SOURCE_KIND": (_C.NOT_SUPPORTED, "a source is neither a folder, a .json file nor a package .tgz"),
    "DEF_SOURCE_READ": (_C.EXCEPTION, "a file of a source cannot be read"),
    "DEF_SOURCE_JSON": (_C.STRUCTURE, "a file of a source is not JSON (or not UTF-8, or nested too deeply)"),
    "DEF_SOURCE_ARCHIVE": (_C.STRUCTURE, "a package .tgz is not a readable gzip tar archive"),
    "DEF_SOURCE_INDEX": (_C.STRUCTURE, "a package's .index.json is malformed, or a file it lists does not hold "
                                       "the resource it names"),
    # -- snapshots: a carried snapshot, a base's, or generation from a differential -----------------
    "SNAP_MALFORMED": (_C.STRUCTURE, "JSON shapes: an element (differential or carried snapshot) that is not an "
                                     "object, has no path, a property of the wrong JSON type or an invalid code, "
                                     "an element without its parent"),
    "SNAP_BAD_BASE": (_C.INVALID, "the snapshot of a base or of a type's profile is malformed"),
    "SNAP_NO_DIFFERENTIAL": (_C.INVALID, "neither a snapshot nor a differential"),
    "SNAP_NOT_SUPPORTED": (_C.NOT_SUPPORTED, "derivation other than constraint (new types, logical models)"),
    "SNAP_UNKNOWN_STRUCTURE": (_C.NOT_FOUND, "the base is unknown or missing"),
    "SNAP_CIRCULAR": (_C.INVALID, "circular base/type references"),
    "SNAP_PATH_UNKNOWN": (_C.INVALID, "a differential element that is not in the base"),
    "SNAP_ID_PATH": (_C.INVALID, "an element id that does not match its path or sliceName"),
    "SNAP_DUPLICATE": (_C.INVALID, "a differential element given twice"),
    "SNAP_MIN_WIDENED": (_C.INVALID, "min below the base's (outside a slice)"),
    "SNAP_MAX_WIDENED": (_C.INVALID, "max above the base's"),
    "SNAP_CARDINALITY": (_C.INVALID, "min above max"),
    "SNAP_TYPE_UNKNOWN": (_C.NOT_FOUND, "a type that does not exist, or an element without type to walk into"),
    "SNAP_TYPE_NOT_ALLOWED": (_C.INVALID, "a type the base does not allow"),
    "SNAP_PROFILE_UNKNOWN": (_C.NOT_FOUND, "a type's profile that cannot be resolved (the HL7 tooling: "
                                          "'Unable to resolve profile')"),
    "SNAP_PROFILE_WRONG_TYPE": (_C.INVALID, "a type's profile that constrains another type"),
    "SNAP_VALUE_TYPE": (_C.INVALID, "fixed[x], pattern[x], defaultValue[x], minValue[x] or maxValue[x] of a "
                                    "datatype the element does not have, or of the wrong JSON type"),
    "SNAP_CHOICE_CHILDREN": (_C.INVALID, "children constrained below an element of several types"),
    "SNAP_BINDING_WEAKENED": (_C.INVALID, "a required binding weakened"),
    "SNAP_SLICE_WITHOUT_SLICING": (_C.INVALID, "a slice of an element that has no slicing"),
    "SNAP_SLICE_CLOSED": (_C.INVALID, "a slice added to a closed slicing"),
    "SNAP_SLICE_NOT_REPEATING": (_C.INVALID, "slicing of an element that does not repeat (the HL7 tooling: "
                                             "'Attempt to a slice an element that does not repeat')"),
    "SNAP_SLICING": (_C.INVALID, "a slicing incompatible with the base's, or slicing of the root"),
}

_SHORT = 80


def value_text(value: Any, limit: int = _SHORT) -> str:
    """A definition's value for a message: a string as it is, anything else as FHIR JSON text;
    shortened to `limit` characters."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = dumps_exact(value).decode("utf-8")
        except TypeError:  # an integer beyond 64 bits
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"
