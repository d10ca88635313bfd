"""Snapshot generation for StructureDefinitions that carry only a differential (layer L1).

`generate_snapshot(sd, resolve)` returns the snapshot elements of a constraint profile: the base
definition's snapshot (itself generated first when the base has none) with the differential merged
into it, following https://hl7.org/fhir/R4/profiling.html and the behaviour of the HL7 tooling
(HAPI `ProfileUtilities.generateSnapshot`) where the specification leaves details open:

- Both lists become trees (element → children, and → slices); a differential element is matched by
  its `id` (computed from path and slice names when absent) against the base, name by name.
- A differential element overrides the base element's properties; cardinality may only narrow
  (a wider `min`/`max` is an error; a slice may lower `min`), types must be allowed by the base
  (`Element`/`*` allow any, `Resource` any resource), a `required` binding cannot be weakened,
  constraints, conditions, aliases, codes, examples and mappings are added to the base's.
- Where the differential constrains below an element whose children the base does not unfold,
  the children come from the element's type: its profile's snapshot when the type names one,
  otherwise the core datatype; for a `contentReference` from the referenced element.
- Slices: a slice named in the base is merged with the differential's slice of that name; a new
  slice starts as a copy of the sliced element after the differential (children included,
  slicing removed, cardinality of the base element), and follows the base's slices. Slicing an element
  needs a `slicing` (extensions get the default url slicing); a closed slicing cannot gain slices.
- A renamed choice (`Observation.valueQuantity` against `Observation.value[x]`) is a type slice
  `value[x]:valueQuantity`; unless the differential says otherwise, `value[x]` gets the type
  slicing (`type` on `$this`, closed) and only the renamed types — the shape of the snapshots
  shipped in hl7.fhir.r4.core 4.0.1.
- `id`, `path` and `base` of every element are set (`base` is kept from the element's origin).

Problems raise `SnapshotError` carrying one issue that names the StructureDefinition and the
element (`SNAP_*` message ids). `snapshot_differences()` is the comparison used to check generated
snapshots against shipped ones (see docs/validation.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.fhir.defmessages import MESSAGES, value_text
from exporter.issues import ExporterError, SourceLocation, error

CORE = "http://hl7.org/fhir/StructureDefinition/"
Resolve = Callable[[str], "dict[str, Any] | None"]

_EXTENSION_SLICING = {"discriminator": [{"type": "value", "path": "url"}], "ordered": False, "rules": "open"}
_TYPE_SLICING = {"discriminator": [{"type": "type", "path": "$this"}], "ordered": False, "rules": "closed"}
_REPLACED_FAMILIES = ("fixed", "pattern", "defaultValue", "minValue", "maxValue")
# JSON of the R4 primitive datatypes (every other datatype is a JSON object)
_PRIMITIVE_JSON: dict[str, tuple[type, ...]] = {
    "boolean": (bool,), "integer": (int,), "unsignedInt": (int,), "positiveInt": (int,), "decimal": (int, float),
    **{t: (str,) for t in ("base64Binary", "canonical", "code", "date", "dateTime", "id", "instant", "markdown", "oid",
                           "string", "time", "uri", "url", "uuid", "xhtml")}}
_JSON_KIND = {(bool,): "true or false", (int,): "a JSON integer", (int, float): "a JSON number", (str,): "a JSON string",
              (dict,): "a JSON object"}
_ADDED_LISTS = {"alias": None, "condition": None, "code": None, "example": None, "mapping": None}
_NOT_COPIED = frozenset({"id", "path", "base", "slicing", "min", "max", "type", "binding", "constraint",
                         "extension", "modifierExtension", "contentReference"})
_BINDABLE = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})


class SnapshotError(ExporterError):
    """A snapshot cannot be generated; the issue names the StructureDefinition and the element."""


@dataclass
class _Node:
    """One element of a snapshot tree: its definition, its children and (if sliced) its slices."""

    el: dict[str, Any]
    name: str
    children: list[_Node] = field(default_factory=list)
    slices: list[_Node] = field(default_factory=list)

    def copy(self) -> _Node:
        return _Node(copy.deepcopy(self.el), self.name, [c.copy() for c in self.children],
                     [s.copy() for s in self.slices])


@dataclass
class _Diff:
    """One name in the differential tree; `el` is None where the differential skips a level."""

    name: str
    el: dict[str, Any] | None = None
    children: dict[str, _Diff] = field(default_factory=dict)
    slices: dict[str, _Diff] = field(default_factory=dict)
    renamed: list[str] = field(default_factory=list)  # renamed choices folded in as type slices

    def is_empty(self) -> bool:
        return self.el is None and not self.children and not self.slices


def _segments(eid: str) -> list[tuple[str, str | None]]:
    """'Obs.component:sys.code' -> [('Obs', None), ('component', 'sys'), ('code', None)]."""
    out = []
    for seg in eid.split("."):
        name, colon, slice_name = seg.partition(":")
        out.append((name, slice_name if colon else None))
    return out


@dataclass(frozen=True)
class _Obj:
    """The JSON shape of an object: its properties' shapes (others are not looked at), required ones."""

    fields: dict[str, Any]
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class _List:
    item: Any


# The R4 ElementDefinition properties snapshot generation and the validator rely on (texts such as
# `short` are only copied), as JSON shapes: str (a non-empty string), int, bool, dict (any object),
# a frozenset (a string of that code system), _Obj, _List. One definition for differentials, carried
# snapshots and bases.
_DICTS = _List(dict)
_EXTENSIONS = _DICTS
_ELEMENT = _Obj({
    "id": str, "path": str, "sliceName": str, "sliceIsConstraining": bool,
    "alias": _List(str), "condition": _List(str), "code": _DICTS,
    "min": int, "max": str, "contentReference": str, "maxLength": int,
    "mustSupport": bool, "isModifier": bool, "isSummary": bool,
    "base": _Obj({"path": str, "min": int, "max": str}, ("path", "min", "max")),
    "slicing": _Obj({"discriminator": _List(_Obj({"type": frozenset({"value", "exists", "pattern", "type", "profile"}),
                                                  "path": str}, ("type", "path"))),
                     "description": str, "ordered": bool,
                     "rules": frozenset({"closed", "open", "openAtEnd"})}, ("rules",)),
    "type": _List(_Obj({"code": str, "profile": _List(str), "targetProfile": _List(str),
                        "aggregation": _List(frozenset({"contained", "referenced", "bundled"})),
                        "versioning": frozenset({"either", "independent", "specific"}), "extension": _EXTENSIONS},
                       ("code",))),
    "binding": _Obj({"strength": frozenset({"required", "extensible", "preferred", "example"}), "description": str,
                     "valueSet": str, "extension": _EXTENSIONS}, ("strength",)),
    "constraint": _List(_Obj({"key": str, "requirements": str, "severity": frozenset({"error", "warning"}),
                              "human": str, "expression": str, "xpath": str, "source": str,
                              "extension": _EXTENSIONS}, ("key", "severity", "human"))),
    "example": _DICTS, "mapping": _DICTS, "extension": _EXTENSIONS, "modifierExtension": _EXTENSIONS,
}, ("path",))
_KINDS = {str: "a non-empty JSON string", int: "a JSON integer", bool: "true or false", dict: "a JSON object"}


def _shape(value: Any, shape: Any) -> tuple[str, str] | None:
    """What is wrong with `value` against `shape`: (where below `value`, what must hold); None: nothing.
    Only called often on well-formed definitions, so the text is built only for a problem."""
    if type(shape) is _Obj:
        if type(value) is not dict:
            return "", "must be a JSON object"
        for k in shape.required:
            if k not in value:
                return "", f"has no {k}"
        fields = shape.fields
        for k, v in value.items():
            sub = fields.get(k)
            if sub is None or (type(v) is sub and (sub is not str or (v and not v.isspace()))) \
                    or (sub is _DICTS and type(v) is list and v and all(type(x) is dict for x in v)):
                continue  # the common cases, without a call
            if problem := _shape(v, sub):
                return f".{k}{problem[0]}", problem[1]
        return None
    if type(shape) is _List:
        if type(value) is not list or not value:
            return "", "must be a non-empty JSON array"
        for i, v in enumerate(value):
            if problem := _shape(v, shape.item):
                return f"[{i}]{problem[0]}", problem[1]
        return None
    if type(shape) is frozenset:
        return None if type(value) is str and value in shape else ("", f"must be one of {', '.join(sorted(shape))}")
    if type(value) is shape and (shape is not str or (value and not value.isspace())):
        return None
    return "", f"must be {_KINDS[shape]}"


def _shape_problem(e: Any) -> str | None:
    """What is wrong with the JSON shape of an element definition (None: nothing we rely on)."""
    if not isinstance(e, dict):
        return "an element definition is not a JSON object"
    if not isinstance(e.get("path"), str) or not e["path"] or "" in e["path"].split("."):
        return "an element definition has no valid path"
    problem = _shape(e, _ELEMENT)
    if problem:
        return f"{problem[0].lstrip('.')} {problem[1]}"
    if ("min" in e and e["min"] < 0) or ("max" in e and not (e["max"] == "*" or e["max"].isdigit())):
        return f"the cardinality is malformed (min {value_text(e.get('min'))}, max {value_text(e.get('max'))})"
    if "base" in e and (e["base"]["min"] < 0 or not (e["base"]["max"] == "*" or e["base"]["max"].isdigit())):
        return "the base cardinality is malformed"
    return None


def _ids_from_paths(elements: list[dict[str, Any]]) -> list[str]:
    """Element ids of a list whose elements may lack them (computed from path and sliceName, the way
    the HL7 tooling does: a slice entry opens a scope for the elements below its path)."""
    if all(type(e.get("id")) is str and e["id"] for e in elements):
        return [e["id"] for e in elements]  # (shipped snapshots: every element has its id)
    current: dict[str, str | None] = {}  # path -> slice name in effect
    ids = []
    for e in elements:
        path = e.get("path") or ""
        for p in [p for p in current if p == path or p.startswith(path + ".")]:
            del current[p]
        current[path] = e.get("sliceName")
        if e.get("id"):
            ids.append(e["id"])
            continue
        parts = path.split(".")
        segs = []
        for i in range(len(parts)):
            prefix = ".".join(parts[: i + 1])
            sl = current.get(prefix)
            segs.append(parts[i] + (f":{sl}" if sl else ""))
        ids.append(".".join(segs))
    return ids


def _fhir_type(t: dict[str, Any]) -> str | None:
    """A type's code; a FHIRPath system type (`Extension.url`) counts as the FHIR type it stands for."""
    code = t.get("code")
    if isinstance(code, str) and code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension") or []:
            if ext.get("url") == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type":
                return ext.get("valueUrl") or ext.get("valueUri") or code
    return code


def _is_slice_id(eid: str) -> bool:
    """Whether an element id names a slice ('Obs.component:sys'), so that its slices are re-slices."""
    return ":" in eid.rsplit(".", 1)[-1]


def _discriminator_text(discriminators: list[tuple[Any, Any]]) -> str:
    """[('value', 'url')] -> 'value:url' (as FHIR shorthand writes them)."""
    return ", ".join(f"{t}:{p}" for t, p in discriminators) or "none"


def _larger_max(derived: str, base: str) -> bool:
    if base == "*":
        return False
    if derived == "*":
        return True
    return int(derived) > int(base)


def carried_elements(sd: dict[str, Any]) -> Any:
    """The element list of the snapshot `sd` carries (as found: maybe malformed); None when it has none."""
    snapshot = sd.get("snapshot")
    return (snapshot.get("element") if isinstance(snapshot, dict) else snapshot) or None


def _parent_ids(eid: str) -> tuple[str | None, str]:
    """Where element `eid` hangs in its snapshot: the element it slices (None: not a slice) and its parent."""
    segs = _segments(eid)
    parent_id = ".".join(n + (f":{s}" if s else "") for n, s in segs[:-1])
    name, slice_name = segs[-1]
    if not slice_name:
        return None, parent_id
    return parent_id + "." + name + (f":{slice_name.rsplit('/', 1)[0]}" if "/" in slice_name else ""), parent_id


def _value_family(key: str) -> str | None:
    return next((f for f in _REPLACED_FAMILIES if key.startswith(f)), None)


def _value_datatype(key: str, family: str) -> str:
    """`fixedCode` -> 'code', `patternCodeableConcept` -> 'CodeableConcept' ('' when no datatype is named)."""
    suffix = key[len(family):]
    if not suffix[:1].isupper():
        return ""
    primitive = suffix[:1].lower() + suffix[1:]
    return primitive if primitive in _PRIMITIVE_JSON else suffix


def _value_problem(key: str, value: Any, types: Any) -> str | None:
    """What is wrong with a fixed[x]/pattern[x]/defaultValue[x]/minValue[x]/maxValue[x] property of an
    element typed `types`: its datatype is none of the element's, or its JSON is not that datatype's."""
    family = _value_family(key)
    assert family is not None
    datatype = _value_datatype(key, family)
    if not datatype:
        return f"{key} does not name a datatype ({family}[x] is written {family}<Type>)"
    codes = {c for c in (_fhir_type(t) for t in types or [] if isinstance(t, dict)) if isinstance(c, str)}
    system = any(c.startswith("http://hl7.org/fhirpath/System.") for c in codes)
    if codes and datatype not in codes and not codes & {"*", "Element"} and not (system and datatype in _PRIMITIVE_JSON):
        return f"{key}: the element has type {', '.join(sorted(codes))}, not {datatype}"
    kinds = _PRIMITIVE_JSON.get(datatype, (dict,))
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        return f"{key} must be {_JSON_KIND[kinds]} (the JSON of a {datatype}), not {_json_kind(value)}"
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {str: "a string", int: "a number", float: "a number", dict: "an object", list: "an array"}.get(
        type(value), "null")


def _first_malformed(elements: list[Any]) -> tuple[str, str] | None:
    """(element id — or path, or position —, problem) of the first element of the wrong JSON shape."""
    for i, e in enumerate(elements):
        problem = _shape_problem(e)
        if problem:
            names = [e.get(k) for k in ("id", "path")] if isinstance(e, dict) else []
            return next((n for n in names if isinstance(n, str) and n), f"element[{i}]"), problem
    return None


def _snapshot_problem(elements: Any) -> tuple[str, str | None, str] | None:
    """(message id, element, text) of the first problem of a snapshot's element list, None when it is
    well-formed: every element of the right JSON shapes, the root first, every element after the one
    it belongs to (its parent, or the element it slices), ids that match paths, min at most max,
    values of the element's types. What the tree building here and the validator's compiler rely on."""
    if not isinstance(elements, list) or not elements:
        return "SNAP_MALFORMED", None, "snapshot.element is not a non-empty JSON array"
    bad = _first_malformed(elements)
    if bad:
        return "SNAP_MALFORMED", *bad
    seen: set[str] = set()
    for eid, e in zip(_ids_from_paths(elements), elements, strict=True):
        segs = _segments(eid)
        if ".".join(n for n, _ in segs) != e["path"] or any(s == "" for _, s in segs):
            return "SNAP_MALFORMED", eid, f"element id {eid} does not match its path {e['path']}"
        if eid in seen:
            return "SNAP_MALFORMED", eid, f"element {eid} appears twice"
        if not seen:
            if len(segs) != 1 or segs[0][1] is not None:
                return "SNAP_MALFORMED", eid, f"the first element {eid} is not the root"
        else:
            holder, parent_id = _parent_ids(eid)
            if holder not in seen and parent_id not in seen:
                return "SNAP_MALFORMED", eid, f"element {eid} comes without (or before) the element it belongs to"
        seen.add(eid)
        if e.get("max", "*") != "*" and e.get("min", 0) > int(e["max"]):
            return "SNAP_MALFORMED", eid, f"min {e.get('min')} is above max {e['max']}"
        problem = next((p for k, v in e.items() if k.startswith(_REPLACED_FAMILIES)
                        and (p := _value_problem(k, v, e.get("type")))), None)
        if problem:
            return "SNAP_VALUE_TYPE", eid, problem
    return None


def check_snapshot(sd: dict[str, Any], origin: Callable[[str], str | None] = lambda url: None) -> None:
    """Raise `SnapshotError` (SNAP_MALFORMED, SNAP_VALUE_TYPE) naming the element when the snapshot
    `sd` carries is malformed, so that what reads snapshot elements only ever sees well-formed ones."""
    problem = _snapshot_problem(carried_elements(sd))
    if problem:
        message_id, element, text = problem
        raise _error(sd, origin, message_id, element, text, what="malformed snapshot in")


def _error(sd: dict[str, Any], origin: Callable[[str], str | None], message_id: str, element: str | None,
           message: str, what: str = "cannot generate the snapshot of") -> SnapshotError:
    """The one issue about `sd` ("<what> StructureDefinition <url>: <message>"), at the file it came from."""
    url = sd.get("url") or sd.get("id") or "<StructureDefinition without url>"
    where = origin(url) if isinstance(url, str) else None
    text = f"{what} StructureDefinition {url if isinstance(url, str) else value_text(url)}: {message}"
    return SnapshotError(error(MESSAGES[message_id][0], text, message_id, expression=(element,) if element else (),
                               location=SourceLocation(where) if where else None))


class _Generator:
    """Generates the snapshot of one StructureDefinition (recursing into bases and types)."""

    def __init__(self, resolve: Resolve, origin: Callable[[str], str | None], stack: tuple[str, ...],
                 trees: dict[str, tuple[_Node, dict[str, _Node]]] | None = None):
        self.resolve = resolve
        self.origin = origin
        self.stack = stack
        self.trees = {} if trees is None else trees  # read-only trees of bases and types, by canonical
        self.sd: dict[str, Any] = {}
        self.base_index: dict[str, _Node] = {}

    # -- errors ----------------------------------------------------------------------------------
    def fail(self, message_id: str, element: str | None, message: str) -> SnapshotError:
        return _error(self.sd, self.origin, message_id, element, message)

    # -- structures --------------------------------------------------------------------------------
    def structure(self, url: str, element: str | None, what: str) -> dict[str, Any]:
        """A StructureDefinition with a snapshot (generated when it has none)."""
        sd = self.resolve(url)
        if sd is None:
            sd = self.resolve(url.split("|", 1)[0]) if "|" in url else None
        if sd is None:
            raise self.fail({"base": "SNAP_UNKNOWN_STRUCTURE", "profile": "SNAP_PROFILE_UNKNOWN"}.get(what, "SNAP_TYPE_UNKNOWN"),
                            element, f"{what} {url} is not a known StructureDefinition")
        if not carried_elements(sd):
            if sd.get("url") in self.stack:
                raise self.fail("SNAP_CIRCULAR", element, "circular base/type references: "
                                + " -> ".join((*self.stack, str(sd.get("url")))))
            sd["snapshot"] = {"element": _Generator(self.resolve, self.origin, self.stack, self.trees).run(sd)}
        return sd

    def tree(self, sd: dict[str, Any], element: str | None = None) -> tuple[_Node, dict[str, _Node]]:
        """The snapshot of `sd` as a tree (never changed: merging copies what it takes) and its ids."""
        key = f"{sd.get('url')}|{sd.get('version')}"
        if key not in self.trees:
            self.trees[key] = self._tree(sd, element)
        return self.trees[key]

    def _tree(self, sd: dict[str, Any], element: str | None) -> tuple[_Node, dict[str, _Node]]:
        elements = carried_elements(sd)
        problem = _snapshot_problem(elements)
        if problem:
            _, where, text = problem
            raise self.fail("SNAP_BAD_BASE", element, f"the snapshot of {value_text(sd.get('url'))} is malformed: "
                            + (f"{where}: {text}" if where else text))
        index: dict[str, _Node] = {}
        root: _Node | None = None
        for eid, e in zip(_ids_from_paths(elements), elements, strict=True):
            el = dict(e)  # shallow: tree elements are only ever read, and copied deeply when used
            el.setdefault("base", {"path": e.get("path"), "min": e.get("min", 0), "max": e.get("max", "*")})
            node = _Node(el, _segments(eid)[-1][0])
            index[eid] = node
            if root is None:
                root = node
                continue
            holder, parent_id = _parent_ids(eid)  # one of them is there (_snapshot_problem)
            if holder is not None and holder in index:
                index[holder].slices.append(node)
            else:
                index[parent_id].children.append(node)
        assert root is not None  # _snapshot_problem: a non-empty list
        return root, index

    def differential(self) -> _Diff:
        elements = self.sd["differential"]["element"]
        bad = _first_malformed(elements)
        if bad:
            raise self.fail("SNAP_MALFORMED", bad[0], f"differential: {bad[1]}")
        ids = _ids_from_paths(elements)
        root: _Diff | None = None
        for eid, e in zip(ids, elements, strict=True):
            segs = _segments(eid)
            path = ".".join(n for n, _ in segs)
            if e.get("path") != path:
                raise self.fail("SNAP_ID_PATH", eid, f"differential element id {eid} does not match its path {e.get('path')}")
            if e.get("sliceName") not in (None, segs[-1][1]):
                raise self.fail("SNAP_ID_PATH", eid, f"differential element id {eid} does not match its sliceName {e.get('sliceName')}")
            if root is None:
                root = _Diff(segs[0][0])
            if segs[0][0] != root.name or segs[0][1] is not None:
                raise self.fail("SNAP_PATH_UNKNOWN", eid, f"differential element {eid} is not inside {root.name}")
            node = root
            for name, slice_name in segs[1:]:
                node = node.children.setdefault(name, _Diff(name))
                if slice_name is not None:
                    for part in slice_name.split("/"):
                        node = node.slices.setdefault(part, _Diff(name))
            if node.el is not None:
                raise self.fail("SNAP_DUPLICATE", eid, f"differential element {eid} appears twice")
            node.el = e
        return root or _Diff("")

    # -- generation --------------------------------------------------------------------------------
    def run(self, sd: dict[str, Any]) -> list[dict[str, Any]]:
        self.sd = sd
        url = sd.get("url")
        self.stack = (*self.stack, str(url))
        differential = sd.get("differential")
        if not isinstance(differential, dict) or not differential.get("element"):
            raise self.fail("SNAP_NO_DIFFERENTIAL", None, "it has neither a snapshot nor a differential")
        if not isinstance(differential["element"], list):
            raise self.fail("SNAP_MALFORMED", None, "differential.element is not a list")
        if sd.get("derivation", "constraint") != "constraint":
            raise self.fail("SNAP_NOT_SUPPORTED", None, f"derivation '{value_text(sd.get('derivation'))}' is not supported "
                            "(only constraint profiles get a generated snapshot)")
        base_url = sd.get("baseDefinition")
        if not isinstance(base_url, str) or not base_url:
            raise self.fail("SNAP_UNKNOWN_STRUCTURE", None, "it has no baseDefinition")
        base_sd = self.structure(base_url, None, "base")
        base_root, self.base_index = self.tree(base_sd)
        diff = self.differential()
        if diff.name and diff.name != base_root.name:
            raise self.fail("SNAP_PATH_UNKNOWN", diff.name,
                            f"the differential describes {diff.name}, the base {base_url} describes {base_root.name}")
        if sd.get("type") and sd["type"] != base_root.name and base_root.name not in ("Element", "BackboneElement"):
            raise self.fail("SNAP_PATH_UNKNOWN", None,
                            f"type {value_text(sd['type'])} does not match the base's {base_root.name}")
        root = self.merge(base_root, diff, base_root.name)
        out: list[dict[str, Any]] = []
        _emit(root, None, None, out)
        return out

    def merge(self, base: _Node, diff: _Diff | None, eid: str, *, is_slice: bool = False, in_slice: bool = False) -> _Node:
        """The snapshot subtree of `base` constrained by `diff` (`eid`: the element id, for errors).
        `in_slice`: inside a slice's own elements, where a renamed choice narrows `[x]` in place."""
        if diff is None or diff.is_empty():
            return base.copy()
        out = _Node(copy.deepcopy(base.el), base.name)
        if not is_slice and ((diff.el is not None and "slicing" in diff.el) or (diff.slices and "slicing" in base.el)):
            self.sliceable(base, diff, eid)  # slices without any slicing: SNAP_SLICE_WITHOUT_SLICING, below
        if diff.el is not None:
            self.apply(out.el, diff.el, eid, is_slice=is_slice)
            if "slicing" in diff.el:
                self.slicing(out.el, diff.el["slicing"], eid)
        children = base.children
        if diff.children and not children:
            children = self.unfold(out.el, diff, eid)
            in_slice = False
        dchildren = self.fold_renamed_choices(children, diff, eid, in_slice)
        for child in children:
            out.children.append(self.merge(child, dchildren.get(child.name), f"{eid}.{child.name}", in_slice=in_slice))
        if diff.renamed:
            self.type_slicing(out.el, diff, eid)
        self.merge_slices(base, out, diff, eid)
        return out

    def fold_renamed_choices(self, children: list[_Node], diff: _Diff, eid: str, in_slice: bool) -> dict[str, _Diff]:
        """Differential children by base name; `valueQuantity` becomes the type slice of `value[x]`
        (inside a slice: a constraint of `value[x]` to Quantity)."""
        names = {c.name: c for c in children}
        out: dict[str, _Diff] = {}
        for name, d in diff.children.items():
            if name in names:
                target = out.setdefault(name, _Diff(name))
                if target.el is not None and d.el is not None:
                    raise self.fail("SNAP_DUPLICATE", f"{eid}.{name}", f"{name} is given twice (once as a renamed choice)")
                target.el = d.el if d.el is not None else target.el
                target.children.update(d.children)
                target.slices.update(d.slices)
                continue
            choice = next((c for c in children if c.name.endswith("[x]") and name.startswith(c.name[:-3])
                           and len(name) > len(c.name) - 3), None)
            if choice is None:
                raise self.fail("SNAP_PATH_UNKNOWN", f"{eid}.{name}",
                                f"{eid}.{name} is not an element of the base definition")
            suffix = name[len(choice.name) - 3:]
            tcode = next((t.get("code") for t in choice.el.get("type") or []
                          if (t.get("code") or "")[:1].upper() + (t.get("code") or "")[1:] == suffix), None)
            if tcode is None:
                raise self.fail("SNAP_TYPE_NOT_ALLOWED", f"{eid}.{name}",
                                f"{name}: type {suffix} is not one of the types of {eid}.{choice.name}")
            holder = out.setdefault(choice.name, _Diff(choice.name))
            el = dict(d.el or {})
            el.setdefault("type", [copy.deepcopy(t) for t in choice.el.get("type") or [] if t.get("code") == tcode])
            if in_slice:
                if holder.el is not None:
                    raise self.fail("SNAP_DUPLICATE", f"{eid}.{name}", f"{name} and {choice.name} are both given")
                holder.el = el
                holder.children.update(d.children)
                holder.slices.update(d.slices)
                continue
            if name in holder.slices:
                raise self.fail("SNAP_DUPLICATE", f"{eid}.{name}", f"{name} is given twice")
            el.setdefault("sliceName", name)
            holder.slices[name] = _Diff(choice.name, el, d.children, d.slices)
            holder.renamed.append(name)
        return out

    def sliceable(self, base: _Node, diff: _Diff, eid: str) -> None:
        """Only an element that repeats can be sliced, or a choice `[x]` (by type); like the HL7 tooling,
        also a type slicing, or a differential that slices the element and sets its max to 1."""
        if "." not in eid:
            raise self.fail("SNAP_SLICING", eid, "slicing is not allowed at the root of a profile")
        most = str(base.el.get("max", "*"))
        if most == "*" or int(most) > 1 or base.name.endswith("[x]"):
            return
        d = diff.el or {}
        discriminators = [(x.get("type"), x.get("path")) for x in (d.get("slicing") or {}).get("discriminator") or []]
        if "slicing" in d and (d.get("max") == "1" or discriminators == [("type", "$this")]):
            return
        raise self.fail("SNAP_SLICE_NOT_REPEATING", eid, f"{eid} does not repeat (max {most}), so it cannot be sliced")

    def slicing(self, el: dict[str, Any], dslicing: Any, eid: str) -> None:
        """The differential's slicing of an element; a base slicing may only be narrowed."""
        if not isinstance(dslicing, dict) or dslicing.get("rules") not in (None, "open", "closed", "openAtEnd"):
            raise self.fail("SNAP_SLICING", eid, "slicing is not a valid slicing definition")
        old = el.get("slicing")
        if old is None:
            el["slicing"] = copy.deepcopy(dslicing)
            return
        discr = [(d.get("type"), d.get("path")) for d in dslicing.get("discriminator") or []]
        base_discr = [(d.get("type"), d.get("path")) for d in old.get("discriminator") or []]
        if discr and base_discr and discr[: len(base_discr)] != base_discr:
            raise self.fail("SNAP_SLICING", eid, f"the discriminators {_discriminator_text(discr)} differ from the "
                            f"base's {_discriminator_text(base_discr)}")
        if "ordered" in dslicing and "ordered" in old and dslicing["ordered"] != old["ordered"] and old["ordered"]:
            raise self.fail("SNAP_SLICING", eid, "the base slicing is ordered; a profile cannot unorder it")
        if old.get("rules") == "closed" and dslicing.get("rules") not in (None, "closed"):
            raise self.fail("SNAP_SLICING", eid, f"the base slicing is closed; a profile cannot make it {dslicing.get('rules')}")
        merged = copy.deepcopy(old)
        for key in ("ordered", "rules", "description"):
            if key in dslicing:
                merged[key] = dslicing[key]
        if len(discr) > len(base_discr):
            merged["discriminator"] = copy.deepcopy(dslicing["discriminator"])
        el["slicing"] = merged

    def type_slicing(self, el: dict[str, Any], diff: _Diff, eid: str) -> None:
        """`value[x]` whose differential used renamed choices: unless already sliced, it gets the
        type slicing and (unless the differential types it) only the renamed types."""
        if "slicing" in el:
            return
        el["slicing"] = copy.deepcopy(_TYPE_SLICING)
        if diff.el is None or "type" not in diff.el:
            el["type"] = [copy.deepcopy(t) for name in diff.renamed for t in diff.slices[name].el["type"]]  # type: ignore[index]

    def merge_slices(self, base: _Node, out: _Node, diff: _Diff, eid: str) -> None:
        """Slices of `out`: the base's, each merged with the differential's of that name, then the
        differential's new ones. Slices of a slice (re-slicing) are named `slice/reslice`."""
        base_slices = {str(s.el.get("sliceName")).rsplit("/", 1)[-1]: s for s in base.slices}
        dslices = diff.slices
        if dslices and "slicing" not in out.el:
            if base.name in ("extension", "modifierExtension"):
                out.el["slicing"] = copy.deepcopy(_EXTENSION_SLICING)
            else:
                first = next(iter(dslices))
                raise self.fail("SNAP_SLICE_WITHOUT_SLICING", f"{eid}:{first}",
                                f"slice {first} of {eid}, but neither the differential nor the base defines slicing for {eid}")
        for name, s in base_slices.items():
            out.slices.append(self.merge(s, dslices.get(name), f"{eid}/{name}" if _is_slice_id(eid) else f"{eid}:{name}",
                                         is_slice=True, in_slice=True))
        new = [n for n in dslices if n not in base_slices]
        if new and (base.el.get("slicing") or {}).get("rules") == "closed":
            raise self.fail("SNAP_SLICE_CLOSED", f"{eid}:{new[0]}",
                            f"the base closes the slicing of {eid}, so slice {new[0]} cannot be added")
        for name in new:
            template = _Node(copy.deepcopy(out.el), out.name, [c.copy() for c in out.children])
            template.el.pop("slicing", None)
            template.el["min"] = base.el.get("min", 0)
            template.el["max"] = base.el.get("max", "*")
            template.el["sliceName"] = f"{out.el['sliceName']}/{name}" if out.el.get("sliceName") else name
            sliced = self.merge(template, dslices[name], f"{eid}/{name}" if _is_slice_id(eid) else f"{eid}:{name}",
                                is_slice=True, in_slice=True)
            if base.slices or "slicing" in base.el:
                self.extension_children(sliced, f"{eid}:{name}")
            out.slices.append(sliced)

    def extension_children(self, node: _Node, eid: str) -> None:
        """A new extension slice added to an element the base already slices shows the extension
        definition's elements (as the HL7 tooling does)."""
        types = node.el.get("type") or []
        if node.children or len(types) != 1 or types[0].get("code") != "Extension" or len(types[0].get("profile") or []) != 1:
            return
        if self.resolve(types[0]["profile"][0]) is None:
            return  # an unknown extension is the validator's to report
        root, _ = self.tree(self.structure(types[0]["profile"][0], eid, "type"), eid)
        node.children = [c.copy() for c in root.children]

    def unfold(self, el: dict[str, Any], diff: _Diff, eid: str) -> list[_Node]:
        """Children of an element the base does not unfold: from its type (or profile), or its contentReference."""
        ref = el.get("contentReference")
        if ref:
            target = self.base_index.get(ref.split("#", 1)[-1])
            if target is None:
                raise self.fail("SNAP_TYPE_UNKNOWN", eid, f"contentReference {ref} does not resolve in the base")
            el.pop("contentReference", None)
            el["type"] = copy.deepcopy(target.el.get("type") or [])
            return [c.copy() for c in target.children]
        types = el.get("type") or []
        codes = [t.get("code") for t in types]
        if len(types) > 1:
            if set(codes) == {"Reference"}:
                types = types[:1]
            elif set(diff.children) <= {"extension", "id"}:
                types = [{"code": "Element"}]
            else:
                raise self.fail("SNAP_CHOICE_CHILDREN", f"{eid}.{next(iter(diff.children))}",
                                f"{eid} has several types ({', '.join(map(str, codes))}), so its children cannot be "
                                "constrained; constrain one type (a type slice) instead")
        if not types or not types[0].get("code"):
            raise self.fail("SNAP_TYPE_UNKNOWN", eid, f"{eid} has no type, so its children cannot be constrained")
        t = types[0]
        profiles = t.get("profile") or []
        url = profiles[0] if profiles else (t["code"] if ":" in t["code"] else CORE + t["code"])
        sd = self.structure(url, eid, "profile" if profiles else "type")
        root, _ = self.tree(sd, eid)
        return [c.copy() for c in root.children]

    # -- one element ---------------------------------------------------------------------------------
    def apply(self, el: dict[str, Any], d: dict[str, Any], eid: str, is_slice: bool) -> None:
        """Constrain one snapshot element (a copy of the base's) by its differential element."""
        self.cardinality(el, d, eid, is_slice)
        if "type" in d:
            self.types(el, d["type"], eid)
            self.profile_constraints(el, d["type"], eid)
        if "binding" in d:
            old = (el.get("binding") or {}).get("strength")
            new = (d["binding"] or {}).get("strength")
            if old == "required" and new != "required":
                raise self.fail("SNAP_BINDING_WEAKENED", eid, f"the base binds {eid} with strength required; "
                                f"a profile cannot weaken it to {new}")
            el["binding"] = copy.deepcopy(d["binding"])
        if "constraint" in d:
            keys = {c.get("key"): i for i, c in enumerate(el.get("constraint") or [])}
            merged = list(el.get("constraint") or [])
            for c in d["constraint"]:
                if c.get("key") in keys:
                    merged[keys[c.get("key")]] = copy.deepcopy(c)
                else:
                    merged.append(copy.deepcopy(c))
            el["constraint"] = merged
        for key in ("extension", "modifierExtension"):
            if key in d:
                urls = {x.get("url") for x in d[key]}
                el[key] = [x for x in el.get(key) or [] if x.get("url") not in urls] + copy.deepcopy(d[key])
        for key, value in d.items():
            if key in _NOT_COPIED:
                continue
            if key in _ADDED_LISTS:
                items = el.setdefault(key, [])
                items.extend(copy.deepcopy(v) for v in value if v not in items)
                continue
            family = _value_family(key)
            if family:
                for old_key in [k for k in el if k.startswith(family)]:
                    del el[old_key]
            el[key] = copy.deepcopy(value)
        for key in filter(_value_family, d):
            self.value_type(key, d[key], el, eid)
        if "binding" in el and not any(t.get("code") in _BINDABLE for t in el.get("type") or []) and el.get("type"):
            del el["binding"]

    def value_type(self, key: str, value: Any, el: dict[str, Any], eid: str) -> None:
        """A fixed/pattern/default/min/max value of the differential fits the element's types."""
        problem = _value_problem(key, value, el.get("type"))
        datatype = _value_datatype(key, _value_family(key) or "")
        if problem is None and datatype not in _PRIMITIVE_JSON:
            known = self.resolve(CORE + datatype)
            if known is None or known.get("kind") != "complex-type":
                problem = f"{key}: {datatype} is not a FHIR datatype"
        if problem:
            raise self.fail("SNAP_VALUE_TYPE", eid, problem)

    def type_profiles(self, dtypes: list[dict[str, Any]], eid: str) -> None:
        """Every profile the differential puts on a type resolves, to a profile of that type (like the
        HL7 tooling's 'Unable to resolve profile'); target profiles are the validator's to resolve."""
        for t in dtypes:
            for url in t.get("profile") or []:
                sd = self.resolve(url) or (self.resolve(url.split("|", 1)[0]) if "|" in url else None)
                if sd is None:
                    raise self.fail("SNAP_PROFILE_UNKNOWN", eid, f"type {t['code']}: profile {url} cannot be resolved "
                                    "(it is not a known StructureDefinition)")
                if sd.get("type") != t["code"] and t["code"] not in ("BackboneElement", "Element") \
                        and not (t["code"] in ("Resource", "DomainResource") and sd.get("kind") == "resource"):
                    # (a BackboneElement/Element profile names an element of that profile: R4's profile-element)
                    raise self.fail("SNAP_PROFILE_WRONG_TYPE", eid, f"type {t['code']}: profile {url} constrains "
                                    f"{value_text(sd.get('type'))}, not {t['code']}")

    def profile_constraints(self, el: dict[str, Any], dtypes: list[dict[str, Any]], eid: str) -> None:
        """An element typed with one profiled datatype (SimpleQuantity, an extension) carries the
        constraints of that profile's root; a profiled resource keeps its rules to itself."""
        if len(dtypes) != 1 or dtypes[0].get("code") == "Reference" or len(dtypes[0].get("profile") or []) != 1:
            return
        sd = self.resolve(dtypes[0]["profile"][0])  # resolved (type_profiles), unless only through its version
        if sd is None or sd.get("kind") not in ("complex-type", "primitive-type"):
            return
        root = self.tree(self.structure(dtypes[0]["profile"][0], eid, "type"), eid)[0].el
        keys = {c.get("key") for c in el.get("constraint") or []}
        extra = [copy.deepcopy(c) for c in root.get("constraint") or [] if c.get("key") not in keys]
        if extra:
            el["constraint"] = extra + list(el.get("constraint") or [])

    def cardinality(self, el: dict[str, Any], d: dict[str, Any], eid: str, is_slice: bool) -> None:
        """min/max of the differential (shapes already checked), never wider than the base's."""
        if "min" in d:
            if d["min"] < el.get("min", 0) and not is_slice:
                raise self.fail("SNAP_MIN_WIDENED", eid, f"min {d['min']} is below the base's min {el.get('min', 0)}: "
                                "a profile can only narrow cardinality")
            el["min"] = d["min"]
        if "max" in d:
            if _larger_max(d["max"], str(el.get("max", "*"))):
                raise self.fail("SNAP_MAX_WIDENED", eid, f"max {d['max']} is above the base's max {el.get('max')}: "
                                "a profile can only narrow cardinality")
            el["max"] = d["max"]
        if el.get("max", "*") != "*" and el.get("min", 0) > int(el["max"]):
            raise self.fail("SNAP_CARDINALITY", eid, f"min {el.get('min')} is above max {el['max']}")

    def types(self, el: dict[str, Any], dtypes: list[dict[str, Any]], eid: str) -> None:
        """The differential's types replace the base's; each must be known and allowed by the base."""
        base_codes = [_fhir_type(t) for t in el.get("type") or []]
        for t in dtypes:
            code = t.get("code")
            if not isinstance(code, str) or not code:
                raise self.fail("SNAP_TYPE_UNKNOWN", eid, "a type without a code")
            if not base_codes or code in base_codes or "Element" in base_codes or "*" in base_codes:
                if code not in base_codes and not code.startswith("http://hl7.org/fhirpath/System.") \
                        and self.resolve(code if ":" in code else CORE + code) is None:
                    raise self.fail("SNAP_TYPE_UNKNOWN", eid, f"type {code} is not a known FHIR type")
                continue
            if {"Resource", "DomainResource"} & set(base_codes):
                sd = self.resolve(code if ":" in code else CORE + code)
                if sd is None:
                    raise self.fail("SNAP_TYPE_UNKNOWN", eid, f"type {code} is not a known FHIR type")
                if sd.get("kind") == "resource":
                    continue
            known = self.resolve(code if ":" in code else CORE + code) is not None
            raise self.fail("SNAP_TYPE_NOT_ALLOWED" if known else "SNAP_TYPE_UNKNOWN", eid,
                            f"type {code} is not allowed here (the base allows {', '.join(map(str, base_codes))})"
                            if known else f"type {code} is not a known FHIR type")
        self.type_profiles(dtypes, eid)
        el["type"] = copy.deepcopy(dtypes)


def _emit(node: _Node, parent_path: str | None, parent_id: str | None, out: list[dict[str, Any]]) -> None:
    path = node.name if parent_path is None else f"{parent_path}.{node.name}"
    eid = node.name if parent_id is None else f"{parent_id}.{node.name}"
    if node.el.get("sliceName"):
        eid += ":" + node.el["sliceName"]
    el = {"id": eid, "path": path}
    el.update((k, v) for k, v in node.el.items() if k not in ("id", "path"))
    out.append(el)
    for child in node.children:
        _emit(child, path, eid, out)
    for s in node.slices:
        _emit(s, parent_path, parent_id, out)


def generate_snapshot(sd: dict[str, Any], resolve: Resolve,
                      origin: Callable[[str], str | None] = lambda url: None) -> list[dict[str, Any]]:
    """Snapshot elements of `sd` from its differential and its base (`resolve(canonical)` finds other
    StructureDefinitions; a base or type without a snapshot gets one first, stored on it)."""
    return _Generator(resolve, origin, ()).run(sd)


# -- comparison with a shipped snapshot ------------------------------------------------------------

COMPARED = ("id (and element order)", "path", "sliceName", "min", "max", "base (path, min, max)",
            "type (code, profile, targetProfile)", "fixed[x] / pattern[x]", "minValue[x] / maxValue[x]", "maxLength",
            "binding (strength, valueSet)", "slicing (discriminators, ordered, rules)", "constraint keys",
            "mustSupport", "isModifier", "isSummary")


def _compared(e: dict[str, Any]) -> dict[str, Any]:
    slicing = e.get("slicing")
    return {
        "path": e.get("path"),
        "sliceName": e.get("sliceName"),
        "min": e.get("min"),
        "max": e.get("max"),
        "type": [(t.get("code"), t.get("profile") or [], t.get("targetProfile") or []) for t in e.get("type") or []],
        "fixed/pattern": {k: v for k, v in e.items() if k.startswith(("fixed", "pattern"))},
        "binding": ((e.get("binding") or {}).get("strength"), (e.get("binding") or {}).get("valueSet")),
        "slicing": None if slicing is None else (
            [(d.get("type"), d.get("path")) for d in slicing.get("discriminator") or []],
            bool(slicing.get("ordered", False)), slicing.get("rules")),
        "constraint keys": sorted(c.get("key") for c in e.get("constraint") or []),
        "base": e.get("base"),
        "minValue/maxValue": {k: v for k, v in e.items() if k.startswith(("minValue", "maxValue"))},
        "maxLength": e.get("maxLength"),
        "mustSupport": bool(e.get("mustSupport", False)),
        "isModifier": bool(e.get("isModifier", False)),
        "isSummary": bool(e.get("isSummary", False)),
    }


def snapshot_differences(generated: Iterable[dict[str, Any]], shipped: Iterable[dict[str, Any]]) -> list[str]:
    """Every difference between two snapshots in the properties of `COMPARED`, one line each."""
    gen = {e.get("id"): e for e in generated}
    ref = {e.get("id"): e for e in shipped}
    out = [f"{i}: missing" for i in ref if i not in gen] + [f"{i}: not in the shipped snapshot" for i in gen if i not in ref]
    common_gen = [i for i in gen if i in ref]
    common_ref = [i for i in ref if i in gen]
    if common_gen != common_ref:
        first = next(a for a, b in zip(common_gen, common_ref, strict=False) if a != b)
        out.append(f"{first}: element order differs")
    for i in common_ref:
        a, b = _compared(gen[i]), _compared(ref[i])
        out.extend(f"{i}: {k} {a[k]!r} != shipped {b[k]!r}" for k in a if a[k] != b[k])
    return out
