"""Compile a mapping set once, then build resources and the document Bundle per export (layer L2).

    engine = Engine(mapping_set, store, namespace=...)       # compile; engine.issues = load/compile problems
    bundle, issues = engine.build(domain_doc, export_time)   # map one patient's document

Ids are uuid5(namespace, "<type>|<mapping>|<source id>"), fullUrls `urn:uuid:<id>`; a `ref` computes the
target's id the same way and is checked afterwards to point at a resource that was really produced.
The document is assembled from `mappings/bundle.yaml`: Composition first (sections with their
entries), then every mapped resource, the Questionnaires the responses answer, one Provenance per
origin of the values, the export's Provenance last; then the narrator (exporter/narrative) writes every
narrative from the built resources.

Order does not depend on the input's: the mapped resources without a time of their own (Patient, the
DiGA's Device, …) come first, in mapping order; then every resource with a time (`TIME_ELEMENTS`) by
that instant, then by resource id. Section entries follow the same order, and the Bundle identifier is
derived from the document with its record lists sorted by id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from exporter.deadline import check as check_deadline
from exporter.engine.codegen import copy
from exporter.engine.coverage import Coverage
from exporter.engine.ids import DEFAULT_NAMESPACE, id_maker, urn
from exporter.engine.origin import Origin, Origins
from exporter.engine.values import (
    MISSING,
    CompileContext,
    IssueLimit,
    RunContext,
    Scope,
    compile_value,
    condition,
    filler,
    returns,
    selector,
)
from exporter.fhir.definitions import DefinitionStore
from exporter.issues import Issue, IssueCode, SourceLocation, error, issues_stopped
from exporter.mapping.registry import MappingFile, MappingSet
from exporter.mapping.tables import suggest
from exporter.mapping.yamlsrc import position
from exporter.narrative.narrator import Narrator

# The time a resource is about, by element, first found wins: what the Bundle and its sections are ordered by.
TIME_ELEMENTS = ("effectiveDateTime", "effectiveInstant", "effectivePeriod", "authored", "recordedDate",
                 "onsetDateTime", "issued", "occurrenceDateTime", "date")


@dataclass
class _Compiled:
    m: MappingFile
    resource_type: str
    claim: str
    singleton: bool
    select: Any
    when: Any
    prefilter: Any  # when's test on the bare record (None: undecided), or None
    source_id: Any
    body: Any
    fill: Any  # the body's fields written into the resource (values.filler), or None: body() then update
    origin: str | None = None  # the origin key of every record (a literal `origin`), or None
    origin_of: Any = None  # or: the compiled `origin` value, evaluated per record


@dataclass
class _Part:
    resource_type: str
    claim: str
    body: Any


@dataclass
class Built:
    """The mapped resources of one export; per resource (same index): its record's JSON path, the compiled
    mapping that made it and the origin of its values. `ordered()` puts them in document order."""
    resources: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (fullUrl, resource)
    paths: list[Any] = field(default_factory=list)  # the JSON path of each resource's record
    owners: list[Any] = field(default_factory=list)  # the compiled mapping of each resource
    origins: list[str | None] = field(default_factory=list)  # the origin key of each resource's values (or None)
    provenances: list[str] = field(default_factory=list)  # the origin keys that got a Provenance, in entry order
    questionnaires: int = 0  # Questionnaire entries after the mapped resources (bundle.yaml `questionnaires`)

    def ordered(self, tz: str) -> None:
        """Reorder in place: timeless resources first (as produced), then by instant, then by id."""
        keys = [_order_key(i, r, tz) for i, (_, r) in enumerate(self.resources)]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        if order == list(range(len(order))):
            return
        self.resources = [self.resources[i] for i in order]
        self.paths = [self.paths[i] for i in order]
        self.owners = [self.owners[i] for i in order]
        self.origins = [self.origins[i] for i in order]

    def sections(self) -> dict[str, list[str]]:
        """Section key → [fullUrl], in the resources' order."""
        out: dict[str, list[str]] = {}
        for (full, _), owner in zip(self.resources, self.owners, strict=True):
            if owner.m.section:
                out.setdefault(owner.m.section, []).append(full)
        return out


class Engine:
    def __init__(self, ms: MappingSet, store: DefinitionStore, *, namespace: uuid.UUID | None = None,
                 ig_canonical: str | None = None, default_timezone: str | None = None, language: str | None = None):
        self.ms = ms
        self.store = store
        self.ig_canonical = ig_canonical
        layout = ms.layout or {}
        self.issues: list[Issue] = list(ms.issues)
        self.namespace = namespace or _namespace(layout.get("id_namespace"), self.issues, ms)
        self.resource_id = id_maker(self.namespace)  # (resource type, mapping id, source id) -> uuid5
        self.default_timezone = default_timezone or str(layout.get("default_timezone") or "Europe/Berlin")
        self.mapping_set_id = str((layout.get("mapping_set") or {}).get("id", "mappings"))
        self.mapping_set_version = str((layout.get("mapping_set") or {}).get("version", "0"))
        self.section_keys = _section_keys(((layout.get("composition") or {}).get("sections")) or [])
        self.mapping_types: dict[str, tuple[str, bool]] = {}  # filled below, read by every compile
        types: dict[str, tuple[str, bool]] = {}
        heads: list[tuple[MappingFile, dict[str, Any]]] = []
        for m in ms.mappings:
            sd = self._profile(m.profile, m.file, position(m.positions, ("profile",)))
            if sd is None:
                continue
            types[m.id] = (sd["type"], m.for_each is None)
            heads.append((m, sd))
        self.mapping_types = types
        self.table_uses: list[tuple[MappingFile, str, CompileContext]] = []
        # every compile context, with its mapping (None: bundle.yaml), for `fhir-export check`
        self.contexts: list[tuple[MappingFile | None, CompileContext]] = []
        self.compiled = [self._compile(m, sd) for m, sd in heads]
        ignore_cc = self._cc(ms.layout_file, ms.layout_positions)
        self.coverage = Coverage(self.compiled, layout.get("ignore"), ignore_cc, self.contexts)
        self.issues.extend(ignore_cc.issues)
        self.contexts.append((None, ignore_cc))
        self.parts: dict[str, _Part] = {}
        for part in ("composition", "provenance", "bundle"):
            spec = layout.get(part) if isinstance(layout.get(part), dict) else None
            if spec is None:
                continue
            sd = self._profile(spec.get("profile", ""), ms.layout_file, position(ms.layout_positions, (part, "profile")))
            if sd is None:
                continue
            cc = self._cc(ms.layout_file, ms.layout_positions)
            body = compile_value(spec.get("resource", {}), (part, "resource"), cc) if spec.get("resource") else (lambda s: {})
            self.issues.extend(cc.issues)
            self.contexts.append((None, cc))
            self.parts[part] = _Part(sd["type"], _claim(sd), body)
        # the narratives: written from the built resources by the mapping set's templates
        self.narrator: Narrator | None = None
        if ms.templates is not None and not any(i.is_error for i in ms.templates.issues):
            self.narrator = Narrator(ms.templates, language, (layout.get("composition") or {}).get("sections") or [])
            self.issues.extend(self.narrator.issues)
        # Herkunftsinformation: per origin key, what its Provenance adds to the common provenance body
        self.origin_parts: dict[str, Any] = {}
        origins = (layout.get("provenance") or {}).get("origins") if isinstance(layout.get("provenance"), dict) else None
        if isinstance(origins, dict) and "provenance" in self.parts:
            cc = self._cc(ms.layout_file, ms.layout_positions)
            for key, spec in origins.items():
                if isinstance(key, str) and isinstance(spec, dict):
                    self.origin_parts[key] = compile_value(spec, ("provenance", "origins", key), cc)
            self.issues.extend(cc.issues)
            self.contexts.append((None, cc))

    # -- compile --------------------------------------------------------------------------------
    def _cc(self, file: str, positions: Any) -> CompileContext:
        return CompileContext(file, positions, self.ms.tables, self.mapping_types, self.default_timezone)

    def _profile(self, ref: str, file: str, loc: SourceLocation | None) -> dict[str, Any] | None:
        candidates = [ref]
        if self.ig_canonical and "/" not in ref:
            candidates.append(f"{self.ig_canonical}/StructureDefinition/{ref}")
        for c in candidates:
            sd = self.store.structure(c)
            if sd is not None:
                if sd.get("kind") != "resource":
                    self.issues.append(error(IssueCode.INVALID, f"profile '{ref}' is not a resource profile",
                                             "MAP_PROFILE_KIND", location=loc))
                    return None
                return sd
        known = [u.rsplit("/", 1)[-1] for u in self.store.urls("StructureDefinition")
                 if self.ig_canonical and u.startswith(self.ig_canonical)]
        self.issues.append(error(IssueCode.NOT_FOUND, f"profile '{ref}' is not in igs/{suggest(ref, known)}",
                                 "MAP_PROFILE_UNKNOWN", location=loc))
        return None

    def _compile(self, m: MappingFile, sd: dict[str, Any]) -> _Compiled:
        cc = self._cc(m.file, m.positions)
        for bad in ("resourceType", "id", "meta"):
            if bad in m.resource:
                cc.fail("MAP_RESERVED", f"'{bad}' is set by the engine (from 'profile' and 'source_id')",
                        ("resource", bad))
        if m.section is not None and m.section not in self.section_keys:
            cc.fail("MAP_SECTION_UNKNOWN", f"no section '{m.section}' in bundle.yaml{suggest(m.section, self.section_keys)}",
                    ("section",))
        select = selector(m.for_each, ("for_each",), cc) if m.for_each is not None else None
        when = condition(m.when, ("when",), cc) if m.when is not None else None
        if m.source_id is not None:
            source_id = compile_value(m.source_id, ("source_id",), cc)
        elif m.for_each is not None:
            source_id = compile_value({"path": "id"}, ("for_each",), cc)
        else:
            source_id = returns(m.id)
        body = compile_value(m.resource, ("resource",), cc)
        origin, origin_of = None, None
        if isinstance(m.origin, str):
            origin = m.origin
            if origin not in self.origin_keys():
                cc.fail("MAP_ORIGIN_UNKNOWN", f"no origin '{origin}' in bundle.yaml provenance.origins"
                        f"{suggest(origin, self.origin_keys())}", ("origin",))
        elif m.origin is not None:
            origin_of = compile_value(m.origin, ("origin",), cc)
        self.issues.extend(cc.issues)
        self.table_uses.append((m, sd["url"], cc))
        self.contexts.append((m, cc))
        prefilter = getattr(when, "item_test", None)
        return _Compiled(m, sd["type"], _claim(sd), m.for_each is None, select, when, prefilter, source_id, body,
                         filler(body), origin, origin_of)

    def origin_keys(self) -> list[str]:
        """The origin keys bundle.yaml declares (provenance.origins), in order."""
        layout = self.ms.layout or {}
        origins = (layout.get("provenance") or {}).get("origins") if isinstance(layout.get("provenance"), dict) else None
        return [k for k in origins if isinstance(k, str)] if isinstance(origins, dict) else []

    # -- run ------------------------------------------------------------------------------------
    def build(self, doc: dict[str, Any], export_time: str, origins: Origins | None = None, *,
              max_issues: int = 10_000) -> tuple[dict[str, Any] | None, list[Issue]]:
        """Map one domain document. Returns (Bundle or None, issues). Never raises for bad data; stops
        at `max_issues` issues (and raises deadline.DeadlineExceeded when the caller's deadline passed).
        `origins`, if given, can then tell what produced each Bundle entry (see origin.py)."""
        refs = _References(self)
        run = RunContext(doc, export_time, refs.resolve, max_issues=max_issues)
        built = Built()
        produced: set[tuple[str, str]] = set()
        root = Scope(doc, "$", None, run)
        records = _Records(root)
        try:
            for c in self.compiled:
                self._produce(c, *records.of(c), root, built, produced)
            self.coverage.check(records.selections, records.groupings, root, run)
            for mapping_id, _key, loc, data_path in refs.dangling(produced):
                run.report("MAP_REF_DANGLING", f"reference to '{mapping_id}' with a key no such resource was produced for",
                           loc, data_path, IssueCode.NOT_FOUND)
        except IssueLimit:
            run.issues.append(issues_stopped(max_issues))
        if any(i.is_error for i in run.issues) or any(i.is_error for i in self.issues):
            return None, self.issues + run.issues
        built.ordered(self.default_timezone)
        bundle = self._assemble(doc, export_time, built, run)
        if origins is not None:
            origins.make = lambda: self._origins(built)  # worked out only on the error path
        if self.narrator is None:
            return None, [error(IssueCode.EXCEPTION, "the mapping set has no usable templates/", "MAP_TEMPLATES")]
        problems = self.narrator.apply(bundle)
        if problems:
            return None, run.issues + problems
        return bundle, run.issues

    def _origins(self, built: Built) -> list[Origin]:
        """What produced each entry of the assembled Bundle, in entry order."""
        layout = self.ms.layout or {}

        def part(name: str) -> list[Origin]:
            if name not in self.parts:
                return []
            return [Origin(self.ms.layout_file, self.ms.layout_positions, (name, "resource"),
                           (layout.get(name) or {}).get("resource"), "$")]
        out = part("composition")
        out += [Origin(c.m.file, c.m.positions, ("resource",), c.m.resource, str(path))
                for c, path in zip(built.owners, built.paths, strict=True)]
        out += [Origin(self.ms.layout_file, self.ms.layout_positions, ("questionnaires",), layout.get("questionnaires"), "$")
                for _ in range(built.questionnaires)]
        for key in built.provenances:
            out.append(Origin(self.ms.layout_file, self.ms.layout_positions, ("provenance", "origins", key),
                              ((layout.get("provenance") or {}).get("origins") or {}).get(key), "$"))
        return out + part("provenance")

    def _produce(self, c: _Compiled, records: list[tuple[Any, Any]], test: Any, when: Any, root: Scope,
                 built: Built, produced: set[tuple[str, str]]) -> None:
        """The resources of mapping `c` for `records`, of which `test` and `when`
        (either may be None) select those to map. The loop runs thousands of times: what it reads of
        `c` is read once, before it."""
        run = root.run
        m, source_id, body_fn, fill, resource_type, claim = c.m, c.source_id, c.body, c.fill, c.resource_type, c.claim
        mapping_id, per_record, make_id = m.id, c.select is not None, self.resource_id
        resources, paths, owners, origins = built.resources, built.paths, built.owners, built.origins
        origin, origin_of, known_origins = c.origin, c.origin_of, self.origin_parts
        seen: set[str] = set()
        selective = test is not None or when is not None
        for n, (item, data_path) in enumerate(records):
            if not n & 31:  # the deadline every 32 records (< 1 ms of work), not a clock read per record
                check_deadline()
            verdict = test(item) if selective and test is not None else None
            if verdict is False:
                continue  # decided on the bare record, before making its scope (`when` would say the same)
            scope = Scope(item, data_path, root, run) if per_record else root
            if selective and verdict is None and when is not None and not when(scope):
                continue
            sid = source_id(scope)
            if sid is MISSING or isinstance(sid, (dict, list)):
                run.report("MAP_SOURCE_ID", "record has no usable source id", position(m.positions, ("source_id",))
                           or position(m.positions, ()), data_path)
                continue
            sid = str(sid)
            if sid in seen:
                run.report("MAP_DUPLICATE_SOURCE_ID", f"the source id occurs twice for mapping '{mapping_id}'",
                           position(m.positions, ()), data_path)
                continue
            seen.add(sid)
            rid = make_id(resource_type, mapping_id, sid)
            resource = {"resourceType": resource_type, "id": rid, "meta": {"profile": [claim]}}
            if fill is not None:
                fill(scope, resource)
            else:
                body = body_fn(scope)
                if body is not MISSING:
                    resource.update(body)
            full = f"urn:uuid:{rid}"  # = urn(rid)
            resources.append((full, resource))
            paths.append(data_path)
            owners.append(c)
            produced.add((mapping_id, sid))
            if origin_of is not None:
                key = origin_of(scope)
                if type(key) is not str or key not in known_origins:
                    run.report("MAP_ORIGIN_UNKNOWN", "the record's origin is none of bundle.yaml provenance.origins",
                               position(m.positions, ("origin",)), data_path)
                    key = None
                origins.append(key)
            else:
                origins.append(origin)

    def _assemble(self, doc: dict[str, Any], export_time: str, built: Built, run: RunContext) -> dict[str, Any]:
        digest = hashlib.sha256(_canonical(_sorted_lists(doc)) + export_time.encode()).hexdigest()
        root = Scope(doc, "$", None, run)

        def part(name: str, extra: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
            p = self.parts.get(name)
            if p is None:
                return None
            rid = self.resource_id(p.resource_type, name, digest)
            body = p.body(root)
            res: dict[str, Any] = {"resourceType": p.resource_type, "id": rid, "meta": {"profile": [p.claim]}}
            if body is not MISSING:
                res.update(body)
            res.update(extra)
            return urn(rid), res

        layout_sections = (self.ms.layout.get("composition") or {}).get("sections") or []
        members_of = built.sections()
        questionnaires = self._questionnaires(built, run, members_of)
        sections = self._sections(layout_sections, members_of)
        composition = part("composition", {"section": sections} if sections else {})  # never an empty list
        entries = ([composition] if composition else []) + built.resources
        provenance = part("provenance", {"target": [{"reference": full} for full, _ in entries]})
        entries += questionnaires
        if provenance:
            entries += self._origin_provenances(built, root, digest)
            entries.append(provenance)
        bundle_part = self.parts.get("bundle")
        bid = self.resource_id("Bundle", "bundle", digest)
        bundle: dict[str, Any] = {"resourceType": "Bundle", "id": bid}
        if bundle_part is not None:
            bundle["meta"] = {"profile": [bundle_part.claim]}
            body = bundle_part.body(root)
            if body is not MISSING:
                bundle.update(body)
        bundle.update({"identifier": {"system": "urn:ietf:rfc:3986", "value": urn(bid)}, "type": "document",
                       "timestamp": export_time,
                       "entry": [{"fullUrl": full, "resource": res} for full, res in entries]})
        return bundle

    def _questionnaires(self, built: Built, run: RunContext,
                        members_of: dict[str, list[str]]) -> list[tuple[str, dict[str, Any]]]:
        """The Questionnaires the document's QuestionnaireResponses answer (bundle.yaml
        `questionnaires: {profile: …, section: …}`), as entries: each once, from the loaded definitions
        by its versioned canonical, so a receiver reads every question and answer text inside the
        document; listed in the section's entries (which reach them from the Composition). The
        Provenance does not name them: the export did not create them."""
        spec = self.ms.layout.get("questionnaires")
        if not isinstance(spec, dict):
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for _, r in built.resources:
            canonical = r.get("questionnaire") if r["resourceType"] == "QuestionnaireResponse" else None
            if not isinstance(canonical, str) or canonical in seen:
                continue
            seen.add(canonical)
            found = self.store.get(canonical, "Questionnaire")
            if found is None:
                run.report("MAP_QUESTIONNAIRE_UNKNOWN", f"no Questionnaire '{canonical}' among the loaded definitions",
                           position(self.ms.layout_positions, ("questionnaires",)), "$", IssueCode.NOT_FOUND)
                continue
            rid = self.resource_id("Questionnaire", "questionnaire", canonical)
            q = {"resourceType": "Questionnaire", "id": rid, "meta": {"profile": [str(spec.get("profile", ""))]}}
            q.update((k, copy(v)) for k, v in found.items() if k not in ("resourceType", "id", "meta", "text"))
            out.append((urn(rid), q))
        if out and isinstance(spec.get("section"), str):
            members_of.setdefault(spec["section"], []).extend(full for full, _ in out)
        built.questionnaires = len(out)
        return out

    def _origin_provenances(self, built: Built, root: Scope, digest: str) -> list[tuple[str, dict[str, Any]]]:
        """One Provenance per origin that has records (in the order of provenance.origins): the common
        provenance body, what the origin adds (agents, …) and the records of that origin as targets."""
        targets: dict[str, list[dict[str, str]]] = {}
        for (full, _), key in zip(built.resources, built.origins, strict=True):
            if key is not None:
                targets.setdefault(key, []).append({"reference": full})
        p = self.parts["provenance"]
        out = []
        for key, extra in self.origin_parts.items():
            if key not in targets:
                continue
            rid = self.resource_id(p.resource_type, "provenance-" + key, digest)
            res: dict[str, Any] = {"resourceType": p.resource_type, "id": rid, "meta": {"profile": [p.claim]}}
            for body in (p.body(root), extra(root)):
                if body is not MISSING:
                    res.update(body)
            res["target"] = targets[key]
            out.append((urn(rid), res))
            built.provenances.append(key)
        return out

    def _sections(self, layout: list[dict[str, Any]], members_of: dict[str, list[str]]) -> list[dict[str, Any]]:
        out = []
        for s in layout:
            if not isinstance(s, dict):
                continue
            key = s.get("key")
            members = members_of.get(key, []) if isinstance(key, str) else []
            children = self._sections(s.get("sections") or [], members_of)
            section: dict[str, Any] = {}
            if s.get("title"):
                section["title"] = s["title"]
            if s.get("code"):
                section["code"] = copy(s["code"])  # the Bundle shares no object with the layout
            if not members and not children and not s.get("empty_reason"):
                continue  # a section without entries is left out (its entries are 1..* when present)
            # its text: written by the narrator (engine/../narrative), from the entries
            if members:
                section["entry"] = [{"reference": full} for full in members]
            elif not children:
                section["emptyReason"] = copy(s["empty_reason"])
            if children:
                section["section"] = children
            out.append(section)
        return out


def _canonical(doc: Any) -> bytes:
    """The document as sorted-key JSON, for the Bundle identifier's digest. orjson refuses integers
    beyond 64 bits (the schema check stops them before an export; a direct caller of build() may
    not have run it): the standard library writes those."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _sorted_lists(doc: Any) -> Any:
    """`doc` with each top-level list of records sorted by the records' ids (a shallow copy): the Bundle
    identifier must not depend on the order the backend listed them in."""
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    for k, v in doc.items():
        if isinstance(v, list) and len(v) > 1 and all(isinstance(r, dict) for r in v):
            out[k] = sorted(v, key=lambda r: str(r.get("id")))  # stable: records without ids keep their order
    return out


_ZONES: dict[str, Any] = {}


def _order_key(index: int, resource: dict[str, Any], tz: str) -> tuple[int, Any, str]:
    """Sort key of a mapped resource: (0, production index) without a time, (1, instant, id) with one
    (an aware datetime, in UTC where it can be), (2, text, id) when the time cannot be read (never raises)."""
    for name in TIME_ELEMENTS:
        value = resource.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            value = value.get("start")
        if not isinstance(value, str):
            continue
        try:
            if len(value) > 10:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=_zone(tz))
            else:  # a date (or year / year-month): its first instant in the mapping set's zone
                parts = [int(p) for p in value.split("-")] + [1, 1]
                moment = datetime(parts[0], parts[1], parts[2], tzinfo=_zone(tz))
            return 1, _in_utc(moment), str(resource.get("id"))
        except (ValueError, OverflowError, KeyError, LookupError):
            return 2, value, str(resource.get("id"))
    return 0, index, ""


def _in_utc(moment: datetime) -> datetime:
    """The same instant in UTC: datetimes of one zone compare field by field, where those of different
    offsets ask each for its offset on every comparison (an eighth of a large export's mapping time went
    into sorting). At the ends of the calendar (0001-01-01 with a positive offset) it keeps its own zone."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return moment


def _zone(tz: str) -> Any:
    found = _ZONES.get(tz)
    if found is None:
        found = _ZONES[tz] = ZoneInfo(tz)
    return found


class _References:
    """The `ref` targets of one export. A document has thousands of references (every resource refers
    to the patient): each target's urn is computed once. Every reference is kept, with its place, to
    be checked once all resources exist."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.requested: list[tuple[tuple[str, str], SourceLocation | None, Any]] = []
        self.urns: dict[tuple[str, str], str] = {}

    def resolve(self, mapping_id: str, key: Any, loc: SourceLocation | None, data_path: Any) -> str:
        target = (mapping_id, key if type(key) is str else str(key))
        self.requested.append((target, loc, data_path))
        found = self.urns.get(target)
        if found is None:
            rtype = self.engine.mapping_types[mapping_id][0]
            found = self.urns[target] = urn(self.engine.resource_id(rtype, *target))
        return found

    def dangling(self, produced: set[tuple[str, str]]) -> list[tuple[str, str, SourceLocation | None, Any]]:
        """(mapping id, key, location, data path) of every reference to a resource not produced, in order."""
        if all(target in produced for target in self.urns):  # urns: every target requested
            return []
        return [(*target, loc, data_path) for target, loc, data_path in self.requested if target not in produced]


class _Records:
    """The records each mapping maps. Several mappings read the same list (each kind of measurement
    is one mapping over `measurements`, filtered by `kind = '…'`): it is selected, and grouped by the
    filtered field, once."""

    def __init__(self, root: Scope):
        self.root = root
        self.selections: dict[str, list[tuple[Any, Any]]] = {}
        self.groupings: dict[tuple[str, str], dict[str, list[tuple[Any, Any]]] | None] = {}

    def of(self, c: _Compiled) -> tuple[list[tuple[Any, Any]], Any, Any]:
        """(records, test, when): `test` and `when` still to apply to each record (None: decided)."""
        if c.select is None:
            return [(self.root.item, "$")], c.prefilter, c.when
        path = str(c.m.for_each)  # a valid one is a str; any other selects nothing
        records = self.selections.get(path)
        if records is None:
            records = self.selections[path] = c.select(self.root)
        test = c.prefilter
        if test is None:
            return records, None, c.when
        group_key = (path, test.name)
        if group_key not in self.groupings:
            self.groupings[group_key] = test.group(records)
        groups = self.groupings[group_key]
        if groups is None:
            return records, test, c.when
        return groups.get(test.literal, []), None, None  # exactly the records `when` holds for


def _claim(sd: dict[str, Any]) -> str:
    """The versioned canonical a produced resource claims in meta.profile."""
    return f"{sd['url']}|{sd['version']}" if sd.get("version") else sd["url"]


def _section_keys(sections: list[Any]) -> set[str]:
    keys: set[str] = set()
    for s in sections:
        if isinstance(s, dict) and isinstance(s.get("key"), str):
            keys.add(s["key"])
            keys |= _section_keys(s.get("sections") or [])
    return keys


def _namespace(value: Any, issues: list[Issue], ms: MappingSet) -> uuid.UUID:
    if value is None:
        return DEFAULT_NAMESPACE
    try:
        return uuid.UUID(str(value))
    except ValueError:
        issues.append(error(IssueCode.VALUE, f"id_namespace must be a UUID, not {value!r}", "MAP_NAMESPACE",
                            location=position(ms.layout_positions, ("id_namespace",))))
        return DEFAULT_NAMESPACE
