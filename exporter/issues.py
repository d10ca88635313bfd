"""The single error currency of the exporter (layer L0; imports only the standard library).

Every stage reports problems as `Issue` values (collected, not thrown). Where a stage must stop,
it raises an `ExporterError` carrying its issues. The edges turn issues into one shape:
`to_operation_outcome()` for HTTP and JSON output, `Issue.format()` for compiler-style CLI text.

Exception tree::

    ExporterError                 carries .issues
    ├── ConfigurationError        settings, missing tools or files on this machine
    ├── PackageError              FHIR package cache missing or corrupt
    └── BuildError                the IG build (SUSHI) failed
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EXT_ISSUE_LINE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
EXT_ISSUE_COL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"
"""The extensions (valueInteger, on OperationOutcome.issue) the HL7 validator writes positions in."""


class Severity(enum.StrEnum):
    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


class IssueCode(enum.StrEnum):
    """FHIR issue-type codes (http://hl7.org/fhir/issue-type) used by the exporter."""

    INVALID = "invalid"
    STRUCTURE = "structure"
    REQUIRED = "required"
    VALUE = "value"
    INVARIANT = "invariant"
    CODE_INVALID = "code-invalid"
    NOT_FOUND = "not-found"
    NOT_SUPPORTED = "not-supported"
    EXCEPTION = "exception"
    PROCESSING = "processing"
    SECURITY = "security"
    TOO_COSTLY = "too-costly"
    INFORMATIONAL = "informational"


@dataclass(frozen=True)
class SourceLocation:
    """Where in a source file (FSH, YAML mapping, JSON input) an issue was found. Lines are 1-based."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out


@dataclass(frozen=True)
class Issue:
    severity: Severity
    code: IssueCode
    message: str
    message_id: str = ""
    expression: tuple[str, ...] = ()
    location: SourceLocation | None = None
    diagnostics: str | None = None
    position: SourceLocation | None = None
    """Where the offending node starts in the validated document (input file or request body), set by
    `exporter.fhir.positions.attach`; `location` is where the problem comes from (a mapping's YAML
    node). Rendered as the operationoutcome-issue-line/-col extensions."""

    @property
    def is_error(self) -> bool:
        return self.severity in (Severity.FATAL, Severity.ERROR)

    def format(self) -> str:
        """Compiler-style one-liner: `file:line:col: error MSG_ID message (at EXPRESSION)`. An issue with
        both a location (the mapping or rule that found it) and a position (its node in the input
        document) names the location first and the position after the expressions:
        `mappings/x.yaml:5:3: error MAP_…: … (at $.measurements[3]; patient.json:40:7)`."""
        loc = self.location or self.position
        where = f"{loc}: " if loc else ""
        mid = f" {self.message_id}" if self.message_id else ""
        notes = [", ".join(self.expression)] if self.expression else []
        if self.location is not None and self.position is not None and self.position.line is not None:
            notes.append(str(self.position))
        at = f" (at {'; '.join(notes)})" if notes else ""
        return f"{where}{self.severity.value}{mid}: {self.message}{at}"

    def to_fhir(self) -> dict[str, Any]:
        """The OperationOutcome.issue; texts and expressions are cut at MAX_ECHO characters (a message
        may quote a value of the input, and an answer never echoes megabytes of it back). A position in
        the validated document becomes the HL7 operationoutcome-issue-line/-col extensions."""
        out: dict[str, Any] = {}
        if self.position is not None and self.position.line is not None:
            out["extension"] = [{"url": EXT_ISSUE_LINE, "valueInteger": self.position.line}]
            if self.position.column is not None:
                out["extension"].append({"url": EXT_ISSUE_COL, "valueInteger": self.position.column})
        out.update(severity=self.severity.value, code=self.code.value)
        if self.message_id:
            out["details"] = {
                "coding": [{"system": "urn:diga-exporter:message-id", "code": self.message_id}],
                "text": truncate(self.message),
            }
        else:
            out["details"] = {"text": truncate(self.message)}
        diagnostics = self.diagnostics or (str(self.location) if self.location else None)
        if diagnostics:
            out["diagnostics"] = truncate(diagnostics)
        if self.expression:
            out["expression"] = [truncate(e) for e in self.expression]
        return out


MAX_ECHO = 300
"""Characters of a message, expression or diagnostics an OperationOutcome carries at most."""


def truncate(text: str, limit: int = MAX_ECHO) -> str:
    """`text`, cut to `limit` characters with a marker that says how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def issues_stopped(limit: int) -> Issue:
    """The last issue of a stage that stopped at `limit` errors (warnings do not count: IssueCap)."""
    return Issue(Severity.ERROR, IssueCode.TOO_COSTLY, f"stopped after {limit} errors; there may be more",
                 "ISSUES_STOPPED")


def not_listed(count: int) -> Issue:
    """The last issue of a stage that listed its warnings and notes up to the cap and counted the rest.
    Information, never an error: warnings do not fail an export, however many there are."""
    return Issue(Severity.INFORMATION, IssueCode.INFORMATIONAL,
                 f"{count} more warning(s) or note(s) were found and not listed", "ISSUES_NOT_LISTED")


class IssueCap:
    """The issues of one stage, capped per severity at `limit` (settings `max_issues`).

    `add(issue)` lists errors until `limit` of them were listed and then answers True: the stage stops
    (and says so: `issues_stopped`, or its own issue). Warnings and notes never stop a stage and never
    count towards the errors' cap: the first `limit` are listed, the rest only counted, and `close()`
    appends one `not_listed` information issue with their number. So error checks still run and
    report after any number of warnings, and an export with only warnings stays an export."""

    __slots__ = ("limit", "issues", "errors", "others", "unlisted")

    def __init__(self, limit: int, issues: list[Issue] | None = None):
        self.limit = limit
        self.issues: list[Issue] = [] if issues is None else issues
        self.errors = self.others = self.unlisted = 0

    def add(self, issue: Issue) -> bool:
        if issue.is_error:
            self.issues.append(issue)
            self.errors += 1
            return self.errors >= self.limit
        if self.others >= self.limit:
            self.unlisted += 1
        else:
            self.others += 1
            self.issues.append(issue)
        return False

    def close(self) -> list[Issue]:
        """The listed issues, with the count of the unlisted ones last (once)."""
        if self.unlisted:
            self.issues.append(not_listed(self.unlisted))
            self.unlisted = 0
        return self.issues


def error(code: IssueCode, message: str, message_id: str = "", **kw: Any) -> Issue:
    return Issue(Severity.ERROR, code, message, message_id, **kw)


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(i.is_error for i in issues)


def to_operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An R4 OperationOutcome; an empty issue list becomes the conventional 'all OK' information issue."""
    rendered = [i.to_fhir() for i in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "details": {"text": "All OK"}}]
    return {"resourceType": "OperationOutcome", "issue": rendered}


class ExporterError(Exception):
    """Base of every exception the exporter raises on purpose. Carries its issues."""

    def __init__(self, issues: Issue | Iterable[Issue]):
        self.issues: list[Issue] = [issues] if isinstance(issues, Issue) else list(issues)
        super().__init__("\n".join(i.format() for i in self.issues))


class ConfigurationError(ExporterError):
    """A setting, tool or file this machine needs is missing or wrong."""


class PackageError(ExporterError):
    """A FHIR package in the local cache is missing or corrupt."""


class BuildError(ExporterError):
    """Building the IG from FSH failed; the committed igs/ is left untouched."""
