"""The only door to jinja2 (layer L2).

Templates come only from mapping files, compiled once at load; domain data is passed only as
template *variables*, never as template source, so a patient's note containing `{{ 7*7 }}` is
exported verbatim. The environment is the immutable sandbox with StrictUndefined (a misspelt
variable is an error, not an empty string); output length is bounded. `xhtml=True` templates
autoescape, for narratives.

Speed: an export renders some 10,000 templates (two narratives per resource), most of them text
with a few `{{ item.a.b }}` substitutions. Those are rendered without jinja2 by the quick path
(`_quick`: generated straight-line code, for the values whose rendering it knows exactly), which
leaves anything else to the strict simple renderer (`_simple`, for the templates it took before
the quick path existed) or to jinja2 — so every template renders, and fails, exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from exporter.engine.codegen import Code

MAX_OUTPUT = 100_000

_PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_XHTML = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateProblem(Exception):
    """A template failed to compile (`line` set) or to render."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(message)

    @property
    def summary(self) -> str:
        """The message without its detail after ': ', which may quote rendered data: what a run-time
        issue says (a record's values are patient data)."""
        return str(self).split(": ", 1)[0]


def escape_text(text: str) -> str:
    """`str(markupsafe.escape(text))` for a plain str, without building a Markup object: the same five
    replacements in the same order as markupsafe's `_escape_inner` (`&` first, so nothing is escaped twice)."""
    return (text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;")
            .replace('"', "&#34;"))


_EXPR = re.compile(r"\{\{\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)*)(?:\[:(\d+)\])?\s*\}\}")


Renderer = Callable[[Mapping[str, Any]], str]


def _simple(source: str, xhtml: bool) -> Renderer | None:
    """A renderer for templates made only of text and `{{ name.attr.attr }}` / `{{ x[:n] }}`
    substitutions (most narrative lines), with the same output and the same strictness as jinja2:
    a missing attribute is an error. Anything else returns None and jinja2 renders it."""
    if "{%" in source or "{#" in source:
        return None
    parts: list[Any] = []
    pos = 0
    for m in _EXPR.finditer(source):
        parts.append(source[pos:m.start()])
        parts.append((m.group(1), tuple(a for a in m.group(2).split(".") if a), int(m.group(3)) if m.group(3) else None))
        pos = m.end()
    parts.append(source[pos:])
    if "{{" in "".join(p for p in parts if isinstance(p, str)):
        return None  # an expression the fast path does not understand

    def render(variables: Mapping[str, Any]) -> str:
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(p)
                continue
            name, attrs, cut = p
            if name not in variables:
                raise TemplateProblem(f"template failed: '{name}' is undefined")
            v = variables[name]
            for a in attrs:
                if not isinstance(v, dict) or a not in v:
                    raise TemplateProblem(f"template failed: {type(v).__name__} object has no attribute '{a}'")
                v = v[a]
            if cut is not None:
                if not isinstance(v, (str, list)):
                    raise TemplateProblem("template failed: only strings and lists can be sliced")
                v = v[:cut]
            text = "None" if v is None else str(v)
            out.append(escape_text(text) if xhtml else text)
        return "".join(out)
    return render


# -- the quick path --------------------------------------------------------------------------------
# `{{ name.attr.attr }}` with an optional `[:n]`, `+ n` or `| upper` / `| lower`
_QUICK_EXPR = (r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
               r"(?:\[:(\d+)\]|\s*\+\s*(0|[1-9][0-9]{0,8})|\s*\|\s*(upper|lower))?\s*\}\}")
# `{% if name.attr is [not] defined %}` … `{% endif %}`
_QUICK_IF = r"\{%\s*if\s+([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s+is\s+(not\s+)?defined\s*%\}"
_QUICK_ENDIF = r"\{%\s*endif\s*%\}"
_QUICK_TOKEN = re.compile(f"{_QUICK_EXPR}|{_QUICK_IF}|({_QUICK_ENDIF})")
_NON_STR_SCALARS = frozenset({int, float, bool, type(None)})  # JSON scalars besides str
_NO = object()
# jinja2 reads `x.name` as an attribute first and as a key only when the object has no such attribute;
# for the names a dict has (`items`, `keys`, `__class__`, ...) the quick path would differ: not taken
_DICT_ATTRS = frozenset(dir(dict))


def _parse_quick(source: str) -> list[Any] | None:
    """`source` as a tree of text (str), substitutions ("sub", name, attrs, cut, add, filter) and
    conditions ("if", name, attrs, negated, children); None for anything else."""
    if "{#" in source or "\r" in source or source.endswith("\n"):
        return None  # jinja2 normalises line ends and drops a final newline; `_simple` does not
    stack: list[list[Any]] = [[]]
    pos = 0
    for m in _QUICK_TOKEN.finditer(source):
        text = source[pos:m.start()]
        if "{{" in text or "{%" in text:
            return None  # an expression or statement the quick path does not understand
        stack[-1].append(text)
        pos = m.end()
        if m.group(9):  # endif
            if len(stack) == 1:
                return None
            done = stack.pop()
            stack[-1][-1] = stack[-1][-1] + (done,)
            continue
        name, path = (m.group(1), m.group(2)) if m.group(1) else (m.group(6), m.group(7))
        attrs = tuple(a for a in path.split(".") if a)
        if any(a in _DICT_ATTRS for a in attrs):
            return None
        if m.group(1):
            stack[-1].append(("sub", name, attrs, int(m.group(3)) if m.group(3) else None,
                              int(m.group(4)) if m.group(4) is not None else None, m.group(5)))
        else:
            stack[-1].append(("if", name, attrs, bool(m.group(8))))
            stack.append([])
    tail = source[pos:]
    if len(stack) != 1 or "{{" in tail or "{%" in tail:
        return None
    stack[0].append(tail)
    return stack[0]


def _names(tree: list[Any]) -> set[str]:
    return {n for node in tree if not isinstance(node, str)
            for n in ({node[1]} | (_names(node[4]) if node[0] == "if" else set()))}


def _quick(source: str, xhtml: bool, fallback: Renderer, names: tuple[str, ...] | None = None
           ) -> Callable[..., str] | None:
    """The renderer of the common case, or None when `source` has other syntax.

    It renders by itself only when every value it reads is of a type whose rendering it knows exactly
    as jinja2 renders it (a present key holding a JSON scalar; a str to slice, upper or lower; an int
    to add to; a dict to test for a key); otherwise — a missing key, a list, a bool to add to — it
    returns `fallback(variables)`, which renders (or fails) as before: when to fall back is a
    question of speed only, never of output. It is straight-line code (see codegen): the variables'
    look-ups, per substitution the key look-ups, the type test and the conversion, then one f-string
    of the pieces (the template's text bound to names); it checks the output length like `render`.

    It takes the variables as a mapping, or with `names` as positional arguments, those variables
    in that order (see `Template.renderer`).
    """
    tree = _parse_quick(source)
    if tree is None:
        return None
    code = Code(_NO=_NO, _NON_STR_SCALARS=_NON_STR_SCALARS, escape=escape_text, fallback=fallback,
                too_long=_too_long, MAX_OUTPUT=MAX_OUTPUT)
    if names is None:
        params, variables = "variables", "variables"
    else:  # parameters a0, a1, …: the variables `names`
        params = ", ".join(f"a{i}" for i in range(len(names)))
        variables = "{" + ", ".join(f"{code.bind(n)}: a{i}" for i, n in enumerate(names)) + "}"
    undecided = f"return fallback({variables})"
    roots: dict[str, str] = {}
    dict_roots: set[str] = set()  # variables read with a key: one dict test each, at the start
    body: list[str] = []
    count = [0]

    def read(name: str, attrs: tuple[str, ...], indent: str) -> str:
        """Lines reading name.attrs into `v` (the expression returned when no line is needed)."""
        if name not in roots:
            roots[name] = f"r{len(roots)}"
        root = roots[name]
        if not attrs:
            return root
        dict_roots.add(root)
        body.append(f"{indent}v = {root}.get({code.bind(attrs[0])}, _NO)")
        for a in attrs[1:]:  # jinja2 reads a key of a dict; from anything else: not decided here
            body.extend([f"{indent}if type(v) is not dict: {undecided}", f"{indent}v = v.get({code.bind(a)}, _NO)"])
        return "v"

    def emit(nodes: list[Any], indent: str) -> str:
        """Lines computing the output pieces of `nodes`; returns the f-string joining them."""
        pieces: list[str] = []
        values: list[str] = []  # the substituted values among the pieces
        for node in nodes:
            if isinstance(node, str):
                if node:
                    pieces.append(f"{{{code.bind(node)}}}")
                continue
            out = f"s{count[0]}"
            count[0] += 1
            pieces.append(f"{{{out}}}")
            if node[0] == "if":
                _, name, attrs, negated, children = node
                v = read(name, attrs[:-1], indent)  # jinja2: defined <=> the last key is in the dict
                if v == "v":
                    body.append(f"{indent}if type(v) is not dict: {undecided}")
                else:
                    dict_roots.add(v)
                body.append(f"{indent}if {code.bind(attrs[-1])} {'not in' if negated else 'in'} {v}:")
                inner = emit(children, indent + "    ")
                body.extend([f"{indent}    {out} = {inner}", f"{indent}else:", f"{indent}    {out} = ''"])
                continue
            _, name, attrs, cut, add, flt = node
            v = read(name, attrs, indent)
            if add is None:
                values.append(out)
            if add is not None:  # an int's digits: nothing to escape
                body.extend([f"{indent}if type({v}) is not int: {undecided}", f"{indent}{out} = str({v} + {code.bind(add)})"])
            elif cut is not None or flt is not None:
                body.extend([f"{indent}if type({v}) is not str: {undecided}",
                             f"{indent}{out} = {v}[:{code.bind(cut)}]" if cut is not None else f"{indent}{out} = {v}.{flt}()"])
            else:  # jinja2 prints str(v) (numbers, booleans and None have nothing to escape, which is harmless)
                body.extend([f"{indent}if type({v}) is str: {out} = {v}",
                             f"{indent}elif type({v}) in _NON_STR_SCALARS: {out} = str({v})", f"{indent}else: {undecided}"])
        if xhtml and values:
            # the values are escaped (the template's own text is not, as in jinja2); most have nothing
            # to escape, which five `in` tests on all of them at once tell faster than a call for each
            joined = values[0] if len(values) == 1 else "t"
            if len(values) > 1:
                body.append(f"{indent}t = f\"{''.join(f'{{{v}}}' for v in values)}\"")
            body.append(f"""{indent}if "&" in {joined} or "<" in {joined} or ">" in {joined} or "'" in {joined} or '"' in {joined}:""")
            body.extend(f"{indent}    {v} = escape({v})" for v in values)
        return 'f"' + "".join(pieces) + '"'

    result = emit(tree, "")
    if names is None:
        start = [f"{root} = variables.get({code.bind(name)}, _NO)" for name, root in roots.items()]
    else:
        start = [f"{root} = a{names.index(name)}" if name in names else f"{root} = _NO" for name, root in roots.items()]
    start += [f"if type({root}) is not dict: {undecided}" for root in sorted(dict_roots)]
    body = start + body + [f"out = {result}", "return out if len(out) <= MAX_OUTPUT else too_long()"]
    return code.function("render", params, body, "template")


def _too_long() -> str:
    raise TemplateProblem(f"template output exceeds {MAX_OUTPUT} characters")


class Template:
    def __init__(self, source: str, *, xhtml: bool = False):
        env = _XHTML if xhtml else _PLAIN
        try:
            self._t = env.from_string(source)  # always compiled: proves the syntax
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from exc
        # `_fast` renders without jinja2 (None: jinja2 renders): the quick path, which leaves what it
        # does not decide to the strict simple renderer if there is one — the templates the quick path
        # renders were rendered that way before — else to jinja2; or the simple renderer alone
        self._source, self._xhtml = source, xhtml
        simple = _simple(source, xhtml)
        self._simple = simple
        self._quick_fallback = self._render_simple if simple is not None else self._jinja
        self._quick = _quick(source, xhtml, self._quick_fallback)
        self._positional: dict[tuple[str, ...], Callable[..., str]] = {}
        self._fast = self._quick or simple
        tree = _parse_quick(source)
        # the variables the template reads (None: not known); the others need not be passed
        self.variables: frozenset[str] | None = frozenset(_names(tree)) if tree is not None else None

    def render(self, variables: Mapping[str, Any]) -> str:
        if self._fast is None:
            return self._jinja(variables)
        out = self._fast(variables)
        if len(out) > MAX_OUTPUT:
            raise TemplateProblem(f"template output exceeds {MAX_OUTPUT} characters")
        return out

    def renderer(self, names: tuple[str, ...] | None = None) -> Callable[..., str]:
        """`render`, for a hot loop: the quick path itself when there is one (it checks the length).
        With `names`, it takes those variables as positional arguments instead of a mapping — no dict
        to build per call: `renderer(("item", "doc"))(item, doc)` is `render({"item": item, "doc": doc})`."""
        if self._quick is None or self._fast is not self._quick:
            return self.render if names is None else lambda *values: self.render(dict(zip(names, values, strict=True)))
        if names is None:
            return self._quick
        if names not in self._positional:  # generated once per tuple of names
            positional = _quick(self._source, self._xhtml, self._quick_fallback, names)
            assert positional is not None  # the same template: the quick path takes it with any names
            self._positional[names] = positional
        return self._positional[names]

    def _render_simple(self, variables: Mapping[str, Any]) -> str:
        assert self._simple is not None  # the fallback only when there is a simple renderer
        out = self._simple(variables)
        if len(out) > MAX_OUTPUT:
            raise TemplateProblem(f"template output exceeds {MAX_OUTPUT} characters")
        return out

    def _jinja(self, variables: Mapping[str, Any]) -> str:
        try:
            out = self._t.render(**variables)
        except SecurityError as exc:
            raise TemplateProblem(f"template tried an unsafe operation: {exc}") from exc
        except TemplateError as exc:
            raise TemplateProblem(f"template failed: {exc}") from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from exc
        if len(out) > MAX_OUTPUT:
            raise TemplateProblem(f"template output exceeds {MAX_OUTPUT} characters")
        return out


class Read(NamedTuple):
    """One chain of look-ups a template makes on a variable the engine passes."""

    variable: str  # the engine's variable the chain starts at, local bindings followed (`e` of `{% with e = item %}`: item)
    steps: tuple[str | int, ...]  # keys, and ints for elements of a list (`{% for a in doc.x %}{{ a.y }}`: "x", 0, "y")
    line: int  # in the template
    text: str  # the chain as the template writes it: "e.nte"


# filters whose result holds elements of the list they filter (a loop over it reads those elements),
# and those that give one of them
_SAME_ELEMENTS = ("selectattr", "rejectattr", "select", "reject", "sort", "reverse", "list", "unique")
_ONE_ELEMENT = ("first", "last", "random")
MAX_MACRO_EXPANSIONS = 200  # macro bodies read per template at most (macros calling macros)


def template_reads(source: str) -> tuple[set[str], list[Read]]:
    """What a template reads from its variables, for `fhir-export check`: the variables it uses
    without defining them itself, and each chain of look-ups on one of them, read through the names
    the template binds itself — `{% set %}`, `{% for %}` (an element of the list), `{% with %}` and
    a macro's parameters (from each call's arguments): `{{ item.measured_at[:10] }}` reads ("item",
    ("measured_at",)), `{% for a in doc.diary_entries %}{{ a.nte }}` reads ("doc", ("diary_entries",
    0, "nte")). A chain stops at a computed key or a slice; a name bound to anything else (a loop
    variable of `range`, a `{% set %}` block) reads nothing known. Raises TemplateProblem on a syntax error."""
    try:
        tree = _PLAIN.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from exc
    free = set(meta.find_undeclared_variables(tree)) - set(_PLAIN.globals)  # range, dict, … are jinja2's own
    reads: list[Read] = []
    macros = {m.name: m for m in tree.find_all(nodes.Macro)}
    called: set[str] = set()
    active: list[str] = []  # the macros being read, innermost last
    budget = [MAX_MACRO_EXPANSIONS]
    # a scope: local name -> what it stands for, (variable, steps) of the engine's variables, or None (not known)
    Scope = dict[str, "tuple[str, tuple[str | int, ...]] | None"]

    def chain(node: nodes.Node, scope: Scope) -> tuple[str, tuple[str | int, ...], str] | None:
        """(variable, steps, text) a Name/Getattr/Getitem chain stands for; None: nothing known. Visits
        the computed keys it stops at."""
        steps: list[str | int] = []
        shown: list[str] = []
        base = node
        while isinstance(base, (nodes.Getattr, nodes.Getitem)):
            if isinstance(base, nodes.Getattr):
                steps.append(base.attr)
                shown.append(f".{base.attr}")
            elif isinstance(base.arg, nodes.Const) and isinstance(base.arg.value, (str, int)):
                steps.append(base.arg.value)
                shown.append(f"[{base.arg.value!r}]")
            else:  # a slice or a computed key: the chain is read up to here
                steps.clear()
                shown.clear()
                visit(base.arg, scope)
            base = base.node
        if not isinstance(base, nodes.Name):
            visit(base, scope)
            return None
        text = base.name + "".join(reversed(shown))
        if base.name in scope:
            bound = scope[base.name]
            return (bound[0], bound[1] + tuple(reversed(steps)), text) if bound is not None else None
        return (base.name, tuple(reversed(steps)), text) if base.name in free else None

    def read(node: nodes.Node, scope: Scope) -> tuple[str, tuple[str | int, ...]] | None:
        """Record the chain `node` is (if it is one); what it stands for."""
        found = chain(node, scope)
        if found is None:
            return None
        reads.append(Read(found[0], found[1], node.lineno, found[2]))
        return found[0], found[1]

    def bind(target: nodes.Node, value: tuple[str, tuple[str | int, ...]] | None, scope: Scope) -> None:
        if isinstance(target, nodes.Name):
            scope[target.name] = value
        else:  # unpacking: nothing known
            for name in target.find_all(nodes.Name):
                scope[name.name] = None

    def expression(node: nodes.Node | None, scope: Scope) -> tuple[str, tuple[str | int, ...]] | None:
        """Visit an expression; what it stands for when it is a chain."""
        if node is None:
            return None
        if isinstance(node, (nodes.Name, nodes.Getattr, nodes.Getitem)):
            return read(node, scope)
        if isinstance(node, nodes.Filter) and node.node is not None and node.name in _SAME_ELEMENTS + _ONE_ELEMENT:
            of = expression(node.node, scope)  # `doc.measurements | selectattr(...)`: elements of the same list
            for child in [*node.args, *(k.value for k in node.kwargs), node.dyn_args, node.dyn_kwargs]:
                if child is not None:
                    visit(child, scope)
            return (of[0], of[1] + (0,)) if of is not None and node.name in _ONE_ELEMENT else of
        visit(node, scope)
        return None

    def call_macro(node: nodes.Call, macro: nodes.Macro, scope: Scope) -> None:
        args = [expression(a, scope) for a in node.args]
        kwargs = {k.key: expression(k.value, scope) for k in node.kwargs}
        for extra in (node.dyn_args, node.dyn_kwargs):
            expression(extra, scope)
        if macro.name in active or budget[0] <= 0:
            return  # a macro calling itself: its body is read once per chain of calls
        budget[0] -= 1
        called.add(macro.name)
        active.append(macro.name)
        inner: Scope = {"caller": None, "varargs": None, "kwargs": None}
        defaults = dict(zip([a.name for a in macro.args][len(macro.args) - len(macro.defaults):], macro.defaults, strict=True))
        for i, param in enumerate(macro.args):
            if i < len(args):
                inner[param.name] = args[i]
            elif param.name in kwargs:
                inner[param.name] = kwargs[param.name]
            else:
                inner[param.name] = expression(defaults.get(param.name), inner)
        for child in macro.body:
            visit(child, inner)
        active.pop()

    def method(node: nodes.Call, scope: Scope) -> None:
        """`x.get('k')` reads x.k; `x.items()` and other methods read x (their name is no field)."""
        assert isinstance(node.node, nodes.Getattr)
        found = chain(node.node.node, scope)
        if found is not None:
            reads.append(Read(found[0], found[1], node.lineno, found[2]))
            key = node.args[0] if node.args else None
            if node.node.attr == "get" and isinstance(key, nodes.Const) and isinstance(key.value, str):
                reads.append(Read(found[0], found[1] + (key.value,), node.lineno, f"{found[2]}.get({key.value!r})"))
        for child in [*node.args, *(k.value for k in node.kwargs), node.dyn_args, node.dyn_kwargs]:
            if child is not None:
                visit(child, scope)

    def visit(node: nodes.Node, scope: Scope) -> None:
        if isinstance(node, (nodes.Name, nodes.Getattr, nodes.Getitem)):
            if not isinstance(node, nodes.Name) or node.ctx == "load":
                read(node, scope)
            return
        if isinstance(node, nodes.Assign):
            bind(node.target, expression(node.node, scope), scope)
        elif isinstance(node, nodes.AssignBlock):
            for child in node.body:
                visit(child, scope)
            bind(node.target, None, scope)
        elif isinstance(node, nodes.For):
            of = expression(node.iter, scope)
            inner = dict(scope, loop=None)
            bind(node.target, (of[0], of[1] + (0,)) if of is not None else None, inner)
            for child in ([node.test] if node.test is not None else []) + node.body:
                visit(child, inner)
            for child in node.else_:
                visit(child, scope)
        elif isinstance(node, nodes.With):
            inner = dict(scope)
            for target, value in zip(node.targets, node.values, strict=True):
                bind(target, expression(value, scope), inner)
            for child in node.body:
                visit(child, inner)
        elif isinstance(node, nodes.Macro):
            return  # read at each call (below), or once at the end if never called
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name in macros \
                and node.node.name not in scope:
            call_macro(node, macros[node.node.name], scope)
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            method(node, scope)
        else:
            for child in node.iter_child_nodes():
                visit(child, scope)

    visit(tree, {})
    for name, macro in macros.items():
        if name not in called:  # its parameters stand for nothing known
            for child in macro.body:
                visit(child, {"caller": None, "varargs": None, "kwargs": None, **{a.name: None for a in macro.args}})
    return free, reads


# -- templates for people: narratives and pages -----------------------------------------------------
# Characters a reader must never receive raw: C0/C1 controls (tab and line ends excepted), the Unicode
# bidi embeddings, overrides and isolates (they reorder what a reader sees: "Trojan source"), and the
# non-characters U+FFFE/U+FFFF. Each becomes U+FFFD, visibly.
_UNSAFE = [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + list(range(0x7F, 0xA0)) + \
    list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A)) + [0xFFFE, 0xFFFF]
_NEUTRAL = {c: "\ufffd" for c in _UNSAFE}


def neutralise(text: str) -> str:
    """`text` with every control, bidi control and non-character replaced by U+FFFD (a lone surrogate
    too). `str.isprintable()` (C speed) clears the common case first."""
    if text.isprintable():
        return text
    out = text.translate(_NEUTRAL)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in out):
        out = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in out)
    return out


def _finalize(value: Any) -> Any:
    """Every `{{ … }}` value passes here before escaping: strings are neutralised (an already escaped
    Markup string stays Markup: neutralising adds no markup characters)."""
    if isinstance(value, str) and not value.isprintable():
        out = neutralise(value)
        return out if type(value) is str else type(value)(out)
    return value


class TemplateLibrary:
    """Named templates for people (narratives, HTML pages), compiled once at load: the immutable
    sandbox, StrictUndefined, autoescape (XHTML), every printed string neutralised (see `neutralise`),
    the given filters, `{% include %}` / `{% import %}` among the library's own templates.

        lib = TemplateLibrary({"resource/Observation.html": src, ...}, filters={"date": fmt_date})
        lib.problems                                    # [(name, line, message)] of templates that failed
        html = lib.render("document.html", {"doc": view})
        texts = lib.render_each("resource/Observation.html", "r", resources, {"t": texts})

    `render_each` renders one template for many rows (thousands of resources of one kind): by the
    template's straight path (`_Straight`: the template compiled to one Python function, when it uses
    only common constructs; a row it cannot decide exactly as jinja2 goes to jinja2), else in a single
    jinja2 pass (the template's body in a loop, the pieces split on NUL, which `neutralise` keeps out of
    every value), so the per-call cost of jinja2 is paid once per kind of resource. Templates rendered
    this way may use filters and `{% if %}` / `{% for %}`, not `{% import %}`.
    """

    def __init__(self, sources: Mapping[str, str], filters: Mapping[str, Callable[..., Any]] | None = None, *,
                 max_output: int = 20_000_000):
        from jinja2 import DictLoader

        self._env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True, finalize=_finalize,
                                                  loader=DictLoader(dict(sources)), keep_trailing_newline=False)
        self._env.filters.update(filters or {})
        self._sources = dict(sources)
        self._templates: dict[str, Any] = {}
        self._loops: dict[tuple[str, str], Any] = {}
        self.max_output = max_output
        self.problems: list[tuple[str, int | None, str]] = []
        self._straight: dict[str, Callable[[Mapping[str, Any]], str]] = {}
        self._printed = Printed()  # of the straight paths, emptied after each render / render_each
        for name, source in self._sources.items():
            try:
                self._templates[name] = self._env.from_string(source)
                straight = _Straight(self._env, self._printed).compile(self._env.parse(source), name)
            except TemplateSyntaxError as exc:
                self.problems.append((name, exc.lineno, f"template syntax error: {exc.message}"))
                continue
            if straight is not None:
                self._straight[name] = straight

    def __contains__(self, name: str) -> bool:
        return name in self._templates

    def render(self, name: str, variables: Mapping[str, Any]) -> str:
        straight = self._straight.get(name)
        if straight is not None:
            try:
                text = straight(variables)
            except Exception:  # noqa: BLE001 - jinja2 decides: it renders or reports the problem
                return self._run(self._templates[name], variables)
            finally:
                self._printed.texts.clear()
            if len(text) > self.max_output:
                raise TemplateProblem(f"template output exceeds {self.max_output} characters")
            return text
        return self._run(self._templates[name], variables)

    def render_each(self, name: str, var: str, rows: list[Any], variables: Mapping[str, Any]) -> list[str]:
        """`[render(name, {**variables, var: row}) for row in rows]`, in one pass: by the template's
        straight path when it has one (a row it cannot decide goes to jinja2), else by one jinja2 render
        of the template in a loop."""
        if not rows:
            return []
        straight = self._straight.get(name)
        if straight is not None:
            try:
                return self._straight_each(name, straight, var, rows, variables)
            finally:
                self._printed.texts.clear()
        loop = self._loops.get((name, var))
        if loop is None:
            body = self._sources[name].rstrip("\n")  # jinja2 drops one final newline of a template
            source = "{% for " + var + " in __rows__ %}" + body + "\x00{% endfor %}"
            try:
                loop = self._loops[(name, var)] = self._env.from_string(source)
            except TemplateSyntaxError as exc:  # compiled alone it was fine: a construct loops do not allow
                raise TemplateProblem(f"template {name} cannot be rendered per row: {exc.message}", exc.lineno) from exc
        out = self._run(loop, {**variables, "__rows__": rows}).split("\x00")
        if len(out) != len(rows) + 1:
            raise TemplateProblem(f"template {name} printed a NUL character")
        out.pop()
        return out

    def _straight_each(self, name: str, straight: Callable[[Mapping[str, Any]], str], var: str, rows: list[Any],
                       variables: Mapping[str, Any]) -> list[str]:
        scope = dict(variables)
        out = []
        for row in rows:
            scope[var] = row
            try:
                text = straight(scope)
            except Exception:  # noqa: BLE001 - jinja2 decides: it renders the row or reports the problem
                text = self._run(self._templates[name], scope)
            if len(text) > self.max_output:
                raise TemplateProblem(f"template output exceeds {self.max_output} characters")
            out.append(text)
        return out

    def _run(self, template: Any, variables: Mapping[str, Any]) -> str:
        try:
            out: str = template.render(**variables)
        except SecurityError as exc:
            raise TemplateProblem(f"template tried an unsafe operation: {exc}") from exc
        except TemplateError as exc:
            raise TemplateProblem(f"template failed: {exc}", getattr(exc, "lineno", None)) from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:  # the message may quote a value
            raise TemplateProblem(f"template failed: {type(exc).__name__}") from exc
        if len(out) > self.max_output:
            raise TemplateProblem(f"template output exceeds {self.max_output} characters")
        return out


# -- the straight path of templates for people -------------------------------------------------------
class _Undecided(Exception):
    """The straight path cannot render this row as jinja2 would (a missing key, an unexpected type):
    jinja2 renders it (and reports what it reports)."""


_MISSING = object()
_DICT_NAMES = frozenset(dir(dict))


def _markup_escape(value: Any) -> str:
    from markupsafe import escape  # jinja2's own escaping (markupsafe comes with jinja2)

    return str(escape(value))


class Printed:
    """The strings a render printed, each with its text as printed (`_out`): the codes, units, dates and
    labels of thousands of rows repeat, and a look-up is a fraction of testing a string for characters to
    neutralise and escape again. Only str keys (1, 1.0 and True are equal keys printed differently). It
    lives for one `render` / `render_each` call (emptied at its end, so no value outlives the call that
    printed it) and at most MAX entries (emptied when full)."""

    MAX = 20_000

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def print(self, value: str) -> str:
        out = self.texts[value] = _out(value)
        if len(self.texts) > self.MAX:
            self.texts.clear()
        return out


def _out(value: Any) -> str:
    """`{{ value }}` as jinja2 prints it here: finalized, then escaped."""
    if type(value) is str:
        if not value.isprintable():
            value = neutralise(value)
        return escape_text(value) if ("&" in value or "<" in value or ">" in value or "'" in value
                                      or '"' in value) else value
    if type(value) is int or type(value) is float:
        return str(value)
    return _markup_escape(_finalize(value))


class _Straight:
    """Compiles a template's jinja2 syntax tree, when it uses only the constructs below, into one Python
    function with the template's output: text; `{{ e }}`; `{% if %}` / `elif` / `else`; `{% for a[, b] in e
    [if c] %}` without `loop`; a top-level `{% set x = e %}`; expressions of names, constants, `e["key"]`,
    `e.attr`, filters (with keyword arguments), calls of a variable's method, `in` / `not in` / `==` / `!=`,
    `and` / `or` / `not`, `a if c else b`, `is defined`. Anything else: no function (jinja2 renders).
    Attribute look-ups and calls go through the sandbox's own checks; a row the function cannot render
    exactly like jinja2 (a missing key, an unexpected type) raises _Undecided and jinja2 renders that row."""

    def __init__(self, env: Any, printed: Printed | None = None):
        self.env = env
        printed = printed if printed is not None else Printed()
        self.code = Code(_out=_out, _Undecided=_Undecided, _MISSING=_MISSING, _env=env, _getattr=self._getattr,
                         _call=self._call, _defined=self._defined, _concat=_concat, _printed=printed.texts.get,
                         _print=printed.print)
        self.lines: list[str] = []
        self.counter = 0
        # the template's variables, each read once into a local at the start (a variable the caller does
        # not pass: KeyError there, and jinja2 renders, as it would for a read of it anywhere)
        self.roots: dict[str, str] = {}
        self._in_defined = False
        self._safe_methods: set[tuple[type, str]] = set()
        self._safe_attrs: set[tuple[type, str]] = set()

    @staticmethod
    def _getattr_of(env: Any, obj: Any, name: str) -> Any:
        from jinja2 import Undefined

        value = env.getattr(obj, name)
        if isinstance(value, Undefined):
            raise _Undecided
        return value

    def _getattr(self, obj: Any, name: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[name]
            except KeyError:
                raise _Undecided from None
        if (type(obj), name) in self._safe_attrs:  # an attribute of one of our own classes the sandbox allowed
            return getattr(obj, name)
        value = self._getattr_of(self.env, obj, name)
        if type(obj).__module__.startswith("exporter."):
            if not callable(value):
                self._safe_attrs.add((type(obj), name))
            elif getattr(value, "__self__", None) is obj and self.env.is_safe_callable(value):
                self._safe_attrs.add((type(obj), name))
                self._safe_methods.add((type(obj), name))
        return value

    def _call(self, fn: Any, *args: Any) -> Any:
        if getattr(fn, "__self__", None) is not None and (type(fn.__self__), fn.__name__) in self._safe_methods:
            return fn(*args)
        if not self.env.is_safe_callable(fn):
            raise _Undecided
        return fn(*args)

    def _defined(self, fn: Callable[[], Any]) -> bool:
        try:
            fn()
        except (_Undecided, LookupError, TypeError):
            return False
        return True

    def compile(self, template: Any, name: str) -> Callable[[Mapping[str, Any]], str] | None:
        self.lines = ["parts = []", "add = parts.append"]
        scope: dict[str, str] = {}  # template variable -> local name (top-level `set`s, loop targets)
        try:
            for node in template.body:
                self.stmt(node, scope, "")
        except _Unsupported:
            return None
        self.lines.append('return "".join(parts)')
        reads = [f"{local} = variables[{self.code.bind(var)}]" for var, local in self.roots.items()]
        return self.code.function("render", "variables", reads + self.lines, f"template {name}")

    def _name(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def stmt(self, node: Any, scope: dict[str, str], indent: str, in_loop: bool = False) -> None:
        from jinja2 import nodes

        if isinstance(node, nodes.Output):  # its text and values as one piece (an f-string of bound names)
            pieces = [f"{{{self.code.bind(child.data)}}}" if isinstance(child, nodes.TemplateData)
                      else f"{{{self.printed(self.expr(child, scope))}}}" for child in node.nodes
                      if not isinstance(child, nodes.TemplateData) or child.data]
            if len(pieces) == 1:
                self.lines.append(f"{indent}add({pieces[0][1:-1]})")
            elif pieces:
                self.lines.append(f'{indent}add(f"{"".join(pieces)}")')
        elif isinstance(node, nodes.If):
            self.lines.append(f"{indent}if {self.expr(node.test, scope)}:")
            self.block(node.body, scope, indent + "    ", in_loop)
            for elif_ in node.elif_:
                self.lines.append(f"{indent}elif {self.expr(elif_.test, scope)}:")
                self.block(elif_.body, scope, indent + "    ", in_loop)
            if node.else_:
                self.lines.append(f"{indent}else:")
                self.block(node.else_, scope, indent + "    ", in_loop)
        elif isinstance(node, nodes.For):
            if node.recursive:
                raise _Unsupported
            inner = dict(scope)
            if isinstance(node.target, nodes.Name):
                names = [node.target.name]
            elif isinstance(node.target, nodes.Tuple) and all(isinstance(i, nodes.Name) for i in node.target.items):
                names = [i.name for i in node.target.items if isinstance(i, nodes.Name)]
            else:
                raise _Unsupported
            if "loop" in names or _uses_name(node, "loop"):
                raise _Unsupported
            locals_ = [self._name() for _ in names]
            inner.update(zip(names, locals_, strict=True))
            seq = self._name()
            self.lines.append(f"{indent}{seq} = {self.expr(node.iter, scope)}")
            self.lines.append(f"{indent}if type({seq}) is not list and type({seq}) is not tuple: raise _Undecided")
            target = locals_[0] if isinstance(node.target, nodes.Name) else "(" + ", ".join(locals_) + ",)"
            flag = self._name() if node.else_ else None
            if flag:
                self.lines.append(f"{indent}{flag} = True")
            self.lines.append(f"{indent}for {target} in {seq}:")
            body_indent = indent + "    "
            if node.test is not None:
                self.lines.append(f"{body_indent}if not ({self.expr(node.test, inner)}): continue")
            if flag:
                self.lines.append(f"{body_indent}{flag} = False")
            self.block(node.body, inner, body_indent, True)
            if flag:
                self.lines.append(f"{indent}if {flag}:")
                self.block(node.else_, scope, indent + "    ", in_loop)
        elif isinstance(node, nodes.Assign) and not in_loop and isinstance(node.target, nodes.Name):
            # outside loops a `set` binds a template variable, as a Python local does (inside a loop
            # jinja2 scopes it to the iteration: not compiled)
            local = self._name()
            value = self.expr(node.node, scope)
            scope[node.target.name] = local
            self.lines.append(f"{indent}{local} = {value}")
        else:
            raise _Unsupported

    def printed(self, value: str) -> str:
        """`_out(value)`: a string printed before in this render is looked up (see Printed)."""
        local = self._name()
        return f"((_printed({local}) or _print({local})) if type({local} := {value}) is str else _out({local}))"

    def block(self, body: list[Any], scope: dict[str, str], indent: str, in_loop: bool = False) -> None:
        self.lines.append(f"{indent}pass")
        for node in body:
            self.stmt(node, scope, indent, in_loop)

    def expr(self, node: Any, scope: dict[str, str]) -> str:
        from jinja2 import nodes

        e = self.expr
        if isinstance(node, nodes.Name):
            if node.name in scope:
                return scope[node.name]
            if self._in_defined:  # `x is defined` reads x where it tests it
                return f"variables[{self.code.bind(node.name)}]"  # KeyError: not defined
            if node.name not in self.roots:
                self.roots[node.name] = f"g{len(self.roots)}"
            return self.roots[node.name]
        if isinstance(node, nodes.Const):
            return self.code.bind(node.value)
        if isinstance(node, nodes.Tuple) and all(isinstance(i, nodes.Const) for i in node.items):
            return self.code.bind(tuple(i.value for i in node.items if isinstance(i, nodes.Const)))
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
            return f"{e(node.node, scope)}[{e(node.arg, scope)}]"
        if isinstance(node, nodes.Concat):
            return "_concat(" + ", ".join(e(n, scope) for n in node.nodes) + ")"
        if isinstance(node, nodes.Getattr):
            if node.attr in _DICT_NAMES or node.attr.startswith("_"):
                raise _Unsupported
            return f"_getattr({e(node.node, scope)}, {self.code.bind(node.attr)})"
        if isinstance(node, nodes.Filter) and node.node is not None and node.dyn_args is None and node.dyn_kwargs is None:
            fn = self.env.filters.get(node.name)
            if fn is None or getattr(fn, "jinja_pass_arg", None) is not None or node.name in ("default", "d"):
                raise _Unsupported  # (`default` tests for jinja2's Undefined, which the straight path never sees)
            args = "".join(f", {e(a, scope)}" for a in node.args)
            kwargs = "".join(f", {k.key}={e(k.value, scope)}" for k in node.kwargs)
            return f"{self.code.bind(fn)}({e(node.node, scope)}{args}{kwargs})"
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and not node.kwargs \
                and node.dyn_args is None and node.dyn_kwargs is None:
            args = "".join(f", {e(a, scope)}" for a in node.args)
            return f"_call({e(node.node, scope)}{args})"
        if isinstance(node, nodes.Compare) and len(node.ops) == 1 and node.ops[0].op in _COMPARE:
            op = _COMPARE[node.ops[0].op]
            return f"({e(node.expr, scope)} {op} {e(node.ops[0].expr, scope)})"
        if isinstance(node, nodes.Not):
            return f"(not {e(node.node, scope)})"
        if isinstance(node, nodes.And):
            return f"({e(node.left, scope)} and {e(node.right, scope)})"
        if isinstance(node, nodes.Or):
            return f"({e(node.left, scope)} or {e(node.right, scope)})"
        if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
            return f"({e(node.expr1, scope)} if {e(node.test, scope)} else {e(node.expr2, scope)})"
        if isinstance(node, nodes.Test) and node.name == "defined" and not node.args:
            outer, self._in_defined = self._in_defined, True
            try:
                return f"_defined(lambda: {e(node.node, scope)})"
            finally:
                self._in_defined = outer
        raise _Unsupported


_COMPARE = {"in": "in", "notin": "not in", "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "lteq": "<=", "gteq": ">="}


def _concat(*parts: Any) -> str:
    """`a ~ b` as jinja2 joins plain values (with markup among them jinja2 escapes the rest: undecided)."""
    if any(hasattr(p, "__html__") for p in parts):
        raise _Undecided
    return "".join(map(str, parts))


class _Unsupported(Exception):
    """The template uses a construct the straight path does not compile."""


def _uses_name(node: Any, name: str) -> bool:
    from jinja2 import nodes

    return any(n.name == name for n in node.find_all(nodes.Name))
