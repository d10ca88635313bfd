"""The one entry used by the API and the CLI (layer L3): domain document → validated document Bundle.

    exporter = Exporter.from_settings(settings)           # load + compile mappings, IG, validator once
    result = exporter.export(domain_doc, export_time="2026-04-06T10:00:00+02:00")
    result.ok, result.bundle, result.issues, result.operation_outcome()

Steps: the domain document is checked against schemas/domain-patient.schema.json (errors name the
JSON path and the rule, never the value — values are patient data); the mappings build the
resources and the document; our validator checks the Bundle. An export with any error issue is
never successful: `bundle` is then None, so a partial Bundle cannot be returned as a success.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter import deadline
from exporter.engine.builder import Engine
from exporter.engine.origin import Origins, trace
from exporter.engine.static_check import check_static
from exporter.fhir.definitions import default_store
from exporter.fhir.packages import ig_canonical
from exporter.issues import Issue, IssueCode, Severity, error, issues_stopped, to_operation_outcome
from exporter.mapping.registry import load_mapping_set
from exporter.validation.validator import Validator

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
EXPLAIN_SECONDS = 2.0
"""Time jsonschema may take to explain a document the compiled check rejected (then: what it found)."""


@dataclass
class ExportResult:
    bundle: dict[str, Any] | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bundle is not None and not any(i.is_error for i in self.issues)

    def operation_outcome(self) -> dict[str, Any]:
        return to_operation_outcome(self.issues)


class Exporter:
    def __init__(self, engine: Engine, validator: Validator, schema: dict[str, Any] | None, *, max_issues: int = 100):
        self.engine = engine
        self.max_issues = max_issues
        """Issues collected per stage at most (domain schema and mapping here, the validator its own)."""
        self.validator = validator
        self._schema_validator = None
        self._fast_schema = None
        if schema is not None:
            from jsonschema import Draft202012Validator, validators

            from exporter.domainschema import compile_checker
            follow = Draft202012Validator.VALIDATORS["$ref"]

            def ref_within_deadline(validator: Any, ref: Any, instance: Any, subschema: Any) -> Any:
                deadline.check()  # every record is reached through a $ref: a check per record
                yield from follow(validator, ref, instance, subschema)

            self._schema_validator = validators.extend(Draft202012Validator, {"$ref": ref_within_deadline})(schema)
            # compiled to Python once and split per record kind (exporter/domainschema.py): ~4x faster than
            # the schema compiled as one on the large sample; jsonschema only explains failures
            self._fast_schema = compile_checker(schema, formats={"uuid": UUID_PATTERN})

    @property
    def load_issues(self) -> list[Issue]:
        return self.engine.issues

    @classmethod
    def from_settings(cls, settings: Any, mappings_dir: Path | None = None) -> "Exporter":
        store = default_store(settings)
        validator = Validator(store, max_issues=settings.max_issues, time_limit_s=settings.validation_time_limit_seconds)
        engine = Engine(load_mapping_set(mappings_dir or settings.root / "mappings"), store,
                        ig_canonical=ig_canonical(settings.igs_dir))
        schema_path = settings.root / "schemas" / "domain-patient.schema.json"
        schema = json.loads(schema_path.read_text(encoding="utf-8")) if schema_path.is_file() else None
        engine.issues.extend(check_static(engine, schema))  # the mappings read only what the schema has
        return cls(engine, validator, schema, max_issues=settings.max_issues)

    def check_domain(self, doc: Any) -> list[Issue]:
        if not isinstance(doc, dict):
            return [error(IssueCode.STRUCTURE, "the domain document must be a JSON object", "DOMAIN_SHAPE")]
        if self._schema_validator is None:
            return []
        if self._fast_schema.is_valid(doc):
            return []
        found: list[tuple[list[str], Any, list[Any]]] = []
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
                    found.append((list(map(str, e.absolute_path)), e.validator, list(e.absolute_path)))
        except deadline.DeadlineExceeded:
            if time.monotonic() > request_deadline:
                raise
            out_of_time = True
        issues = []
        for _, rule, path in sorted(found, key=lambda f: f[0]):
            where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            # the rule, never the value: the value may be a name, a birth date or a KVNR
            issues.append(error(IssueCode.INVALID, f"domain document breaks schema rule '{rule}' at {where}",
                                "DOMAIN_SCHEMA", expression=(where,)))
        if not issues:  # the two implementations disagree, or explaining ran out of time: refuse all the same
            issues.append(error(IssueCode.INVALID, "domain document breaks the schema", "DOMAIN_SCHEMA"))
        if out_of_time:
            issues.append(error(IssueCode.TOO_COSTLY, f"explaining the schema errors stopped after {EXPLAIN_SECONDS:g} s; "
                                "there may be more", "ISSUES_STOPPED"))
        elif len(found) >= self.max_issues:
            issues.append(issues_stopped(self.max_issues))
        return issues

    def export(self, doc: Any, *, export_time: str) -> ExportResult:
        if any(i.is_error for i in self.engine.issues):
            return ExportResult(None, [error(IssueCode.EXCEPTION, "the mapping set has errors; run `fhir-export check`",
                                             "MAP_SET_INVALID")])
        problems = self.check_domain(doc)
        if problems:
            return ExportResult(None, problems)
        origins = Origins()
        bundle, issues = self.engine.build(doc, export_time, origins, max_issues=self.max_issues)
        if bundle is None:
            return ExportResult(None, issues)
        found = self.validator.validate(bundle)
        if found:  # each issue also names the mapping line and the record that produced the element
            found = trace(found, origins)
        issues = issues + found
        if any(i.is_error for i in issues):
            return ExportResult(None, issues)
        return ExportResult(bundle, issues)
