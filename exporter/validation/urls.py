"""URLs as values (layer L2): canonical URLs are absolute (or `#fragment` references to contained
resources); a URL at example.org/.com or acme.com/.org names nothing real, so it is reported unless a
definition is loaded under it (policy: `example_urls`) — where the HL7 validator checks the same:
uri, url and canonical values, except a Bundle entry's fullUrl (an identity, not a reference) and
a resource's own defining `url` (which must only be absolute)."""

from __future__ import annotations

import re
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import BEFORE_CHILDREN, Rule, rule

_URL_TYPES = frozenset({"uri", "url", "canonical"})
EXAMPLE_HOSTS = ("example.org", "example.com", "acme.com", "acme.org")
_ABSOLUTE = re.compile(r"[a-z][a-z0-9+.\-]*:[^\s]+\Z")  # a lower-case scheme, then something without spaces


def _defining_url(m: Member) -> bool:
    """The `url` of a resource itself (CodeSystem.url, StructureDefinition.url …): its identity."""
    return m.node.name == "url" and m.host is not None and m.host.is_resource


def is_absolute(url: str) -> bool:
    return _ABSOLUTE.match(url) is not None


@rule
class NoExampleUrl(Rule):
    messages = (M.EXAMPLE_URL,)
    stage = BEFORE_CHILDREN - 1

    def applies(self, m: Member) -> bool:
        return (self.env.policy.example_urls == "error" and m.type.code in _URL_TYPES and not _defining_url(m)
                and m.node.path != "Bundle.entry.fullUrl")

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        if type(value) is not str or ("example." not in value and "acme." not in value):
            return True
        if not value.startswith(("http://", "https://")):
            return True  # not a web address (mailto:, a search URL): nothing to look up
        host = value.split("/", 3)[2].rpartition("@")[2].partition(":")[0].lower()
        if not any(host == h or host.endswith("." + h) for h in EXAMPLE_HOSTS):
            return True  # www.acme.org.au is somebody's real address
        store = self.env.store
        return store.get(value) is not None or store.get(value.split("|", 1)[0].split("#", 1)[0]) is not None

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.EXAMPLE_URL, path)


@rule
class AbsoluteCanonical(Rule):
    """A canonical URL is absolute unless it is a `#fragment` reference; so is a resource's own url."""

    messages = (M.CANONICAL_RELATIVE,)
    stage = BEFORE_CHILDREN - 1

    def applies(self, m: Member) -> bool:
        return m.type.code == "canonical" or (m.type.code in _URL_TYPES and _defining_url(m))

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return type(value) is not str or value.startswith("#") or is_absolute(value)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.CANONICAL_RELATIVE, path)


@rule
class FragmentResolves(Rule):
    """A canonical `#id` names a resource contained in the resource it occurs in."""

    messages = (M.FRAGMENT_UNRESOLVED,)
    stage = BEFORE_CHILDREN - 1
    context_marker = "#"  # only a '#id' depends on the resource (its contained resources)

    def applies(self, m: Member) -> bool:
        return m.type.code == "canonical"

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return type(value) is not str or not value.startswith("#") or len(value) == 1 \
            or ctx.resolve(value.split("|", 1)[0]) is not None

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.FRAGMENT_UNRESOLVED, path)

