"""The only door to jinja2 (layer L2).

Templates come only from mapping files, compiled once at load; domain data is passed only as
template *variables*, never as template source, so a patient's note containing `{{ 7*7 }}` is
exported verbatim. The environment is the immutable sandbox with StrictUndefined (a misspelt
variable is an error, not an empty string); output length is bounded. `xhtml=True` templates
autoescape, for narratives.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import escape

MAX_OUTPUT = 100_000

_PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_XHTML = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateProblem(Exception):
    """A template failed to compile (`line` set) or to render."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(message)


_EXPR = re.compile(r"\{\{\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)*)(?:\[:(\d+)\])?\s*\}\}")


def _simple(source: str, xhtml: bool) -> Callable[[Mapping[str, Any]], str] | None:
    """A fast renderer for templates made only of text and `{{ name.attr.attr }}` / `{{ x[:n] }}`
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
            out.append(str(escape(text)) if xhtml else text)
        return "".join(out)
    return render


class Template:
    def __init__(self, source: str, *, xhtml: bool = False):
        env = _XHTML if xhtml else _PLAIN
        try:
            self._t = env.from_string(source)  # always compiled: proves the syntax
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from exc
        self._fast = _simple(source, xhtml)

    def render(self, variables: Mapping[str, Any]) -> str:
        if self._fast is not None:
            out = self._fast(variables)
            if len(out) > MAX_OUTPUT:
                raise TemplateProblem(f"template output exceeds {MAX_OUTPUT} characters")
            return out
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
