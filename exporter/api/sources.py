"""Where GET /patient/export reads a patient's domain document (layer L4; imports requests).

A source answers `get(patient_id) -> dict | None`: None means "no such patient" (the route turns it
into the silent denial); SourceUnavailable means the source could not answer (503); SourceDocumentInvalid
means it answered with a document the exporter cannot read (the route answers 422 with the generic
patient body and logs the reason). Documents are read by the one input reader (exporter/fhir/json.py
`read_json`, the same as `POST /internal/export` and `fhir-export map`: depth limit, no BOM/NaN/
Infinity, unique member names). Patient ids reaching a source have already been checked against
tokens.PATIENT_ID (no path separators).

- DirectorySource: a folder of `<patient-id>.json` files (the demo: deploy/demo-source/).
- HttpSource: the main backend, `GET <backend_url>/patients/<id>/domain-document`, authenticated
  with this service's own client-credentials token (cached until shortly before it expires),
  timeouts on every call, bounded retries with back-off on connection errors and 502/503/504.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from exporter.auth.tokens import PATIENT_ID
from exporter.fhir.json import JsonInputError, read_json


class SourceUnavailable(Exception):
    """The source could not be asked (backend down, bad answer)."""


class SourceDocumentInvalid(Exception):
    """The source answered with a document that is not JSON the exporter reads (a permanent data
    problem, not an outage). `issue` says what and where (line:column), never a value of it."""

    def __init__(self, error: JsonInputError):
        super().__init__(error.message_id)
        self.issue = error.issue()


def _document(raw: bytes, max_depth: int) -> dict[str, Any] | None:
    try:
        doc = read_json(raw, max_depth=max_depth)
    except JsonInputError as exc:
        raise SourceDocumentInvalid(exc) from None
    return doc if isinstance(doc, dict) else None


class Source(Protocol):
    def get(self, patient_id: str) -> dict[str, Any] | None: ...


class DirectorySource:
    def __init__(self, folder: Path, *, max_depth: int = 64):
        self.folder = Path(folder)
        self.max_depth = max_depth

    def get(self, patient_id: str) -> dict[str, Any] | None:
        if not PATIENT_ID.match(patient_id):
            return None
        path = self.folder / f"{patient_id}.json"
        if path.parent != self.folder or not path.is_file():
            return None
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SourceUnavailable(type(exc).__name__) from None
        return _document(raw, self.max_depth)


class HttpSource:
    def __init__(self, backend_url: str, token_endpoint: str, client_id: str, client_secret: str, *,
                 timeout: float = 5.0, retries: int = 2, backoff: float = 0.3, max_bytes: int = 5_000_000,
                 max_depth: int = 64):
        self.backend_url = backend_url.rstrip("/")
        self.token_endpoint = token_endpoint
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "POST"}),
                      raise_on_status=False, respect_retry_after_header=False)
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _access_token(self, force: bool = False) -> str:
        with self._lock:
            if not force and self._token and self._token[1] - time.monotonic() > 30:
                return self._token[0]
            t0 = time.monotonic()
            try:
                r = self.session.post(self.token_endpoint, timeout=self.timeout, allow_redirects=False,
                                      data={"grant_type": "client_credentials", "client_id": self.client_id,
                                            "client_secret": self._secret})
                body = r.json() if r.status_code == 200 else {}
            except (requests.RequestException, ValueError) as exc:
                raise SourceUnavailable(f"token: {type(exc).__name__}") from None
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str):
                raise SourceUnavailable(f"token: HTTP {r.status_code}")
            self._token = (token, t0 + float(body.get("expires_in", 60)))
            return token

    def get(self, patient_id: str) -> dict[str, Any] | None:
        if not PATIENT_ID.match(patient_id):
            return None
        url = f"{self.backend_url}/patients/{quote(patient_id, safe='')}/domain-document"
        for attempt in (1, 2):  # a second time only with a fresh token after a 401
            headers = {"Authorization": f"Bearer {self._access_token(force=attempt == 2)}",
                       "Accept": "application/json"}
            try:
                r = self.session.get(url, headers=headers, timeout=self.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                raise SourceUnavailable(type(exc).__name__) from None
            if r.status_code == 401 and attempt == 1:
                continue
            break
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise SourceUnavailable(f"HTTP {r.status_code}")
        if len(r.content) > self.max_bytes:
            raise SourceUnavailable("too large")
        return _document(r.content, self.max_depth)


def source_from_settings(settings: Any, token_endpoint: str | None = None) -> Source:
    if settings.source_kind == "http":
        if not settings.backend_url or not settings.backend_client_id or settings.backend_client_secret is None:
            raise ValueError("source_kind=http needs backend_url, backend_client_id and backend_client_secret")
        endpoint = token_endpoint or (f"{settings.keycloak_url.rstrip('/')}/realms/{settings.keycloak_realm}"
                                      "/protocol/openid-connect/token")
        return HttpSource(settings.backend_url, endpoint, settings.backend_client_id,
                          settings.backend_client_secret.get_secret_value(), timeout=settings.backend_timeout_seconds,
                          retries=settings.backend_retries, max_bytes=settings.max_body_bytes,
                          max_depth=settings.max_json_depth)
    return DirectorySource(settings.demo_source_dir, max_depth=settings.max_json_depth)
