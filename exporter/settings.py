"""Settings (layer L0): every tunable comes from here, read from `DIGA_EXPORTER_*` environment variables.

Nothing else in the package reads os.environ for configuration.
Defaults suit a checkout of this repository: the root is the folder holding `pyproject.toml`.
A malformed setting stops start-up with a ConfigurationError naming the variable and the reason, never
its value (`DIGA_EXPORTER_MAX_ISSUES: error SETTINGS_INVALID: …`; the CLI exits 2).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from exporter.issues import ConfigurationError, Issue, IssueCode, Severity, SourceLocation

ENV_PREFIX = "DIGA_EXPORTER_"

_REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    root: Path = _REPO_ROOT
    """Project root: holds sushi-config.yaml, profiles_fsh/, igs/, mappings/."""

    tools_dir: Path | None = None
    """Local toolchain folder (git-ignored). Default: <root>/.tools"""

    fhir_home: Path | None = None
    """A HOME-like folder whose .fhir/packages/ is the FHIR package cache (as SUSHI and the HL7
    validator expect). Default: <tools_dir>/fhir-home"""

    sushi_path: Path | None = None
    """The SUSHI executable. Default: <root>/node_modules/.bin/sushi (installed by `npm ci`)."""

    package_registry: str = "http://127.0.0.1:9/"
    """Registry URL handed to SUSHI for packages missing from the cache. The default is a closed
    loopback port so that nothing is ever fetched; point it at a FHIR package registry to go online."""

    rule_severity: dict[str, Literal["error", "warning"]] = {}
    """Severity per rule id of mappings/rules.yaml, for the rules marked `configurable` (the plausibility
    ranges), e.g. DIGA_EXPORTER_RULE_SEVERITY='{"plausible-weight-kg": "error"}'. An unknown or
    non-configurable rule id stops start-up."""

    # ---------------------------------------------------------------- HTTP service (exporter/api, exporter/auth)

    keycloak_url: str = "http://127.0.0.1:8080"
    """Base URL of Keycloak (without /realms/...)."""

    keycloak_realm: str = "diga"

    oidc_issuer: str | None = None
    """The exact `iss` of accepted tokens. Default: <keycloak_url>/realms/<keycloak_realm>. The discovery
    document must announce the same issuer, or no key is ever loaded."""

    api_client_id: str = "diga-exporter-api"
    """This service's client in Keycloak: tokens must name it in `aud`; roles are read from
    resource_access.<api_client_id>.roles."""

    service_clients: list[str] = ["diga-backend", "diga-reporting"]
    """azp allow-list for service-account (client credentials) tokens."""

    patient_clients: list[str] = ["diga-patient-app"]
    """azp allow-list for patient (authorization code + PKCE) tokens."""

    patient_id_claim: str = "diga_patient_id"
    """The token claim holding the patient id; the only source of the patient id on patient routes."""

    token_leeway_seconds: int = 30
    """Clock-skew allowance for exp / nbf / iat."""

    jwks_min_refresh_seconds: float = 10.0
    """At most one JWKS fetch per this many seconds (an unknown kid cannot hammer Keycloak)."""

    jwks_max_age_seconds: float = 300.0
    """Known keys are refreshed after this age; on a failed refresh they are kept."""

    oidc_timeout_seconds: float = 3.0
    """Timeout of each request to Keycloak (discovery, JWKS, token endpoint). A token with an unknown kid
    waits at most this long for the one key fetch in flight; tokens of known keys never wait."""

    source_kind: Literal["directory", "http"] = "directory"
    """Where GET /patient/export reads the patient's domain document from."""

    source_dir: Path | None = None
    """directory source: a folder of <patient-id>.json files. Default: <root>/deploy/demo-source"""

    backend_url: str | None = None
    """http source: base URL of the main backend; the document is GET <backend_url>/patients/<id>/domain-document."""

    backend_client_id: str = ""
    """http source: this service's own confidential client for the client-credentials token."""

    backend_client_secret: SecretStr | None = None

    backend_timeout_seconds: float = 5.0
    backend_retries: int = 2
    """Retries of idempotent backend GETs on connection errors and 502/503/504 (bounded, with back-off)."""

    max_body_bytes: int = 5_000_000
    """Request bodies larger than this are refused with 413."""

    max_json_depth: int = 64
    """JSON bodies nested deeper than this are refused with 400."""

    request_timeout_seconds: float = 30.0
    """Time bound of one export or validation request."""

    export_concurrency: int = 2
    """CPU-bound exports and validations running at once. A request whose deadline passed stops its work
    at the next deadline check (exporter/deadline.py) and so frees its slot within a fraction of a second."""

    max_issues: int = 100
    """Each stage (domain schema, cross-field rules, mapping, validation) stops at this many errors and
    reports that it stopped (ISSUES_STOPPED / VAL_TOO_LARGE): the work per request is bounded, not the
    input's errors. Warnings never count towards it and never fail an export: a stage lists this many
    and counts the rest in one information issue (ISSUES_NOT_LISTED). See exporter/issues.py IssueCap."""

    validation_time_limit_seconds: float = 10.0
    """Time budget of one validation (the Bundle of an export, or one `$validate` resource); also
    bounded by the request's own deadline, whichever comes first."""

    # ---------------------------------------------------------------- HTTP connections (exporter/api/server.py)

    http_header_timeout_seconds: float = 10.0
    """A connection must deliver a complete request head (request line and headers) within this many
    seconds of being opened or of its previous response; otherwise it is closed (slow clients)."""

    http_body_timeout_seconds: float = 30.0
    """A request body must be complete within this many seconds of its head; otherwise the connection
    is closed."""

    http_keep_alive_seconds: float = 5.0
    """An idle keep-alive connection is closed after this many seconds without a new request."""

    http_max_requests_per_connection: int = 1000
    """After this many requests on one connection its last response says `Connection: close`."""

    http_max_connections: int = 1024
    """Open connections in total. At the limit a new connection closes the oldest connection that is
    waiting for a request (idle or still sending its head); if every connection is busy, it gets 503."""

    http_max_connections_per_client: int = 32
    """Open connections per client address, with the same rule as http_max_connections. 0: no limit
    (behind a reverse proxy every connection comes from the proxy's address; let the proxy limit then)."""

    denial_floor_seconds: float = 0.05
    """Every silent denial (401) on the protected routes is sent no earlier than this long after the
    request arrived, so the time of a denial does not tell which check refused it."""

    validation_unknown_extensions: Literal["error", "warning", "allow"] = "error"
    """Validation policy (docs/validation.md, "Policy"): an extension without a loaded definition is an
    error (German validators reject them), a warning, or allowed (the HL7 validator's `-extension any`)."""

    validation_extension_domains: list[str] = []
    """URL prefixes under which extensions without a loaded definition are allowed (`-extension <domain>`)."""

    validation_example_urls: Literal["error", "allow"] = "error"
    """uri/url values at example.org / acme.com: an error, or allowed (`-allow-example-urls true`)."""

    validation_best_practice: Literal["error", "warning", "ignore"] = "warning"
    """Best-practice invariants (dom-6 …): reported as warnings, errors, or not checked (`-best-practice`)."""

    validation_display_mismatch: Literal["error", "warning"] = "error"
    """A Coding's display that is not the code's: an error, or a warning (`-display-issues-are-warnings`)."""

    validation_unresolved_reference_types: Literal["check", "ignore"] = "check"
    """A reference that does not resolve (`Patient/1` outside its Bundle): its named type is checked
    against the allowed targets, or not (the HL7 validator checks only resolved targets)."""

    language: str = "de-DE"
    """Language of the narratives and of the HTML/PDF export: a file mappings/templates/texts/<language>.yaml
    (shipped: de-DE, en)."""

    audit_pseudonym_key: SecretStr | None = None
    """HMAC key that turns patient ids into pseudonyms for audit lines. Unset: a random key per process
    (pseudonyms then correlate only within one process lifetime)."""

    @property
    def tools(self) -> Path:
        return self.tools_dir or self.root / ".tools"

    @property
    def home(self) -> Path:
        return self.fhir_home or self.tools / "fhir-home"

    @property
    def package_cache(self) -> Path:
        return self.home / ".fhir" / "packages"

    @property
    def igs_dir(self) -> Path:
        return self.root / "igs"

    @property
    def fsh_dir(self) -> Path:
        return self.root / "profiles_fsh"

    @property
    def sushi_config(self) -> Path:
        return self.root / "sushi-config.yaml"

    @property
    def issuer(self) -> str:
        return self.oidc_issuer or f"{self.keycloak_url.rstrip('/')}/realms/{self.keycloak_realm}"

    @property
    def demo_source_dir(self) -> Path:
        return self.source_dir or self.root / "deploy" / "demo-source"

    @property
    def sushi_bin(self) -> Path:
        return self.sushi_path or self.root / "node_modules" / ".bin" / "sushi"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; a malformed one raises ConfigurationError (see settings_issues)."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise ConfigurationError(settings_issues(exc)) from None


_FIELD = re.compile(r'field "(\w+)"')


def settings_issues(exc: ValidationError | SettingsError) -> list[Issue]:
    """One issue per malformed setting: the variable's name and pydantic's reason, never the value
    (a value may be a secret; pydantic's reason texts do not quote it, its `input` is left out)."""
    if isinstance(exc, ValidationError):
        found = [(str(e["loc"][0]) if e["loc"] else "", e["msg"]) for e in exc.errors(include_url=False)]
    else:  # pydantic-settings could not decode a complex value (a list or dict is given as JSON)
        m = _FIELD.search(str(exc))
        found = [(m.group(1) if m else "", "not valid JSON (lists and mappings are given as JSON)")]
    issues, seen = [], set()
    for field, reason in found:
        if (field, reason) in seen:
            continue
        seen.add((field, reason))
        name = ENV_PREFIX + field.upper() if field else ENV_PREFIX + "*"
        issues.append(Issue(Severity.ERROR, IssueCode.INVALID, reason, "SETTINGS_INVALID",
                            location=SourceLocation(name)))
    return issues
