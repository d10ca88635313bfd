"""Broken definitions never end in a traceback: a StructureDefinition that carries a malformed
snapshot is refused (SNAP_MALFORMED / SNAP_VALUE_TYPE naming its file and element) before anything
reads its elements, and a broken source (`--ig junk.tgz`, unreadable JSON, a damaged package index)
is a DEF_SOURCE_* error, exit 2. Seeded random damage to shipped snapshots and to package files ends
in a validation result or one of these errors, never in another exception. The message table
(exporter/fhir/defmessages.py) has one row per id used, and docs/validation.md one per row."""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

import exporter
from exporter.cli import main
from exporter.fhir.definitions import DefinitionStore, default_store
from exporter.fhir.defmessages import MESSAGES
from exporter.fhir.packages import check_package
from exporter.fhir.snapshot import SnapshotError, check_snapshot
from exporter.issues import ConfigurationError, ExporterError
from exporter.settings import get_settings
from exporter.validation.validator import Validator
from tests.unit.test_packages import _tgz

CORE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/StructureDefinition/"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "validation.md"
PKG = Path(exporter.__file__).parent
IG = next(p for p in sorted(get_settings().igs_dir.iterdir()) if (p / ".index.json").is_file())
WEIGHT = "https://diga-exporter.example.org/fhir/StructureDefinition/diga-body-weight"


def _example() -> dict[str, Any]:
    """The IG's body-weight example (it claims diga-body-weight|0.1.0)."""
    return json.loads((IG / "Observation-ExampleBodyWeight.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def core_store() -> DefinitionStore:
    store = DefinitionStore()
    store.add_source(check_package(get_settings().package_cache))
    return store


def _clone(store: DefinitionStore) -> DefinitionStore:
    """A store over the same (lazily loaded, shared) entries: cheap, and what is added stays in it."""
    return DefinitionStore(dict(store._by_url), dict(store._by_versioned), list(store.sources))


# -- the message table ------------------------------------------------------------------------------

def _ids_used() -> set[str]:
    return {mid for path in PKG.rglob("*.py") if path.name != "defmessages.py"
            for mid in re.findall(r"\b(?:SNAP|DEF)_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8"))}


def test_every_id_used_has_a_row_and_every_row_is_used():
    assert sorted(_ids_used() - set(MESSAGES)) == []
    assert sorted(set(MESSAGES) - _ids_used()) == []


def test_every_row_is_documented():
    """docs/validation.md has the table's rows, as they are."""
    rows = re.findall(r"^\| `((?:SNAP|DEF)_[A-Z_]+)` \| (.*) \| (.*) \|$", DOCS.read_text(encoding="utf-8"), re.M)
    assert rows == [(mid, code.value, text) for mid, (code, text) in MESSAGES.items()]


# -- carried snapshots ------------------------------------------------------------------------------

def test_every_shipped_snapshot_is_well_formed():
    """No false alarm: every snapshot of hl7.fhir.r4.core and igs/ passes the check."""
    settings = get_settings()
    files = sorted(check_package(settings.package_cache).glob("StructureDefinition-*.json"))
    files += sorted(settings.igs_dir.glob("*/StructureDefinition-*.json"))
    checked = 0
    for f in files:
        sd = json.loads(f.read_text(encoding="utf-8"))
        if "snapshot" in sd:
            check_snapshot(sd)
            checked += 1
    assert checked > 600


def _with_snapshot(snapshot: Any) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "id": "p", "url": EX + "p", "name": "P", "status": "draft",
            "kind": "resource", "abstract": False, "type": "Observation", "fhirVersion": "4.0.1",
            "baseDefinition": CORE + "Observation", "derivation": "constraint", "snapshot": snapshot,
            "differential": {"element": [{"id": "Observation.category", "path": "Observation.category", "min": 1}]}}


ROOT = {"id": "Observation", "path": "Observation", "min": 0, "max": "*"}


def _status(**kw: Any) -> dict[str, Any]:
    return {"id": "Observation.status", "path": "Observation.status", "min": 1, "max": "1", "type": [{"code": "code"}], **kw}


@pytest.mark.parametrize("snapshot, message_id, element, text", [
    # the review's cases (review-1 finding 5): each was a traceback in the compiler
    ({"element": "nope"}, "SNAP_MALFORMED", None, "snapshot.element is not a non-empty JSON array"),
    ({"element": [{"id": "Observation"}]}, "SNAP_MALFORMED", "Observation", "an element definition has no valid path"),
    ({"element": [ROOT, _status(type="code")]}, "SNAP_MALFORMED", "Observation.status", "type must be a non-empty JSON array"),
    # more shapes the compiler relies on
    ("nope", "SNAP_MALFORMED", None, "snapshot.element is not a non-empty JSON array"),
    ({"element": [ROOT, 7]}, "SNAP_MALFORMED", "element[1]", "an element definition is not a JSON object"),
    ({"element": [ROOT, _status(type=[{"code": ""}])]}, "SNAP_MALFORMED", "Observation.status",
     "type[0].code must be a non-empty JSON string"),
    ({"element": [ROOT, _status(type=[{"code": "code", "profile": "x"}])]}, "SNAP_MALFORMED", "Observation.status",
     "type[0].profile must be a non-empty JSON array"),
    ({"element": [ROOT, _status(max=1)]}, "SNAP_MALFORMED", "Observation.status", "max must be a non-empty JSON string"),
    ({"element": [ROOT, _status(min=2)]}, "SNAP_MALFORMED", "Observation.status", "min 2 is above max 1"),
    ({"element": [ROOT, _status(base={"path": "Observation.status", "min": 1})]}, "SNAP_MALFORMED",
     "Observation.status", "base has no max"),
    ({"element": [ROOT, _status(binding={"strength": "strong"})]}, "SNAP_MALFORMED", "Observation.status",
     "binding.strength must be one of example, extensible, preferred, required"),
    ({"element": [ROOT, _status(constraint=[{"key": "x-1", "severity": "error", "human": "h", "expression": 1}])]},
     "SNAP_MALFORMED", "Observation.status", "constraint[0].expression must be a non-empty JSON string"),
    ({"element": [ROOT, _status(slicing={"discriminator": [{"type": "value"}], "rules": "open"})]}, "SNAP_MALFORMED",
     "Observation.status", "slicing.discriminator[0] has no path"),
    ({"element": [ROOT, _status(id="Observation.code")]}, "SNAP_MALFORMED", "Observation.code",
     "element id Observation.code does not match its path Observation.status"),
    ({"element": [_status(), ROOT]}, "SNAP_MALFORMED", "Observation.status",
     "the first element Observation.status is not the root"),
    ({"element": [ROOT, {"id": "Observation.code.text", "path": "Observation.code.text"}]}, "SNAP_MALFORMED",
     "Observation.code.text", "comes without (or before) the element it belongs to"),
    ({"element": [ROOT, _status(), _status()]}, "SNAP_MALFORMED", "Observation.status", "appears twice"),
    ({"element": [ROOT, _status(fixedCode=5)]}, "SNAP_VALUE_TYPE", "Observation.status",
     "fixedCode must be a JSON string (the JSON of a code), not a number"),
    ({"element": [ROOT, _status(patternQuantity={"value": 1})]}, "SNAP_VALUE_TYPE", "Observation.status",
     "patternQuantity: the element has type code, not Quantity"),
])
def test_malformed_carried_snapshots_name_file_and_element(snapshot, message_id, element, text):
    store = DefinitionStore()
    store.add_resource(_with_snapshot(snapshot), "ig/StructureDefinition-p.json")
    with pytest.raises(SnapshotError) as info:
        store.snapshot(store.structure(EX + "p"))  # type: ignore[arg-type]
    (issue,) = info.value.issues
    assert (issue.message_id, issue.expression) == (message_id, (element,) if element else ())
    assert issue.location is not None and issue.location.file == "ig/StructureDefinition-p.json"
    assert f"malformed snapshot in StructureDefinition {EX}p: " in issue.message and text in issue.message
    assert "{'" not in issue.message and "['" not in issue.message  # FHIR JSON text, never a Python repr


def test_a_well_formed_snapshot_is_checked_once(core_store):
    store = _clone(core_store)
    sd = store.structure(CORE + "bodyweight")
    assert sd is not None
    assert store.snapshot(sd) is sd["snapshot"]["element"]
    kept = sd["snapshot"]["element"][1]
    sd["snapshot"]["element"][1] = "damaged later"  # not checked again (the compiler asks once per profile)
    try:
        assert store.snapshot(sd)[1] == "damaged later"
        with pytest.raises(SnapshotError):
            _clone(core_store).snapshot(sd)
    finally:
        sd["snapshot"]["element"][1] = kept


# -- the CLI: compiler-style errors, exit 1 (profile) or 2 (source) ---------------------------------

def _write_ig(folder: Path, snapshot: Any) -> None:
    folder.mkdir()
    (folder / "sd.json").write_text(json.dumps(_with_snapshot(snapshot)), encoding="utf-8")


def _obs(tmp_path: Path) -> str:
    path = tmp_path / "obs.json"
    path.write_text(json.dumps({"resourceType": "Observation", "meta": {"profile": [EX + "p"]}, "status": "final",
                                "code": {"text": "x"}}), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("snapshot, line", [
    ({"element": "nope"}, "error SNAP_MALFORMED: malformed snapshot in StructureDefinition "),
    ({"element": [{"id": "Observation"}]}, "error SNAP_MALFORMED: "),
    ({"element": [ROOT, _status(type="code")]}, "error SNAP_MALFORMED: "),
])
def test_cli_malformed_snapshot(tmp_path, capsys, snapshot, line):
    _write_ig(tmp_path / "ig", snapshot)
    assert main(["validate", "--ig", str(tmp_path / "ig"), _obs(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'ig' / 'sd.json'}: {line}") and "Traceback" not in err


SD_BYTES = json.dumps(_with_snapshot({"element": [ROOT]})).encode()


@pytest.mark.parametrize("name, content, message_id", [
    ("junk.tgz", b"not a tgz", "DEF_SOURCE_ARCHIVE"),
    ("cut.tgz", _tgz({"package/package.json": b"{}", "package/sd.json": SD_BYTES})[:60], "DEF_SOURCE_ARCHIVE"),
    ("badjson.tgz", _tgz({"package/sd.json": b'{"resourceType": '}), "DEF_SOURCE_JSON"),
    ("folder/sd.json", b'{"resourceType": "StructureDefinition", "url": ', "DEF_SOURCE_JSON"),
    ("folder/sd.json", b"\xff\xfe{}", "DEF_SOURCE_JSON"),
    ("folder/sd.json", b"[" * 200_000 + b"]" * 200_000, "DEF_SOURCE_JSON"),
    ("folder/x.json/", b"", "DEF_SOURCE_READ"),  # a folder named like a JSON file
    ("pkg/.index.json", b'{"files": 5}', "DEF_SOURCE_INDEX"),
    ("pkg/.index.json", b'{"files": [{"filename": "../sd.json", "resourceType": "StructureDefinition", "url": "u"}]}',
     "DEF_SOURCE_INDEX"),
    ("pkg/.index.json", b'{"files": [', "DEF_SOURCE_JSON"),
    ("pkg/.index.json", json.dumps({"files": [{"filename": "sd.json", "resourceType": "StructureDefinition",
                                               "url": EX + "p"}]}).encode() + b" ", "DEF_SOURCE_INDEX"),
], ids=["junk-tgz", "cut-tgz", "bad-json-in-tgz", "cut-json", "not-utf8", "too-deep", "folder-named-json",
        "index-files-not-list", "index-path-traversal", "index-not-json", "index-names-wrong-content"])
def test_cli_broken_sources_exit_2(tmp_path, capsys, name, content, message_id):
    """Each ends in one compiler-style DEF_SOURCE_* line naming the source, exit 2 (usage)."""
    target = tmp_path / name
    source = tmp_path / Path(name).parts[0]
    if name.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if name.startswith("pkg/") and b"sd.json" in content and b"../" not in content:
        (source / "sd.json").write_bytes(b"[]")  # named by the index, but not the resource it names
    assert main(["validate", "--ig", str(source), _obs(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f": error {message_id}: " in err and "Traceback" not in err
    assert err.startswith(str(source))


# -- fuzz: seeded damage to shipped snapshots and to package files ----------------------------------

VALUES: list[Any] = [None, 0, 1, -1, 1.5, True, "", "x", "*", "1", "0", "Observation.x", "a:b", "..", [], {}, [1], ["x"],
                     [{}], {"x": 1}, [{"code": "Quantity"}], [{"code": "Foo", "profile": ["x"]}], {"strength": "example"},
                     {"rules": "open"}, {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"},
                     [{"key": "k", "severity": "error", "human": "h", "expression": "x.exists()"}],
                     [{"key": "k", "severity": "error", "human": "h", "expression": ")("}],
                     {"path": "Observation", "min": 0, "max": "*"}, {"coding": [{"code": 1}]}, "\u0000", "x" * 300]
KEYS = ["id", "path", "sliceName", "min", "max", "base", "type", "slicing", "binding", "constraint", "contentReference",
        "fixedCode", "patternCodeableConcept", "fixedString", "patternQuantity", "minValueDecimal", "maxLength",
        "mustSupport", "isModifier", "condition", "extension"]
NESTED = [("type", "code"), ("type", "profile"), ("type", "targetProfile"), ("slicing", "rules"), ("slicing", "discriminator"),
          ("binding", "strength"), ("binding", "valueSet"), ("constraint", "expression"), ("constraint", "key"),
          ("base", "max")]


def _damage(elements: list[Any], rnd: random.Random) -> None:
    """One random damage to a snapshot element list."""
    i = rnd.randrange(len(elements))
    e = elements[i]
    roll = rnd.random()
    if roll < 0.45 and isinstance(e, dict):
        e[rnd.choice(KEYS)] = copy.deepcopy(rnd.choice(VALUES))
    elif roll < 0.65 and isinstance(e, dict):
        key, sub = rnd.choice(NESTED)
        holder = e.get(key)
        holder = holder[0] if isinstance(holder, list) and holder else holder
        if isinstance(holder, dict):
            holder[sub] = copy.deepcopy(rnd.choice(VALUES))
    elif roll < 0.75 and isinstance(e, dict) and e:
        del e[rnd.choice(sorted(e))]
    elif roll < 0.85:
        del elements[i]
    elif roll < 0.95:
        elements.insert(rnd.randrange(len(elements) + 1), copy.deepcopy(rnd.choice(elements)))
    else:
        elements[i] = copy.deepcopy(rnd.choice(VALUES))


def test_damaged_snapshots_never_end_in_another_exception(core_store):
    """Shipped snapshots (IG profile, core profiles, core datatypes the example uses) damaged at
    random, then the IG's body-weight example validated: issues or a SnapshotError naming the
    definition, never another exception."""
    rnd = random.Random(5)
    ig_sds = {f.name: json.loads(f.read_text(encoding="utf-8")) for f in sorted(IG.glob("StructureDefinition-*.json"))}
    targets = [ig_sds["StructureDefinition-diga-body-weight.json"]] + [
        core_store.structure(CORE + name) for name in ("bodyweight", "vitalsigns", "Quantity", "CodeableConcept",
                                                        "Coding", "Reference", "Observation")]
    base = _clone(core_store)
    base.add_source(IG)
    outcomes = {"issues": 0, "clean": 0, "error": 0}
    for _ in range(100):
        sd = copy.deepcopy(rnd.choice(targets))
        assert sd is not None
        if rnd.random() < 0.05:
            sd["snapshot"] = copy.deepcopy(rnd.choice(VALUES))
        else:
            for _ in range(rnd.randint(1, 3)):
                if sd["snapshot"]["element"]:
                    _damage(sd["snapshot"]["element"], rnd)
        store = _clone(base)
        store.add_resource(sd, "damaged.json")
        try:
            issues = Validator(store).validate(_example())
            outcomes["issues" if issues else "clean"] += 1
        except SnapshotError as exc:
            (issue,) = exc.issues
            assert issue.message_id.startswith("SNAP_") and sd["url"] in issue.message
            assert issue.location is not None and issue.location.file == "damaged.json"
            outcomes["error"] += 1
    assert outcomes["error"] > 40 and outcomes["issues"] + outcomes["clean"] > 20, outcomes


def _damage_package(folder: Path, rnd: random.Random) -> None:
    """One random damage to the bytes of a package folder's files (or its index)."""
    files = sorted(p for p in folder.iterdir() if p.suffix == ".json")
    path = rnd.choice(files)
    data = bytearray(path.read_bytes())
    roll = rnd.random()
    if roll < 0.25:
        data = data[: rnd.randrange(len(data))]
    elif roll < 0.55:
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
    elif roll < 0.7:
        at = rnd.randrange(len(data))
        data[at:at] = rnd.choice([b"{", b"]", b",", b'"', b"\xc3", b"null", b"[" * 5000])
    elif roll < 0.85:
        data = bytearray(rnd.choice([b"", b"[]", b"null", b"{}", b'{"resourceType": "Bundle", "entry": 5}',
                                     b'{"files": {}}', b'{"files": [7]}', b"\xef\xbb\xbf{}"]))
    elif roll < 0.95 and (folder / ".index.json").is_file():
        index = json.loads((folder / ".index.json").read_text(encoding="utf-8"))
        entry = rnd.choice(index["files"])
        entry[rnd.choice(["filename", "resourceType", "url", "version"])] = copy.deepcopy(
            rnd.choice([None, 5, "", "../package.json", "missing.json", "Patient-ExamplePatient.json", ["x"]]))
        path, data = folder / ".index.json", bytearray(json.dumps(index).encode())
    else:
        (folder / ".index.json").unlink(missing_ok=True)  # a plain folder: every file is read at once
        return
    path.write_bytes(bytes(data))


def test_damaged_packages_never_end_in_another_exception(core_store, tmp_path):
    """The IG package as a folder or a .tgz, its files' bytes or index damaged at random: loading it
    and validating the body-weight example against it gives issues, a DEF_SOURCE_* error naming the
    source, or a SNAP_* error — never another exception."""
    rnd = random.Random(7)
    outcomes = {"issues": 0, "clean": 0, "source": 0, "snapshot": 0}
    for n in range(40):
        folder = tmp_path / f"pkg{n}" / "package"
        shutil.copytree(IG, folder)
        for _ in range(rnd.randint(1, 2)):
            _damage_package(folder, rnd)
        source: Path = folder
        if rnd.random() < 0.25:
            source = tmp_path / f"pkg{n}.tgz"
            with tarfile.open(source, "w:gz") as tar:
                tar.add(folder, arcname="package")
            if rnd.random() < 0.5:
                data = bytearray(source.read_bytes())
                if rnd.random() < 0.5:
                    data = data[: rnd.randrange(len(data))]
                else:
                    data[rnd.randrange(len(data))] ^= 0xFF
                source.write_bytes(bytes(data))
        store = _clone(core_store)
        try:
            store.add_source(source)
            issues = Validator(store).validate(_example())
            outcomes["issues" if issues else "clean"] += 1
        except ConfigurationError as exc:
            (issue,) = exc.issues
            assert issue.message_id.startswith("DEF_SOURCE_") and issue.location is not None
            assert issue.location.file.startswith(str(tmp_path))
            outcomes["source"] += 1
        except ExporterError as exc:
            assert isinstance(exc, SnapshotError) and exc.issues[0].message_id.startswith("SNAP_")
            outcomes["snapshot"] += 1
        shutil.rmtree(folder.parent)
    # the damage reaches both the readers and the validator (the split moves with the IG's files)
    assert outcomes["source"] >= 5 and outcomes["issues"] + outcomes["clean"] >= 5, outcomes


def test_default_store_is_unchanged_by_the_checks():
    """igs/ and the core package still load and validate their own example cleanly."""
    validator = Validator(default_store(get_settings()))
    assert [i for i in validator.validate(_example()) if i.is_error] == []
    assert WEIGHT in " ".join(_example()["meta"]["profile"])
