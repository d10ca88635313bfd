"""Where in the input an issue is: FHIRPath expression → line:column of the JSON node (layer L1;
imports only `exporter.issues`, `exporter.deadline` and the standard library).

The validator works on parsed values and names elements by FHIRPath (`Patient.name[0].given[1]`,
`Bundle.entry[3].resource.valueQuantity.value`). Only a document that has issues is read a second
time, here, with a small position-tracking JSON scanner, so the clean path costs nothing:

    issues = validator.validate_json(raw)
    issues = attach(issues, raw, file="patient.json")   # no issues: returned as is, raw not read

The scanner sees attacker input: it is iterative (no recursion), linear in the input and in the
length of every key and expression (regular expressions without backtracking for strings and
numbers; a key is tested against the wanted names, never expanded into its prefixes), bounded in
depth, stops at the deadline of its thread's work (`exporter.deadline.check()`), and builds nodes
only on the way to the wanted expressions (everything else is scanned and dropped). It accepts what
orjson accepts — RFC 8259, UTF-8 without byte order mark, no lone surrogates, no numbers beyond
double range — and reports the first violation with its position. Duplicate keys: with
`unique_keys` the second occurrence of a member name is an error (the one definition of "duplicate"
for the input reader, `exporter/fhir/json.py::read_json`); without, the last one counts, as in orjson.

Positions are 1-based; columns count Unicode code points from the line start (a tab is one).
A node's position is where its value starts (`"`, `{`, `[`, the first digit); an element that is
missing is reported at its parent object; a primitive's `_x` companion is taken when the path goes
on into `extension`/`id` (or the value itself is absent); choice elements match by name
(`value` → `valueQuantity`) as well as by JSON key; the HL7 validator's spellings
(`value[x]`, `.ofType(Quantity)`, `/*Patient/123*/` comments) are understood too.

Other syntaxes plug in through `LOCATORS` (media type kind → `Locate`); FHIR XML brings its own
reader that knows line and column of every element.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from exporter import deadline
from exporter.issues import Issue, SourceLocation

Position = tuple[int, int]
"""(line, column), both 1-based."""

MAX_DEPTH = 1024
"""Nesting the scanner follows (orjson refuses deeper documents as well)."""


@dataclass(frozen=True)
class Located:
    """What a locator found in one document."""

    found: dict[str, Position]
    """expression → start of the node it names (or of the deepest existing ancestor)."""
    root: Position | None = None
    """Start of the document's root value (for issues about the whole document)."""
    syntax_error: tuple[Position, str] | None = None
    """The first syntax error and its reason, when the document is not well-formed."""


Locate = Callable[[bytes, Sequence[str]], Located]
"""A locator: the raw document and the expressions to find."""


class JsonSyntaxError(ValueError):
    """The document is not JSON the scanner accepts; `offset` is the code point index of the problem,
    `kind` says which rule it breaks: "syntax", "depth" (nested deeper than allowed) or "duplicate"
    (a member name repeated in one object, only with `unique_keys`)."""

    def __init__(self, reason: str, offset: int, kind: str = "syntax"):
        super().__init__(reason)
        self.reason, self.offset, self.kind = reason, offset, kind


# ----------------------------------------------------------------------------- expressions

_OF_TYPE = re.compile(r"\.ofType\(\s*(?:FHIR\.)?[A-Za-z]\w*\s*\)")
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)(?:\[(\d+)\])?\Z")

Segment = tuple[str, "int | None"]


def segments(expression: str) -> list[Segment]:
    """The steps of an expression after its first one (the resource type): `(name, index | None)`.
    Stops before the first step that is not a plain name with an optional index."""
    text = _OF_TYPE.sub("", _strip_comments(expression)).replace("[x]", "")
    out: list[Segment] = []
    for part in text.split(".")[1:]:
        m = _SEGMENT.match(part)
        if m is None:
            break
        out.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
    return out


def _strip_comments(text: str) -> str:
    """`text` without `/* … */` comments (the HL7 validator's `/*Patient/123*/`), in one pass (a
    regular expression would rescan the rest of the text from every unclosed `/*`)."""
    if "/*" not in text:
        return text
    out, i = [], 0
    while True:
        start = text.find("/*", i)
        end = text.find("*/", start + 2) if start >= 0 else -1
        if end < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:start])
        i = end + 2


def _matches(key: str, name: str) -> int:
    """0 no match; 3 the exact key, 2 the `_` companion, 1 a choice-type key (`valueQuantity` for the
    element `value`; higher is preferred). Costs at most the length of `name`."""
    if key == name:
        return 3
    base = key[1:] if key.startswith("_") else key
    if base == name:
        return 2
    n = len(name)
    return 1 if len(base) > n > 0 and base[n].isupper() and base.startswith(name) else 0


# ----------------------------------------------------------------------------- the scanner

# A trie of wanted paths: element name → {index or None → trie}. Shared across expressions.
Trie = dict[str, dict["int | None", "Trie"]]


class _Node:
    __slots__ = ("start", "end", "keys", "items")

    def __init__(self, start: int) -> None:
        self.start, self.end = start, start
        self.keys: dict[str, _Node] | None = None   # object members that lie on a wanted path
        self.items: dict[int, _Node] | None = None  # array items that lie on a wanted path


# The JSON grammar (RFC 8259) in pieces; possessive quantifiers and unrolled loops, so every
# character is looked at once and nothing is backtracked into.
_W = r"[ \t\n\r]*+"
_CHARS = r'[^"\\\x00-\x1f]*+'
_ESCAPE = r'\\(?:["\\/bfnrt]|u{hex})'
_HEX4 = "[0-9a-fA-F]{4}"
_NOT_SURROGATE = "(?![dD][89a-fA-F])" + _HEX4


def _number(digits: str, exponent: str) -> str:
    return rf"-?+(?:0|[1-9][0-9]{digits})(?:\.[0-9]++)?+(?:[eE][-+]?+[0-9]{exponent})?+"


_WS = re.compile(_W)
_STRING_BODY = re.compile(rf"{_CHARS}(?:{_ESCAPE.format(hex=_HEX4)}{_CHARS})*+")
_NUMBER = re.compile(_number("*+", "++"))
_LITERALS = ("true", "false", "null")
# Runs of scalars, to pass over what no expression asks for in one regular expression. Stricter
# than the token path (at most 16 integer digits and a two-digit exponent, so never out of double
# range; no surrogate escapes): anything else is left to the token path, which decides.
_S = rf'"{_CHARS}(?:{_ESCAPE.format(hex=_NOT_SURROGATE)}{_CHARS})*+"'
_V = rf"{_S}|{_number('{0,15}+', '{1,2}+')}|true|false|null"
_MEMBER = rf"{_S}{_W}:{_W}(?:{_V})"
_OBJECT_RUN = re.compile(rf"(?:{_MEMBER}{_W},{_W})*+")
_OBJECT_REST = re.compile(rf"(?:{_MEMBER}{_W},{_W})*+{_MEMBER}{_W}\}}")
_ARRAY_RUN = re.compile(rf"(?:(?:{_V}){_W},{_W})*+")


def _always(rx: re.Pattern[str]) -> Callable[[str, int], re.Match[str]]:
    """`rx.match` of a pattern that matches the empty string, so it never returns None."""
    return cast(Callable[[str, int], re.Match[str]], rx.match)


_WS_AT, _STRING_BODY_AT, _OBJECT_RUN_AT, _ARRAY_RUN_AT = map(_always, (_WS, _STRING_BODY, _OBJECT_RUN, _ARRAY_RUN))
_ARRAY_REST = re.compile(rf"(?:(?:{_V}){_W},{_W})*+(?:{_V}){_W}\]")
_FLAT_OBJECT = re.compile(rf"\{{{_W}(?:\}}|{_OBJECT_REST.pattern})")
_FLAT_ARRAY = re.compile(rf"\[{_W}(?:\]|{_ARRAY_REST.pattern})")
_OBJECT_LAST = re.compile(rf"{_MEMBER}{_W}\}}")
_ARRAY_LAST = re.compile(rf"(?:{_V}){_W}\]")


def _string_end(text: str, i: int) -> int:
    """The end of the string token starting at i (a `"`)."""
    j = _STRING_BODY_AT(text, i + 1).end()
    if j >= len(text):
        raise JsonSyntaxError("unterminated string", i)
    if text[j] != '"':
        raise JsonSyntaxError("control character in string" if text[j] < " " else "invalid escape in string", j)
    end = j + 1
    if "\\u" in text[i:end]:
        try:
            json.loads(text[i:end]).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonSyntaxError("lone surrogate in string", i) from None
    return end


def _number_end(text: str, i: int) -> int:
    m = _NUMBER.match(text, i)
    if m is None or m.end() == i:
        raise JsonSyntaxError("expected a JSON value", i)
    end = m.end()
    token = text[i:end]
    if (end - i > 15 or "e" in token or "E" in token) and math.isinf(float(token)):
        raise JsonSyntaxError("number out of range", i)
    return end


def _key(text: str, i: int, end: int) -> str:
    raw = text[i + 1:end - 1]
    return json.loads(text[i:end]) if "\\" in raw else raw


def _name_lengths(t: Trie) -> list[int]:
    return sorted({len(n) for n in t})


def _wanted_in_object(tries: list[Trie], key: str) -> list[dict[int | None, Trie]] | None:
    """The sub-tries of the wanted names `key` can stand for (see `_matches`): looked up by the key
    itself, by the key without `_`, and by the key's prefixes of the lengths the wanted names have
    (at most one per distinct length, so a long key costs its length times that number, never the
    square of its length)."""
    base = key[1:] if key.startswith("_") else key
    found = []
    for t in tries:
        if not t:
            continue
        if key in t:
            found.append(t[key])
        if base != key and base in t:
            found.append(t[base])
        for n in _name_lengths(t):
            if n >= len(base):
                break
            if n and base[n].isupper() and base[:n] in t:
                found.append(t[base[:n]])
    return found or None


_KEYED_MEMBER = re.compile(rf"({_S}){_W}:{_W}(?:{_V}){_W}")
"""One member with a scalar value, its key captured (the duplicate check's way past scalar members)."""

CHECK_EVERY = 4096
"""Scanner steps between two deadline checks."""


def scan(text: str, trie: Trie | None = None, max_depth: int = MAX_DEPTH, *, unique_keys: bool = False) -> _Node:
    """Check `text` as JSON and return its root node, with children only on the paths of `trie`
    (none when `trie` is None). Raises JsonSyntaxError at the first problem; with `unique_keys`, a
    member name repeated in one object is one. Stops with deadline.DeadlineExceeded when the
    deadline of this thread's work passes."""
    n = len(text)
    ws = _WS_AT
    if text.startswith("\ufeff"):
        raise JsonSyntaxError("byte order mark is not allowed", 0)
    # stack frames: [is_object, node | None, tries of the container's children, item count,
    #                member names seen (unique_keys) | None, whether any child can be wanted]
    stack: list[list[Any]] = []
    # the next value: its wanted sub-paths (None: not wanted) and where its node goes
    want: list[dict[int | None, Trie]] | None = [{None: trie or {}}]
    parent: _Node | None = None
    slot: str | int = ""
    root: _Node | None = None
    i = ws(text, 0).end()
    state = _VALUE
    steps = 0
    while True:
        steps += 1
        if steps >= CHECK_EVERY:
            steps = 0
            deadline.check()
        if state == _VALUE:  # one value at i
            if i >= n:
                raise JsonSyntaxError("unexpected end of input, expected a JSON value", i)
            c = text[i]
            node = _Node(i) if want is not None else None
            if node is not None:
                if parent is None:
                    root = node
                elif isinstance(slot, str):
                    parent.keys[slot] = node  # type: ignore[index]
                else:
                    parent.items[slot] = node  # type: ignore[index]
            state = _AFTER
            if c == "{" or c == "[":
                if node is None and len(stack) < max_depth and not (unique_keys and c == "{"):
                    # not wanted: a flat container in one go (objects only when their keys do not matter)
                    m = (_FLAT_OBJECT if c == "{" else _FLAT_ARRAY).match(text, i)
                    if m is not None:
                        i = m.end()
                        continue
                if len(stack) >= max_depth:
                    raise JsonSyntaxError(f"nesting deeper than {max_depth} levels", i, "depth")
                is_obj = c == "{"
                tries: list = []
                wanted = False
                if node is not None:
                    if is_obj:
                        tries = [m[None] for m in want if None in m]  # type: ignore[union-attr]
                        wanted = any(tries)
                        node.keys = {}
                    else:
                        tries = want  # type: ignore[assignment]
                        wanted = any(type(k) is int for m in tries for k in m)
                        node.items = {}
                stack.append([is_obj, node, tries, 0, set() if unique_keys and is_obj else None, wanted])
                i = ws(text, i + 1).end()
                if i < n and text[i] == ("}" if is_obj else "]"):
                    i += 1
                    if node is not None:
                        node.end = i
                    stack.pop()
                else:
                    state = _ENTRY
                continue
            if c == '"':
                i = _string_end(text, i)
            elif c == "-" or "0" <= c <= "9":
                i = _number_end(text, i)
            else:
                for lit in _LITERALS:
                    if text.startswith(lit, i):
                        i += len(lit)
                        break
                else:
                    raise JsonSyntaxError("expected a JSON value", i)
            if node is not None:
                node.end = i
        elif state == _AFTER:  # after a value: a separator or a closing bracket
            i = ws(text, i).end()
            if not stack:
                if i != n:
                    raise JsonSyntaxError("unexpected data after the JSON value", i)
                assert root is not None
                return root
            frame = stack[-1]
            c = text[i] if i < n else ""
            if c == ",":
                i = ws(text, i + 1).end()
                frame[3] += 1
                state = _ENTRY
            elif c == ("}" if frame[0] else "]"):
                i += 1
                if frame[1] is not None:
                    frame[1].end = i
                stack.pop()
            elif not c:
                raise JsonSyntaxError("unexpected end of input", i)
            else:
                raise JsonSyntaxError("expected ',' or '}'" if frame[0] else "expected ',' or ']'", i)
        else:  # the next member or item of the innermost container, at i
            frame = stack[-1]
            is_obj, cnode, seen = frame[0], frame[1], frame[4]
            state = _VALUE
            if not frame[5]:  # no child is wanted
                if seen is not None:  # scalar members one regular expression each, their names checked
                    m = _KEYED_MEMBER.match(text, i)
                    if m is not None and m.end() < n and text[m.end()] in ",}":
                        _remember(text, m.start(1), m.end(1), seen)
                        i = m.end()
                        state = _AFTER
                        continue
                else:  # runs of scalar members/items in one regular expression, then the last one
                    i = (_OBJECT_RUN_AT if is_obj else _ARRAY_RUN_AT)(text, i).end()
                    m = (_OBJECT_LAST if is_obj else _ARRAY_LAST).match(text, i)
                    if m is not None:
                        i = m.end()
                        if cnode is not None:
                            cnode.end = i
                        stack.pop()
                        state = _AFTER
                        continue
            if is_obj:
                i, want, parent, slot = _member(text, i, frame)
            else:
                want = _wanted_item(frame[2], frame[3]) if frame[5] else None
                parent, slot = cnode, frame[3]


_VALUE, _AFTER, _ENTRY = 0, 1, 2


def _remember(text: str, start: int, end: int, seen: set[str]) -> None:
    """Note the member name of the string token text[start:end] in `seen`; a second one is an error."""
    key = _key(text, start, end)
    if key in seen:
        raise JsonSyntaxError(f"duplicate member name '{_shown(key)}'", start, "duplicate")
    seen.add(key)


SHOWN_KEY = 64
"""Characters of a member name an error message shows at most."""


def _shown(key: str) -> str:
    return key if len(key) <= SHOWN_KEY else f"{key[:SHOWN_KEY]}…"


def _wanted_item(tries: list[dict[int | None, Trie]], index: int) -> list[dict[int | None, Trie]] | None:
    found: list[dict[int | None, Trie]] = [{None: m[index]} for m in tries if index in m]
    return found or None


def _member(text: str, i: int, frame: list[Any]) -> tuple[int, list[dict[int | None, Trie]] | None, _Node | None, str]:
    """Read `"key" :` at i; return the position of the value and where it goes."""
    if i >= len(text) or text[i] != '"':
        raise JsonSyntaxError("expected a member name in double quotes", i)
    end = _string_end(text, i)
    node: _Node | None = frame[1]
    if frame[4] is not None:
        _remember(text, i, end, frame[4])
    key = _key(text, i, end) if frame[5] else ""
    j = _WS_AT(text, end).end()
    if j >= len(text) or text[j] != ":":
        raise JsonSyntaxError("expected ':' after the member name", j)
    j = _WS_AT(text, j + 1).end()
    if not frame[5]:
        return j, None, None, ""
    return j, _wanted_in_object(frame[2], key), node, key


# ----------------------------------------------------------------------------- resolving


def _trie(paths: Iterable[list[Segment]]) -> Trie:
    root: Trie = {}
    for segs in paths:
        t = root
        for name, index in segs:
            t = t.setdefault(name, {}).setdefault(index, {})
    return root


def _step(node: _Node, name: str, index: int | None, after: Segment | None) -> _Node | None:
    """The child of an object node for one step, preferring a candidate that can take the next step."""
    best: tuple[int, int, _Node] | None = None
    for key, child in (node.keys or {}).items():
        rank = _matches(key, name)
        if not rank:
            continue
        if index is not None:
            child = (child.items or {}).get(index)  # type: ignore[assignment]
            if child is None:
                continue
        goes_on = int(after is not None and any(_matches(k, after[0]) for k in (child.keys or {})))
        if best is None or (goes_on, rank) > best[:2]:
            best = (goes_on, rank, child)
    return best[2] if best else None


def resolve(root: _Node, segs: Sequence[Segment]) -> _Node:
    """The node a path names, or its deepest existing ancestor."""
    node = root
    for k, (name, index) in enumerate(segs):
        child = _step(node, name, index, segs[k + 1] if k + 1 < len(segs) else None)
        if child is None:
            break
        node = child
    return node


def _positions(text: str, offsets: Iterable[int]) -> dict[int, Position]:
    """Code point offsets → (line, column), in one pass over the text up to the last offset."""
    out: dict[int, Position] = {}
    line, line_start, prev = 1, 0, 0
    for off in sorted(set(offsets)):
        newlines = text.count("\n", prev, off)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", prev, off) + 1
        out[off] = (line, off - line_start + 1)
        prev = off
    return out


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[:exc.start].decode("utf-8")
        raise _BadUtf8(good) from None


class _BadUtf8(Exception):
    def __init__(self, good: str) -> None:
        self.good = good


def spans(raw: bytes | str, expressions: Sequence[str]) -> dict[str, tuple[Position, Position]]:
    """expression → (start, end) of its node; `end` is the position just after the value. Empty
    when the document is not well-formed."""
    try:
        text = _decode(raw)
        paths = {e: segments(e) for e in expressions}
        root = scan(text, _trie(paths.values()))
    except (_BadUtf8, JsonSyntaxError):
        return {}
    nodes = {e: resolve(root, segs) for e, segs in paths.items()}
    at = _positions(text, [x for node in nodes.values() for x in (node.start, node.end)])
    return {e: (at[node.start], at[node.end]) for e, node in nodes.items()}


def locate_json(raw: bytes | str, expressions: Sequence[str]) -> Located:
    """The `Locate` for JSON."""
    try:
        text = _decode(raw)
    except _BadUtf8 as bad:
        return Located({}, syntax_error=(_positions(bad.good, [len(bad.good)])[len(bad.good)], "invalid UTF-8"))
    paths = {e: segments(e) for e in expressions}
    try:
        root = scan(text, _trie(paths.values()))
    except JsonSyntaxError as exc:
        return Located({}, syntax_error=(_positions(text, [exc.offset])[exc.offset], exc.reason))
    starts = {e: resolve(root, segs).start for e, segs in paths.items()}
    at = _positions(text, [root.start, *starts.values()])
    return Located({e: at[x] for e, x in starts.items()}, root=at[root.start])


def json_syntax_error(raw: bytes | str) -> tuple[Position, str] | None:
    """The position and reason of the first syntax error, or None for well-formed JSON."""
    found = first_problem(raw)
    return (found[1], found[2]) if found else None


def first_problem(raw: bytes | str, *, max_depth: int = MAX_DEPTH,
                  unique_keys: bool = False) -> tuple[str, Position, str] | None:
    """(kind, position, reason) of the first thing that makes `raw` unreadable — kind "syntax",
    "depth" (deeper than `max_depth`) or "duplicate" (with `unique_keys`) — or None."""
    try:
        text = _decode(raw)
    except _BadUtf8 as bad:
        return "syntax", _positions(bad.good, [len(bad.good)])[len(bad.good)], "invalid UTF-8"
    try:
        scan(text, None, max_depth, unique_keys=unique_keys)
    except JsonSyntaxError as exc:
        return exc.kind, _positions(text, [exc.offset])[exc.offset], exc.reason
    return None


LOCATORS: dict[str, Locate] = {"json": locate_json}
"""Locator per syntax (`kind(media_type)`); the FHIR XML reader adds "xml"."""


def kind(media_type: str) -> str:
    """`json` or `xml` for a media type (`application/fhir+xml`, `text/xml`, …; default json)."""
    return "xml" if "xml" in media_type.lower() else "json"


def _rooted(expression: str, root: str) -> str:
    """`Patient.gender` inside `Parameters.parameter[0].resource` → the full path in the document."""
    if not root:
        return expression
    head, dot, rest = _strip_comments(expression).partition(".")
    return root + (dot + rest if dot else "")


def _json_path(issue: Issue) -> str | None:
    """The first JSON path (`$`, `$.measurements[3].value`) among an issue's expressions."""
    return next((e for e in issue.expression if e == "$" or e.startswith(("$.", "$["))), None)


def attach(issues: list[Issue], raw: bytes | str, *, media_type: str = "application/fhir+json", file: str = "",
           root: str = "", max_bytes: int | None = None, json_paths: bool = False) -> list[Issue]:
    """`issues` with `position` set to where each one is in `raw` (the document they were found in).
    An issue with an expression gets its node's start; one without (about the whole document) the
    first syntax error, else the start of the document. `root` names the node of `raw` that was
    validated, when it is not the whole document (a resource in a Parameters body). No issues: the
    list is returned as it is and `raw` is not read; a document over `max_bytes` is not read either
    (its issues get the file name only). Issues that already have a position, or a `location` in
    another file (a profile, a mapping), are kept as they are.

    `json_paths`: `raw` is a domain document and its issues name records by JSON path (`$.a.b[3].c`,
    the schema's, the rules' and the mappings' issues): each issue with such a path gets its
    position, also when its `location` is the mapping or rule that found it; the others get the
    file name only (when they have no location)."""
    if not issues:
        return issues
    if json_paths:
        mine = [i.position is None and _json_path(i) is not None for i in issues]
        wanted = {p: p for i, m in zip(issues, mine, strict=True) if m and (p := _json_path(i))}
    else:
        mine = [i.position is None and i.location is None for i in issues]  # the others are about another file
        wanted = {i.expression[0]: _rooted(i.expression[0], root) for i, m in zip(issues, mine, strict=True) if m and i.expression}
    locate = LOCATORS.get(kind(media_type))
    where = Located({})
    if wanted or not json_paths:
        if locate is not None and (max_bytes is None or len(raw) <= max_bytes):
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            where = locate(data, sorted(set(wanted.values()) | ({root} if root else set())))
    whole = where.syntax_error[0] if where.syntax_error else where.found.get(root) if root else where.root
    out = []
    for issue, m in zip(issues, mine, strict=True):
        deadline.check()
        if not m:
            bare = json_paths and issue.position is None and issue.location is None and file
            out.append(replace(issue, position=SourceLocation(file)) if bare else issue)
            continue
        key = _json_path(issue) if json_paths else issue.expression[0] if issue.expression else None
        at = where.found.get(wanted[key]) if key is not None else whole
        out.append(replace(issue, position=SourceLocation(file, *at)) if at
                   else replace(issue, position=SourceLocation(file)) if file else issue)
    return out
