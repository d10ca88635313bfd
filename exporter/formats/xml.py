"""FHIR R4 XML, written and read from the StructureDefinitions (layer L2): the one door to lxml.

    codec = XmlCodec(store)                      # or default_codec(): hl7.fhir.r4.core from the package cache
    xml_bytes = codec.write(resource)            # to_xml(resource) with the default codec
    resource, issues = codec.read(xml_bytes, source="file.xml")

Everything about the shape of the XML comes from the base R4 definitions (https://hl7.org/fhir/R4/xml.html),
compiled once per type into a `Layout` (profiles cannot reorder elements, so only base types are used):

- element order is the order of the snapshot; a choice `value[x]` becomes `valueQuantity`, … per type;
- elements whose definition says `representation: xmlAttr` (Element.id, Extension.url, a primitive's
  value) are attributes; primitives are elements with a `value` attribute, their id and extensions come
  from the JSON `_name` companion (in arrays aligned with `null`);
- elements typed `Resource` (contained, Bundle.entry.resource, Parameters.parameter.resource, …) wrap the
  resource in an element named by its resource type;
- a primitive whose value is `representation: xhtml` (Narrative.div) is real XHTML in its own namespace:
  written exactly as the JSON string has it (once libxml2 has confirmed it is one well-formed XHTML div),
  never re-indented; read back as libxml2 serialises that element.

The writer builds the document text itself (escaping every attribute value); lxml parses what is read.

Decimals keep their digits: a `FhirDecimal` is written with its own text, a plain float as the JSON
output writes it (exporter.fhir.json.decimal_text); the reader returns a decimal as exporter.fhir.json's
loads_exact would read the same digits in JSON (`120` an int, `1.50` a FhirDecimal).

The reader returns the same JSON-shaped dict as FHIR JSON would (what the validator walks), or None and
issues naming line and column: malformed XML, a DOCTYPE (refused before any entity is declared, so no
entity expansion and no external fetch can happen), a wrong namespace, an unknown or repeated element, an
element out of order, a missing `value` attribute, text where an attribute belongs, nesting beyond the
depth limit. Issues never quote a value from the document.
"""

from __future__ import annotations

import pyexpat
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

from lxml import etree

from exporter.fhir import positions
from exporter.fhir.definitions import DefinitionStore
from exporter.fhir.json import FhirDecimal, decimal_text
from exporter.issues import ExporterError, Issue, IssueCode, Severity, SourceLocation

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_F = "{" + FHIR_NS + "}"
_XHTML_DIV = "{" + XHTML_NS + "}div"
_XSI = "{" + XSI_NS + "}"
_SYSTEM = "http://hl7.org/fhirpath/System."
_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_RESOURCE_CODES = frozenset({"Resource", "DomainResource"})
DEFAULT_MAX_DEPTH = 64
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# what an attribute value cannot hold as it is: markup, the quote, whitespace that attribute-value
# normalisation would turn into spaces, and characters XML 1.0 does not allow at all
_SPECIAL = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]').search
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_ESCAPE = re.compile('[&<>"\t\n\r]')
_ILLEGAL = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]').search

# kinds of Field
ATTR, PRIMITIVE, COMPLEX, RESOURCE, XHTML = range(5)
# kinds of primitive value (from the type of the primitive's `value` element)
V_STR, V_BOOL, V_INT, V_DEC = range(4)
_VALUE_KINDS = {_SYSTEM + "Boolean": V_BOOL, _SYSTEM + "Integer": V_INT, _SYSTEM + "Decimal": V_DEC}
_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_DEC_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")
# non-blank text outside narratives, found by libxml2 in one pass
_STRAY_TEXT = etree.XPath("//text()[normalize-space()][not(ancestor::x:div)]", namespaces={"x": XHTML_NS})
_LINE_SUFFIX = re.compile(r",? line \d+, column \d+\s*$")


class FormatError(ExporterError):
    """A resource cannot be written in the requested format (not the shape its definitions allow)."""


# ----------------------------------------------------------------------------------------- layouts

@dataclass(eq=False, slots=True)
class Field:
    """One JSON key of a type: its XML element (or attribute), position and kind."""

    name: str
    tag: str  # Clark notation {ns}name for elements; the plain name for attributes
    order: int
    many: bool
    kind: int
    value_kind: int = V_STR
    layout: Layout | None = None  # children (COMPLEX), or id/extension of a primitive (PRIMITIVE)
    open: str = ""  # '<name value="' of a primitive, for the writer

    def __post_init__(self) -> None:
        self.open = f'<{self.name} value="'


@dataclass(eq=False, slots=True)
class Layout:
    """The XML shape of one type (or backbone element): JSON key → Field, and XML tag → Field."""

    name: str
    fields: dict[str, Field] = field(default_factory=dict)
    by_tag: dict[str, Field] = field(default_factory=dict)
    attrs: dict[str, Field] = field(default_factory=dict)
    # the writer's plan per key set of a JSON object: (attribute fields, [(field, has value, has `_` companion)])
    plans: dict[tuple[str, ...], tuple[list[Field], list[tuple[Field, bool, bool]]]] = field(default_factory=dict)
    is_resource: bool = False

    def add(self, f: Field) -> None:
        self.fields[f.name] = f
        if f.kind == ATTR:
            self.attrs[f.name] = f
        else:
            self.by_tag[f.tag] = f


def _type_code(t: dict[str, Any]) -> str:
    code = t.get("code", "")
    if code.startswith(_SYSTEM):  # Element.id, Resource.id, Extension.url, a primitive's value
        for ext in t.get("extension", []):
            if ext.get("url") == _FHIR_TYPE_EXT:
                return ext.get("valueUrl") or ext.get("valueUri") or "string"
        return "string"
    return code


def _value_element(sd: dict[str, Any]) -> dict[str, Any]:
    return next((e for e in sd["snapshot"]["element"] if e["path"] == sd["type"] + ".value"), {})


class XmlCodec:
    """Writes and reads FHIR R4 XML; layouts are compiled from the store's base definitions on first use."""

    def __init__(self, store: DefinitionStore):
        self.store = store
        self._layouts: dict[str, Layout] = {}
        self._lock = threading.RLock()
        self._div_parser = _safe_parser()

    # -- compiling ---------------------------------------------------------------------------
    def _base_sd(self, type_code: str) -> dict[str, Any] | None:
        """The specialisation that defines a type (a constrained type such as Age or SimpleQuantity has
        the element order of its base)."""
        sd = self.store.structure_for_type(type_code)
        seen = 0
        while sd is not None and sd.get("derivation") == "constraint" and seen < 10:
            sd = self.store.structure(sd.get("baseDefinition", ""))
            seen += 1
        return sd

    def resource_layout(self, resource_type: str) -> Layout | None:
        hit = self._layouts.get("R|" + resource_type)
        if hit is not None:
            return hit
        if not isinstance(resource_type, str) or not resource_type.isalnum():
            return None
        with self._lock:
            sd = self._base_sd(resource_type)
            if sd is None or sd.get("kind") != "resource" or sd.get("type") != resource_type \
                    or resource_type in _RESOURCE_CODES:
                return None
            return self._compile(sd, sd["type"], "R|" + resource_type, is_resource=True)

    def type_layout(self, type_code: str) -> Layout:
        hit = self._layouts.get("T|" + type_code)
        if hit is not None:
            return hit
        with self._lock:
            sd = self._base_sd(type_code)
            if sd is None:
                raise FormatError(Issue(Severity.FATAL, IssueCode.NOT_FOUND,
                                        f"no StructureDefinition for the FHIR type {type_code}", "XML_NO_DEFINITION"))
            return self._compile(sd, sd["type"], "T|" + type_code)

    def _compile(self, sd: dict[str, Any], root_path: str, key: str, is_resource: bool = False) -> Layout:
        hit = self._layouts.get(key)
        if hit is not None:
            return hit
        children: dict[str, list[dict[str, Any]]] = {}
        for e in sd.get("snapshot", {}).get("element", []):
            parent, dot, _ = e["path"].rpartition(".")
            if dot and not e.get("sliceName"):
                children.setdefault(parent, []).append(e)
        layouts: dict[str, Layout] = {}

        def build(path: str, key_: str, resource: bool) -> Layout:
            layout = Layout(path, is_resource=resource)
            layouts[path] = layout
            self._layouts[key_] = layout  # registered before its children: recursive types terminate
            for order, e in enumerate(children.get(path, [])):
                self._add_fields(sd, layout, e, order, children, layouts, build)
            return layout

        return build(root_path, key, is_resource)

    def _add_fields(self, sd: dict[str, Any], layout: Layout, e: dict[str, Any], order: int,
                    children: dict[str, list[dict[str, Any]]], layouts: dict[str, Layout],
                    build: Callable[[str, str, bool], Layout]) -> None:
        name = e["path"].rpartition(".")[2]
        many = e.get("base", {}).get("max", e.get("max")) != "1"  # JSON arrays follow the base definition
        if "xmlAttr" in (e.get("representation") or []):
            layout.add(Field(name, name, order, False, ATTR))
            return
        ref = e.get("contentReference")
        if ref:  # '#Questionnaire.item': the same children as that element
            target = ref.partition("#")[2]
            sub = layouts.get(target) or build(target, f"B|{sd['url']}|{target}", False)
            layout.add(Field(name, _F + name, order, many, COMPLEX, layout=sub))
            return
        types = [_type_code(t) for t in e.get("type", [])]
        choice = name.endswith("[x]")
        for code in types:
            json_name = name[:-3] + code[0].upper() + code[1:] if choice else name
            if code in _RESOURCE_CODES:
                f = Field(json_name, _F + json_name, order, many, RESOURCE)
            elif e["path"] in children:  # a backbone element defined inline
                sub = layouts.get(e["path"]) or build(e["path"], f"B|{sd['url']}|{e['path']}", False)
                f = Field(json_name, _F + json_name, order, many, COMPLEX, layout=sub)
            else:
                tsd = self._base_sd(code)
                if tsd is None:
                    raise FormatError(Issue(Severity.FATAL, IssueCode.NOT_FOUND,
                                            f"no StructureDefinition for the FHIR type {code}", "XML_NO_DEFINITION"))
                if tsd.get("kind") == "primitive-type":
                    if "xhtml" in (_value_element(tsd).get("representation") or []):
                        f = Field(json_name, _XHTML_DIV, order, many, XHTML)
                    else:
                        f = Field(json_name, _F + json_name, order, many, PRIMITIVE, self._value_kind(tsd),
                                  layout=self._compile(tsd, tsd["type"], "T|" + code))
                else:
                    f = Field(json_name, _F + json_name, order, many, COMPLEX,
                              layout=self._compile(tsd, tsd["type"], "T|" + code))
            layout.add(f)

    def _value_kind(self, sd: dict[str, Any]) -> int:
        """JSON kind of a primitive's value: that of its top-most primitive ancestor (positiveInt and
        unsignedInt are integers; R4's definitions type their own value as System.String)."""
        top = sd
        for _ in range(10):
            base = self.store.structure(top.get("baseDefinition", ""))
            if base is None or base.get("kind") != "primitive-type":
                break
            top = base
        vtype = (_value_element(top).get("type") or [{}])[0].get("code", "")
        return _VALUE_KINDS.get(vtype, V_STR)

    # -- writing -----------------------------------------------------------------------------
    def write(self, resource: dict[str, Any], *, pretty: bool = False) -> bytes:
        """The resource as an XML document (UTF-8, with declaration; `pretty`: two-space indentation of the
        FHIR elements, narratives untouched). Raises FormatError for a value its definition does not allow
        (run the validator first: a valid resource always writes)."""
        if not isinstance(resource, dict):
            raise _write_error("a resource must be a JSON object", "")
        rtype = resource.get("resourceType")
        layout = self.resource_layout(rtype) if isinstance(rtype, str) else None
        if layout is None or not isinstance(rtype, str):
            raise _write_error("unknown or missing resourceType", "")
        out: list[str] = [_DECLARATION]
        self._object(out, f'{rtype} xmlns="{FHIR_NS}"', rtype, resource, layout, rtype, "\n", "\n  " if pretty else "")
        if pretty:
            out.append("\n")
        try:
            return "".join(out).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (the escape check also refuses them)
            raise _write_error("contains characters XML cannot carry", rtype) from None

    def _plan(self, layout: Layout, keys: tuple[str, ...], path: Any) -> tuple[list[Field], list[tuple[Field, bool, bool]]]:
        """(attribute fields, [(element field, has value, has `_` companion)] in document order) for one key set."""
        present: dict[str, list[bool]] = {}
        for k in keys:
            if k == "resourceType" and layout.is_resource:
                continue
            companion = k[:1] == "_"
            name = k[1:] if companion else k
            f = layout.fields.get(name)
            if f is None or (companion and f.kind not in (PRIMITIVE, ATTR, XHTML)):
                raise _write_error(f"'{k}' is not an element of {layout.name}", path)
            if companion and f.kind != PRIMITIVE:
                raise _write_error(f"'{k}' cannot be written: '{name}' takes no id or extensions in XML", path)
            flags = present.setdefault(name, [False, False])
            flags[1 if companion else 0] = True
        ordered = sorted(((layout.fields[n], v, x) for n, (v, x) in present.items()), key=lambda p: p[0].order)
        plan = ([f for f, _, _ in ordered if f.kind == ATTR], [p for p in ordered if p[0].kind != ATTR])
        if len(layout.plans) < 512:
            layout.plans[keys] = plan
        return plan

    def _object(self, out: list[str], open_tag: str, close_tag: str, obj: dict[str, Any], layout: Layout,
                path: Any, nl: str, inner: str, value: str | None = None) -> None:
        """`<open_tag attrs [value="…"]>children</close_tag>` (a primitive: `obj` is its `_` companion). `nl` goes
        before the start tag, `inner` before each child ('' when compact). `path` is built lazily —
        (parent, name, index) — and spelled out only for an error."""
        keys = tuple(obj)
        attrs, elements = layout.plans.get(keys) or self._plan(layout, keys, path)
        ap = out.append
        ap(nl)
        ap("<")
        ap(open_tag)
        for f in attrs:
            text = obj[f.name]
            if type(text) is not str or f.name == "value":
                raise _write_error(f"'{f.name}' must be a string" if f.name != "value" else
                                   f"the '_' companion of '{close_tag}' cannot carry the value itself", path)
            ap(f' {f.name}="')
            ap(_escape(text, (path, f.name, None)) if _SPECIAL(text) else text)
            ap('"')
        if value is not None:
            ap(' value="')
            ap(_escape(value, path) if _SPECIAL(value) else value)
            ap('"')
        if not elements:
            ap("/>")
            return
        ap(">")
        self._children(out, obj, elements, path, inner)
        if inner:
            ap(nl)
        ap("</")
        ap(close_tag)
        ap(">")

    def _children(self, out: list[str], obj: dict[str, Any], elements: list[tuple[Field, bool, bool]], path: Any,
                  nl: str) -> None:
        ap = out.append
        deeper = nl + "  " if nl else ""
        for f, has_value, has_ext in elements:
            name = f.name
            kind = f.kind
            value = obj[name] if has_value else None
            if kind == PRIMITIVE:
                if not has_ext and not f.many and f.value_kind == V_STR and type(value) is str:
                    ap(nl)  # the common case: one string value
                    ap(f.open)
                    ap(_escape(value, (path, name, None)) if _SPECIAL(value) else value)
                    ap('"/>')
                    continue
                ext = obj.get("_" + name) if has_ext else None
                if f.many:
                    values = value if value is not None else []
                    exts = ext if ext is not None else []
                    if type(values) is not list or type(exts) is not list:
                        raise _write_error(f"'{name}' must be an array", path)
                    for i in range(max(len(values), len(exts))):
                        v = values[i] if i < len(values) else None
                        x = exts[i] if i < len(exts) else None
                        if v is None and x is None:
                            raise _write_error(f"'{name}[{i}]' has neither a value nor extensions", path)
                        self._primitive(out, f, v, x, (path, name, i), nl, deeper)
                else:
                    self._primitive(out, f, value, ext, (path, name, None), nl, deeper)
            elif kind == COMPLEX:
                layout = f.layout
                if f.many:
                    if type(value) is not list:
                        raise _write_error(f"'{name}' must be an array", path)
                    for i, item in enumerate(value):
                        if type(item) is not dict:
                            raise _write_error(f"'{name}[{i}]' must be an object", path)
                        self._object(out, name, name, item, layout, (path, name, i), nl, deeper)  # type: ignore[arg-type]
                elif type(value) is dict:
                    self._object(out, name, name, value, layout, (path, name, None), nl, deeper)  # type: ignore[arg-type]
                else:
                    raise _write_error(f"'{name}' must be an object", path)
            elif kind == RESOURCE:
                items = value if f.many else [value]
                if type(items) is not list:
                    raise _write_error(f"'{name}' must be an array", path)
                for i, res in enumerate(items):
                    where = (path, name, i if f.many else None)
                    rtype = res.get("resourceType") if type(res) is dict else None
                    rlayout = self.resource_layout(rtype) if isinstance(rtype, str) else None
                    if rlayout is None or not isinstance(rtype, str):
                        raise _write_error("unknown or missing resourceType", where)
                    ap(nl)
                    ap(f"<{name}>")
                    self._object(out, rtype, rtype, res, rlayout, where, deeper, deeper + "  " if deeper else "")
                    ap(nl)
                    ap(f"</{name}>")
            else:  # XHTML
                ap(nl)
                ap(self._div(value, (path, name, None)))

    def _primitive(self, out: list[str], f: Field, value: Any, ext: Any, path: Any, nl: str, inner: str) -> None:
        if ext is not None and type(ext) is not dict:
            raise _write_error("the '_' companion must be an object", path)
        text = None
        if value is not None:
            vk = f.value_kind
            t = type(value)
            if vk == V_STR:
                if t is not str:
                    raise _write_error("must be a string", path)
                text = value
            elif vk == V_BOOL:
                if t is not bool:
                    raise _write_error("must be a boolean", path)
                text = "true" if value else "false"
            elif vk == V_INT:
                if t is not int:
                    raise _write_error("must be an integer", path)
                text = str(value)
            else:
                if t is bool or not (t is int or t is float or t is FhirDecimal) or (t is float and not isfinite(value)):
                    raise _write_error("must be a finite number", path)
                text = decimal_text(value)
        if text is None and not ext:
            raise _write_error("has neither a value nor extensions", path)
        # id first, as HL7's own tools write it; the companion's extensions become children
        self._object(out, f.name, f.name, ext or {}, f.layout, path, nl, inner, text)  # type: ignore[arg-type]

    def _div(self, value: Any, path: Any) -> str:
        """The narrative's XHTML exactly as given, once libxml2 has confirmed it is one well-formed <div> in
        the XHTML namespace (no DOCTYPE, no entity it would have to declare)."""
        if type(value) is not str:
            raise _write_error("must be a string of XHTML", path)
        text = value.strip()
        if not text.startswith("<div"):
            raise _write_error("must be a <div> in the XHTML namespace", path)
        try:
            div = etree.fromstring(text.encode("utf-8"), self._div_parser)
        except (etree.XMLSyntaxError, ValueError):
            raise _write_error("is not well-formed XHTML", path) from None
        if div.tag != _XHTML_DIV:
            raise _write_error("must be a <div> in the XHTML namespace", path)
        if div.getprevious() is not None or div.getnext() is not None or not text.endswith(">"):
            raise _write_error("must be exactly one <div> element", path)
        return text

    # -- reading -----------------------------------------------------------------------------
    def read(self, data: bytes, *, source: str = "<input>", max_depth: int = DEFAULT_MAX_DEPTH,
             max_bytes: int | None = None) -> tuple[dict[str, Any] | None, list[Issue]]:
        """(the resource as a JSON-shaped dict, []) or (None, issues with line and column)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if max_bytes is not None and len(data) > max_bytes:
            return None, [Issue(Severity.FATAL, IssueCode.TOO_COSTLY, f"the XML exceeds {max_bytes} bytes",
                                "XML_TOO_LARGE", position=SourceLocation(source))]
        problem = _prolog_problem(data, source)
        if problem is not None:
            return None, [problem]
        try:
            root = etree.fromstring(data, _safe_parser())
        except etree.XMLSyntaxError as exc:
            line, col = exc.position if exc.position else (exc.lineno, None)
            msg = _LINE_SUFFIX.sub("", exc.msg or "malformed XML")
            return None, [Issue(Severity.FATAL, IssueCode.STRUCTURE, f"not well-formed XML: {msg}", "XML_MALFORMED",
                                position=SourceLocation(source, line or 1, col))]
        reader = _Reader(self, max_depth)
        stray = []
        for text in _STRAY_TEXT(root):  # text where FHIR has only elements and attributes
            owner = text.getparent()
            owner = owner.getparent() if text.is_tail and owner.getparent() is not None else owner
            reader.text_owners.add(owner)
            stray.append(owner)
        resource = reader.resource(root, 1)
        for owner in stray[:100]:
            reader.problem(owner, "XML_TEXT", "text content is not allowed in FHIR elements (values go in value attributes)")
        if not reader.problems:
            return resource, []
        return None, reader.issues(data, root, source)


def _escape(text: str, path: Any) -> str:
    if _ILLEGAL(text):
        raise _write_error("contains characters XML cannot carry", path)
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)


def _write_error(text: str, path: Any) -> FormatError:
    where = _path_text(path)
    return FormatError(Issue(Severity.ERROR, IssueCode.STRUCTURE, f"cannot write XML: {text}", "XML_WRITE",
                             expression=(where,) if where else ()))


def _path_text(path: Any) -> str:
    """('Patient', 'name', 0) nested as the writer builds it → 'Patient.name[0]'."""
    parts: list[str] = []
    while isinstance(path, tuple):
        path, name, index = path
        parts.append(name if index is None else f"{name}[{index}]")
    if path:
        parts.append(path)
    return ".".join(reversed(parts))


def _safe_parser() -> Any:
    """libxml2 with everything dangerous off: no DTD, no entity substitution, no network, no huge trees
    (its own depth and size limits apply). Comments stay (a narrative keeps its own); the reader skips
    them and processing instructions between FHIR elements."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False, remove_pis=False, collect_ids=False)


class _Stop(Exception):
    """Ends the prolog scan."""

    pass


def _prolog_problem(data: bytes, source: str) -> Issue | None:
    """Refuse a DOCTYPE before any parser acts on it (so no entity is ever declared, expanded or fetched).
    Only the prolog is parsed here: expat stops at the first start tag."""
    parser = pyexpat.ParserCreate()
    found: list[tuple[int, int]] = []

    def doctype(*_: Any) -> None:
        found.append((parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))
        raise _Stop

    def start(*_: Any) -> None:
        raise _Stop

    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except _Stop:
        pass
    except pyexpat.ExpatError:
        return None  # lxml reports the syntax error with its position
    if found:
        line, col = found[0]
        at = data.split(b"\n", line)[line - 1].find(b"<!DOCTYPE") if line >= 1 else -1
        col = at + 1 if at >= 0 else col  # expat reports the end of the doctype's name
        return Issue(Severity.FATAL, IssueCode.SECURITY, "a DOCTYPE is not allowed in FHIR XML (no DTDs, no entities)",
                     "XML_DOCTYPE", position=SourceLocation(source, line, col))
    return None


def _element_positions(data: bytes) -> Iterator[tuple[int, int]]:
    """(line, column) of every start tag in document order (1-based), for error reports only."""
    parser = pyexpat.ParserCreate()
    found: list[tuple[int, int]] = []
    parser.StartElementHandler = lambda *_: found.append((parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))
    try:
        parser.Parse(data, True)
    except pyexpat.ExpatError:
        pass
    return iter(found)


class _Reader:
    """One read: walks the lxml tree along the layouts, collecting problems as (element, message id, text)."""

    def __init__(self, codec: XmlCodec, max_depth: int):
        self.codec = codec
        self.max_depth = max_depth
        self.problems: list[tuple[Any, str, str, IssueCode]] = []
        self.text_owners: set[Any] = set()  # elements with stray text (reported once, as XML_TEXT)

    def problem(self, el: Any, message_id: str, text: str, code: IssueCode = IssueCode.STRUCTURE) -> None:
        if len(self.problems) < 100:
            self.problems.append((el, message_id, text, code))

    def issues(self, data: bytes, root: Any, source: str) -> list[Issue]:
        elements = list(root.iter(etree.Element))  # held, so that each element keeps its one proxy object
        index = {id(el): i for i, el in enumerate(elements)}
        positions = list(_element_positions(data))
        out = []
        in_order = sorted(self.problems, key=lambda p: index.get(id(p[0]), -1))  # document order (stable)
        for el, mid, text, code in in_order:
            i = index.get(id(el))
            line, col = positions[i] if i is not None and i < len(positions) else (el.sourceline, None)
            out.append(Issue(Severity.ERROR, code, text, mid, expression=(_fhir_path(el),),
                             position=SourceLocation(source, line, col)))
        return out

    # -- resources and objects
    def resource(self, el: Any, depth: int) -> dict[str, Any] | None:
        tag = el.tag
        if not isinstance(tag, str) or not tag.startswith(_F):
            self.problem(el, "XML_NAMESPACE", f"a resource must be an element in the namespace {FHIR_NS}")
            return None
        rtype = tag[len(_F):]
        layout = self.codec.resource_layout(rtype)
        if layout is None:
            self.problem(el, "XML_UNKNOWN_RESOURCE", f"'{rtype}' is not a FHIR R4 resource type")
            return None
        obj: dict[str, Any] = {"resourceType": rtype}
        self.fill(el, obj, layout, depth)
        return obj

    def fill(self, el: Any, obj: dict[str, Any], layout: Layout, depth: int, attributes: bool = True) -> None:
        """Attributes (unless the caller took them: a primitive's) and child elements of `el` into `obj`, in the
        order and multiplicity the layout allows."""
        if depth > self.max_depth:
            self.problem(el, "XML_TOO_DEEP", f"the XML nests deeper than {self.max_depth} levels", IssueCode.TOO_COSTLY)
            return
        if attributes:
            for name, value in el.items():
                if name in layout.attrs:
                    obj[name] = value
                elif not name.startswith(_XSI):
                    self.problem(el, "XML_UNKNOWN_ATTRIBUTE", f"attribute '{_local(name)}' is not allowed on {layout.name}")
        last = -1
        last_field: Field | None = None
        prim_values: dict[str, tuple[list[Any], list[Any]]] | None = None
        by_tag = layout.by_tag
        for child in el:
            tag = child.tag
            f = by_tag.get(tag)
            if f is None:
                if type(tag) is str or type(child) is etree._Entity:
                    self.unknown(child, layout)
                continue  # a comment or processing instruction
            order = f.order
            if order <= last:
                if order < last:
                    self.problem(child, "XML_ORDER", f"element '{f.name}' is out of order in {layout.name}")
                    continue
                if not f.many or f is not last_field:
                    self.problem(child, "XML_REPEATED", f"element '{f.name}' may occur only once in {layout.name}"
                                 if f is last_field else f"only one of the choices of '{f.name}' may occur in {layout.name}")
                    continue
            last, last_field = order, f
            kind = f.kind
            if kind == PRIMITIVE:
                items = child.items()
                if not f.many and f.value_kind == V_STR and len(items) == 1 and items[0][0] == "value" and not len(child):
                    obj[f.name] = items[0][1]  # the common case: <name value="…"/>
                    continue
                value, ext = self.primitive(child, f, items, depth + 1)
                if f.many:
                    if prim_values is None:
                        prim_values = {}
                    vals, exts = prim_values.setdefault(f.name, ([], []))
                    vals.append(value)
                    exts.append(ext)
                else:
                    if value is not None:
                        obj[f.name] = value
                    if ext is not None:
                        obj["_" + f.name] = ext
            elif kind == COMPLEX:
                sub: dict[str, Any] = {}
                self.fill(child, sub, f.layout, depth + 1)  # type: ignore[arg-type]
                if f.many:
                    obj.setdefault(f.name, []).append(sub)
                else:
                    obj[f.name] = sub
            elif kind == RESOURCE:
                inner = self.wrapped(child, f, depth + 1)
                if inner is not None:
                    if f.many:
                        obj.setdefault(f.name, []).append(inner)
                    else:
                        obj[f.name] = inner
            else:  # XHTML
                obj[f.name] = self.div(child)
        if prim_values:
            for name, (vals, exts) in prim_values.items():
                if any(v is not None for v in vals):
                    obj[name] = vals
                if any(x is not None for x in exts):
                    obj["_" + name] = exts

    def unknown(self, child: Any, layout: Layout) -> None:
        tag = child.tag
        if not isinstance(tag, str):
            self.problem(child, "XML_UNEXPECTED", f"unexpected content in {layout.name} (an entity reference?)")
            return
        local = _local(tag)
        f = layout.fields.get(local)
        if f is not None and f.kind != ATTR:
            ns = XHTML_NS if f.kind == XHTML else FHIR_NS
            self.problem(child, "XML_NAMESPACE", f"element '{local}' must be in the namespace {ns}")
        elif not tag.startswith(_F):
            self.problem(child, "XML_NAMESPACE", f"element '{local}' is not in the namespace {FHIR_NS}")
        else:
            self.problem(child, "XML_UNKNOWN_ELEMENT", f"'{local}' is not an element of {layout.name}")

    def primitive(self, el: Any, f: Field, items: list[tuple[str, str]], depth: int) -> tuple[Any, dict[str, Any] | None]:
        ext: dict[str, Any] | None = None
        if len(items) == 1 and items[0][0] == "value" and not len(el):
            raw = items[0][1]  # <name value="…"/>
        else:
            raw = el.get("value")
            ext = {}
            for name, value in items:
                if name == "value":
                    continue
                af = f.layout.attrs.get(name)  # type: ignore[union-attr]
                if af is not None:
                    ext[name] = value
                elif not name.startswith(_XSI):
                    self.problem(el, "XML_UNKNOWN_ATTRIBUTE", f"attribute '{_local(name)}' is not allowed on '{f.name}'")
            if len(el):
                self.fill(el, ext, f.layout, depth, attributes=False)  # type: ignore[arg-type]
            if not ext:
                ext = None
        if raw is None:
            if ext is None and el not in self.text_owners:
                self.problem(el, "XML_NO_VALUE", f"'{f.name}' has neither a value attribute nor extensions")
            return None, ext
        vk = f.value_kind
        if vk == V_STR:
            return raw, ext
        if vk == V_BOOL:
            if raw in ("true", "false"):
                return raw == "true", ext
            self.problem(el, "XML_VALUE", f"the value of '{f.name}' is not a boolean (true or false)", IssueCode.VALUE)
        elif vk == V_INT:
            if _INT_RE.match(raw):
                return int(raw), ext
            self.problem(el, "XML_VALUE", f"the value of '{f.name}' is not an integer", IssueCode.VALUE)
        else:
            if _INT_RE.match(raw):  # as a JSON parser reads it: an integer literal is an int
                return int(raw), ext
            if _DEC_RE.match(raw):
                return FhirDecimal(raw), ext
            self.problem(el, "XML_VALUE", f"the value of '{f.name}' is not a decimal", IssueCode.VALUE)
        return None, ext

    def wrapped(self, el: Any, f: Field, depth: int) -> dict[str, Any] | None:
        if el.attrib:
            self.problem(el, "XML_UNKNOWN_ATTRIBUTE", f"'{f.name}' takes no attributes")
        inner = [c for c in el if type(c.tag) is str or type(c) is etree._Entity]
        if (el.text is not None and not el.text.isspace()) or len(inner) != 1:
            self.problem(el, "XML_RESOURCE_WRAPPER", f"'{f.name}' must contain exactly one resource element")
            return None
        return self.resource(inner[0], depth + 1)

    def div(self, el: Any) -> str:
        return etree.tostring(el, encoding=str, with_tail=False)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _fhir_path(el: Any) -> str:
    """A FHIRPath-like location of an element (names and indexes only, never values)."""
    parts = []
    node = el
    while node is not None:
        tag = node.tag if isinstance(node.tag, str) else "?"
        name = _local(tag)
        parent = node.getparent()
        if parent is not None and isinstance(tag, str):
            same = [c for c in parent if c.tag == tag]
            if len(same) > 1:
                name += f"[{same.index(node)}]"
        parts.append(name)
        node = parent
    return ".".join(reversed(parts))


def locate_xml(raw: bytes, expressions: Sequence[str]) -> positions.Located:
    """The positions.Locate for FHIR XML: FHIRPath expression (as the validator writes it) → line and column of
    the element's start tag (or of its deepest existing ancestor: an id or url attribute, a missing element)."""
    problem = _prolog_problem(raw, "")
    if problem is not None and problem.position is not None:
        return positions.Located({}, syntax_error=((problem.position.line or 1, problem.position.column or 1),
                                                   problem.message))
    try:
        root = etree.fromstring(raw, _safe_parser())
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (exc.lineno or 1, 1)
        return positions.Located({}, syntax_error=((line, col), _LINE_SUFFIX.sub("", exc.msg or "malformed XML")))
    elements = list(root.iter(etree.Element))  # held, so that each element keeps its one proxy object
    index = {id(el): i for i, el in enumerate(elements)}
    starts = list(_element_positions(raw))

    def at(el: Any) -> tuple[int, int]:
        i = index[id(el)]
        return starts[i] if i < len(starts) else (el.sourceline or 1, 1)

    return positions.Located({e: at(_element_at(root, positions.segments(e))) for e in expressions}, root=at(root))


def _element_at(root: Any, steps: list[tuple[str, int | None]]) -> Any:
    node = root
    for name, index in steps:
        kids = _named(node, name)
        if not kids:
            inner = [c for c in node if type(c.tag) is str]
            if len(inner) == 1 and _local(inner[0].tag)[:1].isupper():  # a resource in its wrapper element
                node = inner[0]
                kids = _named(node, name)
        if not kids or (index is not None and index >= len(kids)):
            break
        node = kids[index or 0]
    return node


def _named(node: Any, name: str) -> list[Any]:
    """Children named `name`, or a choice of it (`value` → `valueQuantity`)."""
    out = []
    for child in node:
        if type(child.tag) is str:
            local = _local(child.tag)
            if local == name or (local.startswith(name) and local[len(name):len(name) + 1].isupper()):
                out.append(child)
    return out


positions.LOCATORS["xml"] = locate_xml

_default: XmlCodec | None = None
_default_lock = threading.Lock()


def default_codec() -> XmlCodec:
    """The codec over hl7.fhir.r4.core from the package cache (base definitions are all XML needs)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from exporter.fhir.packages import check_package
                from exporter.settings import get_settings

                store = DefinitionStore()
                store.add_source(check_package(get_settings().package_cache))
                _default = XmlCodec(store)
    return _default


def to_xml(resource: dict[str, Any], *, pretty: bool = False) -> bytes:
    """A resource as FHIR XML with the default codec (for callers that have no codec of their own)."""
    return default_codec().write(resource, pretty=pretty)
