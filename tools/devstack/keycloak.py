"""A throw-away Keycloak on loopback for tests and `make demo`, started from the project's own files.

    with KeycloakServer() as kc:
        token = kc.client_credentials_token("diga-backend", DEMO_CLIENT_SECRETS["diga-backend"])
        tokens = kc.pkce_login("patient-anna", DEMO_PATIENTS["patient-anna"].password)

The distribution is unpacked once by `make setup` (tools/keycloak/pom.xml → .tools/keycloak/keycloak-<v>/)
and never written to. Each start builds a small private Keycloak home in a fresh temporary folder:
`bin/kc.sh`, `conf/` and `lib/quarkus/` (2.5 MB) are copied, the 150 MB of jars, themes and providers
are symlinked, and `data/import/` receives only deploy/keycloak/diga-realm.json. The database is
H2 in memory (`--db=dev-mem`), so every start imports the realm fresh and nothing survives `stop()`.
Concurrent starts (two sessions at once) share nothing but the read-only distribution.

`start-dev` with `--db=dev-mem` needs a Quarkus re-augmentation (~15 s). Its result (lib/quarkus/) does
not depend on the home folder, so after the first successful start it is kept in
`.tools/keycloak/.augmented/<key>/` and copied into later homes; Keycloak re-augments by itself
should it ever disagree.

The process runs in its own session (process group); `stop()` sends SIGTERM to that group, then
SIGKILL after a bounded wait. On Linux the launcher also asks the kernel to SIGTERM Keycloak when
the starting thread dies (prctl PDEATHSIG), so a killed test run leaves no server behind; pass
`die_with_parent=False` when starting from a thread that ends before the server should.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import html
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "tools" / "keycloak" / "pom.xml"
REALM_FILE = REPO_ROOT / "deploy" / "keycloak" / "diga-realm.json"

REALM = "diga"
API_CLIENT_ID = "diga-exporter-api"
BACKEND_CLIENT_ID = "diga-backend"
REPORTING_CLIENT_ID = "diga-reporting"
PATIENT_APP_CLIENT_ID = "diga-patient-app"
PATIENT_APP_REDIRECT_PATH = "/callback"
"""Registered as http://127.0.0.1/callback; Keycloak accepts any port on a loopback redirect (RFC 8252 §7.3)."""

# Demo/test values, identical to deploy/keycloak/diga-realm.json (a test checks they still work).
# This realm is for local demos and tests only; never deploy it anywhere reachable.
DEMO_CLIENT_SECRETS: dict[str, str] = {
    API_CLIENT_ID: "demo-exporter-api-secret-Xq7Lm2Vb9Tn4",
    BACKEND_CLIENT_ID: "demo-backend-secret-Kp4Rw8Zs1Yd6",
    REPORTING_CLIENT_ID: "demo-reporting-secret-Hf3Nc5Jg7Qa2",
}


@dataclass(frozen=True)
class DemoPatient:
    username: str
    password: str
    patient_id: str
    """The `diga_patient_id` user attribute, mapped into patient-app tokens as claim `diga_patient_id`."""


DEMO_PATIENTS: dict[str, DemoPatient] = {
    p.username: p
    for p in (
        DemoPatient("patient-anna", "anna-demo-Passw0rd", "0b7c4f3e-1a2d-4e5f-8a9b-1c2d3e4f5a61"),
        DemoPatient("patient-ben", "ben-demo-Passw0rd", "9d8e7f6a-5b4c-4d3e-9f2a-1b0c9d8e7f62"),
    )
}

DEFAULT_READY_TIMEOUT = 180.0
DEFAULT_STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 40
_BUILD_OPTIONS = ("--db=dev-mem",)
"""Build-time options: they decide the Quarkus augmentation that is cached between starts."""
_RUN_PREFIX = "diga-keycloak-"
_OWNER_FILE = "owner.pid"
_KEEP_FILE = "KEEP"
_PORT_IN_USE = re.compile(r"Address already in use|Port already bound|BindException", re.IGNORECASE)


class KeycloakError(RuntimeError):
    """Anything that went wrong talking to or running the local Keycloak."""


class KeycloakNotInstalledError(KeycloakError):
    """The distribution under .tools/keycloak is missing: run `make setup`."""


class KeycloakStartError(KeycloakError):
    """Keycloak exited or did not become ready in time; the message ends with the tail of its log."""


class KeycloakLoginError(KeycloakError):
    """The browser-style login did not end in an authorization code (or the code exchange failed)."""

    def __init__(self, message: str, *, status: int | None = None, page_id: str | None = None,
                 error: str | None = None):
        super().__init__(message)
        self.status = status
        self.page_id = page_id
        self.error = error


class KeycloakTokenError(KeycloakError):
    """The token endpoint refused a request."""

    def __init__(self, message: str, *, status: int, body: Any):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class KeyRotation:
    """Result of `KeycloakServer.rotate_signing_key()`."""

    new_kid: str
    new_provider_id: str
    old_kids: tuple[str, ...]
    old_provider_ids: tuple[str, ...]
    retire: str


# ---------------------------------------------------------------------------------------------- install


def keycloak_version(pom: Path = POM) -> str:
    """The Keycloak version pinned in tools/keycloak/pom.xml (`<keycloak.version>`)."""
    m = re.search(r"<keycloak\.version>\s*([^<\s]+)\s*</keycloak\.version>", pom.read_text(encoding="utf-8"))
    if not m:
        raise KeycloakError(f"{pom}: no <keycloak.version> property")
    return m.group(1)


def default_install_root() -> Path:
    """`<tools>/keycloak`, with <tools> from the exporter settings (DIGA_EXPORTER_TOOLS_DIR)."""
    from exporter.settings import get_settings

    return get_settings().tools / "keycloak"


def find_distribution(install_root: Path | None = None, version: str | None = None) -> Path:
    """The unpacked distribution folder (holding bin/kc.sh), or KeycloakNotInstalledError."""
    root = Path(install_root) if install_root else default_install_root()
    version = version or keycloak_version()
    dist = root / f"keycloak-{version}"
    if not (dist / "bin" / "kc.sh").is_file() or not (dist / "lib" / "lib").is_dir():
        raise KeycloakNotInstalledError(
            f"Keycloak {version} is not installed at {dist} (no bin/kc.sh). Run `make setup` "
            f"(it unpacks org.keycloak:keycloak-quarkus-dist:{version} via tools/keycloak/pom.xml)."
        )
    return dist


def free_port(exclude: tuple[int, ...] = ()) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port
    raise KeycloakError("could not find a free port on 127.0.0.1")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_run_dirs(parent: Path | None = None) -> list[Path]:
    """Remove run folders of launcher processes that no longer exist (a crashed or killed session)."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for d in parent.glob(_RUN_PREFIX + "*"):
        owner = d / _OWNER_FILE
        if (d / _KEEP_FILE).exists():
            continue
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError as e:
        return f"<no log: {e}>"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, never block the start
        pass


_VOID_TAGS = frozenset("area base br col embed hr img input link meta source track wbr".split())


class _LoginFormParser(HTMLParser):
    """Finds the action of Keycloak's username/password form (id kc-form-login), the page id and the
    error texts shown to the user."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.page_id: str | None = None
        self.errors: list[str] = []
        self._in_error = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body" and a.get("data-page-id"):
            self.page_id = a["data-page-id"]
        if tag == "form" and a.get("id") == "kc-form-login" and a.get("action"):
            self.action = html.unescape(a["action"])  # HTMLParser already unescapes; a no-op then
        if tag in _VOID_TAGS:
            return
        if self._in_error:
            self._in_error += 1
        elif "kc-feedback-text" in (a.get("class") or "").split() or a.get("id") == "kc-error-message":
            self._in_error = 1

    def handle_endtag(self, tag: str) -> None:
        if self._in_error:
            self._in_error -= 1

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.errors.append(" ".join(data.split()))


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


# ---------------------------------------------------------------------------------------------- server


class KeycloakServer:
    """One Keycloak process (start-dev, loopback only, in-memory H2) with realm `diga` imported fresh."""

    def __init__(
        self,
        *,
        install_root: Path | None = None,
        realm_file: Path = REALM_FILE,
        http_port: int | None = None,
        management_port: int | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        log_file: Path | None = None,
        work_dir: Path | None = None,
        keep_work_dir: bool = False,
        admin_username: str = "admin",
        admin_password: str | None = None,
        java: str | None = None,
        java_opts_append: str = "-XX:TieredStopAtLevel=1",
        extra_args: tuple[str, ...] = (),
        die_with_parent: bool = True,
        port_retries: int = 2,
    ) -> None:
        self.install_root = Path(install_root) if install_root else default_install_root()
        self.realm_file = Path(realm_file)
        self.requested_http_port = http_port
        self.requested_management_port = management_port
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.requested_log_file = Path(log_file) if log_file else None
        self.work_dir_parent = Path(work_dir) if work_dir else None
        self.keep_work_dir = keep_work_dir
        self.admin_username = admin_username
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.java = java
        self.java_opts_append = java_opts_append
        self.extra_args = tuple(extra_args)
        self.die_with_parent = die_with_parent
        self.port_retries = port_retries

        self.http_port: int | None = None
        self.management_port: int | None = None
        self.run_dir: Path | None = None
        self.log_file: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.discovery: dict[str, Any] | None = None
        self.startup_seconds: float | None = None
        self.augmentation_cached: bool | None = None
        self._admin_token: tuple[str, float] | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> KeycloakServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.base_url_or_none}" if self.process else "stopped"
        return f"<KeycloakServer {state}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> KeycloakServer:
        """Start Keycloak and wait until realm `diga` answers its discovery document.

        Raises KeycloakNotInstalledError before anything is started, KeycloakStartError (with the log
        tail) when the process exits or is not ready within `ready_timeout` seconds.
        """
        if self.process is not None:
            raise KeycloakError("this KeycloakServer was already started")
        dist = find_distribution(self.install_root)
        if not self.realm_file.is_file():
            raise KeycloakError(f"realm file {self.realm_file} is missing")
        java = self.java or shutil.which("java")
        if not java:
            raise KeycloakError("no `java` on PATH (Keycloak needs Java 17 or newer)")

        attempts = 1 + (self.port_retries if self.requested_http_port is None else 0)
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(dist, java)
                return self
            except KeycloakStartError:
                port_clash = self.log_file is not None and _PORT_IN_USE.search(_tail(self.log_file, 400))
                self.stop()
                if not (port_clash and attempt < attempts):
                    raise
                # another process took one of our ports between probing and binding: new ports, again
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _start_once(self, dist: Path, java: str) -> None:
        t0 = time.monotonic()
        if self.work_dir_parent:
            self.work_dir_parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_run_dirs(self.work_dir_parent)
        self.run_dir = Path(tempfile.mkdtemp(prefix=_RUN_PREFIX, dir=self.work_dir_parent))
        (self.run_dir / _OWNER_FILE).write_text(str(os.getpid()))
        if self.keep_work_dir:
            (self.run_dir / _KEEP_FILE).write_text("kept on request (keep_work_dir=True); delete by hand\n")
        home = self._make_home(dist, self.run_dir / "home")

        self.http_port = self.requested_http_port or free_port()
        self.management_port = self.requested_management_port or free_port(exclude=(self.http_port,))
        self.log_file = self.requested_log_file or self.run_dir / "keycloak.log"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)

        args = [
            str(home / "bin" / "kc.sh"),
            "start-dev",
            "--http-host=127.0.0.1",
            f"--http-port={self.http_port}",
            f"--http-management-port={self.management_port}",
            f"--hostname=http://127.0.0.1:{self.http_port}",
            *_BUILD_OPTIONS,
            "--import-realm",
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")}
        env.update(
            JAVA=java,
            KC_BOOTSTRAP_ADMIN_USERNAME=self.admin_username,
            KC_BOOTSTRAP_ADMIN_PASSWORD=self.admin_password,
        )
        if self.java_opts_append:
            env["JAVA_OPTS_APPEND"] = self.java_opts_append

        with open(self.log_file, "ab") as log:
            log.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                args,
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if (self.die_with_parent and sys.platform.startswith("linux")) else None,
            )
        atexit.register(self.stop)
        self._wait_ready(t0)
        self.startup_seconds = time.monotonic() - t0
        self._remember_augmentation(dist, home)

    def _augmentation_dir(self, dist: Path) -> Path:
        dat = dist / "lib" / "quarkus" / "quarkus-application.dat"
        st = dat.stat()
        key = hashlib.sha256(
            repr((dist.name, st.st_size, int(st.st_mtime), _BUILD_OPTIONS, self.extra_args)).encode()
        ).hexdigest()[:16]
        return self.install_root / ".augmented" / key

    def _make_home(self, dist: Path, home: Path) -> Path:
        (home / "bin").mkdir(parents=True)
        shutil.copy2(dist / "bin" / "kc.sh", home / "bin" / "kc.sh")  # a copy: kc.sh resolves symlinks
        shutil.copytree(dist / "conf", home / "conf")
        (home / "lib").mkdir()
        shutil.copy2(dist / "lib" / "quarkus-run.jar", home / "lib" / "quarkus-run.jar")
        for name in ("lib", "app"):
            (home / "lib" / name).symlink_to(dist / "lib" / name, target_is_directory=True)
        cached = self._augmentation_dir(dist) / "quarkus"
        self.augmentation_cached = (cached / "generated-bytecode.jar").is_file()
        shutil.copytree(cached if self.augmentation_cached else dist / "lib" / "quarkus", home / "lib" / "quarkus")
        for name in ("providers", "themes"):
            (home / name).symlink_to(dist / name, target_is_directory=True)
        if (dist / "version.txt").is_file():
            shutil.copy2(dist / "version.txt", home / "version.txt")
        (home / "data" / "import").mkdir(parents=True)
        shutil.copy2(self.realm_file, home / "data" / "import" / f"{REALM}-realm.json")
        return home

    def _remember_augmentation(self, dist: Path, home: Path) -> None:
        if self.augmentation_cached:
            return
        target = self._augmentation_dir(dist)
        if target.exists():
            return
        tmp = target.parent / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            shutil.copytree(home / "lib" / "quarkus", tmp / "quarkus")
            os.rename(tmp, target)  # atomic; loses the race harmlessly if another start was faster
        except OSError:
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _wait_ready(self, t0: float) -> None:
        url = f"http://127.0.0.1:{self.http_port}/realms/{REALM}/.well-known/openid-configuration"
        deadline = t0 + self.ready_timeout
        while True:
            code = self.process.poll() if self.process else -1
            if code is not None:
                raise KeycloakStartError(self._failure(f"Keycloak exited with code {code} before it was ready"))
            try:
                r = requests.get(url, timeout=2)
                if r.status_code == 200:
                    self.discovery = r.json()
                    if self.discovery.get("issuer") != self.issuer_expected:
                        raise KeycloakStartError(self._failure(
                            f"unexpected issuer {self.discovery.get('issuer')!r}, wanted {self.issuer_expected!r}"))
                    return
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise KeycloakStartError(self._failure(
                    f"Keycloak was not ready within {self.ready_timeout:.0f} s ({url})"))
            time.sleep(0.5)

    def _failure(self, what: str) -> str:
        where = f" (log: {self.log_file})" if self.requested_log_file or self.keep_work_dir else ""
        return f"{what}{where}. Last {LOG_TAIL_LINES} lines of the Keycloak log:\n{_tail(self.log_file)}"

    def stop(self) -> None:
        """Terminate the server (SIGTERM to its process group, SIGKILL after `stop_timeout`); idempotent."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=10)
            # the session leader (kc.sh) is gone and reaped; should anything of its group remain, kill it
            if self._group_alive(proc.pid):
                self._signal_group(proc.pid, signal.SIGKILL)
        if self.run_dir is not None and not self.keep_work_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        self.discovery = None
        self._admin_token = None

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False  # not ours (the number was reused): leave it alone
        return True

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    # ------------------------------------------------------------------ addresses

    def _require(self) -> int:
        if self.http_port is None or self.discovery is None:
            raise KeycloakError("Keycloak is not running (call start() or use `with KeycloakServer() as kc`)")
        return self.http_port

    @property
    def base_url_or_none(self) -> str | None:
        return f"http://127.0.0.1:{self.http_port}" if self.http_port else None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._require()}"

    @property
    def realm_url(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def issuer_expected(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/realms/{REALM}"

    @property
    def issuer(self) -> str:
        self._require()
        return self.discovery["issuer"]

    @property
    def token_endpoint(self) -> str:
        self._require()
        return self.discovery["token_endpoint"]

    @property
    def jwks_uri(self) -> str:
        self._require()
        return self.discovery["jwks_uri"]

    @property
    def authorization_endpoint(self) -> str:
        self._require()
        return self.discovery["authorization_endpoint"]

    @property
    def admin_url(self) -> str:
        """Admin REST API of realm `diga`."""
        return f"{self.base_url}/admin/realms/{REALM}"

    def redirect_uri(self, port: int = 8765) -> str:
        """A loopback redirect URI the patient app may use (any port is accepted)."""
        return f"http://127.0.0.1:{port}{PATIENT_APP_REDIRECT_PATH}"

    # ------------------------------------------------------------------ tokens

    def jwks(self) -> dict[str, Any]:
        r = requests.get(self.jwks_uri, timeout=10)
        r.raise_for_status()
        return r.json()

    def signing_kids(self, alg: str = "RS256") -> list[str]:
        """kids of the realm's signing keys for `alg` in the published JWKS."""
        return [k["kid"] for k in self.jwks()["keys"] if k.get("use") == "sig" and k.get("alg") == alg]

    def token_response(self, **form: str) -> requests.Response:
        """POST `form` to the token endpoint as is; for tests of refusals."""
        return requests.post(self.token_endpoint, data=form, timeout=30)

    def client_credentials_token(self, client_id: str, secret: str) -> str:
        """An access token for a confidential client's service account (client_credentials grant)."""
        r = self.token_response(grant_type="client_credentials", client_id=client_id, client_secret=secret)
        return self._access_token(r, f"client_credentials for {client_id}")

    def admin_token(self) -> str:
        """An access token of the bootstrap admin (master realm, client admin-cli); reused while it has
        more than 15 s to live (each admin login costs a password hash)."""
        cached = self._admin_token
        if cached and cached[1] - time.monotonic() > 15:
            return cached[0]
        t0 = time.monotonic()
        r = requests.post(
            f"{self.base_url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli",
                  "username": self.admin_username, "password": self.admin_password},
            timeout=30,
        )
        token = self._access_token(r, "admin login")
        self._admin_token = (token, t0 + float(r.json().get("expires_in", 0)))
        return token

    @staticmethod
    def _access_token(r: requests.Response, what: str) -> str:
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text[:500]
        if r.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise KeycloakTokenError(f"{what}: HTTP {r.status_code} {body}", status=r.status_code, body=body)
        return body["access_token"]

    def authorization_request(
        self,
        *,
        client_id: str = PATIENT_APP_CLIENT_ID,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = "S256",
        scope: str = "openid",
        state: str | None = None,
        session: requests.Session | None = None,
        **extra: str,
    ) -> requests.Response:
        """GET the authorization endpoint like a browser would, without following redirects.

        With `code_challenge=None` no PKCE parameters are sent at all. Returns Keycloak's answer:
        200 with the login page, or 302 to the redirect URI (`error=...` when refused), or 400.
        """
        params = {"client_id": client_id, "response_type": "code",
                  "redirect_uri": redirect_uri or self.redirect_uri(),
                  "scope": scope, "state": state or secrets.token_urlsafe(16), **extra}
        if code_challenge is not None:
            params["code_challenge"] = code_challenge
            if code_challenge_method is not None:
                params["code_challenge_method"] = code_challenge_method
        s = session or requests.Session()
        r = s.get(self.authorization_endpoint, params=params, allow_redirects=False, timeout=30)
        _loopback_cookies(s)
        return r

    def authorization_code(
        self,
        username: str,
        password: str,
        *,
        code_challenge: str,
        code_challenge_method: str = "S256",
        client_id: str = PATIENT_APP_CLIENT_ID,
        redirect_uri: str | None = None,
        scope: str = "openid",
    ) -> str:
        """Log in through Keycloak's HTML form like a browser and return the authorization code taken
        from the redirect Location (not followed). Raises KeycloakLoginError when no code comes back
        (wrong password, refused request, unexpected page)."""
        redirect_uri = redirect_uri or self.redirect_uri()
        state = secrets.token_urlsafe(16)
        with requests.Session() as s:
            r = self.authorization_request(client_id=client_id, redirect_uri=redirect_uri,
                                           code_challenge=code_challenge,
                                           code_challenge_method=code_challenge_method,
                                           scope=scope, state=state, session=s)
            if r.status_code != 200:
                raise self._login_error("authorization request refused", r)
            form = _LoginFormParser()
            form.feed(r.text)
            if not form.action:
                raise self._login_error("no login form on the authorization page", r, form)
            r = s.post(form.action, data={"username": username, "password": password, "credentialId": ""},
                       allow_redirects=False, timeout=30)
            return self._code_from_redirect(r, redirect_uri, state)

    def pkce_login(
        self,
        username: str,
        password: str,
        client_id: str = PATIENT_APP_CLIENT_ID,
        *,
        redirect_uri: str | None = None,
        scope: str = "openid",
    ) -> dict[str, Any]:
        """The real authorization-code + PKCE (S256) flow through Keycloak's HTML login form.

        Returns the token endpoint's JSON (access_token, id_token, refresh_token, ...) plus the
        `code_verifier`, `code` and `redirect_uri` used. Raises KeycloakLoginError when no code comes
        back (wrong password, refused request) and KeycloakTokenError when the code exchange fails.
        """
        redirect_uri = redirect_uri or self.redirect_uri()
        verifier, challenge = pkce_pair()
        code = self.authorization_code(username, password, code_challenge=challenge, client_id=client_id,
                                       redirect_uri=redirect_uri, scope=scope)
        t = self.token_response(grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                                client_id=client_id, code_verifier=verifier)
        self._access_token(t, f"code exchange for {username}")
        return {**t.json(), "code_verifier": verifier, "code": code, "redirect_uri": redirect_uri}

    def _code_from_redirect(self, r: requests.Response, redirect_uri: str, state: str) -> str:
        if r.status_code not in (302, 303):
            raise self._login_error("login did not redirect (wrong credentials or extra steps required)", r)
        location = r.headers.get("Location", "")
        if not location.startswith(redirect_uri):
            raise KeycloakLoginError(f"login redirected elsewhere: {location}", status=r.status_code)
        q = parse_qs(urlsplit(location).query)
        if "error" in q:
            raise KeycloakLoginError(f"login refused: {q.get('error')} {q.get('error_description')}",
                                     status=r.status_code, error=q["error"][0])
        if q.get("state") != [state]:
            raise KeycloakLoginError(f"state mismatch in {location}", status=r.status_code)
        if "code" not in q:
            raise KeycloakLoginError(f"no code in {location}", status=r.status_code)
        return q["code"][0]

    @staticmethod
    def _login_error(what: str, r: requests.Response, form: _LoginFormParser | None = None) -> KeycloakLoginError:
        if form is None:
            form = _LoginFormParser()
            with contextlib.suppress(Exception):
                form.feed(r.text)
        location = r.headers.get("Location")
        error = None
        if location:
            error = (parse_qs(urlsplit(location).query).get("error") or [None])[0]
        detail = "; ".join(form.errors) or location or ""
        return KeycloakLoginError(f"{what}: HTTP {r.status_code} page={form.page_id} {detail}".strip(),
                                  status=r.status_code, page_id=form.page_id, error=error)

    # ------------------------------------------------------------------ admin

    def admin_request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the admin REST API of realm `diga` (`path` relative to /admin/realms/diga)."""
        headers = {"Authorization": f"Bearer {self.admin_token()}", **kwargs.pop("headers", {})}
        url = self.admin_url + ("/" + path.lstrip("/") if path else "")
        r = requests.request(method, url, headers=headers, timeout=30, **kwargs)
        if r.status_code >= 400:
            raise KeycloakError(f"admin {method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r

    def realm_keys(self) -> list[dict[str, Any]]:
        """The realm's keys as the admin API lists them (kid, algorithm, use, status, providerId, ...)."""
        return self.admin_request("GET", "keys").json()["keys"]

    def rotate_signing_key(self, retire: str = "delete", algorithm: str = "RS256") -> KeyRotation:
        """Rotate the realm's signing key: add a new generated RSA key provider with a higher priority
        (new tokens are signed with it at once), then retire the providers of the old keys.

        retire: "delete" (old keys leave the JWKS), "disable" (enabled=false: they leave the JWKS too),
        or "passive" (active=false: still published for verification, no longer used for signing).
        """
        if retire not in ("delete", "disable", "passive"):
            raise ValueError(f"retire must be delete, disable or passive, not {retire!r}")
        old = [k for k in self.realm_keys()
               if k.get("algorithm") == algorithm and k.get("use", "SIG") == "SIG" and k.get("type") == "RSA"]
        realm_id = self.admin_request("GET", "").json()["id"]
        priority = max((int(k.get("providerPriority", 0)) for k in old), default=100) + 100
        r = self.admin_request("POST", "components", json={
            "name": f"rsa-rotated-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm_id,
            "config": {"priority": [str(priority)], "enabled": ["true"], "active": ["true"],
                       "algorithm": [algorithm], "keySize": ["2048"]},
        })
        new_provider_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        old_provider_ids = tuple(dict.fromkeys(k["providerId"] for k in old))
        for pid in old_provider_ids:
            if retire == "delete":
                self.admin_request("DELETE", f"components/{pid}")
            else:
                comp = self.admin_request("GET", f"components/{pid}").json()
                comp.setdefault("config", {})["enabled" if retire == "disable" else "active"] = ["false"]
                self.admin_request("PUT", f"components/{pid}", json=comp)
        new = [k for k in self.realm_keys() if k.get("providerId") == new_provider_id]
        if not new:
            raise KeycloakError(f"the new key provider {new_provider_id} shows no key")
        return KeyRotation(new_kid=new[0]["kid"], new_provider_id=new_provider_id,
                           old_kids=tuple(k["kid"] for k in old), old_provider_ids=old_provider_ids, retire=retire)


def _loopback_cookies(session: requests.Session) -> None:
    """Keycloak marks its login cookies Secure (browsers send them to http://127.0.0.1 anyway, a
    "potentially trustworthy" origin); Python's cookie jar would not, so the login form would fail
    with cookie_not_found. Only ever used against the loopback server started here."""
    for c in session.cookies:
        if c.domain in ("127.0.0.1", "127.0.0.1.local", "localhost", "localhost.local"):
            c.secure = False


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.devstack.keycloak`: start, print the endpoints and demo credentials, run until Ctrl-C."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=DEFAULT_READY_TIMEOUT)
    ns = ap.parse_args(argv)
    with KeycloakServer(http_port=ns.port, ready_timeout=ns.timeout) as kc:
        print(f"Keycloak ready in {kc.startup_seconds:.1f} s: {kc.realm_url}")
        print(f"  admin console {kc.base_url}/admin/  user {kc.admin_username}  password {kc.admin_password}")
        for cid, secret in DEMO_CLIENT_SECRETS.items():
            print(f"  client {cid}  secret {secret}")
        for p in DEMO_PATIENTS.values():
            print(f"  patient {p.username}  password {p.password}  diga_patient_id {p.patient_id}")
        with contextlib.suppress(KeyboardInterrupt):
            while kc.running:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
