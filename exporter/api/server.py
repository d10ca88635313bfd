"""The HTTP server of the service (layer L4): uvicorn with its h11 parser, guarded against slow and
greedy clients. The one door to uvicorn and h11.

    serve(app, settings, host="127.0.0.1", port=8000)

uvicorn alone sets no timeout before a connection's first response and counts open connections
against `--limit-concurrency`, so 64 clients sending their headers one line every 3 s made every
other request — health checks included — get 503. `GuardedH11Protocol` adds, per connection:

- a header timeout: the complete request head must arrive within `http_header_timeout_seconds` of
  the connection being opened or of its previous response (bytes trickling in do not extend it);
  an idle keep-alive connection is closed after `http_keep_alive_seconds` (uvicorn's own timer);
- a body timeout: the body must be complete within `http_body_timeout_seconds` of the head;
- a keep-alive limit: the `http_max_requests_per_connection`-th response says `Connection: close`;
- connection caps, in total and per client address: at the cap a new connection closes the oldest
  connection that is waiting for a request (idle, or still sending its head — what a slow client
  holds), and only when every connection is busy with a request is the new one refused with 503;
- unambiguous framing: a request with both `Content-Length` and `Transfer-Encoding` (a request
  smuggling vector behind a proxy that trusts Content-Length) is answered 400 and the connection
  closed, so nothing hidden in its body is ever read as a second request.

Answers the server gives itself (400, 503) carry the same `Cache-Control: no-store` and
`X-Content-Type-Options: nosniff` headers as the application's.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("exporter.api")

MAX_HEAD_BYTES = 64 * 1024
_SECURITY = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"cache-control: no-store\r\nx-content-type-options: nosniff\r\nretry-after: 5\r\n"
            b"connection: close\r\ncontent-length: 20\r\n\r\nToo many connections")


@dataclass(frozen=True)
class Limits:
    """The connection limits of one server (defaults and meaning: Settings.http_*)."""

    header_timeout: float
    body_timeout: float
    keep_alive: float
    max_requests_per_connection: int
    max_connections: int
    max_connections_per_client: int

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(header_timeout=settings.http_header_timeout_seconds, body_timeout=settings.http_body_timeout_seconds,
                   keep_alive=settings.http_keep_alive_seconds,
                   max_requests_per_connection=settings.http_max_requests_per_connection,
                   max_connections=settings.http_max_connections,
                   max_connections_per_client=settings.http_max_connections_per_client)


class AmbiguousFraming(h11.RemoteProtocolError):
    """Content-Length and Transfer-Encoding in one request."""


class _StrictConnection(h11.Connection):
    """h11 follows RFC 9112 and frames such a request by Transfer-Encoding; a proxy in front may
    frame it by Content-Length. Refusing it is the only answer both agree on."""

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name.lower() for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                raise AmbiguousFraming("Content-Length and Transfer-Encoding", error_status_hint=400)
        return event


class _Registry:
    """The open connections of one server, oldest first, in total and per client address."""

    def __init__(self) -> None:
        self.all: dict[GuardedH11Protocol, None] = {}
        self.by_client: dict[str, dict[GuardedH11Protocol, None]] = {}


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the timeouts, limits and framing rule of the module docstring."""

    limits: Limits  # set per server by guarded_protocol()
    registry: _Registry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _StrictConnection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.timeout_keep_alive = self.limits.keep_alive  # type: ignore[assignment]  # uvicorn declares int; h11's keep-alive timer takes float seconds
        self._timer: asyncio.TimerHandle | None = None
        self._phase = "head"
        self._requests = 0
        self._host = ""
        self._registered = False

    # -- state -------------------------------------------------------------------------------------
    @property
    def waiting(self) -> bool:
        """No request in progress: idle, or its head is still arriving."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._phase = phase
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            log.info("connection timed out", extra={"event": "http_timeout", "phase": self._phase})
            self.transport.close()

    # -- connections -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._host = self.client[0] if self.client else ""
        if not self._admit():
            log.warning("connection refused", extra={"event": "http_refused", "phase": "connect"})
            transport.write(_REFUSED)
            transport.close()
            return
        self._arm("head", self.limits.header_timeout)

    def _admit(self) -> bool:
        reg, lim = self.registry, self.limits
        mine = reg.by_client.setdefault(self._host, {})
        for pool, cap in ((mine, lim.max_connections_per_client), (reg.all, lim.max_connections)):
            if cap and len(pool) >= cap:
                victim = next((p for p in pool if p.waiting), None)
                if victim is None:
                    return False
                victim._evict()
        mine[self] = None
        reg.all[self] = None
        self._registered = True
        return True

    def _forget(self) -> None:
        if not self._registered:
            return
        self._registered = False
        self.registry.all.pop(self, None)
        mine = self.registry.by_client.get(self._host)
        if mine is not None:
            mine.pop(self, None)
            if not mine:
                del self.registry.by_client[self._host]

    def _evict(self) -> None:
        self._forget()
        self._disarm()
        log.info("connection evicted", extra={"event": "http_evicted", "phase": self._phase})
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        self._disarm()
        super().connection_lost(exc)

    # -- requests ----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        self._progress(before)

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.cycle is before:  # no pipelined request followed: waiting for the next head
            self._arm("head", self.limits.header_timeout)
        else:
            self._progress(before)

    def _progress(self, before: Any) -> None:
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not before:  # a new request head was parsed
            self._requests += 1
            if self._requests >= self.limits.max_requests_per_connection:
                self.headers.append(CLOSE_HEADER)  # uvicorn then answers `Connection: close` and closes
            if cycle.more_body:
                self._arm("body", self.limits.body_timeout)
            else:
                self._disarm()
        elif self._phase == "body" and not cycle.more_body:
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):  # nothing sensible to answer: just close
            self.transport.close()
            return
        body = b"Invalid HTTP request."
        event = h11.Response(status_code=400, reason=b"Bad Request",
                             headers=[(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                                      (b"content-length", str(len(body)).encode()), *_SECURITY])
        try:
            self.transport.write(self.conn.send(event) + self.conn.send(h11.Data(data=body))
                                 + self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass
        self.transport.close()


def guarded_protocol(limits: Limits) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol class with its own limits and connection registry (one per server)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits, "registry": _Registry()})


SWITCH_INTERVAL = 0.001
"""Seconds a thread holds the GIL while another waits (CPython's default: 0.005). Exports are CPU-bound
Python in worker threads; the event loop needs the GIL for every wake-up of a request, so with the
default a health check waited up to ~5 ms per wake-up per busy thread."""


def serve(app: Any, settings: Any, *, host: str, port: int) -> None:
    """Run `app` until interrupted."""
    limits = Limits.from_settings(settings)
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(app, host=host, port=port, http=guarded_protocol(limits), log_config=None, access_log=False,
                server_header=False, date_header=True, timeout_keep_alive=max(1, round(limits.keep_alive)),
                h11_max_incomplete_event_size=MAX_HEAD_BYTES, timeout_graceful_shutdown=5)
