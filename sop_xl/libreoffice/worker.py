"""LibreOffice worker: runs under the system Python (``/usr/bin/python3``), which has ``uno``.

This script is started by :mod:`sop_xl.libreoffice` and must import nothing but
the standard library and ``uno``: the system interpreter has neither sop_xl nor
the project's third-party packages.

It starts one private ``soffice`` (headless, with the user profile directory it
is given), connects to it over a named pipe, then serves requests until its
standard input ends or it is asked to quit, and finally closes LibreOffice.

Protocol: one JSON object per line.  Requests arrive on stdin::

    {"id": 1, "op": "inspect", "path": "...", "sheets_for_values": ["Dashboard"]}
    {"id": 2, "op": "convert", "path": "...", "out_path": "...", "filter_name": null, "sheets": null}
    {"id": 3, "op": "sleep", "seconds": 5}        (diagnostics: lets tests exercise timeouts)
    {"id": 4, "op": "quit"}

Replies and events go to the original stdout (fd 1 is then pointed at stderr so
that nothing LibreOffice or a library prints can corrupt the protocol)::

    {"event": "soffice_started", "pid": 1234}
    {"event": "ready", "startup_seconds": 1.7, "from_template": true}
    {"id": 1, "ok": true, "result": {...}, "seconds": 0.4}
    {"id": 2, "ok": false, "error": "...", "error_type": "LoadError"}
    {"event": "closed", "soffice_exit": 0}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid

try:  # only the system Python has uno; tooling may import this file elsewhere
    import uno
    from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
    from com.sun.star.connection import NoConnectException  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    uno = None

#: soffice.bin exits with this code after creating a fresh user profile and wants a restart.
E_RESTART = 81

#: Formula error codes (LibreOffice formula/errorcodes.hxx) and their display text.
#: Codes without an Excel equivalent display as "Err:<code>".
EXCEL_ERROR_NAMES = {
    503: "#NUM!",
    519: "#VALUE!",
    521: "#NULL!",
    524: "#REF!",
    525: "#NAME?",
    532: "#DIV/0!",
    32767: "#N/A",
}
ERROR_DESCRIPTIONS = {
    501: "invalid character",
    502: "invalid argument",
    503: "invalid numeric value",
    504: "error in parameter list",
    507: "pair missing",
    508: "bracket missing",
    509: "operator missing",
    510: "variable missing",
    511: "variable missing",
    512: "formula overflow",
    513: "string overflow",
    514: "internal overflow",
    516: "internal syntax error",
    517: "internal syntax error (unknown code)",
    518: "internal syntax error",
    519: "no result (wrong data type)",
    520: "internal syntax error",
    521: "empty intersection",
    522: "circular reference",
    523: "calculation does not converge",
    524: "invalid reference",
    525: "invalid name",
    526: "internal syntax error",
    527: "internal overflow (nesting)",
    532: "division by zero",
    533: "nested arrays not supported",
    538: "array or matrix size",
    539: "unsupported inline array content",
    540: "external content disabled",
    32767: "value not available",
}

#: Export filters chosen from the output file's suffix when none is given.
FILTERS_BY_SUFFIX = {
    ".pdf": "calc_pdf_Export",
    ".png": "calc_png_Export",
    ".xlsx": "Calc MS Excel 2007 XML",
    ".xlsm": "Calc MS Excel 2007 VBA XML",
    ".ods": "calc8",
    ".csv": "Text - txt - csv (StarCalc)",
}

FORMULA_FLAG = 16  # com.sun.star.sheet.CellFlags.FORMULA
ERROR_RESULT = 4  # com.sun.star.sheet.FormulaResult.ERROR
NEVER_EXECUTE = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE
NO_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE


class WorkerError(Exception):
    """An error to report to the caller as a clean message (no traceback)."""

    def __init__(self, message: str, error_type: str = "WorkerError") -> None:
        super().__init__(message)
        self.error_type = error_type


class OfficeDied(WorkerError):
    """The connection to soffice is gone; the worker cannot continue."""


_out = None  # protocol stream (a dup of the original stdout)


def emit(obj: dict) -> None:
    try:
        _out.write(json.dumps(obj, default=str) + "\n")
        _out.flush()
    except (OSError, ValueError):  # the caller has gone away; carry on shutting down
        pass


def log(msg: str) -> None:
    sys.stderr.write(f"[lo_worker {os.getpid()}] {msg}\n")
    sys.stderr.flush()


def pv(name: str, value) -> PropertyValue:
    prop = PropertyValue()
    prop.Name = name
    prop.Value = value
    return prop


def _die_with_parent() -> None:  # preexec_fn for soffice: SIGKILL it when the worker dies
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def soffice_binary(soffice: str) -> str:
    """The real soffice.bin next to the soffice launcher, if there is one.

    Starting soffice.bin directly skips the shell script and oosplash, so the
    worker owns the office process (and its pid) itself.
    """
    real = os.path.realpath(shutil.which(soffice) or soffice)
    candidate = os.path.join(os.path.dirname(real), "soffice.bin")
    return candidate if os.access(candidate, os.X_OK) else real


class Office:
    def __init__(self, soffice: str, profile_dir: str, template_dir: str | None) -> None:
        self.binary = soffice_binary(soffice)
        self.profile_dir = profile_dir
        self.template_dir = template_dir
        self.proc: subprocess.Popen | None = None
        self.desktop = None
        self.ctx = None
        self.from_template = False
        self.fresh_profile = False
        self.pipe_name = f"sop_xl_lo_{os.getpid()}_{uuid.uuid4().hex[:12]}"

    # -- lifecycle ---------------------------------------------------------
    def _args(self) -> list[str]:
        return [
            self.binary,
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            "--nodefault",
            "--nolockcheck",
            "-env:UserInstallation=" + uno.systemPathToFileUrl(self.profile_dir),
            f"--accept=pipe,name={self.pipe_name};urp;StarOffice.ComponentContext",
        ]

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            self._args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
            preexec_fn=_die_with_parent,
            close_fds=True,
        )
        emit({"event": "soffice_started", "pid": self.proc.pid})

    def _prepare_profile(self) -> None:
        os.makedirs(self.profile_dir, exist_ok=True)
        if self.template_dir and os.path.isdir(os.path.join(self.template_dir, "user")):
            try:
                shutil.copytree(self.template_dir, self.profile_dir, symlinks=True, dirs_exist_ok=True)
                self.from_template = True
                return
            except OSError as exc:
                log(f"could not copy profile template: {exc}")
                self._wipe_profile()
        self.fresh_profile = True

    def _wipe_profile(self) -> None:
        shutil.rmtree(self.profile_dir, ignore_errors=True)
        os.makedirs(self.profile_dir, exist_ok=True)

    def start(self, deadline: float) -> None:
        t0 = time.monotonic()
        self._prepare_profile()
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        url = f"uno:pipe,name={self.pipe_name};urp;StarOffice.ComponentContext"
        restarts = 0
        self._spawn()
        while True:
            code = self.proc.poll()
            if code is not None:
                if code == E_RESTART and restarts < 3:
                    restarts += 1
                    self._spawn()
                    continue
                if self.from_template and restarts < 3:
                    # A stale or broken template: retry once with a fresh profile.
                    log(f"soffice exited with {code} on a templated profile; retrying with a fresh one")
                    self.from_template = False
                    self.fresh_profile = True
                    self._wipe_profile()
                    restarts += 1
                    self._spawn()
                    continue
                raise WorkerError(f"soffice exited with code {code} during start-up", "StartupError")
            if time.monotonic() > deadline:
                raise WorkerError("soffice did not accept a connection before the deadline", "StartupError")
            try:
                self.ctx = resolver.resolve(url)
                break
            except NoConnectException:
                time.sleep(0.03)
        self.desktop = self.ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", self.ctx)
        emit({"event": "ready", "startup_seconds": round(time.monotonic() - t0, 3),
              "from_template": self.from_template})

    def close(self) -> int | None:
        """Terminate LibreOffice: politely first, then by force."""
        if self.proc is None:
            return None
        if self.desktop is None and self.proc.poll() is None:
            self.proc.kill()  # never connected: nothing to close politely
        if self.proc.poll() is None and self.desktop is not None:
            try:
                components = self.desktop.getComponents().createEnumeration()
                while components.hasMoreElements():
                    _close_doc(components.nextElement())
            except Exception:
                pass
            try:
                self.desktop.terminate()
            except Exception:  # usually DisposedException: the office went away mid-call
                pass
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.desktop = None
        return code

    def save_template(self) -> None:
        """After a clean shutdown of a fresh profile, keep a copy for faster later starts."""
        if not (self.template_dir and self.fresh_profile) or os.path.isdir(self.template_dir):
            return
        staging = f"{self.template_dir}.tmp{os.getpid()}"
        try:
            shutil.copytree(self.profile_dir, staging, symlinks=True)
            os.rename(staging, self.template_dir)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)

    # -- documents -----------------------------------------------------------
    def load(self, path: str, read_only: bool):
        if not os.path.exists(path):
            raise WorkerError(f"file not found: {path}", "FileNotFoundError")
        if not os.path.isfile(path):
            raise WorkerError(f"not a file: {path}", "LoadError")
        if os.path.getsize(path) == 0:  # LibreOffice would open it as a new, empty document
            raise WorkerError(f"empty file, not a workbook: {path}", "LoadError")
        props = (
            pv("Hidden", True),
            pv("ReadOnly", read_only),
            pv("MacroExecutionMode", NEVER_EXECUTE),
            pv("UpdateDocMode", NO_UPDATE),
            pv("RepairPackage", False),
            pv("Silent", True),
        )
        try:
            doc = self.desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(path)), "_blank", 0, props)
        except Exception as exc:
            self._check_alive()
            raise WorkerError(f"LibreOffice could not load {path}: {_uno_message(exc)}", "LoadError") from None
        if doc is None:
            self._check_alive()
            raise WorkerError(f"LibreOffice could not load {path} (unreadable or corrupt file)", "LoadError")
        if not doc.supportsService("com.sun.star.sheet.SpreadsheetDocument"):
            _close_doc(doc)
            raise WorkerError(f"{path} did not open as a spreadsheet (corrupt or not a workbook)", "LoadError")
        return doc

    def _check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise OfficeDied("soffice died while loading the file", "OfficeDied")

    def has_filter(self, name: str) -> bool:
        factory = self.ctx.ServiceManager.createInstanceWithContext("com.sun.star.document.FilterFactory", self.ctx)
        return factory.hasByName(name)


def _uno_message(exc: Exception) -> str:
    msg = getattr(exc, "Message", None) or str(exc)
    return f"{type(exc).__name__}: {msg}".strip()


def _close_doc(doc) -> None:
    try:
        doc.close(True)
    except Exception:
        try:
            doc.dispose()
        except Exception:
            pass


def _col_letters(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _a1(col: int, row: int) -> str:
    return f"{_col_letters(col)}{row + 1}"


def _error_text(cell, code: int) -> str:
    try:
        shown = cell.getString()
    except Exception:
        shown = ""
    if shown.startswith("#") or shown.startswith("Err:"):
        return shown
    return EXCEL_ERROR_NAMES.get(code, f"Err:{code}")


def _formula_printer(doc):
    """A function cell -> formula text in Excel (OOXML) syntax, falling back to LibreOffice's."""
    try:
        parser = doc.createInstance("com.sun.star.sheet.FormulaParser")
        mapper = doc.createInstance("com.sun.star.sheet.FormulaOpCodeMapper")
        language = uno.getConstantByName("com.sun.star.sheet.FormulaLanguage.OOXML")
        group = uno.getConstantByName("com.sun.star.sheet.FormulaMapGroup.ALL_EXCEPT_SPECIAL")
        parser.OpCodeMap = mapper.getAvailableMappings(language, group)
        parser.FormulaConvention = uno.getConstantByName("com.sun.star.sheet.AddressConvention.XL_OOX")
        parser.CompileEnglish = True
    except Exception as exc:
        log(f"no OOXML formula printer: {exc}")
        parser = None

    def formula(cell) -> str:
        if parser is not None:
            try:
                text = parser.printFormula(cell.getTokens(), cell.CellAddress)
                if text:
                    return "=" + text
            except Exception:
                pass
        return cell.getFormula()

    return formula


def _used_values(sheet, errors_by_cell: dict) -> list[list]:
    cursor = sheet.createCursor()
    cursor.gotoEndOfUsedArea(False)
    end = cursor.RangeAddress
    rows = sheet.getCellRangeByPosition(0, 0, end.EndColumn, end.EndRow).getDataArray()
    values = []
    for r, row in enumerate(rows):
        out = []
        for c, value in enumerate(row):
            if value is None:  # an error result
                value = errors_by_cell.get((c, r))
            elif value == "":
                value = None
            out.append(value)
        values.append(out)
    # An empty sheet still reports A1; give it no rows.
    if values == [[None]]:
        return []
    return values


def _basic_libraries(doc) -> dict[str, dict[str, str]]:
    libraries: dict[str, dict[str, str]] = {}
    try:
        container = doc.BasicLibraries
    except Exception:
        return libraries
    if container is None:
        return libraries
    for lib_name in container.getElementNames():
        try:
            if not container.isLibraryLoaded(lib_name):
                container.loadLibrary(lib_name)
            library = container.getByName(lib_name)
            libraries[lib_name] = {name: library.getByName(name) for name in library.getElementNames()}
        except Exception as exc:
            log(f"could not read Basic library {lib_name}: {exc}")
    return libraries


def do_inspect(office: Office, req: dict) -> dict:
    path = req["path"]
    wanted = list(req.get("sheets_for_values") or [])
    doc = office.load(path, read_only=True)
    try:
        doc.calculateAll()
        sheets = list(doc.Sheets.getElementNames())
        missing = [name for name in wanted if name not in sheets]
        if missing:
            raise WorkerError(f"sheet(s) not in {path}: {', '.join(missing)} (has {', '.join(sheets)})", "SheetNotFound")
        formula_of = _formula_printer(doc)
        formula_count = 0
        formula_errors = []
        values = {}
        for name in sheets:
            sheet = doc.Sheets.getByName(name)
            for addr in sheet.queryContentCells(FORMULA_FLAG).getRangeAddresses():
                formula_count += (addr.EndColumn - addr.StartColumn + 1) * (addr.EndRow - addr.StartRow + 1)
            errors_by_cell = {}
            for addr in sheet.queryFormulaCells(ERROR_RESULT).getRangeAddresses():
                for row in range(addr.StartRow, addr.EndRow + 1):
                    for col in range(addr.StartColumn, addr.EndColumn + 1):
                        cell = sheet.getCellByPosition(col, row)
                        code = cell.getError()
                        if not code:
                            continue
                        text = _error_text(cell, code)
                        errors_by_cell[(col, row)] = text
                        formula_errors.append({
                            "sheet": name,
                            "cell": _a1(col, row),
                            "formula": formula_of(cell),
                            "error": text,
                            "code": code,
                            "description": ERROR_DESCRIPTIONS.get(code, ""),
                        })
            if name in wanted:
                values[name] = _used_values(sheet, errors_by_cell)
        return {
            "path": path,
            "sheets": sheets,
            "basic_libraries": _basic_libraries(doc),
            "formula_errors": formula_errors,
            "formula_count": formula_count,
            "values": values,
        }
    finally:
        _close_doc(doc)


def do_convert(office: Office, req: dict) -> dict:
    path = req["path"]
    out_path = os.path.abspath(req["out_path"])
    filter_name = req.get("filter_name")
    sheets = req.get("sheets")
    if not filter_name:
        suffix = os.path.splitext(out_path)[1].lower()
        filter_name = FILTERS_BY_SUFFIX.get(suffix)
        if filter_name is None:
            raise WorkerError(f"no export filter known for {suffix!r}; pass filter_name", "FilterError")
    if not office.has_filter(filter_name):
        hint = " (PNG export needs LibreOffice's graphic filters: Debian package libreoffice-draw)" \
            if "png" in filter_name.lower() else ""
        raise WorkerError(f"LibreOffice has no export filter {filter_name!r}{hint}", "FilterError")
    if not os.path.exists(path):
        raise WorkerError(f"file not found: {path}", "FileNotFoundError")
    # Work on a private copy: the loaded document is changed (sheets hidden) and
    # must not be read-only for that, and the source file must never be touched.
    scratch = os.path.join(office.profile_dir, "scratch", uuid.uuid4().hex)
    os.makedirs(scratch)
    copy = os.path.join(scratch, os.path.basename(path))
    shutil.copyfile(path, copy)
    try:
        doc = office.load(copy, read_only=False)
        try:
            doc.calculateAll()
            all_sheets = list(doc.Sheets.getElementNames())
            if sheets:
                missing = [name for name in sheets if name not in all_sheets]
                if missing:
                    raise WorkerError(
                        f"sheet(s) not in {path}: {', '.join(missing)} (has {', '.join(all_sheets)})", "SheetNotFound")
                first = doc.Sheets.getByName(sheets[0])
                first.IsVisible = True
                try:
                    doc.getCurrentController().setActiveSheet(first)
                except Exception:
                    pass
                for name in all_sheets:
                    sheet = doc.Sheets.getByName(name)
                    sheet.IsVisible = name in sheets
                    if name not in sheets:  # LibreOffice still exports a hidden sheet that has a print area
                        sheet.setPrintAreas(())
            os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
            try:
                doc.storeToURL(uno.systemPathToFileUrl(out_path), (pv("FilterName", filter_name), pv("Overwrite", True)))
            except Exception as exc:
                office._check_alive()
                raise WorkerError(f"export with {filter_name!r} failed: {_uno_message(exc)}", "ExportError") from None
        finally:
            _close_doc(doc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not os.path.isfile(out_path):
        raise WorkerError(f"export with {filter_name!r} wrote no file", "ExportError")
    return {"out_path": out_path, "filter_name": filter_name, "bytes": os.path.getsize(out_path),
            "sheets": sheets or all_sheets}


def serve(office: Office) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        op = req.get("op")
        rid = req.get("id")
        if op == "quit":
            return
        t0 = time.monotonic()
        try:
            if op == "inspect":
                result = do_inspect(office, req)
            elif op == "convert":
                result = do_convert(office, req)
            elif op == "sleep":
                time.sleep(float(req.get("seconds", 0)))
                result = {}
            elif op == "ping":
                result = {"soffice_pid": office.proc.pid}
            else:
                raise WorkerError(f"unknown op {op!r}", "ProtocolError")
            emit({"id": rid, "ok": True, "result": result, "seconds": round(time.monotonic() - t0, 3)})
        except WorkerError as exc:
            emit({"id": rid, "ok": False, "error": str(exc), "error_type": exc.error_type})
            if isinstance(exc, OfficeDied):
                return
        except Exception as exc:  # a UNO failure: report it, and stop if the office is gone
            alive = office.proc is not None and office.proc.poll() is None
            emit({"id": rid, "ok": False, "error": _uno_message(exc), "error_type": type(exc).__name__,
                  "traceback": traceback.format_exc(limit=5)})
            if not alive or type(exc).__name__ == "DisposedException":
                return


def main() -> int:
    global _out
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, help="user profile directory (private, created if absent)")
    parser.add_argument("--template", default=None, help="profile template directory to copy from / save to")
    parser.add_argument("--soffice", default="soffice")
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    args = parser.parse_args()

    _out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else printed to stdout goes to stderr
    sys.stdout = sys.stderr

    office = None

    def on_signal(signum, _frame):
        if office is not None and office.proc is not None and office.proc.poll() is None:
            office.proc.kill()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    if uno is None:
        emit({"event": "startup_failed", "error": f"{sys.executable} cannot import uno (python3-uno)",
              "error_type": "ImportError"})
        return 2
    office = Office(args.soffice, args.profile, args.template)
    try:
        office.start(time.monotonic() + args.startup_timeout)
    except Exception as exc:
        error_type = exc.error_type if isinstance(exc, WorkerError) else type(exc).__name__
        message = str(exc) if isinstance(exc, WorkerError) else _uno_message(exc)
        office.close()
        shutil.rmtree(args.profile, ignore_errors=True)
        emit({"event": "startup_failed", "error": message, "error_type": error_type})
        return 2
    code = None
    try:
        serve(office)
    finally:
        code = office.close()
        if code == 0:
            office.save_template()
        shutil.rmtree(args.profile, ignore_errors=True)
        emit({"event": "closed", "soffice_exit": code})
    return 0


if __name__ == "__main__":
    sys.exit(main())
