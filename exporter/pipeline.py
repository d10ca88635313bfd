"""The one entry used by the API and the CLI (layer L3): domain document → validated document Bundle.

    exporter = Exporter.from_settings(settings)           # load + compile mappings, IG, validator once
    result = exporter.export(domain_doc, export_time="2026-04-06T10:00:00+02:00")
    result.ok, result.bundle, result.issues, result.operation_outcome()

Steps: the domain document is checked against schemas/domain-patient.schema.json (errors name the
JSON path and the rule, never the value — values are patient data), then against the cross-field
rules of the mapping set (`mappings/rules.yaml`, exporter/rules/: errors name the rule's line and the
record's path); the mappings build the resources and the document; our validator checks the Bundle. An export with any error issue is
never successful: `bundle` is then None, so a partial Bundle cannot be returned as a success.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporter import deadline
from exporter.domainschema import FORMATS, FastChecker, compile_checker, explain, explaining_validator
from exporter.engine.builder import Engine
from exporter.engine.origin import Origins, trace
from exporter.engine.static_check import check_static
from exporter.fhir.definitions import default_store
from exporter.fhir.packages import ig_canonical
from exporter.issues import ConfigurationError, Issue, IssueCode, error, issues_stopped, to_operation_outcome
from exporter.mapping.fields import IntegerPlaces, fields_of
from exporter.mapping.registry import load_mapping_set
from exporter.rules import RuleSet, load_rules
from exporter.validation.policy import Policy
from exporter.validation.validator import Validator

if TYPE_CHECKING:
    from exporter.domainschema import SchemaValidator

EXPLAIN_SECONDS = 2.0
"""Time jsonschema may take to explain a document the compiled check rejected (then: what it found)."""


@dataclass
class ExportResult:
    bundle: dict[str, Any] | None
    issues: list[Issue] = field(default_factory=list)
    body: bytes | None = None
    """The Bundle as written by Exporter.export_written (which keeps no Bundle)."""

    @property
    def ok(self) -> bool:
        return (self.bundle is not None or self.body is not None) and not any(i.is_error for i in self.issues)

    def operation_outcome(self) -> dict[str, Any]:
        return to_operation_outcome(self.issues)


_settled = False


def _settle() -> None:
    """Once per process, after the first export (which compiled the profiles it needed): collect and
    freeze what exists — definitions, compiled profiles and mappings live as long as the process — so
    the cyclic collector no longer walks them during every later export (on the large sample the
    collector took ~80 of ~270 ms of mapping; frozen, ~25). Objects are still freed by reference
    counting; only cycles among these start-up objects stay, as they would anyway."""
    global _settled
    if not _settled:
        _settled = True
        gc.collect()
        gc.freeze()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic collector paused during an export: the export builds one tree of fresh dicts, lists
    and strings and then validates it (no cycles; what it drops is freed by reference counting), and the
    collector walked that growing tree again and again — paused for the build alone, it only walked it
    during the validation instead (~15% of the large sample's export time in all). The tree is walked at
    most once after, when the caller keeps it. Bounded by the export (which stops at the request's
    deadline); resumed only by the caller that paused it, so an overlapping export in another thread
    or a collector disabled on purpose is left as found."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class Exporter:
    def __init__(self, engine: Engine, validator: Validator, schema: dict[str, Any] | None,
                 rules: RuleSet | None = None, *, max_issues: int = 100):
        self.engine = engine
        self.max_issues = max_issues
        """Errors collected per stage at most (domain schema and mapping here, rules and validator their own);
        warnings never count towards it: each stage lists as many and counts the rest (issues.IssueCap)."""
        self.validator = validator
        self.rules = rules or RuleSet()
        self._schema_validator: SchemaValidator | None = None
        self._fast_schema: FastChecker | None = None
        # integers written as 2.0 made 2 before mapping, where the schema says integer (exporter/mapping/fields.py)
        self._integers = IntegerPlaces(fields_of(schema)) if isinstance(schema, dict) else None
        if schema is not None:
            # compiled to Python once and split per record kind (exporter/domainschema.py): ~4x faster than
            # the schema compiled as one on the large sample; jsonschema, made to judge alike, explains failures
            self._schema_validator = explaining_validator(schema)
            self._fast_schema = compile_checker(schema, formats=FORMATS)

    @property
    def load_issues(self) -> list[Issue]:
        return self.engine.issues + self.rules.issues

    @classmethod
    def from_settings(cls, settings: Any, mappings_dir: Path | None = None) -> Exporter:
        store = default_store(settings)
        validator = Validator(store, max_issues=settings.max_issues, time_limit_s=settings.validation_time_limit_seconds,
                              policy=Policy.from_settings(settings))
        engine = Engine(load_mapping_set(mappings_dir or settings.root / "mappings"), store,
                        ig_canonical=ig_canonical(settings.igs_dir), language=settings.language)
        schema_path = settings.root / "schemas" / "domain-patient.schema.json"
        schema = json.loads(schema_path.read_text(encoding="utf-8")) if schema_path.is_file() else None
        engine.issues.extend(check_static(engine, schema))  # the mappings read only what the schema has
        root = mappings_dir or settings.root / "mappings"
        rules = load_rules(root / "rules.yaml", f"{root.name}/rules.yaml", schema)
        problems = rules.set_severities(settings.rule_severity)
        if problems:
            raise ConfigurationError(problems)
        return cls(engine, validator, schema, rules, max_issues=settings.max_issues)

    def check_domain(self, doc: Any) -> list[Issue]:
        if not isinstance(doc, dict):
            return [error(IssueCode.STRUCTURE, "the domain document must be a JSON object", "DOMAIN_SHAPE")]
        if self._schema_validator is None or self._fast_schema is None:
            return []
        if self._fast_schema.is_valid(doc):
            return []
        found: list[tuple[list[tuple[int, int, str]], list[Any], str]] = []  # (document order, path, why)
        # jsonschema yields its errors lazily: stop at the cap (sorting them all first cost minutes
        # and gigabytes on a body of 100,000 broken records), after EXPLAIN_SECONDS (it takes ~0.3 ms
        # per record, so a broken record after 30,000 good ones costs seconds) and at the request's deadline
        request_deadline = deadline.at()
        out_of_time = False
        try:
            with deadline.until(time.monotonic() + EXPLAIN_SECONDS):
                for e in self._schema_validator.iter_errors(doc):
                    if len(found) >= self.max_issues:
                        break
                    why, below = explain(e)
                    path = [*e.absolute_path, *below]
                    entry = ([(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path], path,
                             f"'{e.validator}': {why}")
                    if entry not in found:  # two branches of the schema can say the same thing
                        found.append(entry)
        except deadline.DeadlineExceeded:
            if time.monotonic() > request_deadline:
                raise
            out_of_time = True
        issues = []
        for _, path, why in sorted(found, key=lambda f: f[0]):
            where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            # the rule and the schema's names, never the value: the value may be a name, a birth date or a KVNR
            issues.append(error(IssueCode.INVALID, f"domain document breaks schema rule {why}", "DOMAIN_SCHEMA",
                                expression=(where,)))
        if not issues:  # the two implementations disagree, or explaining ran out of time: refuse all the same
            issues.append(error(IssueCode.INVALID, "domain document breaks the schema", "DOMAIN_SCHEMA"))
        if out_of_time:
            issues.append(error(IssueCode.TOO_COSTLY, f"explaining the schema errors stopped after {EXPLAIN_SECONDS:g} s; "
                                "there may be more", "ISSUES_STOPPED"))
        elif len(found) >= self.max_issues:
            issues.append(issues_stopped(self.max_issues))
        return issues

    def export(self, doc: Any, *, export_time: str) -> ExportResult:
        with _collector_paused():
            return self._export(doc, export_time)

    def export_written(self, doc: Any, *, export_time: str, write: Callable[[dict[str, Any]], bytes]) -> ExportResult:
        """The export written by `write` (FHIR JSON or XML): the result holds `body` and the issues, no
        Bundle. The Bundle is written and dropped before the collector resumes: an export's tree is
        freed by reference counting alone, where a caller that keeps it past the export makes the
        collector walk all of it once (~50,000 containers, ~9 ms, for the large sample). `write` must
        not keep what it is given; a format that builds much more (HTML, PDF) uses `export`."""
        with _collector_paused():
            result = self._export(doc, export_time)
            if result.bundle is None or not result.ok:
                return result
            body, issues = write(result.bundle), result.issues
            del result  # the last reference to the Bundle: freed here, while the collector still rests
            return ExportResult(None, issues, body)

    def _export(self, doc: Any, export_time: str) -> ExportResult:
        if any(i.is_error for i in self.load_issues):
            return ExportResult(None, [error(IssueCode.EXCEPTION, "the mapping set has errors; run `fhir-export check`",
                                             "MAP_SET_INVALID")])
        problems = self.check_domain(doc)
        if problems:
            return ExportResult(None, problems)
        if self._integers is not None:
            doc = self._integers.normalise(doc)
        findings = self.rules.check(doc, self.max_issues)
        if any(i.is_error for i in findings):
            return ExportResult(None, findings)
        origins = Origins()
        bundle, issues = self.engine.build(doc, export_time, origins, max_issues=self.max_issues)
        issues = findings + issues
        if bundle is None:
            return ExportResult(None, issues)
        found = self.validator.validate(bundle)
        if found:  # each issue also names the mapping line and the record that produced the element
            found = trace(found, origins)
        issues = issues + found
        _settle()
        if any(i.is_error for i in issues):
            return ExportResult(None, issues)
        return ExportResult(bundle, issues)

    def accept_bundle(self, bundle: Any) -> ExportResult:
        """An already exported document Bundle, validated like a fresh export (the human-readable
        formats are only ever rendered from a valid Bundle)."""
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "document":
            return ExportResult(None, [error(IssueCode.STRUCTURE, "the input is neither a domain document nor a document "
                                             "Bundle", "RENDER_INPUT")])
        issues = self.validator.validate(bundle)
        return ExportResult(None if any(i.is_error for i in issues) else bundle, issues)
