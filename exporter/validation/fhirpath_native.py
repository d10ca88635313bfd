"""Translate a subset of FHIRPath to Python closures at compile time (layer L2).

Profiles carry invariants such as `value.matches('^[A-Z][0-9]{9}$')`,
`value.ofType(Quantity).value.all($this >= 0 and $this <= 27)` or
`code.coding.where(system = 'http://loinc.org' and code = '15074-8').exists() implies …`.
Evaluated through fhirpathpy each costs 10–50 µs; translated they cost about 1 µs. `translate()`
accepts an expression only when every construct in it is in the supported subset below, else it
returns None and the caller falls back to fhirpathpy — so nothing is ever half-translated.

Supported: member navigation (choice elements like `value` find `valueQuantity` and know its type),
`$this`, `%resource`, `%rootResource`, string/number/boolean literals, `and or xor implies`,
`= != < <= > >=`, `in`, `|`, and the functions exists([criteria]), empty(), not(), all(criteria),
where(criteria), matches(regex), contains(str), startsWith(str), endsWith(str), count(), first(),
ofType(Type), floor(), toString(), length(), hasValue(), trace('label'), descendants(), isDistinct().

Evaluation model: a collection is a list of (value, fhir_type_or_None) pairs; booleans follow
FHIRPath's three-valued logic with the empty collection as "unknown".
tests/unit/validation/test_fhirpath_native.py checks it against fhirpathpy on shared cases.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from exporter.fhir.fhirpath import FhirPathError, parse_strict

Item = tuple[Any, "str | None"]
Coll = list[Item]
Fn = Callable[[Coll, dict[str, Any]], Coll]


class _Unsupported(Exception):
    pass


Unsupported = _Unsupported  # raised by a translation's `.test(focus, env)` for cases it does not model


_TRUE: Coll = [(True, "boolean")]
_FALSE: Coll = [(False, "boolean")]


def _bool_of(c: Coll) -> bool | None:
    if not c:
        return None
    if len(c) == 1 and isinstance(c[0][0], bool):
        return c[0][0]
    if len(c) == 1:
        return True  # a single non-boolean item counts as true (FHIRPath singleton evaluation)
    raise _Unsupported("boolean of a multi-item collection")


def _wrap(b: bool | None) -> Coll:
    return [] if b is None else (_TRUE if b else _FALSE)


# The names of every choice element ([x]) of FHIR R4 (hl7.fhir.r4.core 4.0.1), so that navigation
# looks for `valueQuantity`-style keys only under these names; profiles cannot add elements, and
# tests/unit/validation/test_fhirpath_native.py recomputes the set from the package.
R4_CHOICE_NAMES = frozenset({
    "abatement", "additive", "age", "allowed", "amount", "answer", "asNeeded", "author", "born", "bounds",
    "characteristic", "chargeItem", "code", "collected", "content", "created", "date", "deceased",
    "defaultValue", "definingSubstance", "definition", "detail", "diagnosis", "done", "dose", "doseNumber",
    "due", "effective", "entity", "event", "example", "fastingStatus", "fixed", "identified", "indication",
    "item", "legallyBinding", "location", "manufacturer", "maxValue", "medication", "minValue",
    "minimumVolume", "module", "multipleBirth", "name", "occurred", "occurrence", "offset", "onset",
    "participantEffective", "pattern", "performed", "probability", "procedure", "product", "quantity", "rate",
    "reported", "scheduled", "seriesDoses", "serviced", "source", "start", "statusReason", "studyEffective",
    "subject", "substance", "target", "time", "timing", "topic", "used", "value", "what", "when", "where",
    "why",
})


def _children(item: Item, name: str, choices: frozenset[str] | None = None) -> Coll:
    value, _ = item
    if not isinstance(value, dict):
        return []
    if name in value:
        v = value[name]
        vs = v if isinstance(v, list) else [v]
        return [(x, None) for x in vs if x is not None]
    if choices is not None and name not in choices:
        return []  # not the name of a choice element: no valueQuantity-style keys to look for
    out: Coll = []
    for k, v in value.items():  # choice element: value -> valueQuantity
        if k.startswith(name) and len(k) > len(name) and k[len(name)].isupper():
            t = k[len(name):]
            t = t[0].lower() + t[1:] if t[:1].isupper() and t not in _COMPLEX_TYPES else t
            for x in (v if isinstance(v, list) else [v]):
                out.append((x, t))
    return out


# the FHIRPath System type each FHIR primitive is (for `is`/`as` with a System type name)
_SYSTEM_TYPES = {"boolean": "Boolean", "string": "String", "code": "String", "id": "String", "markdown": "String",
                 "uri": "String", "url": "String", "canonical": "String", "oid": "String", "uuid": "String",
                 "base64Binary": "String", "integer": "Integer", "positiveInt": "Integer", "unsignedInt": "Integer",
                 "decimal": "Decimal", "date": "Date", "dateTime": "DateTime", "instant": "DateTime", "time": "Time"}
_COMPLEX_TYPES = frozenset("""Address Age Annotation Attachment CodeableConcept Coding ContactPoint Count Distance
Duration HumanName Identifier Money Period Quantity Range Ratio Reference SampledData Signature Timing Meta
Dosage Expression ContactDetail Contributor DataRequirement ParameterDefinition RelatedArtifact TriggerDefinition
UsageContext""".split())


def _eq(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


def _num(v: Any) -> Any:
    if isinstance(v, bool):
        raise _Unsupported("boolean in arithmetic comparison")
    if isinstance(v, (int, float)):
        return Decimal(str(v))
    if isinstance(v, Decimal):
        return v
    return v


def _path(root: bool, steps: tuple[str, ...], choices: frozenset[str] | None) -> Fn:
    """Member navigation along several steps at once (`resource.meta.profile`), one function
    instead of one closure and one intermediate collection per step; what each step can be (a
    resource type at the root, a choice element) is decided here, once."""
    plan = tuple((name, i == 0 and root and name[:1].isupper(), choices is None or name in choices)
                 for i, name in enumerate(steps))

    names = tuple(name for name, _, _ in plan)
    direct = not any(type_name for _, type_name, _ in plan)
    choice_names = frozenset(name for name, _, choice in plan if choice)

    def raw(focus: Coll) -> Any:
        """The JSON value `path` ends at when it takes its direct way — one object and a chain of keys
        (`resource.meta.profile`, `code.coding`), followed without building a collection per step:
        its result is a function of that value alone ([] for None, the items of a list, else the
        value itself). UNDECIDED where the general loop decides: a list on the way, or a choice
        element not under its own name (valueQuantity for `value`)."""
        if not direct or len(focus) != 1:
            return UNDECIDED
        v = focus[0][0]
        for name in names:
            if type(v) is not dict:
                return UNDECIDED
            x = v.get(name)
            if x is None:
                return UNDECIDED if name in choice_names else None
            v = x
        return v

    def path(focus: Coll, env: dict[str, Any]) -> Coll:
        v = raw(focus)
        if v is not UNDECIDED:
            if v is None:
                return []
            if type(v) is list:
                return [(y, None) for y in v if y is not None]
            return [(v, None)]
        current = focus
        for name, type_name, choice in plan:
            nxt: Coll = []
            for item in current:
                v = item[0]
                if type(v) is dict:
                    if type_name and v.get("resourceType") == name:
                        nxt.append(item)  # `Observation.code` evaluated on an Observation
                        continue
                    x = v.get(name)
                    if x is not None:
                        if type(x) is list:
                            nxt.extend([(y, None) for y in x if y is not None])
                        else:
                            nxt.append((x, None))
                    elif choice:
                        nxt.extend(_children(item, name))
            if not nxt:
                return nxt
            current = nxt
        return current

    if len(plan) == 1 and not plan[0][1]:  # one step, no resource type: the common `fullUrl`, `text`
        name, _, choice = plan[0]

        def step(focus: Coll, env: dict[str, Any]) -> Coll:
            if len(focus) == 1:
                v = focus[0][0]
                if type(v) is dict:
                    x = v.get(name)
                    if x is not None:
                        return [(y, None) for y in x if y is not None] if type(x) is list else [(x, None)]
                    if choice:
                        return _children(focus[0], name)
                return []
            return path(focus, env)
        step.steps = (root, steps)  # type: ignore[attr-defined]
        step.raw = raw  # type: ignore[attr-defined]
        return step
    path.steps = (root, steps)  # type: ignore[attr-defined]
    path.raw = raw  # type: ignore[attr-defined]
    return path


UNDECIDED: Any = object()  # what a navigation's `raw` gives where its JSON value does not decide its result


def _remembering(fn: Fn) -> Fn:
    """A navigation used twice in one expression (`resource.meta.profile.exists() and
    resource.meta.profile.all(…)`) is evaluated once per focus: the focus collection is created
    anew for every evaluation and never changed, so its identity tells a repeat."""
    last: tuple[Coll | None, Coll] = (None, [])  # one reference, replaced whole: safe between threads

    def remembered(focus: Coll, env: dict[str, Any]) -> Coll:
        nonlocal last
        seen = last
        if seen[0] is focus:
            return seen[1]
        result = fn(focus, env)
        last = (focus, result)
        return result
    remembered.steps = fn.steps  # type: ignore[attr-defined]
    return remembered


class _Compiler:
    def __init__(self, choices: frozenset[str] | None = None, repeated: frozenset[Any] = frozenset()):
        self.choices = choices
        self.repeated = repeated  # (root, steps) navigations that occur more than once: shared, remembered
        self.uses: dict[tuple[bool, tuple[str, ...]], int] = {}
        self._shared: dict[tuple[bool, tuple[str, ...]], Fn] = {}
        # what the expression reads of its focus (see `reads`): the navigations from the focus itself
        # (not from an item inside criteria), less those only extended into longer ones; or, when it
        # also reads the focus as a whole or the environment, `whole`
        self.depth = 0  # criteria of exists/all/where being compiled: their focus is an item
        self.navigations: dict[tuple[bool, tuple[str, ...]], int] = {}
        self.presence: dict[tuple[bool, tuple[str, ...]], int] = {}  # of those, uses by exists() / empty()
        self.whole = False

    def criteria(self, node: dict[str, Any]) -> BFn:
        """The criteria of exists(), all() or where(): evaluated with each item as its focus."""
        self.depth += 1
        try:
            return self.boolean(node)
        finally:
            self.depth -= 1

    def _extended(self, base: Fn) -> None:
        """`base`, a navigation, is only the start of a longer one: not read on its own."""
        if self.depth == 0:
            key = base.steps  # type: ignore[attr-defined]
            self.navigations[key] = self.navigations.get(key, 0) - 1

    def _presence(self, src: Fn) -> None:
        """`src`, if a navigation, is tested by exists() or empty(): only whether it finds something counts."""
        key = getattr(src, "steps", None)
        if key is not None and self.depth == 0:
            self.presence[key] = self.presence.get(key, 0) + 1

    def _reads_focus(self) -> None:
        if self.depth == 0:
            self.whole = True

    def reads(self) -> tuple[Fn, ...] | None:
        """The navigations whose results (values and types) are all the expression reads of its focus,
        each as a function of the focus; None when it reads more (the focus itself, %resource …)."""
        if self.whole:
            return None
        out: list[Fn] = []
        for (root, steps), n in self.navigations.items():
            if n > 0:
                found = _path(root, steps, self.choices)
                # a navigation only ever tested for existence is read as whether it finds anything
                out.append(_found(found) if self.presence.get((root, steps), 0) >= n else found)
        return tuple(out)

    def path(self, root: bool, steps: tuple[str, ...]) -> Fn:
        key = (root, steps)
        self.uses[key] = self.uses.get(key, 0) + 1
        if self.depth == 0:
            self.navigations[key] = self.navigations.get(key, 0) + 1
        if key not in self.repeated:
            return _path(root, steps, self.choices)
        fn = self._shared.get(key)
        if fn is None:
            fn = self._shared[key] = _remembering(_path(root, steps, self.choices))
        return fn

    def compile(self, node: dict[str, Any]) -> Fn:
        kind = node.get("type")
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            raise _Unsupported(str(kind))
        fn: Fn = handler(node)
        return fn

    # -- terms ---------------------------------------------------------------------------------
    def _TermExpression(self, node: dict[str, Any]) -> Fn:
        return self.compile(node["children"][0])

    def _InvocationTerm(self, node: dict[str, Any]) -> Fn:
        inv = node["children"][0]
        return self._invocation(inv, root=True)

    def _ParenthesizedTerm(self, node: dict[str, Any]) -> Fn:
        return self.compile(node["children"][0])

    def _LiteralTerm(self, node: dict[str, Any]) -> Fn:
        lit = node["children"][0]
        kind, text = lit["type"], lit.get("text", "")
        if kind == "StringLiteral":
            value: Any = _unescape(text[1:-1])
            t = "string"
        elif kind == "NumberLiteral":
            value = int(text) if re.fullmatch(r"\d+", text) else Decimal(text)
            t = "integer" if isinstance(value, int) else "decimal"
        elif kind == "BooleanLiteral":
            value, t = text == "true", "boolean"
        else:
            raise _Unsupported(kind)
        const: Coll = [(value, t)]
        return lambda focus, env: const

    def _ExternalConstantTerm(self, node: dict[str, Any]) -> Fn:
        ident = node["children"][0]["children"][0].get("text")
        self.whole = True  # the environment: never a function of the focus alone
        if ident in ("resource", "rootResource"):
            return lambda focus, env: [(env[ident], None)] if env.get(ident) is not None else []
        if ident == "ucum":
            return lambda focus, env: [("http://unitsofmeasure.org", "string")]
        raise _Unsupported(f"%{ident}")

    # -- invocations ---------------------------------------------------------------------------
    def _invocation(self, inv: dict[str, Any], root: bool, base: Fn | None = None) -> Fn:
        kind = inv["type"]
        if kind == "MemberInvocation":
            name = inv["children"][0]["text"].strip("`")
            if root:
                return self.path(True, (name,))
            assert base is not None
            steps = getattr(base, "steps", None)
            if steps is not None:
                self._extended(base)
                return self.path(steps[0], steps[1] + (name,))
            choices = self.choices
            return lambda focus, env: [c for item in base(focus, env) for c in _children(item, name, choices)]
        if kind == "ThisInvocation":
            self._reads_focus()
            # iterating functions (where, all, exists) evaluate their criteria with the item as focus,
            # so $this is always the focus here; no per-item environment copies are needed
            return lambda focus, env: focus
        if kind == "FunctionInvocation":
            return self._function(inv["children"][0], base)
        raise _Unsupported(kind)

    def _InvocationExpression(self, node: dict[str, Any]) -> Fn:
        left, right = node["children"]
        base = self.compile(left)
        return self._invocation(right, root=False, base=base)

    def _function(self, functn: dict[str, Any], base: Fn | None) -> Fn:
        name = functn["children"][0]["text"]
        params = functn["children"][1]["children"] if len(functn["children"]) > 1 else []
        if base is None:
            self._reads_focus()
        src: Fn = base if base is not None else (lambda focus, env: focus)

        def sub(i: int) -> Fn:
            return self.compile(params[i])

        if name == "exists":
            if params:
                test = self.criteria(params[0])
                some = _some(src, test)
                return lambda f, e: _wrap(some(f, e))
            self._presence(src)
            return lambda f, e: _wrap(bool(src(f, e)))
        if name == "empty" and not params:
            self._presence(src)
            return lambda f, e: _wrap(not src(f, e))
        if name == "not" and not params:
            return lambda f, e: _wrap(_negate(_bool_of(src(f, e))))
        if name == "all" and len(params) == 1:
            test = self.criteria(params[0])
            every = _every(src, test)
            return lambda f, e: _wrap(every(f, e))
        if name == "where" and len(params) == 1:
            test = self.criteria(params[0])
            return lambda f, e: [it for it in src(f, e) if test([it], e) is True]
        if name in ("matches", "contains", "startsWith", "endsWith") and len(params) == 1:
            arg = sub(0)
            if name == "matches":
                lit = params[0]
                text = _literal_string(lit)
                if text is None:
                    raise _Unsupported("matches with a computed pattern")
                rx = re.compile(text, re.DOTALL)

                def matches(s: str, _p: str) -> bool:
                    return rx.search(s) is not None
                op: Callable[[str, str], bool] = matches
            elif name == "contains":
                op = operator.contains
            elif name == "startsWith":
                op = str.startswith
            else:
                op = str.endswith

            def string_fn(f: Coll, e: dict[str, Any]) -> Coll:
                items = src(f, e)
                if not items:
                    return []
                if len(items) > 1:
                    raise _Unsupported("string function on a collection")
                s = items[0][0]
                a = arg(f, e)
                if not a or not isinstance(s, str):
                    return []
                return _wrap(op(s, str(a[0][0])))
            return string_fn
        if name == "descendants" and not params:
            def descendants_fn(f: Coll, e: dict[str, Any]) -> Coll:
                return [(x, None) for x in _descendants([it[0] for it in src(f, e)])]
            return descendants_fn
        if name == "isDistinct" and not params:
            def is_distinct(f: Coll, e: dict[str, Any]) -> Coll:
                items = src(f, e)
                if not all(type(it[0]) is str for it in items):
                    raise _Unsupported("isDistinct() of values that are not strings")
                return _wrap(len({it[0] for it in items}) == len(items))
            return is_distinct
        if name == "trace" and len(params) <= 1 and (not params or _literal_string(params[0]) is not None):
            return src  # trace('label') returns its input (its logging is a no-op: exporter.fhir.fhirpath)
        if name == "count" and not params:
            return lambda f, e: [(len(src(f, e)), "integer")]
        if name == "first" and not params:
            return lambda f, e: src(f, e)[:1]
        if name == "ofType" and len(params) == 1:
            tname = params[0].get("text") or ""
            if not re.fullmatch(r"[A-Za-z]+", tname):
                raise _Unsupported("ofType of a qualified type")
            steps = getattr(base, "steps", None)
            if steps is not None and self.choices is not None and steps[1][-1] in self.choices \
                    and not (steps[0] and len(steps[1]) == 1 and steps[1][0][:1].isupper()):
                # `value.ofType(Quantity)` of a choice element is its `valueQuantity` key: one more
                # navigation step instead of a scan of the keys and a filter on the types found
                key = steps[1][-1] + tname[0].upper() + tname[1:]
                self._extended(base)  # type: ignore[arg-type]
                return self.path(steps[0], steps[1][:-1] + (key,))
            return lambda f, e: [it for it in src(f, e) if it[1] == tname
                                 or (isinstance(it[0], dict) and it[0].get("resourceType") == tname)]
        if name == "floor" and not params:
            def floor_fn(f: Coll, e: dict[str, Any]) -> Coll:
                items = src(f, e)
                if len(items) != 1 or isinstance(items[0][0], bool) or not isinstance(items[0][0], (int, float, Decimal)):
                    if items:
                        raise _Unsupported("floor of a non-number")
                    return []
                return [(int(math.floor(items[0][0])), "integer")]
            return floor_fn
        if name == "toString" and not params:
            def to_string(f: Coll, e: dict[str, Any]) -> Coll:
                items = src(f, e)
                if len(items) != 1 or isinstance(items[0][0], (dict, list)):
                    if items:
                        raise _Unsupported("toString of a complex value")
                    return []
                v = items[0][0]
                return [(("true" if v else "false") if isinstance(v, bool) else str(v), "string")]
            return to_string
        if name == "length" and not params:
            def length_fn(f: Coll, e: dict[str, Any]) -> Coll:
                items = src(f, e)
                if len(items) == 1 and isinstance(items[0][0], str):
                    return [(len(items[0][0]), "integer")]
                if items:
                    raise _Unsupported("length of a non-string")
                return []
            return length_fn
        if name == "hasValue" and not params:
            return lambda f, e: _wrap((lambda it: len(it) == 1 and not isinstance(it[0][0], (dict, list)))(src(f, e)))
        raise _Unsupported(f"function {name}")

    # -- boolean mode -------------------------------------------------------------------------
    def boolean(self, node: dict[str, Any]) -> BFn:
        """`node` as a function returning its singleton boolean value (True / False / None for
        empty), as _bool_of(compile(node)(…)) would — but logic, existence tests, string tests and
        comparisons with a literal are evaluated without building intermediate collections."""
        kind = node.get("type")
        if kind in ("TermExpression", "ParenthesizedTerm") and node["children"][0].get("type") in (
                "ParenthesizedTerm", "AndExpression", "OrExpression", "ImpliesExpression", "EqualityExpression",
                "InvocationExpression", "TermExpression"):
            return self.boolean(node["children"][0])
        if kind in ("AndExpression", "OrExpression", "ImpliesExpression"):
            left, right = (self.boolean(c) for c in node["children"])
            return _LOGIC[kind if kind != "OrExpression" or node["terminalNodeText"][0] != "xor" else "xor"](left, right)
        if kind == "TermExpression" and node["children"][0].get("type") == "InvocationTerm" \
                and node["children"][0]["children"][0].get("type") == "FunctionInvocation":
            # a function of the focus itself, e.g. the criteria `matches('…')` of an all()
            fused = self._boolean_function(None, node["children"][0]["children"][0]["children"][0])
            if fused is not None:
                return fused
        if kind == "EqualityExpression":
            fused = self._literal_equality(node)
            if fused is not None:
                return fused
        if kind == "InvocationExpression":
            base_node, inv = node["children"]
            if inv.get("type") == "FunctionInvocation":
                fused = self._boolean_function(base_node, inv["children"][0])
                if fused is not None:
                    return fused
        coll = self.compile(node)
        return lambda f, e: _bool_of(coll(f, e))

    def _source(self, base_node: dict[str, Any] | None) -> Fn:
        if base_node is None:
            self._reads_focus()
            return lambda f, e: f
        return self.compile(base_node)

    def _boolean_function(self, base_node: dict[str, Any] | None, functn: dict[str, Any]) -> BFn | None:
        """Boolean mode of `base.name(params)`; base None: the focus."""
        name = functn["children"][0]["text"]
        params = functn["children"][1]["children"] if len(functn["children"]) > 1 else []
        if name == "not" and base_node is None:
            return None
        if name == "exists" and not params:
            # X.where(c).exists() tests the criteria without collecting the matches
            if base_node is not None and base_node.get("type") == "InvocationExpression" \
                    and base_node["children"][1].get("type") == "FunctionInvocation":
                inner = base_node["children"][1]["children"][0]
                inner_params = inner["children"][1]["children"] if len(inner["children"]) > 1 else []
                if inner["children"][0]["text"] == "where" and len(inner_params) == 1:
                    src = self.compile(base_node["children"][0])
                    test = self.criteria(inner_params[0])
                    return _some(src, test)
            src = self._source(base_node)
            self._presence(src)
            present = self._plain_key(src)
            if present is not None:
                return lambda f, e: _has_key(f, present) if len(f) == 1 else bool(src(f, e))
            return lambda f, e: bool(src(f, e))
        if name == "empty" and not params:
            src = self._source(base_node)
            self._presence(src)
            absent = self._plain_key(src)
            if absent is not None:
                return lambda f, e: not _has_key(f, absent) if len(f) == 1 else not src(f, e)
            return lambda f, e: not src(f, e)
        if name == "not" and not params:
            inner_b = self.boolean(base_node)  # type: ignore[arg-type]
            return lambda f, e: _negate(inner_b(f, e))
        if name in ("exists", "all") and len(params) == 1:
            src = self._source(base_node)
            test = self.criteria(params[0])
            if name == "exists":
                return _some(src, test)
            return _every(src, test)
        if name == "matches" and len(params) == 1:
            text = _literal_string(params[0])
            if text is None:
                return None
            search = re.compile(text, re.DOTALL).search
            src = self._source(base_node)
            key = self._plain_key(src)

            matches_focus: BFn | None = None
            if base_node is None:  # `all(matches('…'))`: the focus item itself
                def focus_matches(f: Coll, e: dict[str, Any]) -> bool | None:
                    if len(f) == 1 and type(f[0][0]) is str:
                        return search(f[0][0]) is not None
                    return matches(f, e)
                matches_focus = focus_matches

            def matches(f: Coll, e: dict[str, Any]) -> bool | None:
                if key is not None and len(f) == 1 and type(f[0][0]) is dict:
                    s = f[0][0].get(key)  # `fullUrl.matches(…)`: the key's string, no collection built
                    if type(s) is str:
                        return search(s) is not None
                    if s is None:
                        return None
                items = src(f, e)
                if not items:
                    return None
                if len(items) > 1:
                    raise _Unsupported("string function on a collection")
                s = items[0][0]
                if not isinstance(s, str):
                    raise _Unsupported("matches() on a value that is not a string")  # fhirpathpy reports it
                return search(s) is not None
            return matches_focus or matches
        return None

    def _plain_key(self, src: Fn) -> str | None:
        """The JSON key when `src` is one navigation step that can only mean that key (not a
        resource type, not a choice element) — tests on it can read the key directly."""
        steps = getattr(src, "steps", None)
        if steps is None or len(steps[1]) != 1:
            return None
        name: str = steps[1][0]
        if (steps[0] and name[:1].isupper()) or self.choices is None or name in self.choices:
            return None
        return name

    def _literal_equality(self, node: dict[str, Any]) -> BFn | None:
        """`path = 'text'` / `path != 'text'`: the common comparison, without the literal's
        collection; anything but two single strings is left to the general equality."""
        op = node["terminalNodeText"][0]
        left_node, right_node = node["children"]
        literal = _literal_string(right_node)
        if op not in ("=", "!=") or literal is None:
            return None
        negate = op == "!="
        left = self.compile(left_node)
        general = self._EqualityExpression(node)
        key = self._plain_key(left)

        def equals(f: Coll, e: dict[str, Any]) -> bool | None:
            if key is not None and len(f) == 1 and type(f[0][0]) is dict:
                s = f[0][0].get(key)  # `system = '…'`: the key's string, no collection built
                if type(s) is str:
                    return (s == literal) is not negate
                if s is None:
                    return None
            items = left(f, e)
            if not items:
                return None
            if len(items) == 1 and type(items[0][0]) is str:
                return (items[0][0] == literal) is not negate
            return _bool_of(general(f, e))
        return equals

    # -- operators -----------------------------------------------------------------------------
    def _binary(self, node: dict[str, Any]) -> tuple[Fn, Fn, str]:
        left, right = (self.compile(c) for c in node["children"])
        return left, right, node["terminalNodeText"][0]

    def _logic(self, node: dict[str, Any]) -> Fn:
        """and / or / xor / implies as a collection: the boolean mode's three-valued logic, wrapped."""
        test = self.boolean(node)
        return lambda f, e: _wrap(test(f, e))

    _AndExpression = _OrExpression = _ImpliesExpression = _logic

    def _EqualityExpression(self, node: dict[str, Any]) -> Fn:
        left, right, op = self._binary(node)
        if op not in ("=", "!="):
            raise _Unsupported(op)  # ~ and !~ (equivalence) are not translated
        negate = op == "!="

        def eq_fn(f: Coll, e: dict[str, Any]) -> Coll:
            a, b = left(f, e), right(f, e)
            if not a or not b:
                return []
            if len(a) == 1 and len(b) == 1:  # the common case: two singletons
                x, y = a[0][0], b[0][0]
                if type(x) is str and type(y) is str:
                    return _FALSE if (x == y) is negate else _TRUE
                if isinstance(x, dict) or isinstance(y, dict):
                    raise _Unsupported("equality of complex values")
                return _wrap(_eq(x, y) is not negate)
            if len(a) != len(b):
                result = False
            else:
                if any(isinstance(x[0], dict) for x in a + b):
                    raise _Unsupported("equality of complex values")
                result = all(_eq(x[0], y[0]) for x, y in zip(a, b, strict=True))
            return _wrap(result is not negate)
        return eq_fn

    def _InequalityExpression(self, node: dict[str, Any]) -> Fn:
        left, right, op = self._binary(node)
        ops: dict[str, Callable[[Any, Any], Any]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                     ">=": operator.ge}
        cmp = ops[op]
        def ineq_fn(f: Coll, e: dict[str, Any]) -> Coll:
            a, b = left(f, e), right(f, e)
            if not a or not b:
                return []
            if len(a) > 1 or len(b) > 1:
                raise _Unsupported("comparison of collections")
            x, y = _num(a[0][0]), _num(b[0][0])
            if isinstance(x, Decimal) != isinstance(y, Decimal) or isinstance(x, dict) or isinstance(y, dict):
                raise _Unsupported("comparison of mixed types")
            if isinstance(x, str) and (a[0][1] in ("date", "dateTime", "instant", "time") or _looks_temporal(x)):
                raise _Unsupported("temporal comparison")
            return _wrap(cmp(x, y))
        return ineq_fn

    def _TypeExpression(self, node: dict[str, Any]) -> Fn:
        """`x is T` / `x as T` where x's FHIR type is known (a choice element's key names it:
        `answerBoolean`); unknown types decline. A FHIR primitive is its System type too (boolean
        is Boolean), and nothing `is` any type, as the HL7 validator's engine takes them."""
        op = node["terminalNodeText"][0]
        src = self.compile(node["children"][0])
        tname = (node["children"][1].get("text") or "").removeprefix("FHIR.").removeprefix("System.")
        if not re.fullmatch(r"[A-Za-z]+", tname):
            raise _Unsupported("type of a qualified name")

        def typed_items(f: Coll, e: dict[str, Any]) -> list[tuple[Item, bool]]:
            out = []
            for it in src(f, e):
                t = it[1] or (it[0].get("resourceType") if isinstance(it[0], dict) else None)
                if t is None:
                    raise _Unsupported("type test on a value of unknown type")
                out.append((it, t == tname or _SYSTEM_TYPES.get(t) == tname))
            return out
        if op not in ("is", "as"):
            raise _Unsupported(f"type operator {op}")

        def type_fn(f: Coll, e: dict[str, Any]) -> Coll:
            items = typed_items(f, e)
            if len(items) > 1:
                raise _Unsupported(f"'{op}' on a collection")
            if op == "is":
                return _wrap(items[0][1] if items else False)  # empty is no T (as the HL7 engine answers)
            return [it for it, ok in items if ok]
        return type_fn

    def _MembershipExpression(self, node: dict[str, Any]) -> Fn:
        left, right, op = self._binary(node)
        if op != "in":
            raise _Unsupported(op)
        def in_fn(f: Coll, e: dict[str, Any]) -> Coll:
            a, b = left(f, e), right(f, e)
            if not a:
                return []
            if len(a) > 1:
                raise _Unsupported("'in' with a collection on the left")
            return _wrap(any(_eq(a[0][0], y[0]) for y in b))
        return in_fn

    def _UnionExpression(self, node: dict[str, Any]) -> Fn:
        left, right, _ = self._binary(node)
        def union_fn(f: Coll, e: dict[str, Any]) -> Coll:
            out: Coll = []
            for it in left(f, e) + right(f, e):
                if not any(_same(it[0], o[0]) for o in out):
                    out.append(it)
            return out
        return union_fn


BFn = Callable[[Coll, dict[str, Any]], "bool | None"]


def _found(navigation: Fn) -> Fn:
    """Whether `navigation` finds anything (all exists() and empty() read of it)."""
    def found(focus: Coll, env: dict[str, Any]) -> Any:
        return bool(navigation(focus, env))
    found.steps = navigation.steps  # type: ignore[attr-defined]
    found.presence = True  # type: ignore[attr-defined]  # (fastpath.worth_remembering)
    return found


def _descendants(values: list[Any]) -> list[Any]:
    """Every value below `values`, level by level (the children of each object in key order, array
    items in order), as fhirpathpy's descendants() finds them. Declines where its nodes would carry
    more than the JSON value: a primitive's `_key` companion, or a null."""
    out: list[Any] = []
    level = values
    while level:
        below: list[Any] = []
        for v in level:
            if type(v) is dict:
                for k, x in v.items():
                    if k[:1] == "_":
                        raise _Unsupported("descendants() with primitive extensions")
                    if type(x) is list:
                        below.extend(x)
                    else:
                        below.append(x)
            elif type(v) is list or isinstance(v, (dict, list)):
                raise _Unsupported("descendants() of a nested array or a mapping type")
        if any(x is None for x in below):
            raise _Unsupported("descendants() meeting a null")
        out.extend(below)
        level = below
    return out


def _has_key(focus: Coll, key: str) -> bool:
    """exists() of one plain navigation step on a single focus item."""
    v = focus[0][0]
    if type(v) is not dict:
        return False
    x = v.get(key)
    if x is None:
        return False
    return any(y is not None for y in x) if type(x) is list else True


def _some(src: Fn, test: BFn) -> BFn:
    """exists(criteria) / where(criteria).exists(): does the criteria hold for some item?"""
    def some(f: Coll, e: dict[str, Any]) -> bool:
        for it in src(f, e):
            if test([it], e) is True:
                return True
        return False
    return some


def _every(src: Fn, test: BFn) -> BFn:
    """all(criteria): does the criteria hold for every item (true for none)?"""
    def every(f: Coll, e: dict[str, Any]) -> bool:
        for it in src(f, e):
            if test([it], e) is not True:
                return False
        return True
    return every


def _short_circuit(decisive: bool) -> Callable[[BFn, BFn], BFn]:
    """Three-valued `and` (decisive False) / `or` (decisive True): one decisive operand decides,
    two of the other value give the other value, anything with an empty operand is empty."""
    other = not decisive

    def combine(left: BFn, right: BFn) -> BFn:
        def fn(f: Coll, e: dict[str, Any]) -> bool | None:
            a = left(f, e)
            if a is decisive:
                return decisive
            b = right(f, e)
            if b is decisive:
                return decisive
            return other if a is other and b is other else None
        return fn
    return combine


_and, _or = _short_circuit(False), _short_circuit(True)


def _xor(left: BFn, right: BFn) -> BFn:
    def one(f: Coll, e: dict[str, Any]) -> bool | None:
        a, b = left(f, e), right(f, e)
        return None if a is None or b is None else a != b
    return one


def _implies(left: BFn, right: BFn) -> BFn:
    """`a implies b` is `(not a) or b` in three-valued logic, with the same short circuit."""
    return _or(lambda f, e: _negate(left(f, e)), right)


_LOGIC: dict[str, Callable[[BFn, BFn], BFn]] = {"AndExpression": _and, "OrExpression": _or, "xor": _xor,
                                                 "ImpliesExpression": _implies}


def _same(a: Any, b: Any) -> bool:
    return a is b or (not isinstance(a, (dict, list)) and _eq(a, b)) or a == b


def _looks_temporal(s: str) -> bool:
    return bool(re.match(r"\d{4}(-\d\d)?", s))


def _negate(b: bool | None) -> bool | None:
    return None if b is None else not b


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r", "f": "\f"}.get(m.group(1), m.group(1)), s)


_BOOLEAN_FUNCTIONS = frozenset({"exists", "empty", "not", "all", "matches"})


def _is_boolean(node: dict[str, Any]) -> bool:
    """Is the value of `node` always a single boolean or empty (so that `is True` of its boolean
    mode equals "the result is [true]")? Logic, equality, and the test functions are."""
    kind = node.get("type")
    if kind in ("TermExpression", "ParenthesizedTerm"):
        return _is_boolean(node["children"][0])
    if kind in ("AndExpression", "OrExpression", "ImpliesExpression"):
        return True
    if kind == "EqualityExpression":
        return node["terminalNodeText"][0] in ("=", "!=")
    if kind == "InvocationExpression":
        inv = node["children"][1]
        return inv.get("type") == "FunctionInvocation" and inv["children"][0]["children"][0]["text"] in _BOOLEAN_FUNCTIONS
    return False


def _literal_string(node: dict[str, Any]) -> str | None:
    while node.get("type") in ("TermExpression", "LiteralTerm"):
        node = node["children"][0]
    if node.get("type") == "StringLiteral":
        return _unescape(node["text"][1:-1])
    return None


def translate(expression: str, choices: frozenset[str] | None = None
              ) -> Callable[[Any, str | None, dict[str, Any]], bool | None] | None:
    """A native check for `expression`, or None if it uses anything outside the subset.
    The check takes (value, fhir_type, env) and returns True / False, or None when the translated
    code meets a case it does not model at run time (the caller then asks fhirpathpy).
    `choices`: the names of all choice elements ("value", "effective", …) when known — navigation
    then looks for `valueQuantity`-style keys only under those names."""
    try:
        ast = parse_strict(expression)
        top = ast["children"][0]
        _Compiler(choices).compile(top)  # proves every construct is in the subset
        counter = _Compiler(choices)  # counts the navigations of the form that will run
        counter.boolean(top) if _is_boolean(top) else counter.compile(top)
        compiler = _Compiler(choices, frozenset(k for k, n in counter.uses.items() if n > 1))
        fn = compiler.compile(top)
        test = compiler.boolean(top) if _is_boolean(top) else None
    except (_Unsupported, FhirPathError, KeyError, IndexError, TypeError, re.error):
        return None

    if test is not None:  # a logical expression: its boolean value decides, collections unbuilt
        def run_boolean(value: Any, fhir_type: str | None, env: dict[str, Any]) -> bool | None:
            try:
                return test([(value, fhir_type)], env) is True
            except _Unsupported:
                return None
        run_boolean.test = test  # type: ignore[attr-defined]  # for callers that call it directly (see Unsupported)
        # the navigations from the focus whose results decide the test (None: it reads more); equal
        # results, equal verdicts: invariants.holds_fn remembers clean ones under them
        run_boolean.reads = compiler.reads()  # type: ignore[attr-defined]
        return run_boolean

    def run(value: Any, fhir_type: str | None, env: dict[str, Any]) -> bool | None:
        try:
            result = fn([(value, fhir_type)], env)
        except _Unsupported:
            return None
        return len(result) == 1 and result[0][0] is True

    return run
