"""The deadline of the work running on this thread (layer L0; standard library only).

    with deadline.until(time.monotonic() + 30):
        exporter.export(doc, export_time=...)      # long loops call deadline.check()

The service runs each export or validation in a worker thread under its request's deadline. Long
loops (the domain schema's error walk, the mapping of each record, the validator's walk) call
`check()`, which raises `DeadlineExceeded` once the deadline has passed, so a request that timed
out stops its work promptly and frees its export slot instead of running on unobserved. Without an
enclosing `until` (the CLI) there is no deadline and `check()` costs one attribute lookup.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class DeadlineExceeded(Exception):
    """The work ran past the deadline of its request."""


_state = threading.local()


def at() -> float:
    """The deadline (time.monotonic() scale) of this thread's work; +inf when there is none."""
    return getattr(_state, "at", math.inf)


@contextmanager
def until(when: float) -> Iterator[None]:
    """Run the body under deadline `when` (or an earlier one already in force)."""
    before = at()
    _state.at = min(before, when)
    try:
        yield
    finally:
        _state.at = before


def check() -> None:
    """Raise DeadlineExceeded when this thread's deadline has passed."""
    when = getattr(_state, "at", math.inf)
    if when != math.inf and time.monotonic() > when:
        raise DeadlineExceeded()
