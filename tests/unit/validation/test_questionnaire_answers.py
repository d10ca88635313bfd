"""The Answers rule (questionnaire.py) against a real Questionnaire: which items a completed
response must answer is worked out once per Questionnaire (questionnaire._plan), and reported in the
Questionnaire's order; groups, display items and responses in progress are never asked for one."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import get_settings
from exporter.validation import questionnaire

IG = get_settings().root / "igs" / "de.diga.export.r4"


@pytest.fixture(scope="module")
def store() -> Any:
    return default_store(get_settings())


def _found(store: Any, qr: dict[str, Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    questionnaire.check(qr, store, lambda value, vs: True, "QuestionnaireResponse",
                        lambda *a, **k: out.append((*a, tuple(sorted(k.items())))))
    return out


@pytest.mark.parametrize("status", ["completed", "in-progress"])
def test_unanswered_required_items_in_questionnaire_order(store, status):
    qr = json.loads((IG / "QuestionnaireResponse-ExampleGAD7Response.json").read_text(encoding="utf-8"))
    assert _found(store, qr) == []
    q = store.get(qr["questionnaire"], "Questionnaire")
    gone = {"gad7-5", "gad7-2"}
    mutant = copy.deepcopy(qr)
    mutant["status"] = status
    mutant["item"] = [it for it in mutant["item"] if it["linkId"] not in gone]
    expected = [link for link in (it["linkId"] for it in q["item"] if it.get("required")) if link in gone]
    assert expected == ["gad7-2", "gad7-5"]  # the Questionnaire's order, not the response's
    found = [k for _, _, _, variant, k in _found(store, mutant) if variant == "required"]
    assert [dict(k)["link"] for k in found] == (expected if status == "completed" else [])


def test_required_groups_and_display_items_need_no_answer():
    q = {"item": [{"linkId": "g", "type": "group", "required": True,
                   "item": [{"linkId": "d", "type": "display", "required": True},
                            {"linkId": "c", "type": "string", "required": True},
                            {"linkId": "o", "type": "string"}]}]}
    items, required = questionnaire._plan(q)
    assert list(items) == ["g", "d", "c", "o"] and required == ("c",)
