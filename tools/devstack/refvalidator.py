"""The HL7 FHIR reference validator as a long-running local process (one JVM, many validations).

`make setup` builds `tools/java` into `<tools>/java/refvalidator.jar` + `<tools>/java/lib/*.jar` (Maven
Central only). The Java side (`de.diga.tools.RefValidator`) loads hl7.fhir.r4.core#4.0.1 and the IG packages
from the local FHIR package cache, without a terminology server and with web access prohibited, then speaks
JSON lines: one request per line on stdin, one `{"id", "outcome"}` answer per line on stdout, in order.

    with ReferenceValidator() as rv:                     # every package folder under igs/
        outcome = rv.validate(resource_dict)             # R4 OperationOutcome as a dict
        assert errors(outcome) == []

Paths come from `exporter.settings.get_settings()` (root, tools, home); nothing here goes online.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from exporter.settings import Settings, get_settings

MESSAGE_ID_SYSTEM = "http://hl7.org/fhir/java-core-messageId"
EXT_MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"
EXT_LINE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
EXT_COL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"

MAIN_CLASS = "de.diga.tools.RefValidator"
JAR_NAME = "refvalidator.jar"
# FHIR packages the validator needs in the cache besides the IGs (it loads the xver package unconditionally)
REQUIRED_PACKAGES = ("hl7.fhir.r4.core#4.0.1", "hl7.fhir.xver-extensions#0.1.0")
# Any accidental network access fails at once: every proxy points at a closed loopback port (the Java side
# also sets the validator's web-access policy to PROHIBITED).
OFFLINE_JVM_OPTIONS = (
    "-Djava.net.useSystemProxies=false",
    "-Dhttp.proxyHost=127.0.0.1", "-Dhttp.proxyPort=9",
    "-Dhttps.proxyHost=127.0.0.1", "-Dhttps.proxyPort=9",
    "-Dhttp.nonProxyHosts=", "-DsocksProxyHost=127.0.0.1", "-DsocksProxyPort=9",
)
DEFAULT_JVM_OPTIONS = ("-Xms256m", "-Xmx2g", "-XX:+UseParallelGC", "-Dfile.encoding=UTF-8")
_FIX = "run `make setup` (it builds tools/java into .tools/java and fills the FHIR package cache)"


class RefValidatorError(RuntimeError):
    """The reference validator could not be started, died, or did not answer in time."""


# ----------------------------------------------------------------------------- outcome helpers

def issues(outcome: Mapping[str, Any], *severities: str) -> list[dict]:
    """Issues of an OperationOutcome, optionally only those with one of the given severities."""
    found = list(outcome.get("issue", []))
    return [i for i in found if not severities or i.get("severity") in severities]


def errors(outcome: Mapping[str, Any]) -> list[dict]:
    """The error and fatal issues of an OperationOutcome."""
    return issues(outcome, "error", "fatal")


def warnings(outcome: Mapping[str, Any]) -> list[dict]:
    return issues(outcome, "warning")


def message_id(issue: Mapping[str, Any]) -> str | None:
    """The validator's message id (e.g. `Validation_VAL_Profile_Minimum`) of one issue, if any."""
    for ext in issue.get("extension", []):
        if ext.get("url") == EXT_MESSAGE_ID:
            return ext.get("valueString") or ext.get("valueCode")
    for coding in issue.get("details", {}).get("coding", []):
        if coding.get("system") == MESSAGE_ID_SYSTEM:
            return coding.get("code")
    return None


def text(issue: Mapping[str, Any]) -> str:
    return issue.get("details", {}).get("text", "") or issue.get("diagnostics", "")


def expression(issue: Mapping[str, Any]) -> str:
    """The FHIRPath location of an issue ('' when the issue is about the whole request)."""
    exprs = issue.get("expression") or issue.get("location") or [""]
    return exprs[0]


def summarize(outcome: Mapping[str, Any], *severities: str) -> str:
    """One line per issue, for assertion messages: `error Observation.code [MSG_ID] text`."""
    rows = issues(outcome, *severities) if severities else issues(outcome)
    return "\n".join(f"{i.get('severity')} {expression(i)} [{message_id(i)}] {text(i)}" for i in rows)


# ----------------------------------------------------------------------------- locating things

def default_igs(settings: Settings | None = None) -> list[Path]:
    """Every IG package folder under igs/ (a folder holding a package.json)."""
    s = settings or get_settings()
    if not s.igs_dir.is_dir():
        return []
    return sorted(p for p in s.igs_dir.iterdir() if p.is_dir() and (p / "package.json").is_file())


def java_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).tools / "java"


def classpath(settings: Settings | None = None) -> str:
    d = java_dir(settings)
    return os.pathsep.join([str(d / JAR_NAME), str(d / "lib" / "*")])


def find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def missing_prerequisites(settings: Settings | None = None, igs: Iterable[Path] | None = None) -> list[str]:
    """What is missing to start the validator (empty when everything is in place)."""
    s = settings or get_settings()
    problems = []
    if find_java() is None:
        problems.append("no `java` on PATH (Java 17+ is needed)")
    d = java_dir(s)
    if not (d / JAR_NAME).is_file() or not any((d / "lib").glob("org.hl7.fhir.validation-*.jar")):
        problems.append(f"the reference validator is not built: {d / JAR_NAME} and {d / 'lib'}/ are missing")
    for pkg in REQUIRED_PACKAGES:
        if not (s.package_cache / pkg / "package" / "package.json").is_file():
            problems.append(f"FHIR package {pkg} is missing from the package cache {s.package_cache}")
    for ig in (default_igs(s) if igs is None else igs):
        if Path(ig).exists():
            continue
        if "#" in str(ig) and "/" not in str(ig):  # a package id#version: it must be in the cache
            if not (s.package_cache / str(ig) / "package" / "package.json").is_file():
                problems.append(f"FHIR package {ig} is missing from the package cache {s.package_cache}")
        else:
            problems.append(f"IG {ig} does not exist")
    return problems


# ----------------------------------------------------------------------------- the process

def _close_quietly(stream: Any) -> None:
    try:
        if stream is not None and not stream.closed:
            stream.close()
    except (OSError, ValueError):
        pass


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "E" not in str(value) else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ReferenceValidator:
    """One HL7 validator JVM; requests are answered in order, one round trip each (or pipelined)."""

    def __init__(
        self,
        igs: Sequence[str | Path] | None = None,
        *,
        settings: Settings | None = None,
        startup_timeout: float = 300.0,
        request_timeout: float = 120.0,
        jvm_options: Sequence[str] | None = None,
        java: str | None = None,
        error_on: Sequence[str] = (),
        log_file: str | Path | None = None,
        stderr_lines: int = 400,
    ) -> None:
        self.settings = settings or get_settings()
        self.igs = [Path(p) for p in (default_igs(self.settings) if igs is None else igs)]
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.jvm_options = list(DEFAULT_JVM_OPTIONS if jvm_options is None else jvm_options)
        self.java = java
        self.error_on = list(error_on)
        self.log_file = Path(log_file) if log_file else None
        self.ready_info: dict[str, Any] = {}
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # -- lifecycle

    def command(self) -> list[str]:
        java = self.java or find_java() or "java"
        cmd = [java, *self.jvm_options, *OFFLINE_JVM_OPTIONS, f"-Duser.home={self.settings.home}",
               "-cp", classpath(self.settings), MAIN_CLASS]
        for ig in self.igs:
            cmd += ["--ig", str(ig)]
        for message in self.error_on:
            cmd += ["--error-on", message]
        return cmd

    def start(self) -> ReferenceValidator:
        """Launch the JVM and wait (at most `startup_timeout` s) for its ready line."""
        if self._proc is not None:
            raise RefValidatorError("the reference validator is already started")
        problems = missing_prerequisites(self.settings, self.igs)
        if problems:
            raise RefValidatorError("cannot start the HL7 reference validator: " + "; ".join(problems) + f"; {_FIX}")
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=str(self.settings.root),
        )
        atexit.register(self.close)
        self._threads = [
            threading.Thread(target=self._pump_stdout, name="refvalidator-stdout", daemon=True),
            threading.Thread(target=self._pump_stderr, name="refvalidator-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()
        deadline = t0 + self.startup_timeout
        try:
            while True:
                line = self._next_line(deadline, "starting")
                try:
                    msg = json.loads(line)
                except ValueError:
                    self._stderr.append(f"[stdout, not JSON] {line[:500]!r}")
                    continue
                if isinstance(msg, dict) and msg.get("ready") is True:
                    self.ready_info = msg
                    self.startup_seconds = time.monotonic() - t0
                    return self
                if isinstance(msg, dict) and msg.get("ready") is False:
                    self._fail(f"the reference validator could not load: {msg.get('error')}", dying=True)
                self._stderr.append(f"[stdout, unexpected] {line[:500]!r}")
        except BaseException:
            self.close(timeout=5, graceful=False)  # never leave a half-started JVM behind
            raise

    def close(self, timeout: float = 15.0, *, graceful: bool = True) -> int | None:
        """Stop the JVM (EOF on stdin, then SIGTERM, then SIGKILL to its PID, each wait bounded by `timeout`).

        Returns its exit code. `graceful=False` skips waiting for the EOF to take effect.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        atexit.unregister(self.close)
        if not graceful and proc.poll() is None:
            proc.terminate()
        # closing stdin flushes it, which could block on a full pipe: do it on the side, bounded
        closer = threading.Thread(target=_close_quietly, args=(proc.stdin,), daemon=True)
        closer.start()
        closer.join(timeout=2)
        steps = (None, proc.terminate, proc.kill) if graceful else (None, proc.kill)
        code = None
        for stop in steps:
            if stop is not None and proc.poll() is None:
                stop()
            try:
                code = proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            code = proc.poll()
        for t in self._threads:
            t.join(timeout=2)
        for stream in (proc.stdout, proc.stderr):
            _close_quietly(stream)
        return code

    def __enter__(self) -> ReferenceValidator:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_tail(self, lines: int = 60) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    # -- validation

    def validate(self, resource: Mapping[str, Any], profiles: Sequence[str] = ()) -> dict:
        """Validate one resource (a JSON object); returns the R4 OperationOutcome as a dict."""
        return self.request({"resource": resource, "profiles": list(profiles)})

    def validate_path(self, path: str | Path, profiles: Sequence[str] = ()) -> dict:
        """Validate a JSON or XML file byte for byte (line/column in the outcome refer to the file)."""
        return self.request({"path": str(Path(path).resolve()), "profiles": list(profiles)})

    def validate_text(self, content: str, profiles: Sequence[str] = ()) -> dict:
        """Validate raw FHIR JSON/XML text exactly as given (decimals, key order, duplicates kept)."""
        return self.request({"text": content, "profiles": list(profiles)})

    def validate_many(self, resources: Sequence[Mapping[str, Any]], profiles: Sequence[str] = ()) -> list[dict]:
        """Validate many resources in one pipelined exchange (no JVM restart); outcomes in input order."""
        payloads = [{"resource": r, "profiles": list(profiles)} for r in resources]
        return self.request_many(payloads)

    def request(self, payload: Mapping[str, Any]) -> dict:
        return self.request_many([payload])[0]

    def request_many(self, payloads: Sequence[Mapping[str, Any]]) -> list[dict]:
        """Send requests (dicts without "id") and return their outcomes, in order."""
        lines, ids = [], []
        for p in payloads:
            rid = str(next(self._ids))
            ids.append(rid)
            lines.append(json.dumps({"id": rid, **p}, ensure_ascii=False, default=_json_default))
        answers = self._exchange(lines, len(lines))
        outcomes = []
        for rid, answer in zip(ids, answers, strict=True):
            if answer.get("id") != rid:
                self._fail(f"answer out of order: expected id {rid}, got {answer.get('id')!r}")
            outcomes.append(answer["outcome"])
        return outcomes

    def send_raw(self, line: str) -> dict:
        """Send one raw request line (for tests of bad input); returns the whole answer {"id", "outcome"}."""
        if "\n" in line or "\r" in line:
            raise ValueError("a raw request must be a single line")
        return self._exchange([line], 1)[0]

    # -- internals

    def _exchange(self, lines: list[str], expected: int) -> list[dict]:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                self._fail("the reference validator is not running")
            assert proc.stdin is not None
            data = ("\n".join(lines) + "\n").encode("utf-8")
            # write from a thread so that a large batch cannot deadlock against a full stdout pipe
            write_error: list[BaseException] = []

            def _write() -> None:
                try:
                    proc.stdin.write(data)
                    proc.stdin.flush()
                except BaseException as exc:  # noqa: BLE001 - reported below
                    write_error.append(exc)

            writer = threading.Thread(target=_write, name="refvalidator-stdin", daemon=True)
            writer.start()
            answers = []
            for _ in range(expected):
                line = self._next_line(time.monotonic() + self.request_timeout, "validating")
                try:
                    answers.append(json.loads(line))
                except ValueError:
                    self._fail(f"the reference validator wrote a line that is not JSON: {line[:300]!r}")
            writer.join(timeout=self.request_timeout)
            if write_error:
                self._fail(f"could not write to the reference validator: {write_error[0]}")
            return answers

    def _next_line(self, deadline: float, doing: str) -> str:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"the reference validator did not answer in time while {doing}", kill=True)
            try:
                raw = self._stdout.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self._proc is None or self._proc.poll() is not None:
                    # give the stdout pump a moment to deliver what the process wrote before dying
                    try:
                        raw = self._stdout.get(timeout=1.0)
                    except queue.Empty:
                        raw = None
                    if raw is None:
                        self._fail(f"the reference validator exited while {doing}", dying=True)
                else:
                    continue
            if raw is None:
                self._fail(f"the reference validator closed its output while {doing}", dying=True)
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                return line

    def _fail(self, message: str, kill: bool = False, dying: bool = False) -> None:
        proc = self._proc
        if kill:
            self.close(timeout=5, graceful=False)
        elif dying and proc is not None:
            # a dying JVM: let it finish writing its stderr so that the message shows why
            try:
                message += f" (exit code {proc.wait(timeout=2)})"
                self._threads[-1].join(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        raise RefValidatorError(f"{message}\n--- last lines of its stderr ---\n{self.stderr_tail()}")

    def _pump_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            for raw in iter(proc.stdout.readline, b""):
                self._stdout.put(raw)
        except (OSError, ValueError):
            pass
        finally:
            self._stdout.put(None)

    def _pump_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        log = self.log_file.open("a", encoding="utf-8") if self.log_file else None
        try:
            for raw in iter(proc.stderr.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip()
                self._stderr.append(line)
                if log:
                    log.write(line + "\n")
                    log.flush()
        except (OSError, ValueError):
            pass
        finally:
            if log:
                log.close()
