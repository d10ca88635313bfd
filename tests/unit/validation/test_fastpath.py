"""The clean path (exporter/validation/fastpath.py) changes speed, never results: the validator with
it and without it (Validator(clean_path=False), the walk only) report the same issues — same
severity, code, message id, message and expression — over the IG examples, the deliberately invalid
IG cases, the differential corpus's broken variants and a few hundred seeded random mutations of
valid resources and of a whole exported document Bundle."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from typing import Any

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation.validator import Validator
from tests.system.test_differential import _broken, _examples, _mutate
from tests.unit.validation.test_ig_invalid_cases import MANIFEST, _load

SEED = 4711


@pytest.fixture(scope="module")
def pair() -> tuple[Validator, Validator]:
    store = default_store(get_settings())
    return Validator(store), Validator(store, clean_path=False)


def _issues(v: Validator, resource: Any) -> Counter:
    return Counter((i.severity.value, i.code.value, i.message_id, i.message, i.expression)
                   for i in v.validate(copy.deepcopy(resource)))


def _corpus() -> dict[str, Any]:
    ex = _examples()
    cases: dict[str, Any] = {f"example:{k}": v for k, v in ex.items()}
    cases.update(_broken(ex))
    cases.update({f"ig-invalid:{c['file']}": _load(c["file"]) for c in MANIFEST["cases"]})
    rng = random.Random(SEED)
    names = sorted(ex)
    for i in range(300):
        base = rng.choice(names)
        mutant, how = _mutate(ex[base], rng)
        if rng.random() < 0.3:  # some with two changes
            mutant, how2 = _mutate(mutant, rng)
            how += "+" + how2
        cases[f"mutant:{i}:{base}:{how}"] = mutant
    return cases


CORPUS = _corpus()


@pytest.mark.parametrize("name", sorted(CORPUS), ids=lambda n: n[:80])
def test_same_issues_with_and_without_clean_path(pair, name):
    fast, walk = pair
    assert _issues(fast, CORPUS[name]) == _issues(walk, CORPUS[name])


def test_corpus_has_both_verdicts(pair):
    _, walk = pair
    verdicts = Counter(any(i.is_error for i in walk.validate(copy.deepcopy(r))) for r in CORPUS.values())
    assert verdicts[True] > 100 and verdicts[False] > 30, verdicts


def test_exported_bundle_with_mutated_entries(pair):
    """A whole export (many resources, references, slices, narratives), clean and with errors
    planted in a few entries: nested resources' issues must survive a probe of their Bundle."""
    from exporter.pipeline import Exporter
    settings = get_settings()
    doc = json.loads((settings.root / "samples" / "patients" / "typical.json").read_text(encoding="utf-8"))
    bundle = Exporter.from_settings(settings).export(doc, export_time="2026-04-06T10:00:00+02:00").bundle
    assert bundle is not None
    fast, walk = pair
    assert _issues(fast, bundle) == _issues(walk, bundle) == Counter()
    rng = random.Random(SEED)
    for _ in range(25):
        mutant = copy.deepcopy(bundle)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(mutant["entry"]))
            entry = mutant["entry"][i]
            if rng.random() < 0.2:
                entry["zzUnknown"] = "x"  # an entry-level problem beside the resource's own
            entry["resource"], _ = _mutate(entry["resource"], rng)
        expected = _issues(walk, mutant)
        assert expected, "the mutation should break something"
        assert _issues(fast, mutant) == expected
