"""Identifiers (layer L2): an Identifier whose system is `urn:ietf:rfc:3986` says its value is a
URI, so the value must be an absolute one (a scheme first: urn:oid:…, urn:uuid:…, https://…)."""

from __future__ import annotations

from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import CHILDREN, Rule, rule
from exporter.validation.urls import is_absolute

URI_SYSTEM = "urn:ietf:rfc:3986"


@rule
class UriIdentifierValue(Rule):
    messages = (M.IDENTIFIER_URI,)
    stage = CHILDREN + 20

    def applies(self, m: Member) -> bool:
        return m.type.code == "Identifier"

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        if not isinstance(value, dict) or value.get("system") != URI_SYSTEM:
            return True
        v = value.get("value")
        return not isinstance(v, str) or is_absolute(v)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.IDENTIFIER_URI, path)
