"""Vital signs (layer L2): FHIR R4 requires an Observation that is a vital sign to conform to the
vital signs profile for its LOINC code (observation-vitalsigns.html), whether it claims that profile
or not; the HL7 validator applies it the same way. Which code names which profile is read from the
core profiles themselves (their fixed Observation.code.coding code)."""

from __future__ import annotations

from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import RESOURCE, Rule, rule

CORE = "http://hl7.org/fhir/StructureDefinition/"
PROFILES = ("vitalspanel", "resprate", "heartrate", "oxygensat", "bodytemp", "bodyheight", "headcircum",
            "bodyweight", "bmi", "bp")
LOINC = "http://loinc.org"


def vital_sign_codes(store: Any) -> dict[str, str]:
    """LOINC code -> canonical of its core vital signs profile, read from the profiles in `store` (their
    fixed Observation.code.coding code). Also what `fhir-export new-kind` derives a new kind from."""
    by_code: dict[str, str] = {}
    for name in PROFILES:
        sd = store.structure(CORE + name)
        for e in store.snapshot(sd) if sd is not None else []:  # checked (or generated) elements
            eid = e.get("id", "")
            if eid.startswith("Observation.code.coding:") and eid.endswith(".code") and "fixedCode" in e:
                by_code.setdefault(e["fixedCode"], CORE + name)
    return by_code


@rule
class VitalSignsProfile(Rule):
    """An Observation with a vital-sign LOINC code conforms to that code's vital signs profile."""

    messages = (M.VITAL_SIGNS,)
    stage = RESOURCE
    context_free = False

    def __init__(self, env: Any):
        super().__init__(env)
        self._by_code: dict[str, str] | None = None
        self._covered: dict[Any, frozenset[str]] = {}

    def applies(self, m: Member) -> bool:
        """Observations walked against core or a profile that is not a vital signs profile (one that
        is fixes a vital-sign code: a resource conforming to it needs no other vital profile)."""
        if not (m.is_root and m.type.code == "Observation" and self._codes()):
            return False
        return not (self._ancestors([m.node.sd_url]) & set(self._codes().values()))

    def _codes(self) -> dict[str, str]:
        """LOINC code -> canonical of its vital signs profile (from the loaded core profiles)."""
        if self._by_code is None:
            self._by_code = vital_sign_codes(self.env.store)
        return self._by_code

    def _profile(self, obs: Any) -> str | None:
        """The vital signs profile `obs` must conform to and does not already claim (itself or a
        profile derived from it), or None."""
        code = obs.get("code") if type(obs) is dict else None
        codings = code.get("coding") if type(code) is dict else None
        if type(codings) is not list:
            return None
        by_code = self._by_code if self._by_code is not None else self._codes()
        profile = None
        for c in codings:
            if type(c) is dict and c.get("system") == LOINC:
                value = c.get("code")
                profile = by_code.get(value) if type(value) is str else None
                if profile is not None:
                    break
        if profile is None:
            return None
        meta = obs.get("meta")
        claims = meta.get("profile") if type(meta) is dict else None
        return None if profile in self._ancestors(claims) else profile

    def _ancestors(self, claims: Any) -> frozenset[str]:
        """Every profile the claimed ones are, or derive from."""
        if type(claims) is list and len(claims) == 1 and type(claims[0]) is str:
            key: Any = claims[0]  # the usual single claim: no tuple to build
        else:
            key = tuple(c for c in claims if isinstance(c, str)) if isinstance(claims, list) else ()
        hit = self._covered.get(key)
        if hit is None:
            found: set[str] = set()
            for url in (key,) if type(key) is str else key:
                sd = self.env.store.structure(url)
                while sd is not None and sd.get("url") not in found:
                    found.add(sd["url"])
                    base = sd.get("baseDefinition")
                    sd = self.env.store.structure(base) if isinstance(base, str) else None
            hit = self._covered[key] = frozenset(found)
        return hit

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        profile = self._profile(value)
        return profile is None or ctx.conforms_to(value, profile)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        profile = self._profile(value)
        if profile is not None:
            ctx.add(M.VITAL_SIGNS, path, profile=profile)
            ctx.v.validate_resource(value, path, ctx, extra_profiles=(profile,), claims_too=False)
