"""`fhir-export new-kind`: add a scalar measurement kind to the project in one step (layer L2).

A measurement kind lives in eight places; `plan_new_kind` computes all of them and `write_plan`
writes them together (all files or none):

- `schemas/domain-patient.schema.json`: the kind in `measurement_kind`, its unit in `measurement_unit`,
  the kind among the scalar kinds, and its own `allOf` branch (unit, physically possible maximum);
- `mappings/resources/<kind>.yaml`: a copy of the mapping of an existing scalar kind (`like`), names
  replaced, so the shape of a measurement mapping stays defined once, in the mapping set;
- `mappings/codes/measurement-kind-loinc.yaml` and `ucum-units.yaml`: the entries and their `target`
  (profile and snapshot element id, as `fhir-export check` verifies them);
- `mappings/rules.yaml`: a `plausible-<kind>` warning when a plausible range is given;
- `profiles_fsh/observation-<kind>.fsh`: the profile stub, derived from the FHIR core vital signs
  profile of its LOINC code when there is one (the HL7 validator applies that profile anyway), plus
  its alias, and the Composition's vital signs section allow-list;
- `docs/domain.md`: the kind in the measurements table and the rule's row (where it finds them).

Existing files are edited as text, so their comments and layout stay; every edit is checked by reading
the file back and comparing it with the intended change: a file not in the expected shape is an error
naming it, and nothing is written. Errors are `Issue`s (`SCAFFOLD_*`), never a traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.issues import ConfigurationError, Issue, IssueCode, SourceLocation, error
from exporter.mapping.tables import suggest
from exporter.mapping.yamlsrc import MappingSourceError, parse_yaml
from exporter.terminology.checkdigits import loinc_check_digit_ok, snomed_verhoeff_ok

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
SCHEMA = "schemas/domain-patient.schema.json"
UNIT_TABLE = "mappings/codes/ucum-units.yaml"
RULES = "mappings/rules.yaml"
ALIASES = "profiles_fsh/aliases.fsh"
COMPOSITION = "profiles_fsh/composition.fsh"
DOMAIN_DOC = "docs/domain.md"
SECTION_ALLOW_LIST = "* section[findings].section.entry only Reference("
"""The Composition rule listing the profiles the vital signs sub-section may reference."""
CORE_VALUE_CODE = "Observation.value[x]:valueQuantity.code"
"""The snapshot id of the unit code in a profile derived from a core vital signs profile (it slices
value[x]); a profile derived from plain Observation has `Observation.value[x].code`."""

_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
_UCUM_ATOM = re.compile(r"[!-~]+\Z")  # printable ASCII, no space (UCUM case-sensitive syntax)
_PLAIN_YAML = re.compile(r"[A-Za-z](?:[A-Za-z0-9._/()\[\]-]|:(?! )| (?![#:]))*\Z")


@dataclass(frozen=True)
class KindSpec:
    """What a DiGA team says about its new kind (the command line)."""

    name: str
    loinc: Sequence[str]
    unit: str
    ucum: str | None = None
    displays: Sequence[str] = ()
    snomed: str | None = None
    snomed_display: str | None = None
    title: str | None = None
    maximum: float | None = None
    plausible: tuple[float, float] | None = None
    like: str = "heart_rate"

    @property
    def slug(self) -> str:
        return self.name.replace("_", "-")

    @property
    def words(self) -> str:
        return self.title or self.name.replace("_", " ")

    @property
    def profile_id(self) -> str:
        return f"diga-{self.slug}"

    @property
    def fsh_name(self) -> str:
        return "DiGA" + "".join(p[:1].upper() + p[1:] for p in self.name.split("_"))

    @property
    def ucum_code(self) -> str:
        return self.ucum or self.unit


@dataclass
class Plan:
    """The new text of every file the kind touches (relative path → text), and what to say."""

    root: Path
    files: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ScaffoldError(ConfigurationError):
    """The kind cannot be added as asked (a usage or set-up problem: exit 2)."""


def _fail(message: str, message_id: str = "SCAFFOLD_USAGE", file: str | None = None, line: int | None = None,
          column: int | None = None) -> ScaffoldError:
    loc = SourceLocation(file, line, column) if file else None
    return ScaffoldError(error(IssueCode.INVALID, message, message_id, location=loc))


def _shape(file: str, what: str, offset: int | None = None, text: str = "") -> ScaffoldError:
    line = text.count("\n", 0, offset) + 1 if offset is not None else None
    return _fail(f"not in the shape `new-kind` edits: {what}; make this change by hand (docs/extending.md)",
                 "SCAFFOLD_SHAPE", file, line)


# ----------------------------------------------------------------------------- the arguments

def check_spec(spec: KindSpec) -> list[Issue]:
    """Problems of the arguments alone, all of them (before any file is read)."""
    out: list[Issue] = []

    def bad(message: str, message_id: str = "SCAFFOLD_USAGE") -> None:
        out.append(error(IssueCode.INVALID, message, message_id))

    if not _NAME.match(spec.name) or len(spec.name) > 40:
        bad(f"kind name '{spec.name}' must be snake_case (a-z, 0-9, single underscores), at most 40 characters")
    if not spec.loinc:
        bad("at least one --loinc code is needed")
    for code in spec.loinc:
        if not loinc_check_digit_ok(code):
            bad(f"'{code}' is not a LOINC code with a correct check digit (shape 12345-6, mod-10 check digit)",
                "SCAFFOLD_LOINC")
    if len(set(spec.loinc)) != len(spec.loinc):
        bad("a --loinc code is given twice", "SCAFFOLD_LOINC")
    if len(spec.displays) > len(spec.loinc):
        bad(f"{len(spec.displays)} --display texts for {len(spec.loinc)} --loinc codes (one per code, in order)")
    if spec.snomed is not None and not snomed_verhoeff_ok(spec.snomed):
        bad(f"'{spec.snomed}' is not a SNOMED CT id with a correct Verhoeff check digit", "SCAFFOLD_SNOMED")
    if spec.snomed_display and spec.snomed is None:
        bad("--snomed-display needs --snomed")
    if not spec.unit or not _UCUM_ATOM.match(spec.unit):
        bad(f"unit '{spec.unit}' must be printable ASCII without spaces")
    if not _ucum_ok(spec.ucum_code):
        bad(f"'{spec.ucum_code}' is not a UCUM code (printable ASCII without spaces, balanced [] and {{}}, "
            "e.g. %, /min, mm[Hg], mmol/L)", "SCAFFOLD_UCUM")
    if spec.maximum is not None and not spec.maximum > 0:
        bad("--max-possible must be above 0 (a measurement value is always above 0)")
    if spec.plausible is not None:
        low, high = spec.plausible
        if not 0 < low < high:
            bad(f"plausible range {low}..{high}: need 0 < --min < --max")
        elif spec.maximum is not None and high > spec.maximum:
            bad(f"plausible maximum {high} lies above the possible maximum {spec.maximum}")
    for text in [*spec.displays, spec.snomed_display or "", spec.title or ""]:
        if any(ord(ch) < 32 for ch in text) or '"' in text or "\\" in text:
            bad("display and title texts must not contain control characters, '\"' or '\\'")
    return out


def _ucum_ok(code: str) -> bool:
    """UCUM's case-sensitive syntax as far as it can be checked without the unit tables: printable ASCII
    without spaces, square brackets and curly annotations balanced and not nested."""
    if not code or not _UCUM_ATOM.match(code):
        return False
    depth = {"[": 0, "{": 0}
    closing = {"]": "[", "}": "{"}
    for ch in code:
        if ch in depth:
            if any(depth.values()):
                return False
            depth[ch] += 1
        elif ch in closing:
            if depth[closing[ch]] != 1:
                return False
            depth[closing[ch]] -= 1
    return not any(depth.values())


# ----------------------------------------------------------------------------- text edits, checked

def _cap(words: str) -> str:
    return words[:1].upper() + words[1:]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(_number(value))
    text = str(value)
    if _PLAIN_YAML.match(text) and text.lower() not in ("yes", "no", "on", "off", "true", "false", "null"):
        return text
    return json.dumps(text, ensure_ascii=False)


def _yaml_key(value: str) -> str:
    return value if re.fullmatch(r"[a-z_][a-z0-9_]*", value) else json.dumps(value, ensure_ascii=False)


def _block_end(text: str, key: str, file: str) -> int:
    """Offset just after the last non-blank line of the top-level YAML block `key:`."""
    m = re.search(rf"^{re.escape(key)}:[ \t]*(#.*)?\n", text, re.M)
    if m is None:
        raise _shape(file, f"no top-level '{key}:' block")
    end = m.end()
    for line in re.finditer(r"^.*(?:\n|\Z)", text[m.end():], re.M):
        body = line.group(0)
        if not body:
            break
        if body[:1] not in (" ", "\t", "\n", "#") and body.strip():
            break  # the next top-level key
        if body.strip() and not body.lstrip().startswith("#"):
            end = m.end() + line.end()
    return end


def _insert(text: str, at: int, snippet: str) -> str:
    if at and text[at - 1:at] != "\n":
        snippet = "\n" + snippet
    return text[:at] + snippet + text[at:]


def _yaml_data(text: str, file: str) -> Any:
    try:
        return parse_yaml(text, file)[0]
    except MappingSourceError as exc:
        raise ScaffoldError(exc.issues) from None


def _checked_yaml(file: str, old: str, new: str, change: Callable[[Any], None]) -> str:
    """`new`, if it reads as `old` with `change` applied; else a SCAFFOLD_SHAPE error."""
    want = _yaml_data(old, file)
    change(want)
    if _yaml_data(new, file) != want:
        raise _shape(file, "the edited file does not read back as intended")
    return new


# ----------------------------------------------------------------------------- the plan

def _read(root: Path, rel: str) -> str:
    try:
        return (root / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read: {exc}", "SCAFFOLD_READ", rel) from None


def _schema_edit(root: Path, spec: KindSpec) -> str:
    text = _read(root, SCHEMA)
    try:
        schema = json.loads(text)
        defs = schema["$defs"]
        kinds: list[str] = defs["measurement_kind"]["enum"]
        units: list[str] = defs["measurement_unit"]["enum"]
        branches: list[dict[str, Any]] = defs["measurement"]["allOf"]
        scalar = next(i for i, b in enumerate(branches)
                      if "enum" in b["if"]["properties"]["kind"] and b["then"].get("required") == ["value"])
    except (ValueError, KeyError, TypeError, StopIteration):
        raise _shape(SCHEMA, "$defs.measurement_kind.enum, $defs.measurement_unit.enum and the scalar kinds' "
                             "branch of $defs.measurement.allOf") from None
    if spec.name in kinds:
        raise _fail(f"measurement kind '{spec.name}' exists already", "SCAFFOLD_EXISTS", SCHEMA,
                    text.count("\n", 0, text.find(json.dumps(spec.name))) + 1)
    scalar_kinds: list[str] = branches[scalar]["if"]["properties"]["kind"]["enum"]
    if spec.like not in scalar_kinds:
        raise _fail(f"--like '{spec.like}' is not a scalar measurement kind{suggest(spec.like, scalar_kinds)}")

    def replace_after(text: str, anchor: str, old: str, new: str) -> str:
        start = text.find(anchor)
        at = text.find(old, start) if start >= 0 else -1
        if at < 0:
            raise _shape(SCHEMA, f"{old} after {anchor}")
        return text[:at] + new + text[at + len(old):]

    new = replace_after(text, '"measurement_kind": {', f'"enum": {json.dumps(kinds)}',
                        f'"enum": {json.dumps(kinds + [spec.name])}')
    kind_doc = defs["measurement_kind"].get("description")
    listed = isinstance(kind_doc, str) and " → diga-" in kind_doc and kind_doc.endswith(".")
    if listed:  # the description names each kind's profile: name the new one too
        new = replace_after(new, '"measurement_kind": {', json.dumps(kind_doc, ensure_ascii=False),
                            json.dumps(f"{kind_doc[:-1]}, {spec.name} → {spec.profile_id}.", ensure_ascii=False))
    if spec.unit not in units:
        new = replace_after(new, '"measurement_unit": {', f'"enum": {json.dumps(units)}',
                            f'"enum": {json.dumps(units + [spec.unit])}')
    new = replace_after(new, '"measurement": {', f'{{"kind": {{"enum": {json.dumps(scalar_kinds)}}}}}',
                        f'{{"kind": {{"enum": {json.dumps(scalar_kinds + [spec.name])}}}}}')
    value: dict[str, Any] = {"description": f"{_cap(spec.words)} in {spec.unit}."}
    if spec.maximum is not None:
        value["maximum"] = _number(spec.maximum)
    branch = {
        "description": f"{_cap(spec.words)} in {spec.unit}"
                       + (f" (0 < value <= {_number(spec.maximum)})." if spec.maximum is not None else "."),
        "if": {"properties": {"kind": {"const": spec.name}}, "required": ["kind"]},
        "then": {"properties": {"unit": {"description": f"Unit of {spec.words}.", "const": spec.unit},
                                "value": value}},
    }
    last = json.dumps(branches[-1]["description"], ensure_ascii=False)
    at = new.find(f'"description": {last}', new.find('"measurement": {'))
    brace = new.rfind("{", 0, at)
    if at < 0 or brace < 0 or new[brace + 1:at].strip():
        raise _shape(SCHEMA, "the last branch of $defs.measurement.allOf")
    indent = brace - new.rfind("\n", 0, brace) - 1
    inner = " " * (indent + 2)
    body = ",\n".join(f"{inner}{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in branch.items())
    new = new[:brace] + "{\n" + body + "\n" + " " * indent + "},\n" + " " * indent + new[brace:]
    want = json.loads(text)
    want["$defs"]["measurement_kind"]["enum"].append(spec.name)
    if listed:
        want["$defs"]["measurement_kind"]["description"] = f"{kind_doc[:-1]}, {spec.name} → {spec.profile_id}."
    if spec.unit not in units:
        want["$defs"]["measurement_unit"]["enum"].append(spec.unit)
    want["$defs"]["measurement"]["allOf"][scalar]["if"]["properties"]["kind"]["enum"].append(spec.name)
    want["$defs"]["measurement"]["allOf"].insert(len(branches) - 1, branch)
    try:
        if json.loads(new) != want:
            raise _shape(SCHEMA, "the edited schema does not read back as intended")
    except ValueError:
        raise _shape(SCHEMA, "the edited schema is no longer JSON") from None
    return new


def _coding_lines(indent: str, codings: Sequence[dict[str, str]]) -> str:
    out = []
    for c in codings:
        first = True
        for k, v in c.items():
            out.append(f"{indent}{'- ' if first else '  '}{k}: {_yaml_scalar(v)}")
            first = False
    return "\n".join(out) + "\n"


def _target_lines(keys: Sequence[str], profile: str, element: str) -> str:
    return (f"  - keys: [{', '.join(_yaml_scalar(k) for k in keys)}]\n"
            f"    profile: {profile}\n"
            f"    element: {element}\n")


def _table_edit(root: Path, rel: str, key: str, codings: list[dict[str, str]] | None,
                target: dict[str, Any]) -> str:
    """Add the target (and, when `codings` is given, the entry `key`) to a code table."""
    text = _read(root, rel)
    data = _yaml_data(text, rel)
    if not isinstance(data, dict) or not isinstance(data.get("target"), list) or not isinstance(data.get("entries"), dict):
        raise _shape(rel, "a code table with 'target' and 'entries'")
    if codings is not None and key in data["entries"]:
        raise _fail(f"entry '{key}' exists already", "SCAFFOLD_EXISTS", rel)
    new = _insert(text, _block_end(text, "target", rel),
                  _target_lines(target["keys"], target["profile"], target["element"]))
    if codings is not None:
        new = _insert(new, _block_end(new, "entries", rel),
                      f"  {_yaml_key(key)}:\n    codings:\n" + _coding_lines("      ", codings))

    def change(d: Any) -> None:
        d["target"].append(target)
        if codings is not None:
            d["entries"][key] = {"codings": codings}

    return _checked_yaml(rel, text, new, change)


def _rules_edit(root: Path, spec: KindSpec) -> str:
    text = _read(root, RULES)
    data = _yaml_data(text, RULES)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise _shape(RULES, "a top-level 'rules:' list")
    rid = f"plausible-{spec.slug}"
    if any(isinstance(r, dict) and r.get("id") == rid for r in data["rules"]):
        raise _fail(f"rule '{rid}' exists already", "SCAFFOLD_EXISTS", RULES)
    low, high = spec.plausible  # type: ignore[misc]
    rule = {"id": rid, "description": f"{_cap(spec.words)} lies between {_number(low)} and {_number(high)} {spec.unit}.",
            "records": "measurements", "when": {"kind": spec.name},
            "check": {"range": {"field": "value", "min": _number(low), "max": _number(high)}},
            "severity": "warning", "configurable": True}
    snippet = (f"  - id: {rid}\n    description: {_yaml_scalar(rule['description'])}\n"
               f"    records: measurements\n    when: {{kind: {spec.name}}}\n"
               f"    check: {{range: {{field: value, min: {_yaml_scalar(low)}, max: {_yaml_scalar(high)}}}}}\n"
               f"    severity: warning\n    configurable: true\n")
    return _checked_yaml(RULES, text, _insert(text, _block_end(text, "rules", RULES), snippet),
                         lambda d: d["rules"].append(rule))


def _model_mapping(root: Path, spec: KindSpec) -> tuple[str, str]:
    """The mapping file of the `like` kind: the scalar measurement mapping the new one copies."""
    folder = root / "mappings" / "resources"
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        data = _yaml_data(text, f"mappings/resources/{path.name}")
        if isinstance(data, dict) and data.get("for_each") == "measurements" \
                and data.get("when") == f"kind = '{spec.like}'":
            return f"mappings/resources/{path.name}", text
    raise _fail(f"no mapping of measurements with `when: \"kind = '{spec.like}'\"` to copy (--like)",
                "SCAFFOLD_SHAPE", "mappings/resources")


def _code_tables(mapping: Any) -> list[str]:
    """The code tables a measurement mapping looks the kind up in for Observation.code, in order."""
    return list(_code_lookups(mapping))


def _code_lookups(mapping: Any) -> dict[str, str | None]:
    """table → the `field` the mapping takes from it (None: the whole entry), in order."""
    found: dict[str, str | None] = {}
    stack = [(mapping.get("resource") or {}).get("code") if isinstance(mapping, dict) else None]
    while stack:  # depth first, in document order
        node = stack.pop()
        children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
        if isinstance(node, dict) and isinstance(node.get("table"), str) and node.get("key") == {"path": "kind"}:
            found.setdefault(node["table"], node.get("field"))
        stack.extend(reversed(children))
    return found


def _mapping_text(root: Path, spec: KindSpec) -> str:
    file, text = _model_mapping(root, spec)
    data = _yaml_data(text, file)
    old_profile, old_id = data.get("profile"), data.get("mapping")
    if not _code_tables(data):
        raise _shape(file, "a mapping whose code comes from code tables keyed by `{path: kind}` (--like)")
    like_words = spec.like.replace("_", " ")
    new = text
    for old, repl in ((f"kind = '{spec.like}'", f"kind = '{spec.name}'"), (str(old_profile), spec.profile_id),
                      (f"mapping: {old_id}", f"mapping: {spec.slug}"), (like_words, spec.words),
                      (like_words[:1].upper() + like_words[1:], _cap(spec.words))):
        new = new.replace(old, repl)
    got = _yaml_data(new, f"mappings/resources/{spec.slug}.yaml")
    if not isinstance(got, dict) or (got.get("mapping"), got.get("profile"), got.get("when")) != (
            spec.slug, spec.profile_id, f"kind = '{spec.name}'"):
        raise _shape(file, "mapping, profile and when could not be renamed (--like)")
    if spec.like in new:
        raise _shape(file, f"'{spec.like}' is still named in the copy (--like)")
    return new


def _kind_entry(root: Path, rel: str, spec: KindSpec, parent: str | None,
                settings: Any) -> tuple[list[dict[str, str]], str]:
    """The new kind's codings in the kind table `rel` and its target element, shaped like the `like`
    kind's: the same code systems (LOINC and/or SNOMED CT; SNOMED CT beside LOINC when no table of its
    own has it), the same Coding.version, and a target on the same kind of element (Observation.code,
    or the LOINC / SNOMED CT coding slice the profile stub then declares)."""
    data = _yaml_data(_read(root, rel), rel)
    like = ((data.get("entries") or {}).get(spec.like) or {}) if isinstance(data, dict) else {}
    like_codings = [c for c in like.get("codings") or [] if isinstance(c, dict)]
    if not like_codings:
        raise _shape(rel, f"an entry '{spec.like}' with codings to follow (--like)")
    like_target = next((tg for tg in data.get("target") or [] if isinstance(tg, dict)
                        and spec.like in [str(k) for k in tg.get("keys") or []]), None)
    if like_target is None:
        raise _shape(rel, f"a target for key '{spec.like}' to follow (--like)")
    versions = {c.get("system"): str(c["version"]) for c in like_codings if "version" in c}
    systems = {c.get("system") for c in like_codings}

    def coding(system: str, code: str, display: str | None) -> dict[str, str]:
        out = {"system": system}
        if system in versions:
            out["version"] = versions[system]
        out["code"] = code
        if display:
            out["display"] = display
        return out

    codings: list[dict[str, str]] = []
    if LOINC in systems:
        codings += [coding(LOINC, c, d) for c, d in zip(spec.loinc, [*spec.displays, *[None] * len(spec.loinc)], strict=False)]
    snomed_here = SNOMED in systems or (LOINC in systems and not _snomed_table_elsewhere(root, rel, spec))
    if snomed_here and spec.snomed:
        codings.append(coding(SNOMED, spec.snomed, spec.snomed_display))
    elif SNOMED in systems:
        raise _fail(f"the mapping copied from '{spec.like}' writes a SNOMED CT coding from this table: give --snomed",
                    "SCAFFOLD_USAGE", rel)
    if not codings:
        raise _shape(rel, f"entry '{spec.like}' codes in LOINC or SNOMED CT")
    element = str(like_target.get("element", ""))
    if element == "Observation.code":
        return codings, element
    if element.endswith(".coding:snomed"):
        return codings, "Observation.code.coding:snomed"
    if ".coding:" in element:  # the LOINC coding slice: the core profile's, or the stub's own
        return codings, _core_loinc_slice(parent, spec, settings) if parent else "Observation.code.coding:loinc"
    raise _shape(rel, f"the target element '{element}' of '{spec.like}' (Observation.code or a coding slice)")


def _snomed_table_elsewhere(root: Path, rel: str, spec: KindSpec) -> bool:
    """Does the mapping copied look the kind up in another table that codes in SNOMED CT?"""
    file, text = _model_mapping(root, spec)
    for table in _code_tables(_yaml_data(text, file)):
        other = f"mappings/codes/{table}.yaml"
        if other == rel:
            continue
        data = _yaml_data(_read(root, other), other)
        entry = ((data.get("entries") or {}).get(spec.like) or {}) if isinstance(data, dict) else {}
        if any(isinstance(c, dict) and c.get("system") == SNOMED for c in entry.get("codings") or []):
            return True
    return False


def _core_loinc_slice(parent: str, spec: KindSpec, settings: Any) -> str:
    from exporter.fhir.definitions import default_store

    store = default_store(settings)
    sd = store.structure(parent)
    for e in store.snapshot(sd) if sd is not None else []:
        eid = e.get("id", "")
        if eid.startswith("Observation.code.coding:") and eid.endswith(".code") and e.get("fixedCode") == spec.loinc[0]:
            return eid.removesuffix(".code")
    return "Observation.code"


def _core_parent(root: Path, spec: KindSpec, settings: Any) -> tuple[str | None, str | None]:
    """(core vital signs profile of the first LOINC code, the UCUM code it fixes) or (None, None)."""
    from exporter.fhir.definitions import default_store
    from exporter.validation.vitals import vital_sign_codes

    store = default_store(settings)
    parent = vital_sign_codes(store).get(spec.loinc[0])
    if parent is None:
        return None, None
    fixed = None
    sd = store.structure(parent)
    for e in store.snapshot(sd) if sd is not None else []:
        if e.get("id") == CORE_VALUE_CODE:
            fixed = e.get("fixedCode")
    return parent, fixed


def _alias_edit(root: Path, parent: str) -> tuple[str, str | None]:
    """The alias name of `parent` and the new text of aliases.fsh (None: the alias exists)."""
    text = _read(root, ALIASES)
    m = re.search(rf"^Alias:\s*(\S+)\s*=\s*{re.escape(parent)}\s*$", text, re.M)
    if m:
        return m.group(1), None
    name = "$vs-" + parent.rsplit("/", 1)[-1]
    if re.search(rf"^Alias:\s*{re.escape(name)}\s*=", text, re.M):
        raise _fail(f"alias {name} exists for another canonical", "SCAFFOLD_SHAPE", ALIASES)
    aliases = list(re.finditer(r"^Alias:\s*\$vs-\S+\s*=\s*\S+[ \t]*\n", text, re.M))
    last = aliases[-1] if aliases else None
    if last is None:
        raise _shape(ALIASES, "an 'Alias: $vs-... = <core vital signs profile>' line")
    return name, text[:last.end()] + f"Alias: {name} = {parent}\n" + text[last.end():]


def _composition_edit(root: Path, spec: KindSpec) -> str:
    text = _read(root, COMPOSITION)
    lines = [i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith(SECTION_ALLOW_LIST)]
    if len(lines) != 1:
        raise _shape(COMPOSITION, f"exactly one line '{SECTION_ALLOW_LIST}...)'")
    all_lines = text.splitlines(keepends=True)
    line = all_lines[lines[0]]
    close = line.rstrip("\n").rstrip().rfind(")")
    if close < 0 or not line.rstrip().endswith(")"):
        raise _shape(COMPOSITION, "the vital signs allow-list ending in ')'", sum(map(len, all_lines[:lines[0]])), text)
    listed = line[len(SECTION_ALLOW_LIST):close].split(" or ")
    if spec.fsh_name in [p.strip() for p in listed]:
        raise _fail(f"{spec.fsh_name} is listed already", "SCAFFOLD_EXISTS", COMPOSITION, lines[0] + 1)
    all_lines[lines[0]] = line[:close] + f" or {spec.fsh_name}" + line[close:]
    return "".join(all_lines)


def _code_rules(spec: KindSpec, core_parent: bool, sliced: bool) -> list[str]:
    """How the stub codes Observation.code: a pattern (the LOINC code), or — when the code tables
    target coding slices — the core profile's LOINC slice or its own, plus the SNOMED CT slice."""
    if not sliced:
        return [f"* code = $loinc#{spec.loinc[0]}"]
    lines = [] if core_parent else [
        "* code.coding ^slicing.discriminator[0].type = #value",
        "* code.coding ^slicing.discriminator[0].path = \"system\"",
        "* code.coding ^slicing.rules = #open",
        "* code.coding contains loinc 1..1",
        "* code.coding[loinc].system 1..1",
        "* code.coding[loinc].system = $loinc (exactly)",
        "* code.coding[loinc].code 1..1",
        f"* code.coding[loinc].code = #{spec.loinc[0]} (exactly)",
    ]
    if spec.snomed:
        lines.append(f"* insert SnomedCodingSlice(code.coding, {spec.snomed})")
    return lines


def _fsh_text(spec: KindSpec, parent_alias: str | None, sliced: bool = False) -> str:
    codes = ", ".join(spec.loinc)
    parent = parent_alias or "Observation"
    derived = (f" Derives from the FHIR core vital signs profile {parent_alias[4:]} (the HL7 validator applies it "
               f"to every Observation with LOINC {spec.loinc[0]})." if parent_alias else "")
    lines = [
        f"// Scaffolded by `fhir-export new-kind {spec.name}`: review before publishing (docs/extending.md).",
        "",
        f"Profile: {spec.fsh_name}",
        f"Parent: {parent}",
        f"Id: {spec.profile_id}",
        f"Title: \"DiGA {_cap(spec.words)}\"",
        f"Description: \"{_cap(spec.words)} measured by or entered in the DiGA (LOINC {codes}, {spec.ucum_code}).{derived}\"",
        "* insert DiGAObservationBase",
    ]
    if parent_alias is None:
        lines.append("* insert VitalSignsCategory")
    lines += _code_rules(spec, parent_alias is not None, sliced)
    lines += [
        "* value[x] 1..1",
        "* value[x] only Quantity",
        "* valueQuantity.value 1..1",
        "* valueQuantity.unit 1..1",
        "* valueQuantity.system 1..1",
        "* valueQuantity.system = $ucum (exactly)",
        "* valueQuantity.code 1..1",
        f"* valueQuantity.code = #{spec.ucum_code} (exactly)",
        "",
    ]
    return "\n".join(lines)


def _plausible_rule(rules_text: str, schema_text: str, spec: KindSpec) -> Any:
    """The new plausibility rule as the exporter loads it (with the new schema): proves the edit of
    rules.yaml, and says in the exporter's words what it checks."""
    from exporter.rules.ruleset import parse_rules

    data, pos = parse_yaml(rules_text, RULES)
    ruleset = parse_rules(data, pos, RULES, json.loads(schema_text))
    errors = [i for i in ruleset.issues if i.is_error]
    if errors:
        raise ScaffoldError(errors)
    return next(r for r in ruleset.rules if r.id == f"plausible-{spec.slug}")


def _docs_edit(root: Path, spec: KindSpec, rule: Any, plan: Plan) -> str | None:
    """docs/domain.md with the kind in the `kind` row and the kinds table, and the rule's row; the parts
    whose place it cannot find are left to the author (a note says which)."""
    try:
        text = (root / DOMAIN_DOC).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        plan.notes.append(f"{DOMAIN_DOC}: not found; document the kind where your project does")
        return None
    lines = text.splitlines(keepends=True)
    todo = []
    at = next((i for i, line in enumerate(lines) if line.startswith("| `kind` | yes | `")), None)
    if at is None:
        todo.append("the kind in the `kind` row of measurements[]")
    else:
        lines[at] = lines[at].rstrip("\n").rstrip().rstrip("|").rstrip() + f", `{spec.name}` |\n"
    head = next((i for i, line in enumerate(lines) if line.startswith("| kind | units")), None)
    if head is None:
        todo.append("a row in the table of kinds")
    else:
        end = head
        while end + 1 < len(lines) and lines[end + 1].startswith("|"):
            end += 1
        top = f" (0–{_number(spec.maximum)}]" if spec.maximum is not None else ""
        lines.insert(end + 1, f"| `{spec.name}` | `{spec.unit}`{top} | `{spec.profile_id}` | "
                              f"{', '.join(spec.loinc)} | `{spec.ucum_code}` |\n")
    if rule is not None:
        rows = [i for i, line in enumerate(lines) if line.startswith("| `plausible-")]
        if not rows:
            todo.append(f"a row for rule {rule.id}")
        else:
            lines.insert(rows[-1] + 1, f"| `{rule.id}` | {rule.severity.value} (configurable) | each of "
                                       f"`measurements` where `kind` = {spec.name} | {rule.kind.explain(rule.args)}. "
                                       f"{rule.description} |\n")
    if todo:
        plan.notes.append(f"{DOMAIN_DOC}: add by hand: " + "; ".join(todo))
    return "".join(lines)


def plan_new_kind(root: Path, spec: KindSpec, settings: Any) -> Plan:
    """Every file's new text; raises ScaffoldError (all problems found in the arguments, else the first
    problem in a file) before anything is written."""
    problems = check_spec(spec)
    if problems:
        raise ScaffoldError(problems)
    plan = Plan(root)
    plan.files[SCHEMA] = _schema_edit(root, spec)  # first: it says best that the kind exists
    mapping_file = f"mappings/resources/{spec.slug}.yaml"
    fsh_file = f"profiles_fsh/observation-{spec.slug}.fsh"
    for rel in (mapping_file, fsh_file):
        if (root / rel).exists():
            raise _fail("exists already: the kind, or one of the same name, was added before", "SCAFFOLD_EXISTS", rel)
    for path in sorted((root / "profiles_fsh").glob("*.fsh")):
        text = path.read_text(encoding="utf-8")
        for pattern in (rf"^Id:\s*{re.escape(spec.profile_id)}\s*$", rf"^(Profile|Instance|ValueSet|Extension):\s*{spec.fsh_name}\s*$"):
            m = re.search(pattern, text, re.M)
            if m:
                raise _fail(f"'{m.group(0).strip()}' exists already", "SCAFFOLD_EXISTS",
                            f"profiles_fsh/{path.name}", text.count("\n", 0, m.start()) + 1)

    parent, fixed = _core_parent(root, spec, settings)
    if fixed is not None and fixed != spec.ucum_code:
        raise _fail(f"LOINC {spec.loinc[0]} is a core vital sign: its profile {parent} fixes the unit to "
                    f"'{fixed}', not '{spec.ucum_code}'", "SCAFFOLD_UCUM")
    canonical_base = _canonical(root)
    profile_url = f"{canonical_base}/StructureDefinition/{spec.profile_id}"
    model_file, model_text = _model_mapping(root, spec)
    sliced = False
    for table, fld in _code_lookups(_yaml_data(model_text, model_file)).items():
        rel = f"mappings/codes/{table}.yaml"
        codings, element = _kind_entry(root, rel, spec, parent, settings)
        if fld == "coding" and len(codings) > 1:  # the mapping takes one coding: write what it exports
            plan.notes.append(f"{rel}: the mapping takes one coding from this table; not written: "
                              + ", ".join(c["code"] for c in codings[1:]))
            codings = codings[:1]
        sliced |= element != "Observation.code"
        plan.files[rel] = _table_edit(root, rel, spec.name, codings,
                                      {"keys": [spec.name], "profile": profile_url, "element": element})
    units = _yaml_data(_read(root, UNIT_TABLE), UNIT_TABLE)
    existing = (units.get("entries") or {}).get(spec.unit) if isinstance(units, dict) else None
    if existing is not None:
        codes = [c.get("code") for c in existing.get("codings") or [] if isinstance(c, dict)]
        if codes != [spec.ucum_code]:
            raise _fail(f"unit '{spec.unit}' is mapped to UCUM {codes} already, not '{spec.ucum_code}'",
                        "SCAFFOLD_UCUM", UNIT_TABLE)
    unit_codings = None if existing is not None else [{"system": UCUM, "code": spec.ucum_code, "display": spec.unit}]
    element = CORE_VALUE_CODE if parent else "Observation.value[x].code"
    plan.files[UNIT_TABLE] = _table_edit(root, UNIT_TABLE, spec.unit, unit_codings,
                                         {"keys": [spec.unit], "profile": profile_url, "element": element})
    rule = None
    if spec.plausible is not None:
        plan.files[RULES] = _rules_edit(root, spec)
        rule = _plausible_rule(plan.files[RULES], plan.files[SCHEMA], spec)
    docs = _docs_edit(root, spec, rule, plan)
    if docs is not None:
        plan.files[DOMAIN_DOC] = docs
    plan.files[mapping_file] = _mapping_text(root, spec)
    alias = None
    if parent is not None:
        alias, aliases_text = _alias_edit(root, parent)
        if aliases_text is not None:
            plan.files[ALIASES] = aliases_text
    plan.files[COMPOSITION] = _composition_edit(root, spec)
    plan.files[fsh_file] = _fsh_text(spec, alias, sliced)
    plan.created = [mapping_file, fsh_file]
    plan.notes.append(f"profile {spec.profile_id} derives from {parent or 'Observation'}")
    return plan


def _canonical(root: Path) -> str:
    text = _read(root, "sushi-config.yaml")
    data = _yaml_data(text, "sushi-config.yaml")
    canonical = data.get("canonical") if isinstance(data, dict) else None
    if not isinstance(canonical, str) or not canonical:
        raise _shape("sushi-config.yaml", "a 'canonical:' URL")
    return canonical.rstrip("/")


def write_plan(plan: Plan) -> list[str]:
    """Write every file of the plan, or none: each goes to a temporary file beside it first, then all are
    renamed; a failure puts back what was there. Returns the paths written."""
    temps: dict[str, Path] = {}
    backups: dict[str, str | None] = {}
    try:
        for rel, text in plan.files.items():
            target = plan.root / rel
            backups[rel] = target.read_text(encoding="utf-8") if target.exists() else None
            tmp = target.with_name(f".{target.name}.new-kind")
            tmp.write_text(text, encoding="utf-8")
            temps[rel] = tmp
        done: list[str] = []
        try:
            for rel, tmp in temps.items():
                os.replace(tmp, plan.root / rel)
                done.append(rel)
        except OSError:
            for rel in done:
                old = backups[rel]
                if old is None:
                    (plan.root / rel).unlink(missing_ok=True)
                else:
                    (plan.root / rel).write_text(old, encoding="utf-8")
            raise
    except OSError as exc:
        raise _fail(f"cannot write the project files, none changed: {exc}", "SCAFFOLD_WRITE") from None
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return list(plan.files)

