"""Extensions (layer L2): resolve the definition by URL (unknown → error by default, as German
validators reject unknown extensions; see policy.py) and check the context it may be used in. The
walk descends into an extension with its definition's rules (Compiler.extension_rule); the
definition's own invariants are checked here."""

from __future__ import annotations

from typing import Any

from exporter.validation import messages as M
from exporter.validation.invariants import Invariants
from exporter.validation.model import KIND_EXTENSION, Member
from exporter.validation.rules import BEFORE_CHILDREN, CHILDREN, Rule, rule

CONTEXT_ANY = frozenset({"Element", "Base"})
RESOURCE_CONTEXTS = frozenset({"Resource", "DomainResource"})


def context_allows(sd: dict[str, Any], host_type: str, host_path: str, host_is_resource: bool,
                   host_extension_url: str | None, base_path: str | None = None) -> bool:
    """May an extension defined by `sd` sit on the host (its type, its element path, the path of
    the element it is based on — a profile's Patient.name.family is HumanName.family)?"""
    contexts = sd.get("context") or []
    if not contexts:
        return True
    for ctx in contexts:
        kind, expr = ctx.get("type"), ctx.get("expression", "")
        if kind == "element":
            if expr in CONTEXT_ANY or expr == host_type or expr == host_path or expr == base_path:
                return True
            if host_is_resource and expr in RESOURCE_CONTEXTS:
                return True
            if expr.endswith("[x]") and host_path.startswith(expr[:-3]):
                return True
        elif kind == "extension":
            if host_extension_url is not None and expr == host_extension_url:
                return True
        elif kind == "fhirpath":
            return True  # cannot be evaluated without the host's full context; accepted
    return False


def describe_contexts(sd: dict[str, Any]) -> str:
    return ", ".join(f"{c.get('type')}:{c.get('expression')}" for c in sd.get("context") or []) or "(none)"


def _url(value: Any) -> str | None:
    url = value.get("url") if isinstance(value, dict) else None
    return url if isinstance(url, str) and url else None


@rule
class ExtensionUrl(Rule):
    """An extension names its definition."""

    messages = (M.EXTENSION_NO_URL,)
    stage = BEFORE_CHILDREN + 1

    def applies(self, m: Member) -> bool:
        return m.kind == KIND_EXTENSION

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return _url(value) is not None

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(M.EXTENSION_NO_URL, path)


@rule
class ExtensionKnown(Rule):
    """The extension's definition is loaded (policy: unknown extensions may be allowed)."""

    messages = (M.EXTENSION_UNKNOWN,)
    stage = BEFORE_CHILDREN + 1

    def __init__(self, env: Any):
        super().__init__(env)
        self._known: dict[str, bool] = {}
        self._subs: dict[int, frozenset[str]] = {}

    def applies(self, m: Member) -> bool:
        return m.kind == KIND_EXTENSION

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        url = _url(value)
        if url is None:
            return True  # ExtensionUrl reports it
        if ":" not in url:  # a relative url names a sub-extension: one of the enclosing definition's slices
            return url in self._sub_extensions(m)
        known = self._known.get(url)
        if known is None:
            sd = self.env.store.structure(url)
            known = (sd is not None and sd.get("type") == "Extension") or self.env.policy.extension_allowed(url)
            if len(self._known) < 10_000:
                self._known[url] = known
        return known

    def _sub_extensions(self, m: Member) -> frozenset[str]:
        """The urls the slices of the extension element `m` counts for fix (its definition's sub-extensions)."""
        subs = self._subs.get(id(m.count_node))
        if subs is None:
            found = set()
            for sl in m.count_node.slices:
                url = (sl.content_ref or sl).children.get("url")
                if url is not None and url.has_fixed and isinstance(url.fixed, str):
                    found.add(url.fixed)
            subs = self._subs[id(m.count_node)] = frozenset(found)
        return subs

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        url = _url(value)
        if url is not None and ":" not in url:
            ctx.add(M.EXTENSION_UNKNOWN, path, variant="sub", url=url)
            return
        severity = "warning" if self.env.policy.unknown_extensions == "warning" else None
        ctx.add(M.EXTENSION_UNKNOWN, path, severity, url=url)


@rule
class ExtensionContext(Rule):
    """The extension is used where its definition's context allows it."""

    messages = (M.EXTENSION_CONTEXT,)
    stage = BEFORE_CHILDREN + 2

    def applies(self, m: Member) -> bool:
        return m.kind == KIND_EXTENSION and m.host is not None

    def _host_path(self, m: Member) -> str:
        host = m.host
        assert host is not None
        return host.node.path if "." in host.node.path or host.is_resource else host.type_code

    def _definition(self, value: Any) -> dict[str, Any] | None:
        url = _url(value)
        sd = self.env.store.structure(url) if url is not None else None
        return sd if sd is not None and sd.get("type") == "Extension" else None

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        sd = self._definition(value)
        if sd is None:
            return True  # no definition: nothing to check the context against
        host = m.host
        assert host is not None
        # context type "extension" needs the enclosing extension's URL, which the walk does not track:
        # such contexts are not matched (the extension is then reported as out of context)
        base = (host.node.element.get("base") or {}).get("path") if "." in host.node.path else None
        return context_allows(sd, host.type_code, self._host_path(m), host.is_resource, None, base)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        sd = self._definition(value)
        if sd is not None:
            ctx.add(M.EXTENSION_CONTEXT, path, url=_url(value), host=self._host_path(m), contexts=describe_contexts(sd))


@rule
class ExtensionInvariants(Rule):
    """The invariants of the extension's definition (its root element)."""

    messages = Invariants.messages
    stage = CHILDREN + 35

    def applies(self, m: Member) -> bool:
        return m.kind == KIND_EXTENSION

    def _root_member(self, value: Any) -> Member | None:
        url = _url(value)
        if url is None:
            return None
        root = self.env.compiler.extension_root(url)
        return self.env.compiler.root_member(root, "Extension") if root is not None and root.constraints else None

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        root = self._root_member(value)
        return root is None or self._invariants().holds(value, root, ctx)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        root = self._root_member(value)
        if root is not None:
            self._invariants().report(value, root, path, ctx)

    def _invariants(self) -> Invariants:
        invariants: Invariants = self.env.compiler.rule(Invariants)
        return invariants
