"""Source adapters: the directory source (demo) and the HTTP source to the main backend, the latter
against a local stub server (token endpoint + backend) on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.api.sources import DirectorySource, HttpSource, SourceUnavailable

from .conftest import ANNA_ID, BEN_ID

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "demo-source"


def test_directory_source_reads_by_patient_id_only():
    src = DirectorySource(DEMO)
    assert src.get(ANNA_ID)["patient"]["id"] == ANNA_ID
    assert src.get(BEN_ID)["patient"]["id"] == BEN_ID
    for bad in ("../samples/patients/typical", "README", "..", "", "a/b", ANNA_ID + "/x"):
        assert src.get(bad) is None


class Stub(BaseHTTPRequestHandler):
    plan: list[int] = []
    seen: list[tuple[str, str | None]] = []

    def log_message(self, *a):
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(("token", None))
        self._send(200, {"access_token": "tok-1", "expires_in": 300})

    def do_GET(self):
        self.seen.append((self.path, self.headers.get("Authorization")))
        status = self.plan.pop(0) if self.plan else 200
        if status != 200:
            return self._send(status, {})
        if ANNA_ID in self.path:
            return self._send(200, {"patient": {"id": ANNA_ID}})
        return self._send(404, {})


@pytest.fixture
def backend():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    Stub.plan, Stub.seen = [], []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base
    server.shutdown()
    server.server_close()


def test_http_source_uses_its_own_token_and_maps_404_to_no_patient(backend):
    src = HttpSource(backend, backend + "/token", "exporter", "secret", timeout=2, retries=2, backoff=0)
    assert src.get(ANNA_ID) == {"patient": {"id": ANNA_ID}}
    assert src.get(BEN_ID) is None
    assert Stub.seen[0] == ("token", None)
    assert Stub.seen[1] == (f"/patients/{ANNA_ID}/domain-document", "Bearer tok-1")
    assert [s for s in Stub.seen if s[0] == "token"] == [("token", None)]  # the token is cached


def test_http_source_retries_a_bounded_number_of_times(backend):
    Stub.plan = [503, 502, 200]
    src = HttpSource(backend, backend + "/token", "exporter", "secret", timeout=2, retries=2, backoff=0)
    assert src.get(ANNA_ID) == {"patient": {"id": ANNA_ID}}
    Stub.plan = [503, 503, 503, 503]
    with pytest.raises(SourceUnavailable):
        src.get(ANNA_ID)
    assert Stub.plan == [503]  # 1 try + 2 retries


def test_http_source_down_is_unavailable():
    src = HttpSource("http://127.0.0.1:9", "http://127.0.0.1:9/token", "x", "y", timeout=0.5, retries=1, backoff=0)
    with pytest.raises(SourceUnavailable):
        src.get(ANNA_ID)
