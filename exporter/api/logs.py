"""Structured JSON logs and the audit line (layer L4; standard library logging only).

One JSON object per line on stderr. The request log carries request id, method, route TEMPLATE
(never the raw path or query), status, principal kind, outcome word and duration. The audit logger
`exporter.audit` writes one line per export: caller (client id), pseudonymous patient id
(HMAC-SHA256, see Settings.audit_pseudonym_key), time, size, result. Nothing here ever receives a
body, a token, a name, a birth date or a KVNR: only the fields whitelisted below are written, so an
unexpected `extra` cannot leak into the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
import time
from typing import TextIO

FIELDS = ("event", "request_id", "client_request_id", "method", "route", "status", "principal", "client", "outcome",
          "duration_ms", "caller", "patient", "size", "result", "error", "kids", "known_keys", "host", "port", "source",
          "phase", "message_id", "line", "column")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name}
        if record.name.startswith("exporter"):
            out["msg"] = record.getMessage()
        else:  # third-party messages (uvicorn) may quote input: keep only their template
            out["msg"] = str(record.msg)[:200]
        for key in FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # raw paths; our request log replaces it


class Pseudonymizer:
    def __init__(self, key: bytes | None):
        self._key = key or secrets.token_bytes(32)

    def __call__(self, patient_id: str | None) -> str | None:
        if not patient_id:
            return None
        return "p-" + hmac.new(self._key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


audit_log = logging.getLogger("exporter.audit")
request_log = logging.getLogger("exporter.request")


def audit_export(*, caller: str, patient: str | None, size: int, result: str, request_id: str) -> None:
    audit_log.info("export", extra={"event": "audit_export", "caller": caller, "patient": patient, "size": size,
                                    "result": result, "request_id": request_id})
