"""Availability and hardening under abuse (issue 11): the attacks of an attack run, replayed against the
real service (`python -m exporter serve`, a subprocess on loopback) and the real Keycloak of the session.

One test per finding, numbered as in docs/security.md "Hardening":
1. slow clients (slowloris) and connection caps      5. no redirects, no URL from Host
2. an abusive body and a request past its deadline   6. the unknown-patient denial looks like a bad signature
3. a hanging JWKS endpoint                            7. claim types, request ids, security headers, echoes,
4. hostile narratives (quadratic regex)                  ambiguous framing

Loops are bounded, every socket is on 127.0.0.0/8 (Linux routes the whole block to loopback, so
slow clients can come from 64 different addresses).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.system.test_api_service import (
    ANNA,
    FHIR,
    TYPICAL,
    VARYING_HEADERS,
    Service,
    _backend,
    _login,
    start_service,
    stop_service,
)
from tools.devstack.keycloak import KeycloakServer, free_port

pytestmark = pytest.mark.keycloak

GHOST_USER = "hardening-ghost"
HEADER_TIMEOUT = 3.0
PER_CLIENT = 8
MAX_REQUESTS = 5
DENIAL_FLOOR = 0.05


# ------------------------------------------------------------------------------------------ helpers

def _proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_get(url: str, **kw) -> tuple[float, requests.Response]:
    t0 = time.perf_counter()
    r = requests.get(url, timeout=10, **kw)
    return time.perf_counter() - t0, r


def _post(svc: Service, path: str, token: str, body: bytes, timeout: float = 60) -> requests.Response:
    return requests.post(svc.base_url + path, data=body, timeout=timeout,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": FHIR})


def _port(svc: Service) -> int:
    return int(svc.base_url.rsplit(":", 1)[1])


def _raw(svc: Service, data: bytes, *, source: str = "127.0.0.1", wait: float = 3.0) -> bytes:
    """Send raw bytes on a fresh connection; everything the server answers until it closes (or `wait`)."""
    s = socket.create_connection(("127.0.0.1", _port(svc)), timeout=wait, source_address=(source, 0))
    out = b""
    try:
        s.sendall(data)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def _closed_by_server(s: socket.socket, wait: float) -> bool:
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


class Tokens:
    """Service tokens of the demo backend client, fetched again when a minute old (tests run for minutes)."""

    def __init__(self, kc: KeycloakServer):
        self.kc = kc
        self._token, self._at = "", -1e9

    @property
    def backend(self) -> str:
        if time.monotonic() - self._at > 60:
            self._token, self._at = _backend(self.kc), time.monotonic()
        return self._token


@pytest.fixture(scope="module")
def tokens(keycloak) -> Tokens:
    return Tokens(keycloak)


def _wait_ready(service: Service, tokens: Tokens) -> None:
    deadline = time.monotonic() + 60
    while requests.get(service.base_url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, service.log_path.read_text()[-3000:]
        time.sleep(0.3)
    # warm: the first export compiles the profiles; under a short request deadline on a loaded host
    # it may take a few requests (what one compiled is kept), so try for up to a minute
    while (r := _post(service, "/internal/export", tokens.backend, TYPICAL)).status_code == 408:
        assert time.monotonic() < deadline + 60, r.text[:300]
    assert r.status_code == 200, r.text[:300]


def _assert_fast(latencies: list[float], bound: float = 0.1) -> None:
    """Health answers within `bound`: the median and at least 90 % of the samples (a shared 2-core host
    may stall any single request)."""
    print(f"health: n={len(latencies)} median={statistics.median(latencies) * 1000:.1f} ms "
          f"max={max(latencies) * 1000:.1f} ms within {bound * 1000:.0f} ms: {sum(t < bound for t in latencies)}")
    assert len(latencies) >= 10, latencies
    assert statistics.median(latencies) < bound, latencies
    assert sum(t < bound for t in latencies) >= 0.9 * len(latencies), sorted(latencies)[-10:]


@pytest.fixture(scope="module")
def svc(keycloak: KeycloakServer, tokens: Tokens, tmp_path_factory) -> Iterator[Service]:
    """The service with short connection limits, so the tests stay short."""
    service = start_service(tmp_path_factory.mktemp("hardening"), keycloak.base_url,
                            DIGA_EXPORTER_HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
                            DIGA_EXPORTER_HTTP_BODY_TIMEOUT_SECONDS="5",
                            DIGA_EXPORTER_HTTP_KEEP_ALIVE_SECONDS="2",
                            DIGA_EXPORTER_HTTP_MAX_CONNECTIONS_PER_CLIENT=str(PER_CLIENT),
                            DIGA_EXPORTER_HTTP_MAX_REQUESTS_PER_CONNECTION=str(MAX_REQUESTS),
                            DIGA_EXPORTER_DENIAL_FLOOR_SECONDS=str(DENIAL_FLOOR))
    try:
        _wait_ready(service, tokens)
        yield service
    finally:
        stop_service(service)


# ------------------------------------------------------------------------------------ 1. slow clients

class SlowLoris:
    """`n` connections from 127.0.0.(2+i) sending a request head one header line every `every` s."""

    def __init__(self, svc: Service, n: int, every: float, first_source: int = 2, sources: int | None = None):
        self.sockets: list[socket.socket] = []
        self.opened: list[float] = []
        self.closed_at: dict[int, float] = {}
        self._stop = threading.Event()
        for i in range(n):
            src = f"127.0.0.{first_source + (i % (sources or n))}"
            s = socket.create_connection(("127.0.0.1", _port(svc)), timeout=5, source_address=(src, 0))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            self.sockets.append(s)
            self.opened.append(time.monotonic())
        self._thread = threading.Thread(target=self._drip, args=(every,), daemon=True)
        self._thread.start()

    def _drip(self, every: float) -> None:
        n = 0
        while not self._stop.wait(every) and n < 200:
            n += 1
            for i, s in enumerate(self.sockets):
                if i in self.closed_at:
                    continue
                try:
                    s.sendall(f"X-Slow-{n}: {'a' * 10}\r\n".encode())
                except OSError:
                    self.closed_at[i] = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.sockets:
            s.close()

    def open_count(self) -> int:
        return sum(1 for i, s in enumerate(self.sockets) if i not in self.closed_at and not _closed_by_server(s, 0.01))


def test_1_slow_clients_do_not_starve_others_and_are_closed(svc, tokens):
    loris = SlowLoris(svc, 64, every=1.0)  # 64 clients, one header line per second: never a complete head
    idle: socket.socket | None = None
    try:
        idle = socket.create_connection(("127.0.0.1", _port(svc)), source_address=("127.0.0.99", 0))
        t_idle = time.monotonic()
        latencies, exports = [], []
        t_end = time.monotonic() + HEADER_TIMEOUT - 0.5
        while time.monotonic() < t_end:  # while all 64 are still open
            took, r = _timed_get(svc.base_url + "/healthz")
            assert r.status_code == 200, r.text
            latencies.append(took)
            if len(exports) < 2:
                t0 = time.perf_counter()
                r = _post(svc, "/internal/export", tokens.backend, TYPICAL)
                assert r.status_code == 200, r.text[:300]
                exports.append(time.perf_counter() - t0)
            time.sleep(0.05)
        _assert_fast(latencies)
        # the server closes what never completes its head (and what sends nothing at all)
        assert _closed_by_server(idle, HEADER_TIMEOUT + 2), "an idle connection stayed open"
        assert time.monotonic() - t_idle < HEADER_TIMEOUT + 2
        deadline = time.monotonic() + HEADER_TIMEOUT + 3
        while loris.open_count() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert loris.open_count() == 0, "slow connections stayed open past the header timeout"
    finally:
        loris.stop()
        if idle is not None:
            idle.close()  # the server closed its end; ours is closed here (else a ResourceWarning, an error)


def test_1_connections_per_client_are_capped_and_idle_ones_yield(svc):
    loris = SlowLoris(svc, PER_CLIENT + 4, every=0.5, first_source=200, sources=1)  # one address
    try:
        time.sleep(0.5)
        assert loris.open_count() <= PER_CLIENT  # the oldest waiting connections were closed for newer ones
        assert all(i in loris.closed_at or _closed_by_server(s, 0.01) for i, s in enumerate(loris.sockets[:4]))
        with socket.create_connection(("127.0.0.1", _port(svc)), source_address=("127.0.0.200", 0)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # a normal request from the same address
            s.settimeout(5)
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        loris.stop()
    # keep-alive limit: the MAX_REQUESTS-th answer on one connection closes it
    with requests.Session() as session:
        answers = [session.get(svc.base_url + "/healthz", timeout=5) for _ in range(MAX_REQUESTS)]
    assert [r.headers.get("connection") for r in answers] == [None] * (MAX_REQUESTS - 1) + ["close"]


# ------------------------------------------------------------------------------ 2. abusive bodies

def test_2_an_abusive_body_is_bounded_in_time_and_memory(keycloak, tmp_path, tokens):
    """Bodies of 100,000 invalid records (3.1 MB), one after the other for a few seconds: each is answered
    at once with capped issues, health and a normal export go on meanwhile, and the service's peak RSS
    stays below 500 MB (before: 110 s CPU and 3.6 GB for one such body)."""
    service = start_service(tmp_path, keycloak.base_url)
    try:
        _wait_ready(service, tokens)
        doc = json.loads(TYPICAL)
        doc["measurements"] = [{"id": "x", "kind": "weight"} for _ in range(100_000)]
        body = json.dumps(doc).encode()
        assert len(body) > 3_000_000
        token = tokens.backend
        answers: list[tuple[float, requests.Response]] = []
        stop = threading.Event()

        def abuse() -> None:  # until the health loop below has run its 6 s (bounded: 300 bodies at most)
            for _ in range(300):
                if stop.is_set():
                    break
                t0 = time.perf_counter()
                r = _post(service, "/internal/export", token, body, timeout=40)
                answers.append((time.perf_counter() - t0, r))

        abuser = threading.Thread(target=abuse)
        abuser.start()
        latencies, export = [], None
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 6:
            took, r = _timed_get(service.base_url + "/healthz")
            assert r.status_code == 200
            latencies.append(took)
            if export is None and time.perf_counter() - t0 > 2:
                export = _post(service, "/internal/export", token, TYPICAL)
            time.sleep(0.02)
        stop.set()
        abuser.join(60)
        assert export is not None and export.status_code == 200, export and export.text[:300]
        assert len(answers) >= 2
        for took, r in answers:
            assert r.status_code == 422, r.text[:300]
            issues = r.json()["issue"]
            assert len(issues) <= 101 and issues[-1]["details"]["coding"][0]["code"] == "ISSUES_STOPPED"
            assert took < 10, took
        _assert_fast(latencies)
        peak = _proc_status(service.process.pid, "VmHWM")
        print(f"abusive bodies: {len(answers)}, slowest {max(t for t, _ in answers):.2f} s, peak RSS {peak / 2**20:.0f} MB")
        assert peak < 500 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MB"
    finally:
        stop_service(service)


def test_2_a_request_past_its_deadline_frees_its_slot(keycloak, tmp_path, tokens):
    """An export that cannot finish in time (a valid document of 30,000 measurements, ~4 MB) gets 408;
    its work stops there: the service's CPU goes idle and the one export slot serves the next request."""
    service = start_service(tmp_path, keycloak.base_url, DIGA_EXPORTER_REQUEST_TIMEOUT_SECONDS="1.5",
                            DIGA_EXPORTER_EXPORT_CONCURRENCY="1")
    try:
        _wait_ready(service, tokens)
        token = tokens.backend
        # warm up: the first export compiles the profiles it needs, which on a busy host alone can take
        # longer than this service's 1.5 s deadline (a 408 then, but the compiled profiles stay)
        warm = [_post(service, "/internal/export", token, TYPICAL).status_code for _ in range(3)]
        assert 200 in warm, warm
        doc = json.loads(TYPICAL)
        good = doc["measurements"][0]
        doc["measurements"] = [dict(good, id=f"{i:08x}-0000-4000-8000-000000000000") for i in range(30_000)]
        health: list[float] = []
        busy_pool = threading.Event()

        def poll() -> None:  # while the one export slot is taken: health is not served from that pool
            while not busy_pool.is_set() and len(health) < 200:
                health.append(_timed_get(service.base_url + "/healthz")[0])
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        r = _post(service, "/internal/export", token, json.dumps(doc).encode())
        busy_pool.set()
        poller.join(10)
        assert r.status_code == 408, r.text[:300]
        # answered beside the full pool, not after it (the GIL the export thread holds still shows in
        # single samples: see docs/security.md "Not covered yet")
        assert len(health) >= 5 and statistics.median(health) < 0.1 and max(health) < 1.0, health
        time.sleep(0.2)
        pid = service.process.pid
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        time.sleep(1.0)
        busy = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        print(f"CPU after the 408: {busy:.0%}")
        assert busy < 0.3, f"the abandoned export still runs: {busy:.0%} CPU"
        # the slot is free: the next export is served (a slot still held would answer 503 API_BUSY)
        t0 = time.perf_counter()
        r = _post(service, "/internal/export", token, TYPICAL)
        assert r.status_code == 200 and time.perf_counter() - t0 < 1.5, (r.status_code, time.perf_counter() - t0)
    finally:
        stop_service(service)


def test_2_a_validate_body_with_a_1mb_key_is_answered_in_time_and_frees_its_slot(keycloak, tmp_path, tokens):
    """Review 1, finding 1: locating the issue about one 1 MB upper-case key in the body took minutes
    (every camel-case prefix of the key was looked up) after the validator, without a deadline check:
    two such `$validate` requests got their 408 and then held both export slots for minutes, every
    export meanwhile answered 408. Now locating is linear and stops at the deadline."""
    service = start_service(tmp_path, keycloak.base_url, DIGA_EXPORTER_REQUEST_TIMEOUT_SECONDS="3",
                            DIGA_EXPORTER_EXPORT_CONCURRENCY="2")
    try:
        _wait_ready(service, tokens)
        token = tokens.backend
        body = ('{"resourceType": "Patient", "%s": 1}' % ("A" * 1_000_000)).encode()
        answers: list[tuple[int, float]] = []

        def hostile() -> None:
            t0 = time.perf_counter()
            r = _post(service, "/$validate", token, body, timeout=30)
            answers.append((r.status_code, time.perf_counter() - t0))

        both = [threading.Thread(target=hostile) for _ in range(2)]
        for t in both:
            t.start()
        for t in both:
            t.join(40)
        print("hostile $validate:", answers)
        assert len(answers) == 2 and all(status in (200, 408) and took < 3 + 2.0 for status, took in answers), answers
        # both slots are free again: the next export is served at once (a held slot: 408 / 503 API_BUSY)
        t0 = time.perf_counter()
        r = _post(service, "/internal/export", token, TYPICAL)
        took = time.perf_counter() - t0
        assert r.status_code == 200 and took < 3.0, (r.status_code, took, r.text[:200])
    finally:
        stop_service(service)


# ------------------------------------------------------------------------------ 3. hanging JWKS

class SlowJwksProxy:
    """Keycloak behind a loopback proxy whose JWKS answers can be delayed (a hanging key endpoint).
    Discovery is rewritten so that its jwks_uri points at the proxy; everything else passes through."""

    def __init__(self, kc: KeycloakServer):
        self.kc = kc
        self.delay = 0.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/certs") and proxy.delay:
                    time.sleep(min(proxy.delay, 10))
                r = requests.get(proxy.kc.base_url + self.path, timeout=10)
                body = r.content
                if self.path.endswith("openid-configuration"):
                    disc = r.json()
                    disc["jwks_uri"] = disc["jwks_uri"].replace(proxy.kc.base_url, proxy.url)
                    body = json.dumps(disc).encode()
                try:
                    self.send_response(r.status_code)
                    self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _unknown_kid_token(real: str) -> str:
    header = {**jwt.get_unverified_header(real), "kid": "unknown-" + secrets.token_hex(4)}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    _, payload, sig = real.split(".")
    return f"{head}.{payload}.{sig}"


def test_3_a_hanging_jwks_endpoint_stalls_no_known_key_and_no_health_check(keycloak, tmp_path, tokens):
    proxy = SlowJwksProxy(keycloak)
    service = start_service(tmp_path, proxy.url, DIGA_EXPORTER_OIDC_ISSUER=keycloak.issuer,
                            DIGA_EXPORTER_JWKS_MIN_REFRESH_SECONDS="1")
    try:
        _wait_ready(service, tokens)
        proxy.delay = 8.0  # from now on the key endpoint answers after 8 s
        token = tokens.backend
        patient = _login(keycloak, ANNA)["access_token"]
        slow: dict = {}

        def unknown_kid() -> None:
            t0 = time.perf_counter()
            slow["r"] = _post(service, "/$validate", _unknown_kid_token(token), b'{"resourceType": "Patient"}',
                              timeout=20)
            slow["took"] = time.perf_counter() - t0

        attackers = [threading.Thread(target=unknown_kid) for _ in range(8)]
        for t in attackers:
            t.start()
        time.sleep(0.3)  # the key fetch is now hanging
        valid, health = [], []
        for _ in range(6):
            t0 = time.perf_counter()
            r = _post(service, "/$validate", token, b'{"resourceType": "Patient"}', timeout=20)
            assert r.status_code == 200, r.text[:200]
            valid.append(time.perf_counter() - t0)
            for path in ("/healthz", "/readyz"):
                took, r = _timed_get(service.base_url + path)
                assert r.status_code == 200
                health.append(took)
        t0 = time.perf_counter()
        r = requests.get(service.base_url + "/patient/export", headers={"Authorization": f"Bearer {patient}"},
                         timeout=20)
        assert r.status_code == 200 and time.perf_counter() - t0 < 2
        for t in attackers:
            t.join(20)
        assert max(valid) < 1.0, valid
        _assert_fast(health)
        assert slow["r"].status_code == 401 and slow["took"] < 6, slow  # waits for the fetch at most ~3 s
    finally:
        stop_service(service)
        proxy.close()


# ------------------------------------------------------------------------------ 4. hostile narratives

def test_4_hostile_narratives_are_checked_in_linear_time(svc, tokens):
    """1 MB of XHTML: 250 distinct 4 KB divs whose one text run ends in an entity, not a tag (40 ms each
    for the old backtracking regex, unclosed divs the same; these are well-formed, so no issue cap ends
    the validation early and every div is checked)."""
    entries = []
    for i in range(250):
        div = f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{i:04d}' + "a" * 3950 + "&amp;</p></div>"
        entries.append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",  # a collection's entries need one
                        "resource": {"resourceType": "Basic", "id": f"b{i}",
                                     "code": {"text": "x"}, "text": {"status": "generated", "div": div}}})
    body = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()
    assert len(body) > 1_000_000
    beside: dict = {}

    def normal_export() -> None:  # the attack run saw a concurrent export take 7 s
        time.sleep(0.1)
        t1 = time.perf_counter()
        beside["r"] = _post(svc, "/internal/export", tokens.backend, TYPICAL)
        beside["took"] = time.perf_counter() - t1

    other = threading.Thread(target=normal_export)
    other.start()
    t0 = time.perf_counter()
    r = _post(svc, "/$validate", tokens.backend, body)
    took = time.perf_counter() - t0
    other.join(30)
    assert r.status_code == 200, r.text[:300]
    assert beside["r"].status_code == 200 and beside["took"] < 3.0, beside
    texts = [i["details"]["text"] for i in r.json()["issue"]]
    assert not any("stopped" in t for t in texts), texts[:5]
    assert took < 3.0, took


# ------------------------------------------------------------------------------ 5. redirects

def test_5_trailing_slashes_and_unknown_paths_never_redirect(svc):
    reference = requests.get(svc.base_url + "/patient/export", timeout=10)
    assert reference.status_code == 401
    for path in ("/internal/export/", "/patient/export/", "/$validate/", "/internal/export//", "/internal/"):
        for method in ("GET", "POST"):
            r = requests.request(method, svc.base_url + path, headers={"Host": "evil.example"},
                                 allow_redirects=False, timeout=10)
            assert r.status_code == 401 and r.content == reference.content, (method, path, r.status_code)
            assert "location" not in r.headers and "evil" not in r.text
    for path in ("/healthz/", "/metadata/", "/StructureDefinition/diga-patient/"):
        r = requests.get(svc.base_url + path, headers={"Host": "evil.example"}, allow_redirects=False, timeout=10)
        assert r.status_code == 404 and "location" not in r.headers and "evil" not in r.text, path


# ------------------------------------------------------------------------------ 6. timing

@pytest.fixture(scope="module")
def ghost(keycloak) -> Iterator[str]:
    """An access token of a patient whose patient id has no document in the source."""
    password = "ghost-" + secrets.token_urlsafe(12)
    keycloak.admin_request("POST", "users", json={
        "username": GHOST_USER, "enabled": True, "email": "hardening-ghost@example.org", "emailVerified": True,
        "firstName": "Gast", "lastName": "Beispiel", "attributes": {"diga_patient_id": [str(uuid.uuid4())]},
        "credentials": [{"type": "password", "value": password, "temporary": False}]})
    try:
        yield keycloak.pkce_login(GHOST_USER, password)["access_token"]
    finally:
        uid = keycloak.admin_request("GET", "users", params={"username": GHOST_USER, "exact": "true"}).json()[0]["id"]
        keycloak.admin_request("DELETE", f"users/{uid}")


def test_6_an_unknown_patient_is_denied_with_the_shape_and_time_of_a_bad_signature(svc, keycloak, ghost):
    anna = _login(keycloak, ANNA)["access_token"]
    head, payload, sig = anna.split(".")
    bad_signature = f"{head}.{payload}.{sig[:-6]}{'AAAAAA' if not sig.endswith('AAAAAA') else 'BBBBBB'}"
    samples: dict[str, list[float]] = {"unknown_patient": [], "signature": []}
    bodies, reasons = set(), {}
    with requests.Session() as session:
        for i in range(120):  # interleaved, so drift of the host's load affects both alike
            for name, token in (("unknown_patient", ghost), ("signature", bad_signature))[:: 1 if i % 2 else -1]:
                t0 = time.perf_counter()
                r = session.get(svc.base_url + "/patient/export", headers={"Authorization": f"Bearer {token}"},
                                timeout=10)
                samples[name].append(time.perf_counter() - t0)
                assert r.status_code == 401
                bodies.add((r.content, tuple(sorted((k, v) for k, v in r.headers.items()
                                                    if k.lower() not in VARYING_HEADERS | {"connection"}))))
                reasons.setdefault(name, r.headers["x-request-id"])
    assert len(bodies) == 1  # byte-identical answers
    assert svc.outcome_of(reasons["unknown_patient"]) == "denied:no_patient"
    assert svc.outcome_of(reasons["signature"]) == "denied:signature"
    # both are released at the same floor after arrival: the work before it does not show
    for name, times in samples.items():
        assert min(times) >= DENIAL_FLOOR, (name, min(times))
    med = {name: statistics.median(times) for name, times in samples.items()}
    print("denial medians (ms):", {k: round(v * 1000, 2) for k, v in med.items()})
    assert abs(med["unknown_patient"] - med["signature"]) < 0.003, med


# ------------------------------------------------------------------------------ 7. smaller findings

@pytest.fixture(scope="module")
def own_realm_key(keycloak) -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """An RSA key imported into the realm (published in its JWKS, low priority: Keycloak keeps signing
    with its own key), so the test can sign tokens whose claims Keycloak would never issue."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    realm_id = keycloak.admin_request("GET", "").json()["id"]
    r = keycloak.admin_request("POST", "components", json={
        "name": "hardening-imported-" + secrets.token_hex(3), "providerId": "rsa",
        "providerType": "org.keycloak.keys.KeyProvider", "parentId": realm_id,
        "config": {"priority": ["1"], "enabled": ["true"], "active": ["true"], "algorithm": ["RS256"],
                   "privateKey": [pem]}})
    component = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    try:
        kid = next(k["kid"] for k in keycloak.realm_keys() if k.get("providerId") == component)
        yield kid, key
    finally:
        keycloak.admin_request("DELETE", f"components/{component}")


def test_7_time_claims_must_be_numbers(svc, keycloak, own_realm_key, tokens):
    kid, key = own_realm_key
    claims = jwt.decode(tokens.backend, options={"verify_signature": False})
    now = int(time.time())

    def call(**changes) -> int:
        token = jwt.encode({**claims, "iat": now - 5, "exp": now + 300, **changes}, key, algorithm="RS256",
                           headers={"kid": kid})
        return _post(svc, "/$validate", token, b'{"resourceType": "Patient"}').status_code

    deadline = time.monotonic() + 10  # the new kid is fetched on first sight (refetch at most once a second)
    while call() != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert call() == 200  # the imported key and these claims are accepted as they are
    assert call(exp=str(now + 300)) == 401
    assert call(iat=str(now - 5)) == 401
    assert call(nbf=str(now - 5)) == 401
    assert call(exp=True) == 401
    assert call(nbf=now - 5) == 200


def test_7_request_ids_are_the_services_own_and_a_clients_is_only_logged(svc):
    chosen = "client-chosen-" + secrets.token_hex(8)
    r = requests.get(svc.base_url + "/healthz", headers={"X-Request-ID": chosen}, timeout=10)
    rid = r.headers["x-request-id"]
    assert rid != chosen and re.fullmatch(r"[0-9a-f]{24}", rid)
    evil = "forged\u2028{\"event\": \"audit_export\"} " + "x" * 80
    r2 = requests.get(svc.base_url + "/healthz", headers={"X-Request-ID": evil.encode("utf-8")}, timeout=10)
    time.sleep(0.3)
    lines = {line.get("request_id"): line for line in svc.log_lines() if line.get("event") == "request"}
    assert lines[rid]["client_request_id"] == chosen
    assert lines[r2.headers["x-request-id"]]["client_request_id"] is None
    assert "forged" not in svc.log_path.read_text(encoding="utf-8", errors="replace")


def test_7_security_headers_on_every_response(svc, keycloak, tokens):
    token = tokens.backend
    answers = [requests.get(svc.base_url + p, timeout=10) for p in
               ("/healthz", "/readyz", "/openapi.json", "/metadata", "/StructureDefinition/diga-patient",
                "/StructureDefinition/nope", "/nowhere", "/patient/export")]
    answers.append(requests.delete(svc.base_url + "/healthz", timeout=10))
    answers.append(_post(svc, "/$validate", token, b'{"resourceType": "Patient"}'))
    answers.append(_post(svc, "/internal/export", token, b"{oops"))
    for r in answers:
        assert r.headers.get("cache-control") == "no-store", (r.url, r.status_code, r.headers)
        assert r.headers.get("x-content-type-options") == "nosniff", (r.url, r.status_code)
    raw = _raw(svc, b"GARBAGE / HTTP/9\r\n\r\n")  # answered by the HTTP server itself
    head = raw.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 400") and b"cache-control: no-store" in head and b"nosniff" in head


def test_7_validate_does_not_echo_a_huge_value(svc, tokens):
    huge = "A" * 1_000_000
    r = _post(svc, "/$validate", tokens.backend, json.dumps({"resourceType": huge}).encode())
    assert r.status_code == 422
    assert len(r.content) < 5_000 and "A" * 1_000 not in r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_7_ambiguous_framing_is_refused_and_the_hidden_request_never_answered(svc):
    hidden = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + hidden  # chunked: an empty body, then the "second" request
    raw = _raw(svc, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
               % len(body) + body)
    assert raw.startswith(b"HTTP/1.1 400")
    assert raw.count(b"HTTP/1.1 ") == 1, raw  # one answer, then the connection was closed
