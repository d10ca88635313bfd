"""Example URLs (layer L2): a uri/url value at example.org or acme.com names nothing real, so it is
reported unless a definition is loaded under it — as the HL7 validator does (policy: `example_urls`).
Code systems (`….system`) and a resource's own canonical `url` are exempt."""

from __future__ import annotations

from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import BEFORE_CHILDREN, Rule, rule



@rule
class NoExampleUrl(Rule):
    messages = (M.EXAMPLE_URL,)
    stage = BEFORE_CHILDREN - 1
    costly = False  # two substring tests

    def applies(self, m: Member) -> bool:
        n = m.node
        return (self.env.policy.example_urls == "error" and m.type.code in ("uri", "url")
                and not n.path.endswith(".system") and not (n.path.count(".") == 1 and n.name == "url"))

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return type(value) is not str or ("example.org" not in value and "acme.com" not in value) \
            or self.env.store.get(value) is not None

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.EXAMPLE_URL, path, url=value)
