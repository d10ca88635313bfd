"""The only door to jinja2 (layer L2).

Templates come only from mapping files, compiled once at load; domain data is passed only as
template *variables*, never as template source, so a patient's note containing `{{ 7*7 }}` is
exported verbatim. The environment is the immutable sandbox with StrictUndefined (a misspelt
variable is an error, not an empty string); output length is bounded. `xhtml=True` templates
autoescape, for narratives.
"""

from __future__ import annotations

from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_OUTPUT = 100_000

_PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_XHTML = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateProblem(Exception):
    """A template failed to compile (`line` set) or to render."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(message)


class Template:
    def __init__(self, source: str, *, xhtml: bool = False):
        env = _XHTML if xhtml else _PLAIN
        try:
            self._t = env.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from exc

    def render(self, variables: Mapping[str, Any]) -> str:
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
