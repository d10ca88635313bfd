"""Validation policy (layer L2): the switches where validators differ by policy, not by the spec,
named after the HL7 reference validator's options. The service's defaults are strict, as German
validators are (docs/validation.md, "Policy"); `Policy.reference()` is the HL7 validator's own.

    Validator(store, policy=Policy(unknown_extensions="allow"))

| switch | values | HL7 validator option |
|---|---|---|
| `unknown_extensions` | error (default), warning, allow | `-extension any` allows any |
| `extension_domains` | URL prefixes whose unknown extensions are allowed | `-extension <domain>` |
| `example_urls` | error (default), allow | `-allow-example-urls true` |
| `best_practice` | warning (default), error, ignore | `-best-practice` |
| `display_mismatch` | error (default), warning | `-display-issues-are-warnings` |
| `unresolved_reference_types` | check (default), ignore: the type an unresolved reference names | checks only resolved targets |

A policy is decided when rules are compiled (which rules apply, which invariants run), so a switch
costs nothing per value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Policy:
    unknown_extensions: Literal["error", "warning", "allow"] = "error"
    extension_domains: tuple[str, ...] = ()
    example_urls: Literal["error", "allow"] = "error"
    best_practice: Literal["error", "warning", "ignore"] = "warning"
    display_mismatch: Literal["error", "warning"] = "error"
    unresolved_reference_types: Literal["check", "ignore"] = "check"

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        """The service's policy: the `validation_*` settings (DIGA_EXPORTER_VALIDATION_* variables)."""
        return cls(unknown_extensions=settings.validation_unknown_extensions,
                   extension_domains=tuple(settings.validation_extension_domains),
                   example_urls=settings.validation_example_urls, best_practice=settings.validation_best_practice,
                   display_mismatch=settings.validation_display_mismatch,
                   unresolved_reference_types=settings.validation_unresolved_reference_types)

    @classmethod
    def reference(cls) -> Policy:
        """The HL7 validator's defaults (6.x, without a terminology server): unknown extensions (but
        DICOM's at nema.org and its own tooling extensions) and example URLs rejected, best-practice
        invariants as warnings, wrong displays as errors, the type of a reference checked only when it resolves."""
        return cls(extension_domains=("http://nema.org/", "https://nema.org/", "http://hl7.org/fhir/tools/StructureDefinition/"),
                   unresolved_reference_types="ignore")

    def extension_allowed(self, url: str) -> bool:
        """Is an extension without a loaded definition accepted under this policy?"""
        return self.unknown_extensions == "allow" or (bool(self.extension_domains)
                                                      and url.startswith(self.extension_domains))
