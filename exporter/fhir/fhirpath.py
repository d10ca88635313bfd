"""The only door to fhirpathpy (layer L1).

fhirpathpy accepts malformed expressions silently (its ANTLR error listener is a no-op) and keeps
module-level state per evaluation. This module parses strictly (syntax errors raise, the whole text
must be consumed), compiles once, evaluates under a lock, passes the R4 model (without it
`ofType(Quantity)` silently returns []), and wraps every fhirpathpy exception in FhirPathError.

Functions fhirpathpy lacks are supplied by callers as plain Python callables through
`compile_expression(..., functions={"name": (fn, arities)})`; `fn(inputs, *args)` receives the
input collection as plain data.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from antlr4.tree.Tree import ParseTreeWalker
from fhirpathpy import apply_parsed_path  # type: ignore[attr-defined]
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.engine.util import set_paths
from fhirpathpy.models import models
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

R4_MODEL = models["r4"]
_LOCK = threading.RLock()

CompiledPath = Callable[[Any, Mapping[str, Any] | None], list]


class FhirPathError(Exception):
    """A FHIRPath expression could not be parsed or evaluated. `.position` is 'line:column' or ''."""

    def __init__(self, message: str, expression: str, position: str = ""):
        self.expression = expression
        self.position = position
        super().__init__(message)


class _Raise(ErrorListener):
    def __init__(self, expression: str):
        self.expression = expression

    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802 (ANTLR API)
        raise FhirPathError(f"FHIRPath syntax error at {line}:{column + 1}: {msg}", self.expression, f"{line}:{column + 1}")


def parse_strict(expression: str) -> dict[str, Any]:
    """Parse the whole expression or raise FhirPathError; returns fhirpathpy's AST."""
    if not isinstance(expression, str) or not expression.strip():
        raise FhirPathError("empty FHIRPath expression", str(expression))
    listener = _Raise(expression)
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    try:
        tree = parser.entireExpression()
    except FhirPathError:
        raise
    except Exception as exc:  # ANTLR recognition errors not routed through the listener
        raise FhirPathError(f"FHIRPath syntax error: {exc}", expression) from exc
    ast_listener = ASTPathListener()
    ParseTreeWalker().walk(ast_listener, tree)
    entire = ast_listener.parentStack[0]["children"][0]
    return {"children": [entire["children"][0]]}


def _no_trace(label: Any, value: Any) -> None:
    return None


def typed(value: Any, type_code: str | None) -> Any:
    """Give an element value its FHIR type, so `$this as dateTime`, `ofType(Quantity)` and
    children of datatypes evaluate as they would inside the resource."""
    if type_code is None or (isinstance(value, dict) and "resourceType" in value):
        return value
    return ResourceNode.create_node(value, type_code)


def compile_expression(expression: str, functions: Mapping[str, tuple[Callable[..., Any], dict[int, list[str]]]] | None = None) -> CompiledPath:
    """Compile once; call the result as `fn(data, env)` where env holds %variables (e.g. resource)."""
    table = {}
    for name, (fn, arity) in (functions or {}).items():
        entry: dict[str, Any] = {"fn": fn}
        if arity and any(arity):
            entry["arity"] = arity
        table[name] = entry
    options: dict[str, Any] = {"traceFn": _no_trace}  # fhirpathpy's default trace() prints to stdout
    if table:
        options["userInvocationTable"] = table
    compiled = set_paths(apply_parsed_path, parsedPath=parse_strict(expression), model=R4_MODEL, options=options)

    def run(data: Any, env: Mapping[str, Any] | None = None) -> list:
        with _LOCK:
            try:
                return compiled(data, dict(env or {}))
            except FhirPathError:
                raise
            except RecursionError as exc:
                raise FhirPathError("FHIRPath evaluation too deep", expression) from exc
            except Exception as exc:  # fhirpathpy raises bare Exceptions for unsupported functions etc.
                raise FhirPathError(f"FHIRPath evaluation failed: {exc}", expression) from exc

    return run
