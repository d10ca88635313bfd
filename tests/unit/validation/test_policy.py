"""Policy switches (exporter/validation/policy.py): unknown extensions, example URLs, best-practice
invariants and display mismatches, each with the service's default and the alternatives the HL7
validator offers; the clean path and the walk agree under every policy; the settings and the
CLI's switches reach the validator."""

from __future__ import annotations

import copy

import pytest

from exporter.fhir.definitions import default_store
from exporter.settings import Settings, get_settings
from exporter.validation import messages as M
from exporter.validation.policy import Policy
from exporter.validation.validator import Validator

HOME_MADE = "https://fhir.home.test/StructureDefinition/home-made"


@pytest.fixture(scope="module")
def store():
    return default_store(get_settings())


def _found(store, policy: Policy, resource: dict, mid: str) -> list[str]:
    """Severities of `mid` under `policy`; the clean path and the walk must report the same."""
    fast = Validator(store, policy=policy).validate(copy.deepcopy(resource))
    walk = Validator(store, policy=policy, clean_path=False).validate(copy.deepcopy(resource))
    assert fast == walk
    return [i.severity.value for i in walk if i.message_id == mid]


def test_unknown_extensions(store, example):
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"url": HOME_MADE, "valueString": "x"}]
    assert _found(store, Policy(), pat, M.EXTENSION_UNKNOWN) == ["error"]
    assert _found(store, Policy(unknown_extensions="warning"), pat, M.EXTENSION_UNKNOWN) == ["warning"]
    assert _found(store, Policy(unknown_extensions="allow"), pat, M.EXTENSION_UNKNOWN) == []
    assert _found(store, Policy(extension_domains=("https://fhir.home.test/",)), pat, M.EXTENSION_UNKNOWN) == []
    assert _found(store, Policy(extension_domains=("http://other.org/",)), pat, M.EXTENSION_UNKNOWN) == ["error"]


def test_example_urls(store, example):
    pat = example("Patient-ExamplePatient")
    pat["meta"]["source"] = "http://example.org/source-system"
    assert _found(store, Policy(), pat, M.EXAMPLE_URL) == ["error"]
    assert _found(store, Policy(example_urls="allow"), pat, M.EXAMPLE_URL) == []


def test_best_practice_invariants(store, example):
    pat = example("Patient-ExamplePatient")
    pat.pop("text", None)  # dom-6: a resource should have narrative (a best-practice invariant)

    def dom6(policy: Policy) -> list[str]:
        fast = Validator(store, policy=policy).validate(copy.deepcopy(pat))
        assert fast == Validator(store, policy=policy, clean_path=False).validate(copy.deepcopy(pat))
        return [i.severity.value for i in fast if i.message_id == M.INVARIANT and "dom-6" in i.message]
    assert dom6(Policy()) == ["warning"]
    assert dom6(Policy(best_practice="error")) == ["error"]
    assert dom6(Policy(best_practice="ignore")) == []


def test_display_mismatch(store, example):
    obs = example("Observation-ExampleDiaryEntry")
    obs["category"][0]["coding"][0]["display"] = "Not the display"
    assert _found(store, Policy(), obs, M.DISPLAY_WRONG) == ["error"]
    assert _found(store, Policy(display_mismatch="warning"), obs, M.DISPLAY_WRONG) == ["warning"]


def test_settings_carry_the_policy(monkeypatch):
    monkeypatch.setenv("DIGA_EXPORTER_VALIDATION_UNKNOWN_EXTENSIONS", "warning")
    monkeypatch.setenv("DIGA_EXPORTER_VALIDATION_EXTENSION_DOMAINS", '["http://fhir.de/"]')
    policy = Policy.from_settings(Settings())
    assert policy == Policy(unknown_extensions="warning", extension_domains=("http://fhir.de/",))
    assert Policy.from_settings(Settings.model_construct()) == Policy()  # the documented defaults


def test_cli_switches(tmp_path, example, capsys):
    from exporter.cli import main
    pat = example("Patient-ExamplePatient")
    pat["extension"] = [{"url": HOME_MADE, "valueString": "x"}]
    path = tmp_path / "p.json"
    path.write_text(__import__("json").dumps(pat), encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    assert M.EXTENSION_UNKNOWN in capsys.readouterr().out
    assert main(["validate", "--extension", "any", str(path)]) == 0
    assert main(["validate", "--extension", "https://fhir.home.test/", str(path)]) == 0
