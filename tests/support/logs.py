"""`json_logs()`: the service's log lines (JSON, as in production) written while the block runs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from exporter.api.logs import JsonFormatter


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """Capture every log record at INFO and above as the service's JSON lines into the yielded buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
