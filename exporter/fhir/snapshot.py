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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from exporter.issues import ExporterError, IssueCode, SourceLocation, error

CORE = "http://hl7.org/fhir/StructureDefinition/"
Resolve = Callable[[str], "dict[str, Any] | None"]

_EXTENSION_SLICING = {"discriminator": [{"type": "value", "path": "url"}], "ordered": False, "rules": "open"}
_TYPE_SLICING = {"discriminator": [{"type": "type", "path": "$this"}], "ordered": False, "rules": "closed"}
_REPLACED_FAMILIES = ("fixed", "pattern", "defaultValue", "minValue", "maxValue")
_ADDED_LISTS = {"alias": None, "condition": None, "code": None, "example": None, "mapping": None}
_NOT_COPIED = frozenset({"id", "path", "base", "slicing", "min", "max", "type", "binding", "constraint",
                         "extension", "modifierExtension", "contentReference"})
_BINDABLE = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})
_DICT_LISTS = ("type", "constraint", "extension", "modifierExtension", "mapping", "example", "code")
_SHAPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "path": (str,), "sliceName": (str,), "min": (int,), "max": (str,), "slicing": (dict,),
    "binding": (dict,), "contentReference": (str,), "base": (dict,), "alias": (list,), "condition": (list,),
    **{k: (list,) for k in _DICT_LISTS}}


class SnapshotError(ExporterError):
    """A snapshot cannot be generated; the issue names the StructureDefinition and the element."""


@dataclass
class _Node:
    """One element of a snapshot tree: its definition, its children and (if sliced) its slices."""

    el: dict[str, Any]
    name: str
    children: list["_Node"] = field(default_factory=list)
    slices: list["_Node"] = field(default_factory=list)

    def copy(self) -> "_Node":
        return _Node(copy.deepcopy(self.el), self.name, [c.copy() for c in self.children],
                     [s.copy() for s in self.slices])


@dataclass
class _Diff:
    """One name in the differential tree; `el` is None where the differential skips a level."""

    name: str
    el: dict[str, Any] | None = None
    children: dict[str, "_Diff"] = field(default_factory=dict)
    slices: dict[str, "_Diff"] = field(default_factory=dict)
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


def _shape_problem(e: Any) -> str | None:
    """What is wrong with the JSON shape of an element definition (None: nothing we rely on)."""
    if not isinstance(e, dict):
        return "an element definition is not a JSON object"
    if not isinstance(e.get("path"), str) or not e["path"] or "" in e["path"].split("."):
        return "an element definition has no valid path"
    for key, kinds in _SHAPES.items():
        if key in e and (not isinstance(e[key], kinds) or isinstance(e[key], bool)):
            return f"{key} of {e.get('id') or e['path']} is not a JSON {kinds[0].__name__}"
    name = e.get("id") or e["path"]
    if ("min" in e and e["min"] < 0) or ("max" in e and not (e["max"] == "*" or e["max"].isdigit())):
        return f"the cardinality of {name} is malformed (min {e.get('min')!r}, max {e.get('max')!r})"
    for key in _DICT_LISTS:
        if key in e and not all(isinstance(x, dict) for x in e[key]):
            return f"{key} of {name} is not a list of JSON objects"
    for t in e.get("type") or []:
        if not isinstance(t.get("code", ""), str) or not all(
                isinstance(v, list) and all(isinstance(u, str) for u in v)
                for k, v in t.items() if k in ("profile", "targetProfile")):
            return f"a type of {name} has a code or profile that is not a string"
    if any(not isinstance(c.get("key", ""), str) for c in e.get("constraint") or []):
        return f"a constraint key of {name} is not a string"
    discriminators = (e.get("slicing") or {}).get("discriminator", [])
    if not isinstance(discriminators, list) or not all(isinstance(d, dict) for d in discriminators):
        return f"the slicing discriminators of {name} are not a list of JSON objects"
    return None


def _ids_from_paths(elements: list[dict[str, Any]]) -> list[str]:
    """Element ids of a list whose elements may lack them (computed from path and sliceName, the way
    the HL7 tooling does: a slice entry opens a scope for the elements below its path)."""
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


def _larger_max(derived: str, base: str) -> bool:
    if base == "*":
        return False
    if derived == "*":
        return True
    return int(derived) > int(base)


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
    def fail(self, message_id: str, element: str | None, message: str, code: IssueCode = IssueCode.INVALID) -> SnapshotError:
        url = self.sd.get("url") or self.sd.get("id") or "<StructureDefinition without url>"
        where = self.origin(url) if isinstance(url, str) else None
        text = f"cannot generate the snapshot of StructureDefinition {url}: {message}"
        return SnapshotError(error(code, text, message_id, expression=(element,) if element else (),
                                   location=SourceLocation(where) if where else None))

    # -- structures --------------------------------------------------------------------------------
    def structure(self, url: str, element: str | None, what: str) -> dict[str, Any]:
        """A StructureDefinition with a snapshot (generated when it has none)."""
        sd = self.resolve(url)
        if sd is None:
            sd = self.resolve(url.split("|", 1)[0]) if "|" in url else None
        if sd is None:
            raise self.fail("SNAP_UNKNOWN_STRUCTURE" if what == "base" else "SNAP_TYPE_UNKNOWN", element,
                            f"{what} {url} is not a known StructureDefinition", IssueCode.NOT_FOUND)
        if not (sd.get("snapshot") or {}).get("element"):
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
        elements = sd["snapshot"]["element"]
        problem = next((p for p in map(_shape_problem, elements) if p), None) if isinstance(elements, list) \
            else "snapshot.element is not a list"
        if problem:
            raise self.fail("SNAP_BAD_BASE", element, f"the snapshot of {sd.get('url')} is malformed: {problem}")
        ids = _ids_from_paths(elements)
        index: dict[str, _Node] = {}
        root: _Node | None = None
        for eid, e in zip(ids, elements):
            el = dict(e)  # shallow: tree elements are only ever read, and copied deeply when used
            el.setdefault("base", {"path": e.get("path"), "min": e.get("min", 0), "max": e.get("max", "*")})
            segs = _segments(eid)
            node = _Node(el, segs[-1][0])
            index[eid] = node
            if root is None:
                root = node
                continue
            parent_id = ".".join(n + (f":{s}" if s else "") for n, s in segs[:-1])
            name, slice_name = segs[-1]
            if slice_name:
                holder = parent_id + "." + name + (f":{slice_name.rsplit('/', 1)[0]}" if "/" in slice_name else "")
                owner = index.get(holder)
                if owner is not None:
                    owner.slices.append(node)
                    continue
            parent = index.get(parent_id)
            if parent is None:
                raise self.fail("SNAP_BAD_BASE", element or eid,
                                f"the snapshot of {sd.get('url')} has element {eid} without its parent")
            parent.children.append(node)
        if root is None:
            raise self.fail("SNAP_BAD_BASE", element, f"the snapshot of {sd.get('url')} is empty")
        return root, index

    def differential(self) -> _Diff:
        elements = self.sd["differential"]["element"]
        problem = next((p for p in map(_shape_problem, elements) if p), None)
        if problem:
            raise self.fail("SNAP_MALFORMED", None, f"differential: {problem}", IssueCode.STRUCTURE)
        ids = _ids_from_paths(elements)
        root: _Diff | None = None
        for eid, e in zip(ids, elements):
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
            raise self.fail("SNAP_MALFORMED", None, "differential.element is not a list", IssueCode.STRUCTURE)
        if sd.get("derivation", "constraint") != "constraint":
            raise self.fail("SNAP_NOT_SUPPORTED", None, f"derivation '{sd.get('derivation')}' is not supported "
                            "(only constraint profiles get a generated snapshot)", IssueCode.NOT_SUPPORTED)
        base_url = sd.get("baseDefinition")
        if not isinstance(base_url, str) or not base_url:
            raise self.fail("SNAP_UNKNOWN_STRUCTURE", None, "it has no baseDefinition", IssueCode.REQUIRED)
        base_sd = self.structure(base_url, None, "base")
        base_root, self.base_index = self.tree(base_sd)
        diff = self.differential()
        if diff.name and diff.name != base_root.name:
            raise self.fail("SNAP_PATH_UNKNOWN", diff.name,
                            f"the differential describes {diff.name}, the base {base_url} describes {base_root.name}")
        if sd.get("type") and sd["type"] != base_root.name and base_root.name not in ("Element", "BackboneElement"):
            raise self.fail("SNAP_PATH_UNKNOWN", None, f"type {sd['type']} does not match the base's {base_root.name}")
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
            raise self.fail("SNAP_SLICING", eid, f"the discriminators {discr} differ from the base's {base_discr}")
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
        sd = self.structure(url, eid, "type")
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
            family = next((f for f in _REPLACED_FAMILIES if key.startswith(f)), None)
            if family:
                for old_key in [k for k in el if k.startswith(family)]:
                    del el[old_key]
            el[key] = copy.deepcopy(value)
        if "binding" in el and not any(t.get("code") in _BINDABLE for t in el.get("type") or []) and el.get("type"):
            del el["binding"]

    def profile_constraints(self, el: dict[str, Any], dtypes: list[dict[str, Any]], eid: str) -> None:
        """An element typed with one profiled datatype (SimpleQuantity, an extension) carries the
        constraints of that profile's root; a profiled resource keeps its rules to itself."""
        if len(dtypes) != 1 or dtypes[0].get("code") == "Reference" or len(dtypes[0].get("profile") or []) != 1:
            return
        sd = self.resolve(dtypes[0]["profile"][0])  # an unknown profile is the validator's to report
        if sd is None or sd.get("kind") not in ("complex-type", "primitive-type"):
            return
        root = self.structure(dtypes[0]["profile"][0], eid, "type")["snapshot"]["element"][0]
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
        first = next(a for a, b in zip(common_gen, common_ref) if a != b)
        out.append(f"{first}: element order differs")
    for i in common_ref:
        a, b = _compared(gen[i]), _compared(ref[i])
        out.extend(f"{i}: {k} {a[k]!r} != shipped {b[k]!r}" for k in a if a[k] != b[k])
    return out
