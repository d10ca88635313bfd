"""Invariants (ElementDefinition.constraint) — native where we can, fhirpathpy where we must (layer L2).

`compile_constraint` gives each Constraint a `check(value, ctx) -> bool`. The core invariants that
occur on every resource or datatype we export are translated to Python in NATIVE, keyed by key *and*
exact expression text, so a profile that reuses a key with another expression still gets its own
expression evaluated. Everything else goes through the one fhirpath door, compiled once, with the
functions fhirpathpy lacks: hasValue, htmlChecks, memberOf (local ValueSets), resolve (within the
Bundle), conformsTo. An expression that does not compile is kept with `compile_error` and reported
as a warning when the element is met — never silently passed.

The `ctx` passed to checks provides: resource, root_resource, focus_type (FHIR type of the value), resolve(reference) -> resource|None,
member_of(value, vs_url) -> bool|None, conforms_to(resource, url) -> bool.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from exporter.fhir.fhirpath import FhirPathError, compile_expression, resource_node, typed
from exporter.validation import messages as M
from exporter.validation.fastpath import remembered_test, rewire, worth_remembering
from exporter.validation.fhirpath_native import R4_CHOICE_NAMES, Unsupported, translate
from exporter.validation.model import KIND_PRIMITIVE, KIND_RESOURCE, Constraint, Member
from exporter.validation.rules import CHILDREN, Rule, rule
from exporter.validation.xhtml import check_xhtml, has_text

CURRENT_CTX: contextvars.ContextVar[Any] = contextvars.ContextVar("validation_ctx")
_NO_ENV: dict[str, Any] = {}


_VALUE_KEYED: dict[tuple[Any, ...], bool] = {}  # an object's keys -> has it a value[x] key? (see forget)


def forget() -> None:
    """Empty the table of key sequences (Validator.forget)."""
    _VALUE_KEYED.clear()


def _has_value_key(obj: dict[str, Any]) -> bool:
    """Has `obj` a key starting with "value"? Decided once per distinct key sequence: the objects of an
    export come in few shapes (every Observation of a kind has the same keys)."""
    keys = tuple(obj)
    found = _VALUE_KEYED.get(keys)
    if found is None:
        found = False
        for k in keys:
            if k.startswith("value"):  # a key that is not a string fails here, and is never remembered
                found = True
                break
        # bounded: few shapes of a few short keys (element names), never an input's long or odd keys
        if len(keys) <= 64 and len(_VALUE_KEYED) < 10_000 and _short_names(keys):
            _VALUE_KEYED[keys] = found
    return found


def _short_names(keys: tuple[Any, ...]) -> bool:
    """Keys like element names: strings of at most 64 characters (what a remembered shape may hold)."""
    for k in keys:
        if type(k) is not str or len(k) > 64:
            return False
    return True


def _empty(v: Any) -> bool:
    return v is None or v == [] or v == {}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _items(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _codings(cc: Any) -> list[tuple[Any, Any]]:
    return [(c.get("system"), c.get("code")) for c in _items(_get(cc, "coding")) if isinstance(c, dict)]


def _strings_in(obj: Any, out: list[str]) -> list[str]:
    """Every string value inside `obj` (keys excepted), appended to `out`; the strings of a
    container's items are taken in its own loop, a call only per nested container (dom-3 reads a
    resource as large as a Provenance naming every entry)."""
    if isinstance(obj, dict):
        items: Any = obj.values()
    elif isinstance(obj, list):
        items = obj
    else:
        if isinstance(obj, str):
            out.append(obj)
        return out
    for v in items:
        if type(v) is str:
            out.append(v)
        elif isinstance(v, (dict, list, str)):
            _strings_in(v, out)
    return out


def _dom3(res: dict[str, Any], ctx: Any) -> bool:
    contained = _items(res.get("contained"))
    if not contained:
        return True
    texts = set(_strings_in({k: v for k, v in res.items()}, []))
    if "#" in texts:
        return True
    return all(isinstance(c, dict) and ("#" + str(c.get("id"))) in texts for c in contained)


def _coding_has(cc: Any, system: str, codes: tuple[str, ...]) -> bool:
    return any(s == system and c in codes for s, c in _codings(cc))


_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _bdl7(b: dict[str, Any], ctx: Any) -> bool:
    if b.get("type") == "history":
        return True
    index = getattr(ctx, "bundle", None)
    if index is not None and index.source is b and index.distinct_full_urls:
        return True  # indexing this Bundle found every fullUrl a distinct string: so are the pairs
    seen = set()
    for e in _items(b.get("entry")):
        if isinstance(e, dict):
            full = e.get("fullUrl")
            if full is None:
                continue
            res = e.get("resource")
            meta = res.get("meta") if isinstance(res, dict) else None
            key = (full, meta.get("versionId") if isinstance(meta, dict) else None)
            if key in seen:  # an object as fullUrl is unhashable: reported as not evaluable, as before
                return False
            seen.add(key)
    return True


def _bdl11(b: dict[str, Any], ctx: Any) -> bool:
    if b.get("type") != "document":
        return True
    entries = _items(b.get("entry"))
    return bool(entries) and _get(_get(entries[0], "resource"), "resourceType") == "Composition"


def _bdl12(b: dict[str, Any], ctx: Any) -> bool:
    if b.get("type") != "message":
        return True
    entries = _items(b.get("entry"))
    return bool(entries) and _get(_get(entries[0], "resource"), "resourceType") == "MessageHeader"


def _ref1(ref: dict[str, Any], ctx: Any) -> bool:
    r = ref.get("reference")
    if not isinstance(r, str) or not r.startswith("#") or r == "#":
        return True  # '#'.substring(1) is empty, and so is the comparison: the constraint holds
    root = ctx.root_resource or {}
    return r[1:] in {c.get("id") for c in _items(root.get("contained")) if isinstance(c, dict)}


def _obs7(o: dict[str, Any], ctx: Any) -> bool:
    if not _has_value_key(o):
        return True
    own = set(_codings((ctx.resource or {}).get("code")))
    return not any(set(_codings(_get(c, "code"))) & own for c in _items(o.get("component")))


def _entries_have(b: dict[str, Any], key: str, need: bool) -> bool:
    """Has every entry of Bundle `b` the element `key` (need) / none of them (not need)? One loop
    without a call per entry: a document Bundle has thousands."""
    for e in _items(b.get("entry")):
        if ((e.get(key) if isinstance(e, dict) else None) is not None) is not need:
            return False
    return True


def _bdl3(b: dict[str, Any], ctx: Any) -> bool:
    return _entries_have(b, "request", b.get("type") in ("batch", "transaction", "history"))


def _bdl4(b: dict[str, Any], ctx: Any) -> bool:
    return _entries_have(b, "response", b.get("type") in ("batch-response", "transaction-response", "history"))


NATIVE: dict[tuple[str, str], Callable[[Any, Any], bool]] = {
    ("ext-1", "extension.exists() != value.exists()"):
        lambda v, c: ("extension" in v) != _has_value_key(v),
    ("dom-2", "contained.contained.empty()"):
        lambda v, c: all(_empty(_get(x, "contained")) for x in _items(v.get("contained"))),
    ("dom-3", "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()"):
        _dom3,
    ("dom-4", "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()"):
        lambda v, c: all(_empty(_get(_get(x, "meta"), "versionId")) and _empty(_get(_get(x, "meta"), "lastUpdated"))
                         for x in _items(v.get("contained"))),
    ("dom-5", "contained.meta.security.empty()"):
        lambda v, c: all(_empty(_get(_get(x, "meta"), "security")) for x in _items(v.get("contained"))),
    ("dom-6", "text.`div`.exists()"):
        lambda v, c: _get(v.get("text"), "div") is not None,
    ("obs-6", "dataAbsentReason.empty() or value.empty()"):
        lambda v, c: "dataAbsentReason" not in v or not _has_value_key(v),
    ("obs-7", "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()"):
        _obs7,
    ("obs-3", "low.exists() or high.exists() or text.exists()"):
        lambda v, c: "low" in v or "high" in v or "text" in v,
    ("pat-1", "name.exists() or telecom.exists() or address.exists() or organization.exists()"):
        lambda v, c: "name" in v or "telecom" in v or "address" in v or "organization" in v,
    ("bdl-1", "total.empty() or (type = 'searchset') or (type = 'history')"):
        lambda v, c: "total" not in v or v.get("type") in ("searchset", "history"),
    ("bdl-2", "entry.search.empty() or (type = 'searchset')"):
        lambda v, c: v.get("type") == "searchset" or _entries_have(v, "search", False),
    ("bdl-3", "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = 'history'))"):
        _bdl3,
    ("bdl-4", "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' or %resource.type = 'history'))"):
        _bdl4,
    ("bdl-7", "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()"):
        _bdl7,
    ("bdl-9", "type = 'document' implies (identifier.system.exists() and identifier.value.exists())"):
        lambda v, c: v.get("type") != "document" or ("system" in (v.get("identifier") or {}) and "value" in (v.get("identifier") or {})),
    ("bdl-10", "type = 'document' implies (timestamp.hasValue())"):
        lambda v, c: v.get("type") != "document" or isinstance(v.get("timestamp"), str),
    ("bdl-11", "type = 'document' implies entry.first().resource.is(Composition)"):
        _bdl11,
    ("bdl-12", "type = 'message' implies entry.first().resource.is(MessageHeader)"):
        _bdl12,
    ("bdl-5", "resource.exists() or request.exists() or response.exists()"):
        lambda v, c: "resource" in v or "request" in v or "response" in v,
    ("bdl-8", "fullUrl.contains('/_history/').not()"):
        lambda v, c: "/_history/" not in str(v.get("fullUrl", "")),
    ("cmp-1", "text.exists() or entry.exists() or section.exists()"):
        lambda v, c: "text" in v or "entry" in v or "section" in v,
    ("cmp-2", "emptyReason.empty() or entry.empty()"):
        lambda v, c: "emptyReason" not in v or "entry" not in v,
    ("con-3", "clinicalStatus.exists() or verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and code = 'entered-in-error').exists() or category.select($this='problem-list-item').empty()"):
        lambda v, c: True if "clinicalStatus" in v or _coding_has(v.get("verificationStatus"), _VER, ("entered-in-error",))
        else not any(cat == "problem-list-item" for cat in _items(v.get("category"))),
    ("con-4", "abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-clinical' and (code='resolved' or code='remission' or code='inactive')).exists()"):
        lambda v, c: not any(k.startswith("abatement") for k in v)
        or _coding_has(v.get("clinicalStatus"), _CLIN, ("resolved", "remission", "inactive")),
    ("con-5", "verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and code='entered-in-error').empty() or clinicalStatus.empty()"):
        lambda v, c: not _coding_has(v.get("verificationStatus"), _VER, ("entered-in-error",)) or "clinicalStatus" not in v,
    ("con-1", "summary.exists() or assessment.exists()"):
        lambda v, c: "summary" in v or "assessment" in v,
    ("con-2", "code.exists() or detail.exists()"):
        lambda v, c: "code" in v or "detail" in v,
    ("qrs-1", "(answer.exists() and item.exists()).not()"):
        lambda v, c: not ("answer" in v and "item" in v),
    ("qty-3", "code.empty() or system.exists()"):
        lambda v, c: "code" not in v or "system" in v,
    ("sqty-1", "comparator.empty()"):
        lambda v, c: "comparator" not in v,
    ("cpt-2", "value.empty() or system.exists()"):
        lambda v, c: "value" not in v or "system" in v,
    ("att-1", "data.empty() or contentType.exists()"):
        lambda v, c: "data" not in v or "contentType" in v,
    ("ref-1", "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))"):
        _ref1,
    ("vs-1", "($this as dateTime).toString().length() >= 8"):
        lambda v, c: isinstance(v, str) and len(v) >= 8,
    ("vs-2", "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())"):
        lambda v, c: ("component" in v or "hasMember" in v) or "dataAbsentReason" in v or _has_value_key(v),
    ("vs-3", "value.exists() or dataAbsentReason.exists()"):
        lambda v, c: _has_value_key(v) or "dataAbsentReason" in v,
    ("txt-1", "htmlChecks()"):
        lambda v, c: check_xhtml(v if isinstance(v, str) else v.get("div", "")) is None,
    ("txt-2", "htmlChecks()"):
        lambda v, c: has_text(v if isinstance(v, str) else v.get("div", "")),
}


# -- functions fhirpathpy lacks -----------------------------------------------------------------
def _fn_has_value(inputs: list[Any]) -> list[bool]:
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))]


def _fn_html_checks(inputs: list[Any]) -> list[bool]:
    return [all(check_xhtml(i.get("div", "") if isinstance(i, dict) else i) is None for i in inputs)]


def _fn_member_of(inputs: list[Any], vs: Any) -> list[bool]:
    ctx = CURRENT_CTX.get(None)
    if ctx is None or not inputs:
        return []
    url = vs[0] if isinstance(vs, list) and vs else vs
    results = [ctx.member_of(i, str(url)) for i in inputs]
    if any(r is None for r in results):
        return []
    return [all(results)]


def _fn_resolve(inputs: list[Any]) -> list[Any]:
    ctx = CURRENT_CTX.get(None)
    out = []
    for i in inputs:
        ref = i.get("reference") if isinstance(i, dict) else i
        res = ctx.resolve(ref) if ctx is not None and isinstance(ref, str) else None
        if res is not None:
            out.append(resource_node(res))
    return out


def _fn_conforms_to(inputs: list[Any], url: Any) -> list[bool]:
    ctx = CURRENT_CTX.get(None)
    target = url[0] if isinstance(url, list) and url else url
    if ctx is None or not inputs:
        return []
    return [all(ctx.conforms_to(i, str(target)) for i in inputs)]


FUNCTIONS: dict[str, tuple[Callable[..., Any], dict[int, list[str]]]] = {
    "hasValue": (_fn_has_value, {}),
    "htmlChecks": (_fn_html_checks, {}),
    "memberOf": (_fn_member_of, {1: ["String"]}),
    "resolve": (_fn_resolve, {}),
    "conformsTo": (_fn_conforms_to, {1: ["String"]}),
}


# For some hand-written checks one key decides whether they can fail at all: without `contained`
# the dom-2..5 rules hold trivially. The walker skips such a check when its key is absent.
GUARDS: dict[str, str] = {"dom-2": "contained", "dom-3": "contained", "dom-4": "contained", "dom-5": "contained",
                          "obs-6": "dataAbsentReason", "obs-7": "component", "cmp-2": "emptyReason", "qty-3": "code",
                          "sqty-1": "comparator", "cpt-2": "value", "att-1": "data", "bdl-1": "total",
                          "qrs-1": "answer", "ref-1": "reference"}


def unmet(constraints: list[Constraint], value: Any, ctx: Any, type_code: str | None
          ) -> Iterator[tuple[Constraint, Exception | None]]:
    """The invariants `value` does not satisfy, in order: (c, None) when c fails or could not be
    compiled (c.check is None), (c, the exception) when it could not be evaluated. A guarded
    invariant (see GUARDS) is skipped on an object without its key. Validator._constraints reports
    each; the clean path only asks whether there is one."""
    ctx.focus_type = type_code
    is_object = type(value) is dict
    for c in constraints:
        if is_object and c.guard is not None and c.guard not in value:
            continue  # cannot fail without its key
        if c.check is None:
            yield c, None
            continue
        try:
            ok = c.check(value, ctx)
        except Exception as exc:  # an invariant that cannot be evaluated is reported, never passed silently
            yield c, exc
            continue
        if not ok:
            yield c, None


def compile_constraint(c: Constraint) -> Constraint:
    """Hand-written native check, else the FHIRPath→Python translation, else fhirpathpy."""
    native = NATIVE.get((c.key, c.expression))
    if native is not None:
        c.check = native
        c.guard = GUARDS.get(c.key)
        return c
    try:
        fp = compile_expression(c.expression, FUNCTIONS)  # also proves the syntax
    except FhirPathError as exc:
        c.compile_error = str(exc)
        return c

    def via_fhirpathpy(value: Any, ctx: Any) -> bool:
        token = CURRENT_CTX.set(ctx)
        try:
            result = fp(typed(value, ctx.focus_type), {"resource": ctx.resource,
                                                       "rootResource": ctx.root_resource or ctx.resource})
        finally:
            CURRENT_CTX.reset(token)
        return result == [True]

    translated = translate(c.expression, R4_CHOICE_NAMES)
    if translated is None:
        c.check = via_fhirpathpy
        return c

    test = getattr(translated, "test", None)
    if "%" not in c.expression and test is not None:  # the boolean test itself, one call per evaluation
        c.test = test
        c.reads = getattr(translated, "reads", None)

        def check(value: Any, ctx: Any) -> bool:
            try:
                return test([(value, ctx.focus_type)], _NO_ENV) is True
            except Unsupported:
                return via_fhirpathpy(value, ctx)
    elif "%" not in c.expression:  # no %resource / %rootResource: no environment to build per call
        def check(value: Any, ctx: Any) -> bool:
            verdict = translated(value, ctx.focus_type, _NO_ENV)
            return via_fhirpathpy(value, ctx) if verdict is None else verdict
    else:
        def check(value: Any, ctx: Any) -> bool:
            verdict = translated(value, ctx.focus_type, {"resource": ctx.resource,
                                                         "rootResource": ctx.root_resource or ctx.resource})
            return via_fhirpathpy(value, ctx) if verdict is None else verdict

    c.check = check
    return c


def holds_fn(constraints: list[Constraint], type_code: str | None, objects: bool, memo: Any = None
             ) -> Callable[[Any, Any], bool]:
    """The invariants of an element as one generated function: True when all hold (when `unmet`
    yields nothing). `objects`: the values are JSON objects, so guards (see GUARDS) apply. With the
    validator's content `memo`, translated tests remember their true verdicts (fastpath.remembered_test)
    where that can pay (fastpath.worth_remembering)."""
    if any(c.check is None for c in constraints):
        return lambda v, ctx: False  # a constraint that could not be compiled is always reported
    env: dict[str, Any] = {"T": type_code, "NO_ENV": {}}
    lines = ["def holds(v, ctx):"]
    if any(c.test is None and NATIVE.get((c.key, c.expression)) is not c.check for c in constraints):
        lines.append("    ctx.focus_type = T  # read by the checks that are not native")
    if any(c.test is not None for c in constraints):
        lines.append("    F = [(v, T)]  # the focus of every translated test (each reads, none changes it)")
    lines.append("    try:")
    guarded = None  # the guard of the block being written: invariants guarded alike share one test of it
    for i, c in enumerate(constraints):
        if c.test is not None:  # the translated test itself; where it declines, `unmet` decides
            env[f"C{i}"] = c.test if memo is None or c.reads is None or not worth_remembering(c.reads) else \
                remembered_test(c.test, c.reads, memo, rewire(env, f"C{i}"))
            call = f"C{i}(F, NO_ENV) is not True"
        else:
            env[f"C{i}"] = c.check
            call = f"not C{i}(v, ctx)"
        guard = c.guard if objects else None
        if guard is None:
            guarded = None
            lines += [f"        if {call}:", "            return False"]
            continue
        if guard != guarded:
            guarded = guard
            lines.append(f"        if {guard!r} in v:")
        lines += [f"            if {call}:", "                return False"]
    # a translated test that declines at run time (fhirpath_native.Unsupported, e.g. a temporal
    # comparison) is no finding: every invariant is then decided the way `unmet` decides it
    env["SLOW"] = lambda v, ctx: next(unmet(constraints, v, ctx, type_code), None) is None
    lines += ["    except Exception:", "        return SLOW(v, ctx)", "    return True"]
    exec(compile("\n".join(lines), f"<invariants of {type_code}>", "exec"), env)
    return env["holds"]  # type: ignore[no-any-return]


@rule
class Invariants(Rule):
    """ElementDefinition.constraint: the element's invariants and its datatype's (a resource's own
    for its root). Best-practice invariants follow the policy (warning, error or not checked)."""

    messages = (M.INVARIANT, M.INVARIANT_ERROR)
    stage = CHILDREN + 30

    def __init__(self, env: Any):
        super().__init__(env)
        self._compiled: dict[int, tuple[list[Constraint], Callable[[Any, Any], bool]]] = {}

    def constraints(self, m: Member) -> tuple[list[Constraint], Callable[[Any, Any], bool]]:
        hit = self._compiled.get(id(m))
        if hit is None:
            ignore = self.env.policy.best_practice == "ignore"
            cs = [c for c in self.env.compiler.constraints_for(m) if not (ignore and c.best_practice)]
            hit = self._compiled[id(m)] = (cs, holds_fn(cs, m.type.code, m.kind != KIND_PRIMITIVE, self.env.compiler.memo)
                                           if cs else _always)
        return hit

    def applies(self, m: Member) -> bool:
        return (m.kind != KIND_RESOURCE or m.is_root) and bool(self.constraints(m)[0])

    def uuid_blind(self, m: Member) -> bool:
        # ref-1 only constrains references that start with '#'
        return all(c.key == "ref-1" and NATIVE.get((c.key, c.expression)) is _ref1 for c in self.constraints(m)[0])

    def compile(self, m: Member) -> Callable[[Any, Any], bool]:
        return self.constraints(m)[1]

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        for c, exc in unmet(self.constraints(m)[0], value, ctx, m.type.code):
            if c.check is None:
                ctx.add(M.INVARIANT_ERROR, path, variant="compile", key=c.key, error=c.compile_error)
            elif exc is not None:
                ctx.add(M.INVARIANT_ERROR, path, key=c.key, error=exc)
            else:
                if c.best_practice:
                    severity = self.env.policy.best_practice
                else:
                    severity = "error" if c.severity == "error" else "warning"
                ctx.add(M.INVARIANT, path, severity, key=c.key, human=c.human)


def _always(v: Any, ctx: Any) -> bool:
    return True
