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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.engine.builder import Engine
from exporter.engine.origin import Origins, trace
from exporter.engine.static_check import check_static
from exporter.fhir.definitions import default_store
from exporter.fhir.packages import ig_canonical
from exporter.issues import Issue, IssueCode, Severity, error, to_operation_outcome
from exporter.mapping.registry import load_mapping_set
from exporter.validation.validator import Validator

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


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
    def __init__(self, engine: Engine, validator: Validator, schema: dict[str, Any] | None):
        self.engine = engine
        self.validator = validator
        self._schema_validator = None
        self._fast_schema = None
        if schema is not None:
            from jsonschema import Draft202012Validator

            from exporter.domainschema import compile_checker
            self._schema_validator = Draft202012Validator(schema)
            # compiled to Python once and split per record kind (exporter/domainschema.py): ~4x faster than
            # the schema compiled as one on the large sample; jsonschema only explains failures
            self._fast_schema = compile_checker(schema, formats={"uuid": UUID_PATTERN})

    @property
    def load_issues(self) -> list[Issue]:
        return self.engine.issues

    @classmethod
    def from_settings(cls, settings: Any, mappings_dir: Path | None = None) -> "Exporter":
        store = default_store(settings)
        validator = Validator(store)
        engine = Engine(load_mapping_set(mappings_dir or settings.root / "mappings"), store,
                        ig_canonical=ig_canonical(settings.igs_dir))
        schema_path = settings.root / "schemas" / "domain-patient.schema.json"
        schema = json.loads(schema_path.read_text(encoding="utf-8")) if schema_path.is_file() else None
        engine.issues.extend(check_static(engine, schema))  # the mappings read only what the schema has
        return cls(engine, validator, schema)

    def check_domain(self, doc: Any) -> list[Issue]:
        if not isinstance(doc, dict):
            return [error(IssueCode.STRUCTURE, "the domain document must be a JSON object", "DOMAIN_SHAPE")]
        if self._schema_validator is None:
            return []
        if self._fast_schema.is_valid(doc):
            return []
        issues = []  # jsonschema lists every problem with its path
        for e in sorted(self._schema_validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
            where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
            # the rule, never the value: the value may be a name, a birth date or a KVNR
            issues.append(error(IssueCode.INVALID, f"domain document breaks schema rule '{e.validator}' at {where}",
                                "DOMAIN_SCHEMA", expression=(where,)))
            if len(issues) >= 100:
                break
        if not issues:  # the two implementations disagree: refuse rather than export unchecked data
            issues.append(error(IssueCode.INVALID, "domain document breaks the schema", "DOMAIN_SCHEMA"))
        return issues

    def export(self, doc: Any, *, export_time: str) -> ExportResult:
        if any(i.is_error for i in self.engine.issues):
            return ExportResult(None, [error(IssueCode.EXCEPTION, "the mapping set has errors; run `fhir-export check`",
                                             "MAP_SET_INVALID")])
        problems = self.check_domain(doc)
        if problems:
            return ExportResult(None, problems)
        origins = Origins()
        bundle, issues = self.engine.build(doc, export_time, origins)
        if bundle is None:
            return ExportResult(None, issues)
        found = self.validator.validate(bundle)
        if found:  # each issue also names the mapping line and the record that produced the element
            found = trace(found, origins)
        issues = issues + found
        if any(i.is_error for i in issues):
            return ExportResult(None, issues)
        return ExportResult(bundle, issues)
