"""Reference checks (layer L2): format, resolution inside the Bundle, target type and profile."""

from __future__ import annotations

import re
from typing import Any

from exporter.validation.primitives import UUID_RE

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[A-Za-z0-9\-\.]{1,64})?\Z")
_ABSOLUTE = re.compile(r"https?://\S+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[A-Za-z0-9\-\.]{1,64})?\Z")
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+\Z")


def format_problem(ref: str) -> str | None:
    """None when `ref` is a well-formed reference string, else the reason."""
    if ref.startswith("#"):
        return None if len(ref) > 1 else "local reference '#' names no contained resource"
    if ref.startswith("urn:uuid:"):
        return None if UUID_RE.match(ref) else "urn:uuid reference is not a lower-case UUID"
    if ref.startswith("urn:oid:"):
        return None if _OID.match(ref) else "urn:oid reference is malformed"
    if _RELATIVE.match(ref) or _ABSOLUTE.match(ref):
        return None
    if re.match(r"[a-z][a-z0-9+.-]*:", ref):
        return None  # other absolute URIs (logical references) cannot be checked further
    return "is neither a relative reference (Type/id), an absolute URL, a urn:uuid/urn:oid nor #contained"


def referenced_type(ref: str) -> str | None:
    m = _RELATIVE.match(ref) or _ABSOLUTE.match(ref)
    return m.group(1) if m else None


def allowed_target_types(target_profiles: tuple[str, ...], store: Any) -> tuple[set[str], list[str]]:
    """(resource types allowed, non-core profiles to conform to) for Reference(...) targets."""
    types: set[str] = set()
    profiles: list[str] = []
    for p in target_profiles:
        url = p.split("|", 1)[0]
        if url.startswith(CORE_PREFIX):
            types.add(url[len(CORE_PREFIX):])
            continue
        sd = store.structure(p)
        if sd is not None:
            types.add(sd.get("type", ""))
        profiles.append(p)
    return types, profiles


def claims_any(resource: dict[str, Any], bare: frozenset[str]) -> bool:
    """A claimed profile is validated on its own, so a claim of any candidate (`bare`: canonicals
    without version) settles a target check without walking the resource against every candidate."""
    meta = resource.get("meta")
    claims = meta.get("profile") if isinstance(meta, dict) else None
    if not isinstance(claims, list):
        return False
    for c in claims:
        if isinstance(c, str):
            unversioned = _UNVERSIONED.get(c)
            if unversioned is None:
                unversioned = c.split("|", 1)[0]
                if len(_UNVERSIONED) < 10_000:
                    _UNVERSIONED[c] = unversioned
            if unversioned in bare:
                return True
    return False


_UNVERSIONED: dict[str, str] = {}  # claimed canonical -> without |version (a handful per export, met thousands of times)
