"""Bundle-level rules (layer L2): the index used to resolve references inside a Bundle, and the
document/entry rules not covered by the core bdl-* invariants (which run through invariants.py).

Resolution follows the FHIR rules for Bundles: an absolute reference (urn:uuid, urn:oid, URL)
matches an entry's fullUrl exactly; a relative reference `Type/id` is resolved against the base of
the referencing entry's fullUrl (RESTful fullUrls only). A version-specific reference
(`…/_history/v`) matches the entry of that fullUrl whose resource has `meta.versionId` v (as the
HL7 validator resolves them; a document may refer to a version).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import RESOURCE, Rule, rule

_RESTFUL = re.compile(r"(.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/.*)?\Z")


@dataclass
class BundleIndex:
    # fullUrl -> resource, and fullUrl/_history/versionId -> resource (for version-specific references)
    by_full_url: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_of: dict[int, str] = field(default_factory=dict)  # id(resource) -> base URL of its fullUrl
    is_document: bool = False
    # target-profile plan -> the urns found clean for it in this Bundle (references.Reference.bundle_urn)
    clean_references: dict[object, set[str]] = field(default_factory=dict)
    # reference -> is it a well-formed urn:uuid (asked once per reference, whatever the target profiles)
    uuid_urns: dict[str, bool] = field(default_factory=dict)

    # the Bundle indexed, and whether its entries' fullUrls are all strings and distinct (then bdl-7,
    # distinct fullUrl + versionId, holds without a second pass: invariants._bdl7)
    source: Any = None
    distinct_full_urls: bool = False
    # and whether any entry with a resource has a fullUrl that is not a urn (only such a fullUrl can
    # fail to name its resource: entry_findings)
    restful_full_urls: bool = False

    @classmethod
    def build(cls, bundle: dict[str, Any]) -> BundleIndex:
        index = cls(is_document=bundle.get("type") == "document", source=bundle)
        entries = bundle.get("entry") or []
        seen: set[str] = set()
        distinct = type(entries) is list
        by_full_url, restful = index.by_full_url, False  # (bound once: an export has thousands of entries)
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            full = entry.get("fullUrl")
            if distinct and full is not None:
                if type(full) is not str or full in seen:
                    distinct = False
                else:
                    seen.add(full)
            res = entry.get("resource")
            if isinstance(full, str) and isinstance(res, dict):
                by_full_url.setdefault(full, res)
                meta = res.get("meta")
                version = meta.get("versionId") if isinstance(meta, dict) else None
                if isinstance(version, str):
                    by_full_url.setdefault(f"{full}/_history/{version}", res)
                if not full.startswith("urn:"):  # a urn has no base URL
                    restful = True
                    m = _RESTFUL.match(full)
                    if m and m.group(1):
                        index.base_of[id(res)] = m.group(1)
        index.distinct_full_urls, index.restful_full_urls = distinct, restful
        return index

    def resolve(self, ref: str, from_resource: dict[str, Any] | None) -> dict[str, Any] | None:
        hit = self.by_full_url.get(ref)
        if hit is not None:
            return hit
        if ref.startswith(("urn:", "http://", "https://", "#")):
            return None
        base = self.base_of.get(id(from_resource)) if from_resource is not None else None
        if base is not None:
            return self.by_full_url.get(base + ref)
        return None


def entry_findings(bundle: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(entry index, message arguments) for entries whose RESTful fullUrl does not name their
    resource's type and id."""
    out = []
    entries = bundle.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        full, res = entry.get("fullUrl"), entry.get("resource")
        if not isinstance(full, str) or not isinstance(res, dict):
            continue
        m = _RESTFUL.match(full) if not full.startswith("urn:") else None  # urn:uuid never matches: no regex
        if m:
            if res.get("resourceType") != m.group(2) or res.get("id") != m.group(3):
                out.append((i, {"full_url": full, "rt": res.get("resourceType"), "id": res.get("id")}))
    return out


@rule
class FullUrlMatchesResource(Rule):
    """Bundle.entry.fullUrl, when RESTful, ends in the entry's resource type and id."""

    messages = (M.BUNDLE_RULE,)
    stage = RESOURCE

    def applies(self, m: Member) -> bool:
        return m.is_root and m.type.code == "Bundle"

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        index = ctx.bundle
        if index is not None and index.source is value and not index.restful_full_urls:
            return True  # indexing this Bundle met only urn fullUrls: entry_findings has none to look at
        return not entry_findings(value)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        for i, args in entry_findings(value):
            ctx.add(M.BUNDLE_RULE, f"{path}.entry[{i}].fullUrl", **args)


_NO_FULL_URL_NEEDED = frozenset({"transaction", "batch", "transaction-response", "batch-response"})


@rule
class FullUrlPresent(Rule):
    """Except in transactions and batches (and their responses), an entry with a resource has a
    fullUrl: the identity of that resource, which references inside the Bundle resolve against."""

    messages = (M.BUNDLE_FULLURL_MISSING,)
    stage = RESOURCE

    def applies(self, m: Member) -> bool:
        return m.is_root and m.type.code == "Bundle"

    def _missing(self, bundle: Any) -> list[int]:
        if bundle.get("type") in _NO_FULL_URL_NEEDED:
            return []
        entries = bundle.get("entry")
        return [i for i, e in enumerate(entries if isinstance(entries, list) else [])
                if isinstance(e, dict) and "resource" in e and "fullUrl" not in e]

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return not self._missing(value)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        for i in self._missing(value):
            ctx.add(M.BUNDLE_FULLURL_MISSING, f"{path}.entry[{i}]", type=value.get("type"))


_PAGING = frozenset({"first", "previous", "next", "last"})
_SEARCH_LIKE = frozenset({"searchset", "history"})
_KNOWN_TYPES = frozenset({"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                          "history", "searchset", "collection", "subscription-notification"})


def link_findings(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(expression below the Bundle, message id) of Bundle.link problems, as the HL7 validator
    judges them: in searchset and history Bundles each of self/first/previous/next/last occurs once
    (reported at the repeated link); in the other types paging relations are not allowed and
    `self` occurs once (reported at the relation)."""
    links, kind = bundle.get("link"), bundle.get("type")
    if type(links) is not list or kind not in _KNOWN_TYPES:
        return []
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, link in enumerate(links):
        rel = link.get("relation") if type(link) is dict else None
        if type(rel) is not str:
            continue
        if kind in _SEARCH_LIKE:
            if rel in _PAGING or rel == "self":
                if rel in seen:
                    out.append((f"link[{i}]", M.BUNDLE_LINK_DUPLICATE))
                seen.add(rel)
            continue
        if rel in _PAGING:
            out.append((f"link[{i}].relation", M.BUNDLE_LINK_PAGING))
        elif rel == "self":
            if rel in seen:
                out.append((f"link[{i}].relation", M.BUNDLE_LINK_DUPLICATE))
            seen.add(rel)
    return out


def _links_hold(bundle: Any, ctx: Any) -> bool:
    return "link" not in bundle or not link_findings(bundle)


@rule
class LinkRelations(Rule):
    """Bundle.link: a relation that names one thing (self, and in search results the paging links)
    occurs once; paging links only in search results (searchset, history)."""

    messages = (M.BUNDLE_LINK_DUPLICATE, M.BUNDLE_LINK_PAGING)
    stage = RESOURCE
    costly = False

    def applies(self, m: Member) -> bool:
        return m.is_root and m.type.code == "Bundle"

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        return _links_hold

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        for where, mid in link_findings(value):
            ctx.add(mid, f"{path}.{where}")
