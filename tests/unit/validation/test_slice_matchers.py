"""The compiled slice matchers (slicing._compile_one) decide as slicing.slice_matches does, and the
parts of an item slicing.projections names are all they read — the clean path remembers
assignments under them (fastpath._clean_slices_fn)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exporter.validation import slicing
from exporter.validation.model import Node
from tests.unit.validation.conftest import IG

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
PROFILES = [IG + "diga-blood-pressure", IG + "diga-blood-glucose", IG + "diga-body-weight", IG + "diga-heart-rate",
            IG + "diga-diary-entry", IG + "diga-gad7-score", IG + "diga-phq9-score", VITAL_SIGNS]


def _sliced(validator: Any) -> list[Node]:
    out: list[Node] = []
    seen: set[int] = set()

    def visit(node: Node) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.slicing is not None and node.slices:
            out.append(node)
        for child in list(node.children.values()) + list(node.slices):
            visit(child)
    for url in PROFILES:
        root = validator.compiler.root(url)
        assert root is not None, url
        visit(root)
    return out


# values of every kind an item or a discriminator's path can hold
_ITEMS: list[tuple[Any, str | None]] = [
    ({}, "Quantity"), ({"value": 1}, "Quantity"), ({"value": 1}, "CodeableConcept"), ({"value": 1}, None),
    ({"resourceType": "Patient"}, None), ({"resourceType": "Patient"}, "Quantity"), ("text", "string"),
    (["a"], None), (None, None), (7, "integer"),
]


def test_the_type_of_this_is_told_as_slice_matches_tells_it(validator):
    checked = 0
    for base in _sliced(validator):
        assert base.slicing is not None
        for sl, fns in slicing.matchers(base):
            for disc, fn in zip(base.slicing.discriminators, fns, strict=True):
                if disc.type != "type" or disc.path != "$this":
                    continue
                types = [t.code for t in sl.types] + ["Quantity", "string", "Patient", None]
                for item, _ in _ITEMS:
                    for t in types:
                        assert fn(item, t, None) == slicing.slice_matches(item, t, sl, disc, None), (base.id, item, t)
                checked += 1
    assert checked > 0  # value[x] of the vital signs is sliced by type


def test_matchers_read_only_their_projection(validator):
    """Items that differ outside the projected parts get the same verdicts from every matcher."""
    checked = 0
    for base in _sliced(validator):
        projections = slicing.projections(base)
        if projections is None:
            continue
        for sl, fns in slicing.matchers(base):
            for item, t in _ITEMS + [(c, "BackboneElement") for c in _components()]:
                if not isinstance(item, dict):
                    continue
                other = copy.deepcopy(item)
                other["valueQuantity"] = {"value": 99.5, "unit": "x"}  # not read by a code discriminator
                other["id"] = "changed"
                if [p(other) for p in projections] != [p(item) for p in projections]:
                    continue
                assert [fn(item, t, None) for fn in fns] == [fn(other, t, None) for fn in fns], (base.id, sl.id)
                checked += 1
    assert checked > 0


def _components() -> list[dict[str, Any]]:
    loinc = "http://loinc.org"
    return [{"code": {"coding": [{"system": loinc, "code": c}]}, "valueQuantity": {"value": 120, "unit": "mmHg"}}
            for c in ("8480-6", "8462-4", "0000-0")]


@pytest.mark.parametrize("path", ["component", "value[x]"])
def test_projections_are_known_for_the_sliced_elements_of_a_blood_pressure(validator, path):
    bases = [b for b in _sliced(validator) if b.id == f"Observation.{path}"]
    assert bases and any(slicing.projections(b) is not None for b in bases)
