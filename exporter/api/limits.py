"""Bounded work per request (layer L4): the export pool and the request deadline.

Exports, validations and source look-ups run on one pool of `export_concurrency` threads, separate
from anything that answers health checks (those are `async` routes on the event loop). A request
carries a deadline (`request.state.deadline`, set when it arrives: arrival + request_timeout_seconds);
its work runs under that deadline (exporter/deadline.py), so long loops stop when it passes and the
pool thread — the slot — is free again within a fraction of a second, instead of working on for
minutes after the caller got its 408. Work still queued when its deadline passes never starts. At
most QUEUE_PER_SLOT requests per slot wait; beyond that the answer is 503 with Retry-After at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Request

from exporter import deadline
from exporter.api.errors import ApiError
from exporter.issues import IssueCode

QUEUE_PER_SLOT = 8


class ExportPool:
    """`export_concurrency` worker threads; `run()` is awaited on the event loop."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="export")
        self._pending = 0  # only touched on the event loop
        self.capacity = self.workers * (1 + QUEUE_PER_SLOT)

    async def run(self, until: float, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) on a pool thread under deadline `until`; TimeoutError once it passed."""
        if self._pending >= self.capacity:
            raise ApiError(503, code=IssueCode.TOO_COSTLY, text="The service is busy.", message_id="API_BUSY",
                           headers={"Retry-After": "5"})

        def work() -> Any:
            with deadline.until(until):
                deadline.check()  # queued past the deadline: do not start
                return fn(*args)

        self._pending += 1
        try:
            future = self._executor.submit(work)
            try:
                return await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                future.cancel()  # not started yet: never will
                raise
        except deadline.DeadlineExceeded:
            raise TimeoutError() from None
        finally:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def request_deadline(request: Request) -> float:
    """The request's deadline on the time.monotonic() scale."""
    found: float | None = getattr(request.state, "deadline", None)
    if found is not None:
        return found
    timeout: float = request.app.state.settings.request_timeout_seconds
    return time.monotonic() + timeout


async def run_bounded(request: Request, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on the app's export pool under the request's deadline."""
    pool: ExportPool = request.app.state.export_pool
    return await pool.run(request_deadline(request), fn, *args)
