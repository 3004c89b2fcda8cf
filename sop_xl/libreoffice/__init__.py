"""LibreOffice Calc as an independent spreadsheet application, for checking workbooks.

LibreOffice's Python-UNO bridge (``uno``) only imports in the system Python
(``/usr/bin/python3`` from Debian's ``python3-uno``), not in the project's
virtual environment.  This module therefore runs :mod:`sop_xl.libreoffice.worker` as a
script under that interpreter; the worker starts a private headless ``soffice``
(own temporary user profile, no restore, no macros executed), talks to it over
a UNO pipe, and answers JSON requests on its stdin/stdout.

One-shot helpers start and stop LibreOffice per call::

    insp = inspect("book.xlsm", sheets_for_values=["Dashboard"])
    convert("book.xlsm", "review.pdf", sheets=["Dashboard", "Exceptions"])

Several files in one LibreOffice session (start-up is most of the cost)::

    with LibreOfficeSession() as lo:
        a, b = lo.inspect_many(["a.xlsx", "b.xlsm"])
        lo.convert("a.xlsx", "a.pdf")

Every call has a timeout (default 120 s).  On a timeout or any failure the
worker's whole process group (worker and soffice) is killed, and the worker
also arranges for soffice to be killed if the worker dies, so no LibreOffice
process outlives a call or a session.  Source files are never saved: inspect
opens them read-only, convert works on a private copy.

The first start on a machine creates a LibreOffice user profile (which costs a
restart of soffice); a clean copy of it is kept in the temp directory as a
template so later sessions start faster.  Set ``SOP_XL_LO_TEMPLATE=0`` to
always start from an empty profile.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_TIMEOUT",
    "Inspection",
    "LibreOfficeError",
    "LibreOfficeSession",
    "LibreOfficeTimeout",
    "available",
    "convert",
    "inspect",
    "inspect_many",
]

#: Interpreter that can ``import uno`` (Debian's python3-uno).
UNO_PYTHON = os.environ.get("SOP_XL_UNO_PYTHON", "/usr/bin/python3")
#: LibreOffice launcher; the worker starts the soffice.bin beside it.
SOFFICE = os.environ.get("SOP_XL_SOFFICE", "soffice")
WORKER = Path(__file__).with_name("worker.py")
DEFAULT_TIMEOUT = 120.0
#: Time allowed for LibreOffice to shut down cleanly before it is killed.
CLOSE_GRACE = 20.0


class LibreOfficeError(RuntimeError):
    """LibreOffice could not do what was asked (the message says why)."""

    def __init__(self, message: str, *, error_type: str | None = None, worker_pid: int | None = None,
                 soffice_pids: Sequence[int] = (), log_tail: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.worker_pid = worker_pid
        self.soffice_pids = list(soffice_pids)
        self.log_tail = log_tail


class LibreOfficeTimeout(LibreOfficeError):
    """A call did not finish within its timeout; LibreOffice was killed."""


@dataclass
class Inspection:
    sheets: list[str]
    #: Module name -> source, as LibreOffice imported the VBA project (library
    #: 'VBAProject'; else the document's 'Standard' Basic library).
    basic_modules: dict[str, str]
    #: Formula cells whose result is an error after a full recalculation:
    #: {"sheet", "cell" (A1), "formula" (Excel syntax where LibreOffice can
    #: print it), "error" (e.g. '#NAME?', 'Err:502'), "code", "description"}.
    formula_errors: list[dict]
    formula_count: int
    #: Sheet -> rows of values from A1 to the end of the used area, for the
    #: sheets asked for.  Numbers (and booleans, and dates) are floats, text
    #: is str, empty cells are None, error results are their error text.
    values: dict[str, list[list]] = field(default_factory=dict)
    path: str = ""
    #: Every Basic library of the document: library -> module -> source.
    basic_libraries: dict[str, dict[str, str]] = field(default_factory=dict)

    def error_cells(self) -> dict[str, str]:
        """``{"Sheet!A1": error text}`` for quick assertions."""
        return {f"{e['sheet']}!{e['cell']}": e["error"] for e in self.formula_errors}


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether soffice is on PATH and the UNO interpreter can import uno."""
    if shutil.which(SOFFICE) is None or not os.access(UNO_PYTHON, os.X_OK):
        return False
    try:
        probe = subprocess.run([UNO_PYTHON, "-I", "-c", "import uno"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _template_dir() -> str | None:
    if os.environ.get("SOP_XL_LO_TEMPLATE", "1") in ("0", "", "no", "false"):
        return None
    launcher = shutil.which(SOFFICE)
    if launcher is None:
        return None
    real = os.path.realpath(launcher)
    binary = os.path.join(os.path.dirname(real), "soffice.bin")
    try:
        st = os.stat(binary if os.path.exists(binary) else real)
    except OSError:
        return None
    key = hashlib.sha1(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"sop_xl_lo_profile_{os.getuid()}_{key}")


_live_sessions: weakref.WeakSet[LibreOfficeSession] = weakref.WeakSet()


@atexit.register
def _close_live_sessions() -> None:
    for session in list(_live_sessions):
        session.kill()


class LibreOfficeSession:
    """One headless LibreOffice, serving requests until closed.

    ``timeout`` is the default for each request, and for start-up.  After a
    timeout or a lost connection the session is dead (LibreOffice killed);
    make a new one.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.worker_pid: int | None = None
        self.soffice_pids: list[int] = []
        self.startup_seconds: float | None = None
        self.from_template: bool | None = None
        self.soffice_exit: int | None = None
        #: The session's private directory (LibreOffice profile, log); removed on close.
        self.private_dir: str | None = None
        self._proc: subprocess.Popen | None = None
        self._queue: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None
        self._root: str | None = None
        self._log = None
        self._next_id = 0
        self._dead = False
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> LibreOfficeSession:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self._dead and self._proc.poll() is None

    def start(self, timeout: float | None = None) -> LibreOfficeSession:
        if self._proc is not None:
            return self
        if not available():
            raise LibreOfficeError(f"LibreOffice is not available (need {SOFFICE} on PATH and "
                                   f"{UNO_PYTHON} with the uno module)")
        timeout = self.timeout if timeout is None else timeout
        self._root = self.private_dir = tempfile.mkdtemp(prefix="sop_xl_lo_")
        profile = os.path.join(self._root, "profile")
        self._log = open(os.path.join(self._root, "worker.log"), "w+b")
        cmd = [UNO_PYTHON, "-I", str(WORKER), "--profile", profile, "--soffice", SOFFICE,
               "--startup-timeout", str(max(timeout, 1.0))]
        template = _template_dir()
        if template:
            cmd += ["--template", template]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      env=env, start_new_session=True, close_fds=True)
        self.worker_pid = self._proc.pid
        _live_sessions.add(self)
        self._reader = threading.Thread(target=self._read, name=f"lo-worker-{self._proc.pid}", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            msg = self._get(deadline, "starting LibreOffice", timeout)
            if msg.get("event") == "ready":
                self.startup_seconds = msg.get("startup_seconds")
                self.from_template = msg.get("from_template")
                return self
            if msg.get("event") == "startup_failed":
                self.kill()
                raise self._error(f"LibreOffice did not start: {msg.get('error')}", msg.get("error_type"))

    def close(self) -> None:
        """Ask LibreOffice to close, wait for it, then make sure nothing is left."""
        if self._proc is None:
            return
        if not self._dead and self._proc.poll() is None:
            try:
                self._proc.stdin.write(b'{"op": "quit"}\n')
                self._proc.stdin.flush()
                self._proc.stdin.close()
            except OSError:
                pass
            deadline = time.monotonic() + CLOSE_GRACE
            while time.monotonic() < deadline:  # the reader ends at EOF (the worker has exited)
                self._reader.join(timeout=0.05)
                if not self._reader.is_alive():
                    break
        self.kill()

    def kill(self) -> None:
        """Kill the worker and LibreOffice (its whole process group) and remove the session's files."""
        proc = self._proc
        if proc is None:
            return
        self._dead = True
        # The worker has not been reaped yet (only wait() below reaps it), so its
        # pid -- which is also the process group id -- cannot have been reused.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        _live_sessions.discard(self)

    # -- plumbing ----------------------------------------------------------------
    def _read(self) -> None:
        stream = self._proc.stdout
        try:
            for raw in stream:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if msg.get("event") == "soffice_started":
                    self.soffice_pids.append(msg["pid"])
                elif msg.get("event") == "closed":
                    self.soffice_exit = msg.get("soffice_exit")
                self._queue.put(msg)
        except (OSError, ValueError):
            pass
        self._queue.put({"event": "eof"})

    def _log_tail(self, limit: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.flush()
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - limit))
            return self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _error(self, message: str, error_type: str | None = None, cls=LibreOfficeError) -> LibreOfficeError:
        return cls(message, error_type=error_type, worker_pid=self.worker_pid, soffice_pids=self.soffice_pids,
                   log_tail=self._log_tail())

    def _get(self, deadline: float, what: str, timeout: float) -> dict:
        remaining = deadline - time.monotonic()
        try:
            msg = self._queue.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            err = self._error(f"LibreOffice timed out after {timeout:g} s {what}", "Timeout", LibreOfficeTimeout)
            self.kill()
            raise err from None
        if msg.get("event") == "eof":
            err = self._error(f"the LibreOffice worker exited unexpectedly while {what}\n{self._log_tail(1500)}",
                              "WorkerExited")
            self.kill()
            raise err
        return msg

    def _request(self, op: str, timeout: float | None = None, **fields) -> dict:
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            if self._proc is None:
                self.start(timeout)
            if self._dead or self._proc.poll() is not None:
                raise self._error("the LibreOffice session is closed")
            self._next_id += 1
            rid = self._next_id
            deadline = time.monotonic() + timeout
            try:
                self._proc.stdin.write((json.dumps({"id": rid, "op": op, **fields}) + "\n").encode())
                self._proc.stdin.flush()
            except OSError:
                err = self._error("the LibreOffice worker is gone", "WorkerExited")
                self.kill()
                raise err from None
            what = f"during {op} {fields.get('path', '')}".rstrip()
            while True:
                msg = self._get(deadline, what, timeout)
                if msg.get("id") != rid:
                    continue
                if msg.get("ok"):
                    return msg["result"]
                if msg.get("error_type") in ("OfficeDied", "DisposedException"):
                    self.kill()
                raise self._error(msg.get("error", "unknown error"), msg.get("error_type"))

    # -- operations --------------------------------------------------------------
    def inspect(self, path: str | os.PathLike, sheets_for_values: Iterable[str] = (),
                timeout: float | None = None) -> Inspection:
        """Open read-only (no macros), recalculate everything, and report; never saves."""
        path = _existing(path)
        result = self._request("inspect", timeout, path=path, sheets_for_values=list(sheets_for_values))
        libraries = result.get("basic_libraries") or {}
        modules = libraries.get("VBAProject") or libraries.get("Standard") or {}
        return Inspection(
            sheets=result["sheets"],
            basic_modules=dict(modules),
            formula_errors=result["formula_errors"],
            formula_count=result["formula_count"],
            values=result.get("values") or {},
            path=path,
            basic_libraries=libraries,
        )

    def inspect_many(self, paths: Iterable[str | os.PathLike], sheets_for_values: Iterable[str] = (),
                     timeout: float | None = None) -> list[Inspection]:
        """Inspect several files in this session (``timeout`` applies to each)."""
        wanted = list(sheets_for_values)
        return [self.inspect(p, wanted, timeout) for p in paths]

    def convert(self, path: str | os.PathLike, out_path: str | os.PathLike, filter_name: str | None = None,
                sheets: Sequence[str] | None = None, timeout: float | None = None) -> Path:
        """Export a recalculated copy to PDF/xlsx/ods/... (PNG needs libreoffice-draw installed).

        With ``sheets``, the other sheets are hidden in the loaded copy, so a PDF
        holds only those (an xlsx/ods export keeps the others, hidden).
        """
        path = _existing(path)
        out = Path(out_path).absolute()
        self._request("convert", timeout, path=path, out_path=str(out), filter_name=filter_name,
                      sheets=list(sheets) if sheets else None)
        return out

    def _sleep(self, seconds: float, timeout: float | None = None) -> None:
        """Diagnostics: make the worker busy for ``seconds`` (used to test timeouts)."""
        self._request("sleep", timeout, seconds=seconds)


def _existing(path: str | os.PathLike) -> str:
    p = Path(path).absolute()
    if not p.is_file():
        raise LibreOfficeError(f"file not found: {p}", error_type="FileNotFoundError")
    return str(p)


def _one_shot(timeout: float, work):
    deadline = time.monotonic() + timeout
    session = LibreOfficeSession(timeout=timeout)
    try:
        session.start(timeout)
        return work(session, max(deadline - time.monotonic(), 0.001))
    finally:
        session.close()


def inspect(path: str | os.PathLike, sheets_for_values: Iterable[str] = (),
            timeout: float = DEFAULT_TIMEOUT) -> Inspection:
    """Inspect one workbook in a LibreOffice started for this call.

    ``timeout`` covers start-up and the work; closing LibreOffice afterwards
    takes at most ``CLOSE_GRACE`` more before it is killed.
    """
    _existing(path)
    wanted = list(sheets_for_values)
    return _one_shot(timeout, lambda s, left: s.inspect(path, wanted, timeout=left))


def inspect_many(paths: Iterable[str | os.PathLike], sheets_for_values: Iterable[str] = (),
                 timeout: float = DEFAULT_TIMEOUT) -> list[Inspection]:
    """Inspect several workbooks in one LibreOffice started for this call (``timeout`` as for inspect)."""
    paths = list(paths)
    for p in paths:
        _existing(p)
    wanted = list(sheets_for_values)

    def work(session: LibreOfficeSession, _left: float) -> list[Inspection]:
        deadline = time.monotonic() + _left
        return [session.inspect(p, wanted, timeout=max(deadline - time.monotonic(), 0.001)) for p in paths]

    return _one_shot(timeout, work)


def convert(path: str | os.PathLike, out_path: str | os.PathLike, filter_name: str | None = None,
            sheets: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Export ``path`` to ``out_path`` (filter from the suffix unless given); see LibreOfficeSession.convert."""
    _existing(path)
    return _one_shot(timeout, lambda s, left: s.convert(path, out_path, filter_name, sheets, timeout=left))
