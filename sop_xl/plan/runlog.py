"""Run bookkeeping: who ran what, when, for how long — the Log table's rows, the LastRun cell, the
status bar. Every entry point (the planning steps, scenarios, snapshot, publish) runs inside
:func:`recording`, so the bookkeeping is written once."""
from __future__ import annotations

import getpass
import sys
import time
import traceback
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from sop_xl import contract as k
from sop_xl.plan.book import TableMissing
from sop_xl.plan.columns import column_positions
from sop_xl.plan.validation import ValidationError, missing_table_problem

OK, ERROR = "OK", "ERROR"


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"


def log_row(step: str, status: str, seconds: float, message: str) -> list[Any]:
    """One row of the Log table, in the contract's column order (Timestamp, User, Step, Status,
    Seconds, Message)."""
    return [datetime.now().strftime("%Y-%m-%d %H:%M:%S"), current_user(), step, status, round(seconds, 2),
            message[:500]]


class Recording:
    """What a run tells its recording: a row per step it finished, or one message for the whole run."""

    def __init__(self, what: str):
        self.what = what
        self.started = time.perf_counter()
        self.rows: list[list[Any]] = []
        self.message = ""
        self.seconds = 0.0  # set when the run ends

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def step_done(self, step: str, seconds: float, message: str) -> None:
        self.rows.append(log_row(step, OK, seconds, message))


@contextmanager
def recording(book, what: str) -> Iterator[Recording]:
    """Bookkeeping around one run of an entry point; ``what`` names it in the Log and the LastRun cell.

    - success: the Log rows (one per finished step, else one for ``what`` with ``message``), then
      the LastRun cell ("<time> <what>: OK in <s> s") where the workbook has one;
    - ValidationError: nothing is written — the inputs were refused before any work, and the
      problems go to the user in full;
    - any other error: one ERROR row with the exception and where it was raised, for support, and
      LastRun says ERROR; the exception goes on to the caller (which shows or prints it);
    - always: the status bar is cleared.
    """
    _require_log(book)
    rec = Recording(what)
    try:
        yield rec
        rec.seconds = rec.elapsed()
        book.append_rows(k.LOG, rec.rows or [log_row(what, OK, rec.seconds, rec.message)])
        _last_run(book, f"{what}: {OK} in {rec.seconds:.1f} s")
    except ValidationError:
        raise
    except Exception as exc:
        rec.seconds = rec.elapsed()
        _record_failure(book, rec, exc)
        raise
    finally:
        book.status(None)


def _require_log(book) -> None:
    """The Log table is where every run ends: missing (sheet or table deleted) or without its columns,
    the run is refused before any work, as any other problem of the workbook."""
    try:
        column_positions(book.read_table(k.LOG).headers, k.LOG)
    except TableMissing as exc:
        raise ValidationError([missing_table_problem(exc)]) from None


def failure_line(exc: BaseException) -> str:
    """The exception in one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"


def _record_failure(book, rec: Recording, exc: Exception) -> None:
    try:
        book.append_rows(k.LOG, [log_row(rec.what, ERROR, rec.seconds, failure_line(exc) + _where(exc))])
        _last_run(book, f"{rec.what}: {ERROR} after {rec.seconds:.1f} s")
    except Exception as log_exc:  # noqa: BLE001 - a broken Log table must not hide the real error
        print(f"sop-xl: the Log row could not be written: {failure_line(log_exc)}", file=sys.stderr)


def _last_run(book, text: str) -> None:
    if book.has_setting(k.LAST_RUN_NAME):
        book.write_named(k.LAST_RUN_NAME, f"{datetime.now():%Y-%m-%d %H:%M} {text}")
