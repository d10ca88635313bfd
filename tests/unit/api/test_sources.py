"""Source adapters: the directory source (demo) and the HTTP source to the main backend, the latter
against a local stub server (token endpoint + backend) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.api.sources import DirectorySource, HttpSource, SourceUnavailable

from .conftest import ANNA_ID, BEN_ID, SourceBackend

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "demo-source"


def test_directory_source_reads_by_patient_id_only():
    src = DirectorySource(DEMO)
    assert src.get(ANNA_ID)["patient"]["id"] == ANNA_ID
    assert src.get(BEN_ID)["patient"]["id"] == BEN_ID
    for bad in ("../samples/patients/typical", "README", "..", "", "a/b", ANNA_ID + "/x"):
        assert src.get(bad) is None


def test_http_source_uses_its_own_token_and_maps_404_to_no_patient(backend):
    src = HttpSource(backend, backend + "/token", "exporter", "secret", timeout=2, retries=2, backoff=0)
    assert src.get(ANNA_ID) == {"patient": {"id": ANNA_ID}}
    assert src.get(BEN_ID) is None
    assert SourceBackend.seen[0] == ("token", None)
    assert SourceBackend.seen[1] == (f"/patients/{ANNA_ID}/domain-document", "Bearer tok-1")
    assert [s for s in SourceBackend.seen if s[0] == "token"] == [("token", None)]  # the token is cached


def test_http_source_retries_a_bounded_number_of_times(backend):
    SourceBackend.plan = [503, 502, 200]
    src = HttpSource(backend, backend + "/token", "exporter", "secret", timeout=2, retries=2, backoff=0)
    assert src.get(ANNA_ID) == {"patient": {"id": ANNA_ID}}
    SourceBackend.plan = [503, 503, 503, 503]
    with pytest.raises(SourceUnavailable):
        src.get(ANNA_ID)
    assert SourceBackend.plan == [503]  # 1 try + 2 retries


def test_http_source_down_is_unavailable():
    src = HttpSource("http://127.0.0.1:9", "http://127.0.0.1:9/token", "x", "y", timeout=0.5, retries=1, backoff=0)
    with pytest.raises(SourceUnavailable):
        src.get(ANNA_ID)
