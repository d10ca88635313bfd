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

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from antlr4.tree.Tree import ParseTreeWalker
from fhirpathpy import apply_parsed_path
from fhirpathpy.engine.invocations import invocation_registry
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
        where = f"column {column + 1}" if line == 1 else f"line {line}, column {column + 1}"
        raise FhirPathError(f"FHIRPath syntax error at {where} of {self.expression!r}: "
                            f"{readable_syntax_error(msg, self.expression, line, column)}",
                            self.expression, f"{line}:{column + 1}")


_INPUT = re.compile(r"(?:extraneous|mismatched) input '(.*)' expecting (.*)\Z", re.DOTALL)


def readable_syntax_error(msg: str, expression: str, line: int, column: int) -> str:
    """ANTLR's message (`token recognition error at: ''spo2'`, `extraneous input '=' expecting {…}`)
    as one sentence for a mapping author: what is wrong and how to write it instead."""
    lines = expression.split("\n")
    before = lines[line - 1][:column] if 0 < line <= len(lines) else ""
    if msg.startswith("token recognition error at: '"):
        bad = msg[len("token recognition error at: '"):-1]  # the text the lexer could not read
        if bad.startswith("'"):
            return "the string that starts here is not closed; write strings in single quotes: 'text'"
        if bad.startswith('"'):
            return "double quotes do not make a string in FHIRPath; write strings in single quotes: 'text'"
        return f"the character {bad[:1]!r} is not part of FHIRPath"
    if msg.startswith("missing ')'"):
        return "a '(' is not closed; add the missing ')'"
    m = _INPUT.match(msg)
    if m is None:
        return "the expression cannot be read here"
    token, expecting = m.group(1), m.group(2)
    prev = before.rstrip()[-1:]
    if token == "<EOF>":
        return "the expression ends too early; an operand or a closing ')' is missing"
    if token == "=" and prev in ("=", "!"):
        return "compare with a single '=' (and '!=' for 'not equal'), not '=='"
    if token == "&" and prev == "&":
        return "'&&' is not FHIRPath; write 'and'"
    if token == "|" and prev == "|":
        return "'||' is not FHIRPath; write 'or'"
    if token == ")" and expecting == "<EOF>":
        return "this ')' closes no '('"
    if expecting == "<EOF>":
        return f"unexpected {token!r} after a complete expression; is an operator such as 'and' or '=' missing?"
    return f"unexpected {token!r}"


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


def functions() -> dict[str, dict[int, tuple[str, ...]] | None]:
    """The functions fhirpathpy evaluates: name → {number of arguments: their kinds} (an 'Expr'
    argument is evaluated once per input item, as in `where(…)`); None: any number of arguments.
    A function not listed fails every evaluation ("Not implemented")."""
    out: dict[str, dict[int, tuple[str, ...]] | None] = {}
    for name, entry in invocation_registry.items():
        if not name.isidentifier() or name.endswith("Op") or name in ("and", "or", "xor", "implies"):
            continue  # operators (`=`, `and`, `inOp`, …) are not called by name
        if not isinstance(entry, dict):
            continue
        if "variadic" in entry:
            out[name] = None
            continue
        out[name] = {n: tuple(k if isinstance(k, str) else "Any" for k in kinds)
                     for n, kinds in (entry.get("arity") or {0: []}).items()}
    return out


def _no_trace(label: Any, value: Any) -> None:
    return None


def typed(value: Any, type_code: str | None) -> Any:
    """Give an element value its FHIR type, so `$this as dateTime`, `ofType(Quantity)` and
    children of datatypes evaluate as they would inside the resource."""
    if type_code is None or (isinstance(value, dict) and "resourceType" in value):
        return value
    return ResourceNode.create_node(value, type_code)


def resource_node(resource: dict[str, Any]) -> Any:
    """A resource met inside an expression (what `resolve()` returns) typed by its resourceType, so
    that `resolve().ofType(Practitioner)` and `is Patient` see its type."""
    return ResourceNode.create_node(resource, resource.get("resourceType"))


def compile_expression(expression: str,
                       functions: Mapping[str, tuple[Callable[..., Any], dict[int, list[str]]]] | None = None
                       ) -> CompiledPath:
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
