"""The main job end to end (for `make demo`): Keycloak + the export service on loopback, one patient
export (authorization code + PKCE login of patient-anna) and one backend export (diga-backend client
credentials, POST samples/patients/typical.json). Both Bundles are written to out/demo/; their paths
and validation summaries are printed. Exits 0 on success, 1 on any failure.

    .venv/bin/python tools/demo_service.py [--out out/demo]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.devstack.keycloak import (  # noqa: E402
    BACKEND_CLIENT_ID,
    DEMO_CLIENT_SECRETS,
    DEMO_PATIENTS,
    KeycloakError,
    KeycloakServer,
    free_port,
)


def _summary(exporter, bundle: dict) -> str:
    issues = exporter.validator.validate(bundle)
    counts = {s: sum(1 for i in issues if i.severity.value == s) for s in ("fatal", "error", "warning", "information")}
    types: dict[str, int] = {}
    for e in bundle.get("entry", []):
        rt = e.get("resource", {}).get("resourceType", "?")
        types[rt] = types.get(rt, 0) + 1
    status = "valid" if counts["fatal"] + counts["error"] == 0 else "INVALID"
    return (f"{status}: {counts['error'] + counts['fatal']} error(s), {counts['warning']} warning(s); "
            f"{len(bundle.get('entry', []))} entries ({', '.join(f'{k} {v}' for k, v in sorted(types.items()))})")


def run(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with KeycloakServer() as kc:
        print(f"Keycloak ready in {kc.startup_seconds:.1f} s at {kc.realm_url}")
        port = free_port(exclude=(kc.http_port or 0,))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGA_EXPORTER_")}
        env.update(DIGA_EXPORTER_KEYCLOAK_URL=kc.base_url, DIGA_EXPORTER_SOURCE_KIND="directory")
        log_path = out / "service.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--port", str(port)], cwd=REPO, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited (log: {log_path})")
                try:
                    if requests.get(base + "/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service was not ready in time (log: {log_path})")
                time.sleep(0.3)
            print(f"service ready at {base} (log: {log_path})")

            anna = DEMO_PATIENTS["patient-anna"]
            tokens = kc.pkce_login(anna.username, anna.password)
            r = requests.get(base + "/patient/export", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                             timeout=120)
            if r.status_code != 200:
                raise RuntimeError(f"patient export: HTTP {r.status_code} {r.text[:300]}")
            patient_path = out / "patient-export.fhir.json"
            patient_path.write_bytes(r.content)

            token = kc.client_credentials_token(BACKEND_CLIENT_ID, DEMO_CLIENT_SECRETS[BACKEND_CLIENT_ID])
            body = (REPO / "samples" / "patients" / "typical.json").read_bytes()
            r = requests.post(base + "/internal/export", data=body, timeout=120,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
            if r.status_code != 200:
                raise RuntimeError(f"backend export: HTTP {r.status_code} {r.text[:300]}")
            backend_path = out / "backend-export.fhir.json"
            backend_path.write_bytes(r.content)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    from exporter.pipeline import Exporter
    from exporter.settings import Settings

    exporter = Exporter.from_settings(Settings())
    for label, path in (("patient export (patient-anna, PKCE)", patient_path),
                        ("backend export (diga-backend, typical.json)", backend_path)):
        print(f"{label}: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        print(f"  {_summary(exporter, json.loads(path.read_bytes()))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "out" / "demo"), help="output folder (default: out/demo)")
    ns = ap.parse_args(argv)
    try:
        return run(Path(ns.out).resolve())
    except (KeycloakError, RuntimeError, requests.RequestException, OSError) as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
